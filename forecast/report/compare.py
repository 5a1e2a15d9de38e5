"""The comparison report: compare.json, compare.md and report.html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forecast.mcse import num, se
from forecast.report.atomic import atomic_folder
from forecast.report.html import ENV
from forecast.report.tables import finite_or_none, hidden_note, pct, with_effect


def _p(st: dict[str, Any]) -> tuple[str, str, str]:
    """(mean, 90% HDI, MCSE) of a scenario's P(success), to the digits its MCSE supports."""
    from forecast.report.tables import pct_row

    return pct_row(st)


def _row(r: dict[str, Any]) -> tuple[str, str, str, str]:
    """(A, with B's version, change, its MCSE) of one attribution row."""
    e, d = r.get("delta_mcse"), r["delta"]
    change = "—" if d is None else ("+" if d > 0 else "") + pct(d, e)
    return (
        pct(r["p_success_a"], e),
        pct(r["p_success_swapped"], r.get("p_success_mcse")),
        change,
        "—" if e is None else f"±{se(e, 100)}",
    )


def method_label(r: dict[str, Any]) -> str:
    """A what-if row's method with what its trust rests on: k and ESS, or why it was refitted."""
    if r["method"] == "reweighted":
        return f"reweighted (k = {r['pareto_k']:.2f}, ESS {r['ess']:.0f})"
    if r["method"] == "refit" and r.get("note"):
        return f"refit ({r['note']})"
    return r["method"]


def _greater(pair: dict[str, Any]) -> str:
    e = pair.get("p_a_greater_mcse")
    return f"{num(pair['p_a_greater'], e, 3)} ± {se(e)}"


def _recommendation_lines(pair: dict[str, Any]) -> list[str]:
    recs = pair.get("recommendations") or {}
    if not any(recs.values()):
        return []
    out = [
        "Recommended: "
        + "; ".join(f"`{k}` → **{v or '(no decision)'}**" for k, v in recs.items())
        + "."
    ]
    if pair["flips"]:
        out.append(
            f"Swapped into `{pair['a']}` alone, these flip its recommendation: "
            + ", ".join(f"`{p}`" for p in pair["flips"])
            + "."
        )
    elif recs.get(pair["a"]):  # no flip line when A has no decision to flip
        out.append(f"No single assumption of `{pair['b']}` flips `{pair['a']}`'s recommendation.")
    return [*out, ""]


def explained_share(gap: float | None, explained: float | None) -> str:
    """How much of the gap the single swaps account for, in words."""
    if not gap or explained is None:
        return ""
    share = explained / gap
    if 0 <= share <= 1.5:
        return f" ({100 * share:.0f}% of the gap)"
    return (
        " (not the gap: the assumptions act together so much that single swaps say little; "
        "the path below does)"
    )


def explained_text(pair: dict[str, Any]) -> str | None:
    """How much of the gap the single swaps explain, and what is left."""
    if pair.get("gap") is None:
        return None
    gap, ex = pair["gap"], pair["explained"]
    return (
        f"The gap, P({pair['b']}) − P({pair['a']}), is {pct(gap, pair['gap_mcse'])}. The single "
        f"swaps' moves add up to {pct(ex, pair['explained_mcse'])}"
        f"{explained_share(gap, ex)}; the rest is how the assumptions act together (one "
        "belief's effect depends on the others). Swapped in one after another, the largest "
        f"move first, {pair['a']} becomes {pair['b']}:"
    )


def path_rows(pair: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The cumulative path: (what is added, P(success) after it, its MCSE, the method)."""
    return [
        (
            step["add"],
            pct(step["p_success"], step["p_success_mcse"]),
            se(step["p_success_mcse"], 100),
            step["method"],
        )
        for step in pair.get("path") or []
    ]


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Comparison",
        "",
        "| scenario | P(success) | 90% HDI | MCSE (points) |",
        "|---|---:|---|---:|",
    ]
    for label, s in result["scenarios"].items():
        mean, hdi, error = _p(s["p_success"])
        lines.append(f"| `{label}` — {s['title']} | {mean} | {hdi} | {error} |")
    for pair in result["pairs"]:
        a, b = pair["a"], pair["b"]
        lines += [
            "",
            f"## `{a}` vs `{b}`",
            "",
            f"P({a} > {b}) = {_greater(pair)} (draws paired independently, ties count one half).",
            "",
            *_recommendation_lines(pair),
            f"### What explains the gap: each assumption of `{b}` swapped into `{a}` alone",
            "",
            "| path | P(success) of A | with B's version | change | MCSE | method |",
            "|---|---:|---:|---:|---:|---|",
        ]
        rows, hidden = with_effect(pair["attribution"], "delta")
        for r in rows:
            note = f" — {r['note']}" if r.get("note") and r["method"] != "refit" else ""
            a_p, b_p, change, error = _row(r)
            lines.append(
                f"| `{r['path']}` | {a_p} | {b_p} | {change} | {error} | {method_label(r)}{note} |"
            )
        if hidden:
            lines += ["", f"{hidden_note(hidden, 'swap')} (change exactly 0)."]
        text = explained_text(pair)
        if text:
            lines += [
                "",
                text,
                "",
                "| add | P(success) | MCSE (points) | method |",
                "|---|---:|---:|---|",
            ]
            lines += [f"| `{a}` | {p} | {e} | {m} |" for a, p, e, m in path_rows(pair)]
        lines += ["", "### Differences", "", f"| path | {a} | {b} |", "|---|---|---|"]
        for d in pair["differences"]:
            lines.append(f"| `{d['path']}` | {d['a']} | {d['b']} |")
    lines += ["", f"Method: {result['attribution_method']}.", ""]
    return "\n".join(lines)


def html(result: dict[str, Any], figures: dict[str, str]) -> str:
    """report.html of a comparison; ``figures`` are ``overlay`` and ``tornado<i>`` (pair i)."""
    return ENV.get_template("compare.html").render(
        result=result,
        figures=figures,
        greater=_greater,
        recommendation_lines=_recommendation_lines,
        explained_text=explained_text,
        path_rows=path_rows,
        attribution_cells=_row,
        with_effect=with_effect,
        hidden_note=hidden_note,
        method_label=method_label,
    )


def write_compare(result: dict[str, Any], sources, folder: Path) -> None:
    """Write compare.json, compare.md and report.html, all or nothing."""
    from forecast.report import figures

    result = finite_or_none(result)
    figs = {"overlay": figures.overlaid_p_success({s.label: s.p_success for s in sources})}
    for i, pair in enumerate(result["pairs"]):
        shown, hidden = with_effect(pair["attribution"], "delta")
        rows = [r for r in shown if r["delta"] is not None]
        if rows:
            base = rows[0]["p_success_a"]
            figs[f"tornado{i}"] = figures.tornado(
                rows,
                "p_success_swapped",
                "p_success_swapped",
                base,
                f"P(success) of {pair['a']} with {pair['b']}'s version of one assumption",
                [r["path"] for r in rows],
                hidden_note(hidden, "swap"),
                percent=True,
            )
    with atomic_folder(folder) as tmp:
        (tmp / "compare.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
        (tmp / "compare.md").write_text(markdown(result))
        (tmp / "report.html").write_text(html(result, figs))
