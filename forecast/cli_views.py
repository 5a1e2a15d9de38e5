"""The commands that set several views side by side: ``compare`` and ``pool``.

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
    _with_status,
    app,
)


@app.command()
def compare(
    scenarios: Annotated[
        list[Path],
        typer.Argument(
            help="Scenario files or report folders; the first is A.", show_default=False
        ),
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
    """Set scenarios side by side and show which assumption explains the gap."""
    from forecast import api

    result, folder = _with_status(
        "comparing",
        lambda progress: api.compare(
            scenarios,
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
    _compare_table(result, folder)


def _short_method(r) -> str:
    """How a row was computed, in a few words (compare.md gives the rest)."""
    if r["method"] == "reweighted":
        return f"reweighted, k {r['pareto_k']:.2f}, ESS {r['ess']:.0f}"
    if r["method"] == "refit" and r.get("pareto_k") is not None:
        return f"refit (k {r['pareto_k']:.2f})"
    return r["method"]


def _explained_line(pair) -> str:
    """How much of the gap the single swaps explain, and the path that closes it."""
    from forecast.report.compare import explained_share
    from forecast.report.tables import pct

    gap, ex = pair["gap"], pair["explained"]
    return (
        f"gap {pair['b']} − {pair['a']}: {pct(gap, pair['gap_mcse'])}; the single swaps add up to "
        f"{pct(ex, pair['explained_mcse'])}{explained_share(gap, ex)}; the rest is how the "
        f"assumptions act together. Swapped in one after another, largest first, {pair['a']} "
        f"becomes {pair['b']}:"
    )


def _compare_table(result, folder) -> None:
    from rich.table import Table

    from forecast.mcse import num, se
    from forecast.report.tables import pct, pct_row

    console = _console(stderr=False)
    t = Table(title="forecast compare", title_justify="left")
    for col in ("scenario", "P(success)", "MCSE (points)", "90% HDI"):
        t.add_column(col, justify="left" if col == "scenario" else "right")
    for label, s in result["scenarios"].items():
        mean, hdi, error = pct_row(s["p_success"])
        t.add_row(label, mean, error, hdi)
    console.print(t)
    for pair in result["pairs"]:
        e = pair["p_a_greater_mcse"]
        console.print(f"P({pair['a']} > {pair['b']}) = {num(pair['p_a_greater'], e, 3)} ± {se(e)}")
        recs = pair.get("recommendations") or {}
        if any(recs.values()):
            console.print(
                "recommended: "
                + ", ".join(f"{k} → [bold]{v or '(no decision)'}[/]" for k, v in recs.items())
            )
            if pair["flips"]:
                console.print(
                    f"swapping one of these into {pair['a']} flips its recommendation: "
                    + ", ".join(pair["flips"])
                )
            elif recs.get(pair["a"]):  # A has a recommendation that none of B's swaps flips
                console.print(
                    f"no single assumption of {pair['b']} flips {pair['a']}'s recommendation"
                )
        a = Table(
            title=f"what explains the gap: each assumption of {pair['b']} put into {pair['a']}",
            title_justify="left",
            caption="change in P(success) ± MCSE, in points; k, ESS: the reweighting's",
            caption_justify="left",
            expand=True,
        )
        # a path is folded onto more lines, never cut: it is what --set takes
        a.add_column("assumption", overflow="fold", ratio=6)
        a.add_column("change", justify="right", no_wrap=True)
        a.add_column("method", overflow="fold", ratio=3)
        for r in pair["attribution"][:10]:
            delta = (
                "—"
                if r["delta"] is None
                else "+" * (r["delta"] > 0) + pct(r["delta"], r["delta_mcse"])
            )
            a.add_row(r["path"], f"{delta} ± {se(r['delta_mcse'], 100)}", _short_method(r))
        if len(pair["attribution"]) > 10:
            a.add_row(f"... {len(pair['attribution']) - 10} more in compare.md", "", "")
        console.print(a)
        console.print(_explained_line(pair))
        for step in pair.get("path") or []:
            console.print(
                f"  + {step['add']}: {pct(step['p_success'], step['p_success_mcse'])}"
                f" ± {se(step['p_success_mcse'], 100)} ({step['method']})"
            )
    console.print(f"report: {folder / 'report.html'}")


@app.command()
def pool(
    scenarios: Annotated[
        list[Path],
        typer.Argument(
            help="Scenario files or report folders of one question.id.", show_default=False
        ),
    ],
    rule: Annotated[
        str, typer.Option("--rule", help="linear (a mixture of the views) or logodds.")
    ] = "linear",
    extremize: Annotated[
        float, typer.Option("--extremize", help="Log-odds pool: d > 1 sharpens the consensus.")
    ] = 1.0,
    weights: Annotated[
        str, typer.Option("--weights", help="equal, or scores (each author's ledger record).")
    ] = "equal",
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger", help="Ledger file or URL (default forecast.sqlite or $FORECAST_LEDGER)."
        ),
    ] = None,
    set_: SetOpt = None,
    draws: DrawsOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
    json_out: JsonOpt = False,
    out: OutOpt = Path("reports"),
    allow_outside: OutsideOpt = False,
) -> None:
    """Pool several views of one question into one forecast (PRODUCT §8)."""
    from forecast import api
    from forecast.mcse import se
    from forecast.report.tables import pct

    result, folder = _with_status(
        "pooling",
        lambda progress: api.pool(
            [str(s) for s in scenarios],
            rule=rule,
            extremize=extremize,
            weights=weights,
            ledger=ledger,
            overrides=set_ or [],
            draws=draws,
            chains=chains,
            seed=seed,
            out=out,
            allow_outside=allow_outside,
            progress=progress,
        ),
    )
    if json_out:
        _echo_json(result)
        return
    console = _console(stderr=False)
    for mid, m in result["members"].items():
        st = m["p_success"]
        console.print(
            f"{mid}: {pct(st['mean'], st.get('mcse'))} (weight {result['weights'][mid]:.3f})"
        )
    p = result["pooled"]
    console.print(
        f"pooled ({result['rule']}): [bold]{pct(p['mean'], p['mcse'])}[/] ± {se(p['mcse'], 100)} "
        f"points, 90% {pct(p['hdi_90'][0], p['mcse'])}–{pct(p['hdi_90'][1], p['mcse'])}"
    )
    console.print(f"report: {folder / 'report.html'}")
