"""The sensitivity section: sensitivity.json, its figures and a section of report.html."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path
from typing import Any

from forecast.report.atomic import atomic_folder
from forecast.report.tables import finite_or_none

SECTION_START = "<!-- sensitivity -->"
SECTION_END = "<!-- /sensitivity -->"


def section(result: dict[str, Any], figure: str) -> str:
    parts = [
        SECTION_START,
        "<h2>Sensitivity</h2>",
        f"<p>P(success) as each belief is fixed at the low and high end of its 90% interval, "
        f"the others held (base {result['p_success_base']:.1%}, {escape(result['base_method'])}).</p>",
        f"<img src='{figure}' alt='Sensitivity tornado'>",
        "<table><tr><th>belief</th><th>low</th><th>P(success)</th><th>high</th><th>P(success)</th><th>method</th></tr>",
    ]
    for r in result["tornado"]:
        parts.append(
            f"<tr><td><code>{escape(r['path'])}</code></td><td class='num'>{r['low']:.3g}</td>"
            f"<td class='num'>{_pct(r['p_success_low'])}</td><td class='num'>{r['high']:.3g}</td>"
            f"<td class='num'>{_pct(r['p_success_high'])}</td><td>{escape(r['method_low'])}</td></tr>"
        )
    parts.append("</table>")
    if result["psense"]:
        parts += [
            "<h3>Power-scaling sensitivity (ArviZ psense)</h3>",
            "<p>How much each posterior moves when the prior or the likelihood is raised to a power "
            "near 1. A large prior value with a large likelihood value suggests prior-data conflict; "
            "a large prior value alone, a strong prior or weak likelihood.</p>",
            "<table><tr><th>variable</th><th>prior</th><th>likelihood</th><th>diagnosis</th></tr>",
        ]
        for r in result["psense"]:
            parts.append(
                f"<tr><td><code>{escape(r['variable'])}</code></td><td class='num'>{r['prior']:.3f}</td>"
                f"<td class='num'>{r['likelihood']:.3f}</td><td>{escape(r['diagnosis'] or '–')}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append(
            "<p>No reference data, so no power-scaling check (nothing to scale the prior against).</p>"
        )
    parts.append(SECTION_END)
    return "\n".join(parts)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


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
