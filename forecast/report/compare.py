"""The comparison report: compare.json, compare.md and report.html."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from forecast.mcse import num, pct, se
from forecast.report.atomic import atomic_folder
from forecast.report.html import CSS
from forecast.report.tables import finite_or_none


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
    else:
        out.append(f"No single assumption of `{pair['b']}` flips `{pair['a']}`'s recommendation.")
    return [*out, ""]


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
        for r in pair["attribution"]:
            note = f" — {r['note']}" if r.get("note") and r["method"] != "refit" else ""
            a_p, b_p, change, error = _row(r)
            lines.append(
                f"| `{r['path']}` | {a_p} | {b_p} | {change} | {error} | {method_label(r)}{note} |"
            )
        lines += ["", "### Differences", "", f"| path | {a} | {b} |", "|---|---|---|"]
        for d in pair["differences"]:
            lines.append(f"| `{d['path']}` | {d['a']} | {d['b']} |")
    lines += ["", f"Method: {result['attribution_method']}.", ""]
    return "\n".join(lines)


def html(result: dict[str, Any], figures: dict[str, str]) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Comparison — forecast</title><style>{CSS}</style></head><body>",
        "<h1>Comparison</h1><table><tr><th>scenario</th><th>P(success)</th><th>90% HDI</th>"
        "<th>MCSE (points)</th></tr>",
    ]
    for label, s in result["scenarios"].items():
        mean, hdi, error = _p(s["p_success"])
        parts.append(
            f"<tr><td><code>{escape(label)}</code> — {escape(s['title'])}</td><td class='num'>{mean}</td>"
            f"<td class='num'>{hdi}</td><td class='num'>{error}</td></tr>"
        )
    parts += ["</table>", f"<img src='{figures['overlay']}' alt='P(success) of each scenario'>"]
    for i, pair in enumerate(result["pairs"]):
        a, b = escape(pair["a"]), escape(pair["b"])
        parts += [
            f"<h2>{a} vs {b}</h2>",
            f"<p>P({a} &gt; {b}) = <b>{_greater(pair)}</b> (draws paired independently, ties count one half).</p>",
            *[
                f"<p>{escape(line).replace('**', '')}</p>"
                for line in _recommendation_lines(pair)
                if line
            ],
            f"<h3>What explains the gap</h3><p>Each assumption of <code>{b}</code> swapped into <code>{a}</code> alone; "
            "bars show how far P(success) moves from A's value.</p>",
        ]
        if figures.get(f"tornado{i}"):
            parts.append(f"<img src='{figures[f'tornado{i}']}' alt='Attribution tornado'>")
        parts.append(
            "<table><tr><th>path</th><th>A</th><th>with B's version</th><th>change</th>"
            "<th>MCSE (points)</th><th>method</th></tr>"
        )
        for r in pair["attribution"]:
            cells = "".join(f"<td class='num'>{c}</td>" for c in _row(r))
            parts.append(
                f"<tr><td><code>{escape(r['path'])}</code></td>{cells}"
                f"<td>{escape(method_label(r))}{' — ' + escape(r['note']) if r.get('note') and r['method'] != 'refit' else ''}</td></tr>"
            )
        parts += [
            "</table><h3>Differences</h3>",
            f"<table><tr><th>path</th><th>{a}</th><th>{b}</th></tr>",
        ]
        for d in pair["differences"]:
            qa = f"<blockquote>“{escape(d['why_a'])}”</blockquote>" if d.get("why_a") else ""
            qb = f"<blockquote>“{escape(d['why_b'])}”</blockquote>" if d.get("why_b") else ""
            parts.append(
                f"<tr><td><code>{escape(d['path'])}</code></td><td>{escape(str(d['a']))}{qa}</td>"
                f"<td>{escape(str(d['b']))}{qb}</td></tr>"
            )
        parts.append("</table>")
    parts += [f"<p class='meta'>Method: {escape(result['attribution_method'])}.</p></body></html>"]
    return "\n".join(parts)


def write_compare(result: dict[str, Any], sources, folder: Path) -> None:
    """Write compare.json, compare.md and report.html, all or nothing."""
    from forecast.report import figures

    result = finite_or_none(result)
    figs = {"overlay": figures.overlaid_p_success({s.label: s.p_success for s in sources})}
    for i, pair in enumerate(result["pairs"]):
        rows = [r for r in pair["attribution"] if r["delta"] is not None]
        if rows:
            base = rows[0]["p_success_a"]
            figs[f"tornado{i}"] = figures.tornado(
                rows,
                "p_success_swapped",
                "p_success_swapped",
                base,
                f"P(success) of {pair['a']} with {pair['b']}'s version of one assumption",
                [r["path"] for r in rows],
            )
    with atomic_folder(folder) as tmp:
        (tmp / "compare.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
        (tmp / "compare.md").write_text(markdown(result))
        (tmp / "report.html").write_text(html(result, figs))
