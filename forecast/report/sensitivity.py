"""The sensitivity section: sensitivity.json, its figures and a section of report.html."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path
from typing import Any

from forecast.mcse import pct, se
from forecast.report.atomic import atomic_folder
from forecast.report.tables import finite_or_none

SECTION_START = "<!-- sensitivity -->"
SECTION_END = "<!-- /sensitivity -->"


def section(result: dict[str, Any], figure: str) -> str:
    base, base_e = result["p_success_base"], result.get("p_success_base_mcse")
    families = sorted({r["moved"] for r in result["tornado"]})
    parts = [
        SECTION_START,
        "<h2>Sensitivity</h2>",
        "<p>P(success) as each belief, one at a time, is moved to the low (5%) and the high (95%) "
        f"end of its 90% interval, the others held (base {pct(base, base_e)} ± {se(base_e, 100)} "
        f"points, {escape(result['base_method'])}). Moving a belief keeps its spread:</p><ul>",
        *[f"<li>{escape(m)};</li>" for m in families],
        "</ul><p>A decision's values and consequences are left out: they cannot move P(success). "
        "Each figure carries its Monte Carlo error; the swing's is paired (both ends reweight "
        "the same draws where they can).</p>",
        f"<img src='{figure}' alt='Sensitivity tornado'>",
        "<table><tr><th>belief</th><th>low</th><th>P(success)</th><th>high</th><th>P(success)</th>"
        "<th>swing</th><th>method (low / high)</th></tr>",
    ]
    for r in result["tornado"]:
        lo_e, hi_e = r.get("p_success_low_mcse"), r.get("p_success_high_mcse")
        swing = (
            "—"
            if r.get("swing") is None
            else f"{pct(r['swing'], r.get('swing_mcse'))} ± {se(r.get('swing_mcse'), 100)}"
        )
        parts.append(
            f"<tr><td><code>{escape(r['path'])}</code></td><td class='num'>{r['low']:.3g}</td>"
            f"<td class='num'>{pct(r['p_success_low'], lo_e)} ± {se(lo_e, 100)}</td>"
            f"<td class='num'>{r['high']:.3g}</td>"
            f"<td class='num'>{pct(r['p_success_high'], hi_e)} ± {se(hi_e, 100)}</td>"
            f"<td class='num'>{swing}</td>"
            f"<td><small>{escape(r['method_low'])}<br>{escape(r['method_high'])}</small></td></tr>"
        )
    parts.append("</table>")
    if result["psense"]:
        parts += [
            "<h3>Power-scaling sensitivity (ArviZ psense)</h3>",
            "<p>How much a posterior moves when one belief's prior, or the whole likelihood, is "
            "raised to a power near 1 (Kallioinen et al. 2024). Per belief: its own posterior and "
            "P(success) under its prior alone; the last row scales every prior at once. A large "
            "prior value with a large likelihood value suggests prior-data conflict; a large prior "
            "value alone, a strong prior or weak likelihood.</p>",
            "<table><tr><th>belief</th><th>prior → belief</th><th>prior → P(success)</th>"
            "<th>likelihood</th><th>diagnosis</th></tr>",
        ]
        for r in result["psense"]:
            parts.append(
                f"<tr><td><code>{escape(r['variable'])}</code></td><td class='num'>{_num(r['prior'])}</td>"
                f"<td class='num'>{_num(r.get('p_success_prior'))}</td>"
                f"<td class='num'>{_num(r['likelihood'])}</td><td>{escape(r['diagnosis'] or '–')}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append(
            "<p>No reference data, so no power-scaling check (nothing to scale the prior against).</p>"
        )
    parts.append(SECTION_END)
    return "\n".join(parts)


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def write_sensitivity(result: dict[str, Any], folder: Path) -> None:
    """Add sensitivity.json, tornado.png and a report section to an existing report."""
    import base64

    from forecast.report import figures

    result = finite_or_none(result)
    rows = result["tornado"]
    figure = figures.tornado(
        rows,
        "p_success_low",
        "p_success_high",
        result["p_success_base"],
        "P(success) with the belief at its 5% (blue) and 95% (orange) quantile",
        [r["path"] for r in rows],
    )
    with atomic_folder(folder, keep=True) as tmp:
        (tmp / "sensitivity.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
        (tmp / "sensitivity_tornado.png").write_bytes(base64.b64decode(figure.split(",", 1)[1]))
        page = tmp / "report.html"
        text = page.read_text()
        text = re.sub(
            re.escape(SECTION_START) + ".*?" + re.escape(SECTION_END), "", text, flags=re.S
        )
        text = text.replace(
            "<h2>Provenance</h2>", section(result, figure) + "\n<h2>Provenance</h2>", 1
        )
        page.write_text(text)
