"""The pooled view of one question: pool.json, pool.md and report.html (PRODUCT §8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forecast.report.atomic import atomic_folder
from forecast.summary import finite_or_none

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Pooled: {{ r.question.id }} — forecast</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1020px;margin:2em auto;padding:0 1em;color:#1b1b1b}
table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border-bottom:1px solid #e3e3e3;padding:.35em .5em;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.answer{font-size:1.25em;background:#f3f6fa;border-left:4px solid #3465a4;padding:.6em 1em}
img{max-width:100%;display:block}code{background:#f4f4f4;padding:0 .2em;overflow-wrap:anywhere}
</style></head><body>
<h1>{{ r.question.text }}</h1>
<p>Question <code>{{ r.question.id }}</code>: {{ r.members | length }} views pooled by the
{{ rule_text }}.</p>
<p class="answer">Pooled P(success): <b>{{ pct(r.pooled.mean, r.pooled.mcse) }}</b>
(90% interval {{ pct(r.pooled.hdi_90[0], r.pooled.mcse) }}–{{ pct(r.pooled.hdi_90[1], r.pooled.mcse) }};
Monte Carlo error ±{{ se(r.pooled.mcse, 100) }} points).</p>
<img src="{{ figure }}" alt="Each member's P(success) and the pooled one">
<table><tr><th>view</th><th>weight</th><th>P(success)</th><th>90% interval</th><th>the assumptions that carry it</th></tr>
{% for id, m in r.members.items() %}<tr><td>{{ m.title }} <code>{{ id }}</code><br><small>{{ m.author or m.outlet or "" }}</small></td>
<td class="num">{{ "%.3f" | format(r.weights[id]) }}</td>
<td class="num">{{ pct(m.p_success.mean, m.p_success.mcse) }}</td>
<td class="num">{{ pct(m.p_success.hdi_90[0], m.p_success.mcse) }}–{{ pct(m.p_success.hdi_90[1], m.p_success.mcse) }}</td>
<td><ul>{% for a in m.headline %}<li><code>{{ a.path }}</code>: {{ a.belief }}</li>{% endfor %}</ul></td></tr>
{% endfor %}</table>
<p>Weights: {{ r.weights_from }}.</p>
</body></html>
"""


def _headline(summary: dict[str, Any], n: int = 3) -> list[dict[str, str]]:
    """A member's beliefs the data moved least (the author's own, held): first ``n`` quoted."""
    rows = [a for a in summary.get("assumptions", []) if a.get("basis") == "author"]
    return [{"path": a["path"], "belief": str(a["belief"])} for a in rows[:n]]


def member_record(summary: dict[str, Any]) -> dict[str, Any]:
    src = summary.get("source", {})
    return {
        "title": summary["title"],
        "author": src.get("author"),
        "outlet": src.get("outlet"),
        "p_success": summary["p_success"],
        "headline": _headline(summary),
    }


def markdown(r: dict[str, Any]) -> str:
    from forecast.mcse import pct, se

    p = r["pooled"]
    lines = [
        f"# Pooled: {r['question']['text']} (`{r['question']['id']}`)",
        "",
        f"Rule: **{r['rule']}**"
        + (f", extremized d = {r['extremize']:g}" if r["rule"] == "logodds" else ""),
        f"Weights: {r['weights_from']}.",
        "",
        f"**Pooled P(success): {pct(p['mean'], p['mcse'])}** (90% interval "
        f"{pct(p['hdi_90'][0], p['mcse'])}–{pct(p['hdi_90'][1], p['mcse'])}; Monte Carlo error "
        f"±{se(p['mcse'], 100)} points)",
        "",
        "| view | weight | P(success) | MCSE (points) |",
        "|---|---:|---:|---:|",
    ]
    for mid, m in r["members"].items():
        st = m["p_success"]
        lines.append(
            f"| `{mid}` {m['title']} | {r['weights'][mid]:.3f} | {pct(st['mean'], st.get('mcse'))} "
            f"| ±{se(st.get('mcse'), 100)} |"
        )
    return "\n".join(lines) + "\n"


def write_pool(result: dict[str, Any], draws: dict[str, Any], folder: Path) -> None:
    """Write pool.json, pool.md and report.html, all or nothing."""
    from jinja2 import Environment

    from forecast.mcse import pct, se
    from forecast.report import figures

    result = finite_or_none(result)
    figure = figures.overlaid_p_success(draws, dim="view")
    env = Environment(autoescape=True)
    rule_text = (
        "linear opinion pool (the weighted mixture of the views' draws)"
        if result["rule"] == "linear"
        else f"log-odds pool (σ(d · Σ wᵢ logit pᵢ), d = {result['extremize']:g}, the views' draws "
        "paired independently)"
    )
    page = env.from_string(PAGE).render(
        r=result, figure=figure, pct=pct, se=se, rule_text=rule_text
    )
    with atomic_folder(folder) as tmp:
        (tmp / "pool.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
        (tmp / "pool.md").write_text(markdown(result))
        (tmp / "report.html").write_text(page)
