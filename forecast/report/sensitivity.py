"""The sensitivity section: sensitivity.json and its figure; report.html shows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forecast.report.atomic import atomic_folder
from forecast.report.tables import finite_or_none, hidden_note, with_effect


def write_sensitivity(result: dict[str, Any], folder: Path) -> None:
    """Add sensitivity.json and its tornado to an existing report, and render the page
    again from the folder's records (templates/sections/sensitivity.html)."""
    from forecast.report import figures
    from forecast.report.html import SENSITIVITY_FIGURE, png_bytes, write_page

    result = finite_or_none(result)
    rows, hidden = with_effect(result["tornado"], "swing")
    figure = figures.tornado(
        rows,
        "p_success_low",
        "p_success_high",
        result["p_success_base"],
        "P(success) with the belief at its 5% (blue) and 95% (orange) quantile",
        [r["path"] for r in rows],
        hidden_note(hidden),
        percent=True,
    )
    with atomic_folder(folder, keep=True) as tmp:
        (tmp / "sensitivity.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
        (tmp / SENSITIVITY_FIGURE).write_bytes(png_bytes(figure))
        write_page(tmp)
