"""``forecast sweep``: every combination of several beliefs, locally or on a Dask cluster.

Registered on :data:`forecast.cli.app` when :mod:`forecast.cli` imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import (
    ChainsOpt,
    DrawsOpt,
    JsonOpt,
    OutOpt,
    OutsideOpt,
    SchedulerOpt,
    SeedOpt,
    SetOpt,
    _console,
    _echo_json,
    _escape,
    _problems,
    _Progress,
    app,
)


@app.command()
def sweep(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (YAML).", show_default=False)],
    vary: Annotated[
        list[str],
        typer.Option(
            "--vary",
            metavar="PATH=[V1, V2, ...]",
            help="A belief and the values to try, in scenario syntax (repeatable).",
        ),
    ],
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Local worker processes (default: the core count)."),
    ] = None,
    scheduler: SchedulerOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Run a grid of more than 10,000 variants.")
    ] = False,
    set_: SetOpt = None,
    draws: DrawsOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
    json_out: JsonOpt = False,
    out: OutOpt = Path("reports"),
    allow_outside: OutsideOpt = False,
) -> None:
    """P(success) over every combination of the varied beliefs (PRODUCT §10)."""
    from forecast import sweep as sw
    from forecast.errors import ScenarioError
    from forecast.executor import open_executor

    err = _console()
    try:  # everything checked before anything is fitted or written
        plan = sw.plan(
            scenario,
            vary,
            set_ or [],
            draws=draws,
            chains=chains,
            seed=seed,
            allow_outside=allow_outside,
            yes=yes,
        )
        executor = open_executor(workers, scheduler)
    except ScenarioError as e:
        _problems(e, err)
        raise typer.Exit(2) from None
    with executor:
        with _Progress(err, f"sweep of {plan.prep.id}: {plan.n} variants") as status:
            folder = sw.ensure_base(plan, out, status.update)
        with _Bar(err, plan.n) as bar:
            result, folder = sw.run(plan, executor, out, tick=bar.tick)
    if result["retried"]:
        err.print(
            f"[yellow]{len(result['retried'])} variant(s) ran again on another worker after a "
            "worker died: "
            + "; ".join(
                f"#{r['index']} ({_escape(', '.join(f'{k}={v}' for k, v in r['values'].items()))})"
                for r in result["retried"]
            )
            + "[/]"
        )
    if json_out:
        _echo_json(result)
        return
    _sweep_table(result, folder)


class _Bar:
    """A Rich progress bar: variants done, refits so far, variants running, time left.

    Whether a variant needs a refit is known only once its weights are computed (inside
    its job), so the bar counts the refits done and the variants still to come. Off a
    terminal (a log) one line per tenth of the grid.
    """

    def __init__(self, console, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console, self.total, self.refits, self.shown = console, total, 0, 0
        self.progress = Progress(
            TextColumn("variants"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[refits]} refitted, {task.fields[pending]} to go"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task("sweep", total=total, refits=0, pending=total)

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def tick(self, done: int, total: int, row) -> None:
        self.refits += row["method"] == "refit"
        self.progress.update(self.task, completed=done, refits=self.refits, pending=total - done)
        if not self.console.is_terminal and done * 10 // total > self.shown:
            self.shown = done * 10 // total
            self.console.print(f"variants {done}/{total} ({self.refits} refitted)")


def _sweep_table(result, folder: Path) -> None:
    from rich.table import Table

    from forecast.mcse import se
    from forecast.report.tables import pct

    console = _console(stderr=False)
    rows = result["rows"]
    methods = list(result["methods"])
    one_method = methods[0] if len(methods) == 1 else None
    t = Table(
        title=f"forecast sweep: {result['id']}, {result['n_variants']} variants",
        title_justify="left",
        caption="MCSE in points; 90% equal-tailed interval"
        + (f"; every variant {one_method}" if one_method else ""),
        caption_justify="left",
    )
    paths = [a["path"] for a in result["vary"]]
    for p in paths:  # named by what is varied: the table stays narrow (the CSV has the path)
        t.add_column(_short(p), overflow="fold")
    d = result["decision"]
    figures = ("P(success)", "MCSE", "90% interval")
    figures += (() if one_method else ("method",)) + (("best",) if d else ())
    for col in figures:  # the figures are never cut; the varied values fold instead
        t.add_column(col, justify="left" if col in ("method", "best") else "right", no_wrap=True)
    shown = rows if len(rows) <= 30 else sorted(rows, key=lambda r: r["p_success_mean"] or 0)
    if len(rows) > 30:  # the extremes of a large grid; sweep.csv has every row
        shown = shown[:5] + shown[-5:]
    for r in shown:
        e = r["p_success_mcse"]
        interval = "—" if r["hdi_lo"] is None else f"{pct(r['hdi_lo'], e)}–{pct(r['hdi_hi'], e)}"
        t.add_row(
            *(str(r["values"][p]) for p in paths),
            pct(r["p_success_mean"], e),
            se(e, 100),
            interval,
            *(() if one_method else (r["method"],)),
            *((r["recommended"] or "—",) if d else ()),
        )
    console.print(t)
    if len(rows) > 30:
        console.print("(the 5 lowest and 5 highest P(success); every variant is in sweep.csv)")
    if d:
        counts = ", ".join(f"{k} {n}" for k, n in d["best_counts"].items())
        console.print(
            f"best option over the grid (variants where it has the highest mean value): {counts}"
        )
    console.print(f"sweep: {folder / 'sweep.csv'}")
    console.print(f"report: {folder / 'report.html'}")


#: Last parts of a path that say what kind of number it is, not which one.
_KINDS = {"holds", "probability", "belief", "odds_ratio", "value", "likelihood_ratio", "p_success"}


def _short(path: str) -> str:
    """A column name for a varied path: the belief's own name (its section's)."""
    parts = path.split(".")
    if len(parts) > 1 and parts[-1] in _KINDS:
        name = parts[-2] if parts[-2] != "base_rate" else ".".join(parts[-3:-1])
        return f"{name} ({parts[-1]})" if parts[-1] != "belief" else name
    return parts[-1]
