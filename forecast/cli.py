"""The ``forecast`` command line: parse arguments, call :mod:`forecast.api`, print, exit.

Exit codes: 0 done; 1 a fit ran but its diagnostics fail (the report is written and
says so); 2 bad input or usage (nothing is written). No modelling happens here, and
nothing heavy is imported at start-up so that ``forecast --help`` stays instant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from forecast.executor import no_c_compilation

app = typer.Typer(
    name="forecast",
    help="Turn an argument about diplomacy into a checkable Bayesian forecast.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Change a belief or setting, e.g. factors.x.holds=unlikely (repeatable).",
    ),
]
DrawsOpt = Annotated[
    int | None, typer.Option("--draws", min=100, help="Draws per chain (default: the scenario's).")
]
ChainsOpt = Annotated[
    int | None, typer.Option("--chains", min=1, max=16, help="Chains (default: the scenario's).")
]
SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", min=0, max=2**32 - 1, help="Random seed (default: the scenario's)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine output (JSON) on stdout.")]
OutOpt = Annotated[
    Path, typer.Option("--out", help="Parent folder of the reports (replaces reports/).")
]
OutsideOpt = Annotated[
    bool,
    typer.Option("--allow-outside", help="Let reference.data leave the scenario's folder tree."),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="Run the what-ifs on this Dask distributed cluster (uv sync --extra dask).",
    ),
]


def _console(stderr: bool = True):
    from rich.console import Console

    # piped or captured, Rich lays out tables for $COLUMNS or 80 (each fits); sentences
    # and messages stay one line each in a log (a terminal wraps them at word boundaries)
    console = Console(stderr=stderr, highlight=False)
    console.soft_wrap = not console.is_terminal
    return console


def _problems(err, console) -> None:
    for p in err.problems:
        console.print(f"[bold red]error[/]: {_escape(str(p))}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class _Progress:
    """A spinner on a terminal; elsewhere (a log, a pipe) one stderr line per new phase.

    ``--json`` keeps stdout for the result, so a user piping it still sees the run move.
    """

    def __init__(self, console, label: str) -> None:
        self.console, self.label, self.last = console, label, None
        self.status = console.status(label) if console.is_terminal else None

    def __enter__(self) -> _Progress:
        if self.status is not None:
            self.status.__enter__()
        else:
            self.console.print(self.label)
        return self

    def __exit__(self, *exc) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)

    def update(self, msg: str) -> None:
        if self.status is not None:
            self.status.update(_escape(msg))
        elif msg != self.last:
            # phases only: "attribution 3/28: …" counts are shown on a terminal, not logged
            self.console.print(_escape(msg))
        self.last = msg


def _with_status(label: str, call):
    """Run ``call(progress)`` with progress shown; bad input becomes exit 2 with its message."""
    from forecast.errors import ScenarioError

    err = _console()
    try:
        with _Progress(err, label) as progress:
            return call(progress.update)
    except ScenarioError as e:
        _problems(e, err)
        raise typer.Exit(2) from None


def _echo_json(result) -> None:
    import json

    typer.echo(json.dumps(result, indent=2))


def _warn(console, problems) -> None:
    for w in problems:
        console.print(f"[yellow]warning[/]: {_escape(str(w))}")


@app.command()
def run(
    scenarios: Annotated[
        list[Path], typer.Argument(help="Scenario files (YAML).", show_default=False)
    ],
    set_: SetOpt = None,
    draws: DrawsOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
    json_out: JsonOpt = False,
    out: OutOpt = Path("reports"),
    allow_outside: OutsideOpt = False,
    record: Annotated[
        bool, typer.Option("--record", help="Add each forecast to the ledger as it is written.")
    ] = False,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            metavar="PATH|URL",
            help="Ledger file or SQLAlchemy URL (default forecast.sqlite, or $FORECAST_LEDGER).",
        ),
    ] = None,
) -> None:
    """Validate, fit and write the report of each scenario."""
    from forecast import api
    from forecast.errors import ScenarioError

    err = _console()
    prepared, worst = [], 0
    for path in scenarios:  # validate every file before fitting any
        try:
            prep = api.prepare(
                path, set_ or [], draws=draws, chains=chains, seed=seed, allow_outside=allow_outside
            )
        except ScenarioError as e:
            _problems(e, err)
            worst = 2
            continue
        _warn(err, [w for w in prep.warnings if "why" not in w.message])
        prepared.append(prep)
    results = []
    for prep in prepared:
        with _Progress(err, f"{prep.id}: starting") as status:

            def progress(msg: str, _id: str = prep.id, _status=status) -> None:
                _status.update(f"{_id}: {msg}")

            try:
                result = api.run(prep, out, progress=progress)
            except ScenarioError as e:
                _problems(e, err)
                worst = 2
                continue
        results.append(result)
        worst = max(worst, result.exit_code)
        if result.exit_code == 1:
            err.print(f"[bold red]{prep.id}: the fit's diagnostics fail; the report says so.[/]")
        if record:
            worst = max(worst, _record(result, ledger, err))
    if json_out:
        typer.echo(api.summary_json([r.summary for r in results]))
    elif results:
        _run_table(results)
    raise typer.Exit(worst)


def _record(result, ledger: str | None, err) -> int:
    """``run --record``: add the report's forecasts to the ledger; 2 if it cannot be used."""
    from forecast import ledger as ledger_mod
    from forecast.errors import ScenarioError

    try:
        done = ledger_mod.record_summary(ledger, result.summary, result.folder)
    except ScenarioError as e:
        _problems(e, err)
        return 2
    _warn(err, done.warnings)
    what = ", ".join(done.added) or "nothing new"
    err.print(f"{result.summary['id']}: recorded in the ledger: {_escape(what)}")
    return 0


def _run_table(results) -> None:
    from rich.table import Table

    from forecast.report.tables import decision_sentence, pct_row

    t = Table(
        title="forecast run",
        title_justify="left",
        caption="MCSE in points; NUTS R-hat max, bulk ESS min, divergences (— if exact)",
        caption_justify="left",
    )
    for col in ("scenario", "P(success)", "MCSE", "90% HDI", "R-hat", "ESS", "div."):
        t.add_column(col, justify="left" if col == "scenario" else "right")
    for r in results:
        s, d = r.summary, r.summary["diagnostics"]
        mean, hdi, error = pct_row(s["p_success"])
        t.add_row(
            s["id"],
            mean,
            error,
            hdi,
            "—" if d["r_hat_max"] is None else f"{d['r_hat_max']:.3f}",
            "—" if d["ess_bulk_min"] is None else f"{d['ess_bulk_min']:.0f}",
            "—" if d["divergences"] is None else str(d["divergences"]),
        )
    console = _console(stderr=False)
    console.print(t)
    for r in results:  # a path on its own line: it can be copied, and the table stays narrow
        console.print(f"{r.summary['id']} report: {r.folder / 'report.html'}")
    for r in results:
        d = r.summary.get("decision")
        if d:
            console.print(f"{r.summary['id']}: {_escape(decision_sentence(d))}".replace("**", ""))


@app.command()
def sensitivity(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML).", show_default=False)],
    set_: SetOpt = None,
    draws: DrawsOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
    json_out: JsonOpt = False,
    out: OutOpt = Path("reports"),
    allow_outside: OutsideOpt = False,
    scheduler: SchedulerOpt = None,
) -> None:
    """Show which beliefs the answer hangs on (tornado, and psense with data)."""
    from forecast import api

    result, folder = _with_status(
        "sensitivity",
        lambda progress: api.sensitivity(
            scenario,
            set_ or [],
            draws=draws,
            chains=chains,
            seed=seed,
            out=out,
            allow_outside=allow_outside,
            progress=progress,
            scheduler=scheduler,
        ),
    )
    if json_out:
        _echo_json(result)
        return
    from rich.table import Table

    from forecast.mcse import se
    from forecast.report.tables import pct

    console = _console(stderr=False)
    base_e = result["p_success_base_mcse"]
    t = Table(
        title=f"forecast sensitivity: {result['id']} (base P(success) "
        f"{pct(result['p_success_base'], base_e)} ± {se(base_e, 100)} points)",
        title_justify="left",
    )
    for col in ("belief", "low", "P(success)", "high", "P(success)", "swing ± MCSE", "method"):
        t.add_column(col, justify="left" if col in ("belief", "method") else "right")
    for r in result["tornado"]:
        lo = pct(r["p_success_low"], r["p_success_low_mcse"])
        hi = pct(r["p_success_high"], r["p_success_high_mcse"])
        swing = f"{pct(r['swing'], r['swing_mcse'])} ± {se(r['swing_mcse'], 100)}"
        t.add_row(r["path"], f"{r['low']:.3g}", lo, f"{r['high']:.3g}", hi, swing, r["method_low"])
    console.print(t)
    if result["psense"]:
        p = Table(title="power-scaling sensitivity (psense)", title_justify="left")
        for col in ("belief", "prior → belief", "prior → P(success)", "likelihood", "diagnosis"):
            p.add_column(col)
        for r in result["psense"]:
            p.add_row(
                r["variable"],
                *(
                    "—" if r[k] is None else f"{r[k]:.3f}"
                    for k in ("prior", "p_success_prior", "likelihood")
                ),
                r["diagnosis"] or "–",
            )
        console.print(p)
    console.print(f"report: {folder / 'report.html'}")


@app.command()
def backtest(
    scenario: Annotated[
        Path, typer.Argument(help="Scenario file (YAML) with reference data.", show_default=False)
    ],
    set_: SetOpt = None,
    draws: DrawsOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
    json_out: JsonOpt = False,
    out: OutOpt = Path("reports"),
    allow_outside: OutsideOpt = False,
    scheduler: SchedulerOpt = None,
) -> None:
    """Forecast each reference round from the rounds before it, and score the forecasts."""
    from forecast import api

    result, folder = _with_status(
        "backtest",
        lambda progress: api.backtest(
            scenario,
            set_ or [],
            draws=draws,
            chains=chains,
            seed=seed,
            out=out,
            allow_outside=allow_outside,
            progress=progress,
            scheduler=scheduler,
        ),
    )
    if json_out:
        _echo_json(result)
        return
    from rich.table import Table

    from forecast.mcse import num, se

    console = _console(stderr=False)
    console.print(f"[yellow]{_escape(result['hindsight'])}[/]")
    targets = {
        **{f"stage {k}": v for k, v in result["stages"].items()},
        "whole pathway": result["pathway"],
    }
    for name, target in targets.items():
        t = Table(
            title=f"forecast backtest: {result['id']}, {name}, {target['n']} rounds",
            title_justify="left",
        )
        for col in ("forecaster", "Brier (lower is better)", "log score (higher is better)"):
            t.add_column(col, justify="left" if col == "forecaster" else "right")
        t.add_row(
            "scenario (priors + earlier rounds)",
            num(target["brier"], target["brier_mcse"], 3),
            num(target["log_score"], target["log_score_mcse"], 3),
        )
        for base, sc in target["baselines"].items():
            d = target["differences"][base]
            t.add_row(
                f"{base.replace('_', ' ')} (scenario − it ± SE over rounds)",
                f"{num(sc['brier'], sc['brier_mcse'], 3)} ({d['brier']:+.3f} ± {se(d['brier_se'])})",
                f"{num(sc['log_score'], sc['log_score_mcse'], 3)} "
                f"({d['log_score']:+.3f} ± {se(d['log_score_se'])})",
            )
        console.print(t)
    if result["unreliable_rounds"]:
        console.print(
            f"[yellow]{len(result['unreliable_rounds'])} round(s) rest on importance weights that "
            "fail the trust rule (Pareto k or ESS) and could not be refitted; see the report[/]"
        )
    console.print(f"report: {folder / 'report.html'}")


@app.command()
def check(
    scenarios: Annotated[
        list[Path], typer.Argument(help="Scenario files (YAML).", show_default=False)
    ],
    set_: SetOpt = None,
    allow_outside: OutsideOpt = False,
) -> None:
    """Validate scenarios and their data; nothing is fitted or written."""
    from forecast import api
    from forecast.errors import ScenarioError

    err, worst = _console(), 0
    for path in scenarios:
        try:
            loaded = api.check(path, set_ or [], allow_outside=allow_outside)
        except ScenarioError as e:
            _problems(e, err)
            worst = 2
            continue
        _warn(err, loaded.warnings)
        n = len(loaded.warnings)
        out = _console(stderr=False)
        out.print(f"{path}: ok" + (f" ({n} warning{'s' * (n != 1)})" if n else ""))
        if loaded.data is not None:
            for line in loaded.data.describe(loaded.spec):
                out.print(_escape(line))
    raise typer.Exit(worst)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the scenario format (for editors)."""
    import json

    from forecast.scenario import Scenario

    doc = Scenario.model_json_schema(by_alias=True)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "forecast scenario (schema 1)"
    typer.echo(json.dumps(doc, indent=2))


@app.command()
def words(json_out: JsonOpt = False) -> None:
    """Print the verbal scales and the distributions they stand for."""
    import json

    from forecast.beliefs import shipped_scales

    scales = shipped_scales()
    if json_out:
        typer.echo(json.dumps(scales, indent=2))
        return
    from rich.table import Table

    console = _console(stderr=False)
    for scale, what in (
        ("probability", "Beta (maximum entropy)"),
        ("odds_ratio", "LogNormal (equal tails)"),
    ):
        t = Table(
            title=f"{scale.replace('_', ' ')} words: 90% of the mass in the range, {what}",
            title_justify="left",
        )
        for col in ("word", "90% range", "distribution"):
            t.add_column(col)
        for word, spec in scales[scale].items():
            lo, hi = spec["range"]
            family = "beta" if "beta" in spec else "lognormal"
            a, b = spec[family]
            name = "Beta" if family == "beta" else "LogNormal"
            t.add_row(word, f"{lo:g} – {hi:g}", f"{name}({a:.3g}, {b:.3g})")
        console.print(t)
    console.print(
        _escape(
            "A scenario may add or override words under `words: {probability: {word: [lo, hi]}}`."
        )
    )


@app.command()
def new(
    name: Annotated[
        str,
        typer.Argument(
            help="Scenario id (lowercase letters, digits, - and _).", show_default=False
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the new file.")] = Path(
        "scenarios"
    ),
) -> None:
    """Write a commented starter scenario to scenarios/NAME.yaml (never overwrites)."""
    import datetime as dt
    import re
    from importlib import resources

    from forecast.scenario import SLUG

    err = _console()
    if not re.match(SLUG, name):
        err.print(
            f"[bold red]error[/]: '{name}' is not a valid id: use lowercase letters, digits, - and _"
        )
        raise typer.Exit(2)
    target = out / f"{name}.yaml"
    today = dt.date.today()
    text = resources.files("forecast").joinpath("starter.yaml").read_text(encoding="utf-8")
    text = text.replace("{name}", name).replace("{path}", str(target))
    text = text.replace("{today}", today.isoformat()).replace("{year}", str(today.year))
    try:
        out.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as fh:  # "x": never overwrite
            fh.write(text)
    except FileExistsError:
        err.print(f"[bold red]error[/]: {target} already exists; not overwritten")
        raise typer.Exit(2) from None
    except OSError as e:
        err.print(f"[bold red]error[/]: cannot write {target}: {e.strerror}")
        raise typer.Exit(2) from None
    _console(stderr=False).print(f"wrote {target}")


def main() -> None:
    """Console-script entry point: no tracebacks for the user."""
    no_c_compilation()
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as e:  # a bug, not bad input: say so plainly
        if os.environ.get("FORECAST_DEBUG"):
            raise
        sys.stderr.write(
            f"forecast: internal error: {type(e).__name__}: {e}\n"
            "This is a bug in forecast, not in your scenario; rerun with FORECAST_DEBUG=1 for details.\n"
        )
        sys.exit(3)


# commands defined beside this module, registered on `app` as they are imported
from forecast import cli_explore, cli_ledger, cli_sweep, cli_views  # noqa: E402,F401

if __name__ == "__main__":
    main()
