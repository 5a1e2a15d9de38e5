"""The ledger's commands (PRODUCT §7): ``record``, ``resolve`` and ``scores``.

They are registered on :data:`forecast.cli.app` when :mod:`forecast.cli` imports this
module (its last line). As in :mod:`forecast.cli`, nothing heavy is imported until a
command runs (SQLAlchemy, matplotlib), bad input is exit 2 with its message, never a
traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import JsonOpt, OutOpt, _console, _escape, _problems, _warn, app

LedgerOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        metavar="PATH|URL",
        help="Ledger file or SQLAlchemy URL (default forecast.sqlite, or $FORECAST_LEDGER).",
    ),
]


def _bad_input(call):
    """Run ``call()``; bad input becomes its message and exit 2."""
    from forecast.errors import ScenarioError

    try:
        return call()
    except ScenarioError as e:
        _problems(e, _console())
        raise typer.Exit(2) from None


@app.command()
def record(
    reports: Annotated[
        list[Path],
        typer.Argument(
            metavar="REPORT",
            help="Report folders (each with its summary.json).",
            show_default=False,
        ),
    ],
    ledger: LedgerOpt = None,
) -> None:
    """Add report folders' forecasts to the ledger: the model's and the author's own."""
    from forecast import ledger as ledger_mod

    done, label = _bad_input(lambda: ledger_mod.record_reports(ledger, reports))
    out, err = _console(stderr=False), _console()
    for r in done:
        _warn(err, r.warnings)
        what = []
        if r.added:
            what.append(f"recorded {', '.join(r.added)}")
        if r.unchanged:
            what.append(f"already in the ledger: {', '.join(r.unchanged)}")
        out.print(_escape(f"{r.report} ({r.question_id}): {'; '.join(what)}"))
    n = sum(len(r.added) for r in done)
    out.print(_escape(f"ledger {label}: {n} forecast{'s' * (n != 1)} added"))


@app.command()
def resolve(
    question_id: Annotated[
        str | None,
        typer.Argument(
            metavar="QUESTION_ID", help="The question's id (question.id).", show_default=False
        ),
    ] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", metavar="yes|no|annulled", help="What happened.")
    ] = None,
    on: Annotated[
        str | None,
        typer.Option("--on", metavar="DATE", help="The day it became known (default today)."),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", metavar="TEXT", help="Where the outcome is recorded.")
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from",
            metavar="FILE.yaml",
            help="Many resolutions (format: scenarios/resolutions.yaml).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Change an outcome already recorded (kept in history).")
    ] = False,
    ledger: LedgerOpt = None,
) -> None:
    """Record what happened to a question: yes, no or annulled."""
    from forecast import ledger as ledger_mod

    entries = _bad_input(lambda: _entries(question_id, outcome, on, source, from_file))
    done, label = _bad_input(lambda: ledger_mod.resolve(ledger, entries, force))
    out, err = _console(stderr=False), _console()
    for r in done:
        if r.status == "skipped":
            _warn(err, [f"skipped: {r.note}; record a forecast of it first"])
            continue
        before = ledger_mod.OUTCOME_WORDS.get(r.previous) if r.previous else None
        text = {
            "resolved": f"{r.question_id}: resolved {r.outcome}",
            "changed": f"{r.question_id}: changed from {before} to {r.outcome} (--force)",
            "updated": f"{r.question_id}: {r.outcome}, date or source updated",
            "unchanged": f"{r.question_id}: already resolved {r.outcome}; nothing changed",
        }[r.status]
        out.print(_escape(text))
    out.print(_escape(f"ledger {label}"))


def _entries(question_id, outcome, on, source, from_file):
    """The resolutions asked for: one from the options, or a file's."""
    from forecast.errors import UsageError
    from forecast.ledger_inputs import Resolution, outcome_word, parse_date, read_resolutions

    if from_file is not None:
        if question_id or outcome or on or source:
            raise UsageError.one(
                "give either QUESTION_ID --outcome ... or --from FILE.yaml, not both",
                field="--from",
            )
        return read_resolutions(from_file)
    if not question_id:
        raise UsageError.one(
            "give a QUESTION_ID and --outcome yes|no|annulled, or --from FILE.yaml",
            field="QUESTION_ID",
        )
    if outcome is None:
        raise UsageError.one("missing --outcome (yes, no or annulled)", field="--outcome")
    return [Resolution(question_id, outcome_word(outcome), parse_date(on), source)]


@app.command()
def scores(
    by: Annotated[
        str, typer.Option("--by", metavar="author|outlet|scenario|question", help="Group by.")
    ] = "author",
    json_out: JsonOpt = False,
    out: OutOpt = Path("reports"),
    ledger: LedgerOpt = None,
) -> None:
    """Score resolved forecasts (Brier, log score, baseline score) and write the page."""
    import json

    from forecast import ledger as ledger_mod
    from forecast.report.atomic import atomic_folder

    result, page = _bad_input(lambda: ledger_mod.score(ledger, by))
    folder = out / "scores"
    result["report"] = str(folder / "report.html")
    try:
        with atomic_folder(folder) as tmp:
            (tmp / "report.html").write_text(page, encoding="utf-8")
            (tmp / "scores.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    except OSError as e:
        _console().print(f"[bold red]error[/]: cannot write {_escape(str(folder))}: {e.strerror}")
        raise typer.Exit(2) from None
    if json_out:
        typer.echo(json.dumps(result, indent=2))
        return
    _scores_table(result)


def _scores_table(result) -> None:
    from rich.table import Table

    def cell(g, score, digits=3):
        """A mean, with ± its standard error where there is one."""
        se = g[f"{score}_se"]
        return f"{g[score]:.{digits}f}" + ("" if se is None else f" ± {se:.{digits}f}")

    console = _console(stderr=False)
    t = Table(
        title=f"forecast scores by {result['by']}",
        title_justify="left",
        caption="n questions; mean ± SE over them. Brier: lower is better; log and baseline "
        "score: higher (baseline 0 = a coin flip)",
        caption_justify="left",
    )
    for col in (result["by"], "kind", "n", "Brier", "log score", "baseline"):
        t.add_column(col, justify="left" if col in (result["by"], "kind") else "right")
    for g in result["groups"]:
        t.add_row(
            _escape(g["group"]),
            g["kind"],
            str(g["n"]),
            cell(g, "brier"),
            cell(g, "log_score"),
            cell(g, "baseline", 1),
        )
    c = result["counts"]
    if result["groups"]:
        console.print(t)
    else:
        console.print("no resolved forecasts to score yet (forecast resolve QUESTION_ID ...)")
    console.print(
        f"{c['resolved']['questions']} resolved question(s), {c['resolved']['forecasts']} "
        f"forecast(s) scored; annulled, left out: {c['annulled']['questions']} question(s), "
        f"{c['annulled']['forecasts']} forecast(s); not resolved yet: "
        f"{c['unresolved']['questions']} question(s), {c['unresolved']['forecasts']} forecast(s)"
    )
    console.print(f"report: {_escape(result['report'])}")
