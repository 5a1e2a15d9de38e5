"""The backtest section: backtest.json, calibration and cumulative-score figures;
report.html shows them (templates/sections/backtest.html)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from forecast.report.atomic import atomic_folder
from forecast.report.tables import finite_or_none

FORECASTERS = {
    "p": "scenario (priors + earlier rounds)",
    "p_running_base_rate": "running base rate",
    "p_priors_only": "priors alone",
}
BASELINE_LABELS = {"running_base_rate": "running base rate", "priors_only": "priors alone"}


def targets(result: dict[str, Any]) -> list[tuple[str, str, dict]]:
    """(key, title, record) for each stage scored and the whole pathway."""
    out = [
        (name, f"Stage {name}: P(pass | reached it)", rec) for name, rec in result["stages"].items()
    ]
    path = result["pathway"]
    if len(path["stages"]) > 1:
        out.append(
            ("pathway", f"Whole pathway: P(pass every stage: {', '.join(path['stages'])})", path)
        )
    return out


def figures(result: dict[str, Any]) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from forecast.report.figures import _png

    panels = [(key, title, rec) for key, title, rec in targets(result) if rec["rounds"]]
    ncols = max(len(panels), 1)
    fig, axes = plt.subplots(
        1, ncols, figsize=(5 * ncols, 4.5), squeeze=False, layout="constrained"
    )
    for ax, (key, title, rec) in zip(axes[0], panels, strict=False):
        rows = rec["rounds"]
        y = np.array([r["outcome"] for r in rows], dtype=float)
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
        for col, label in FORECASTERS.items():
            p = np.array([r[col] for r in rows], dtype=float)
            edges = np.unique(np.quantile(p, np.linspace(0, 1, 6)))
            idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
            xs = [p[idx == b].mean() for b in np.unique(idx)]
            ys = [y[idx == b].mean() for b in np.unique(idx)]
            ax.plot(xs, ys, marker="o", label=label)
        ax.set_xlabel("forecast probability (mean within bin)")
        what = "every stage" if key == "pathway" else "the stage, when reached"
        ax.set_ylabel(f"observed frequency of passing {what}")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{title.split(':')[0]} ({len(rows)} rounds)", fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("Calibration (quintile bins of each forecaster)")
    calibration = _png(fig)

    fig, axes = plt.subplots(
        1, ncols, figsize=(5 * ncols, 3.5), squeeze=False, layout="constrained"
    )
    for ax, (_key, title, rec) in zip(axes[0], panels, strict=False):
        rows = rec["rounds"]
        y = np.array([r["outcome"] for r in rows], dtype=float)
        for col, label in FORECASTERS.items():
            p = np.array([r[col] for r in rows], dtype=float)
            ax.plot(np.arange(1, len(p) + 1), np.cumsum((p - y) ** 2), label=label)
        ax.set_xlabel("rounds forecast, in date order")
        ax.set_ylabel("cumulative Brier score (lower is better)")
        ax.set_title(title.split(":")[0], fontsize=10)
        ax.legend(fontsize=7)
    cumulative = _png(fig)
    return calibration, cumulative


def write_backtest(result: dict[str, Any], folder: Path) -> None:
    """Add backtest.json and its figures to an existing report, and render the page
    again from the folder's records (templates/sections/backtest.html)."""
    from forecast.report.html import BACKTEST_FIGURES, png_bytes, write_page

    result = finite_or_none(result)
    calibration, cumulative = figures(result)
    with atomic_folder(folder, keep=True) as tmp:
        (tmp / "backtest.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
        (tmp / BACKTEST_FIGURES["calibration"]).write_bytes(png_bytes(calibration))
        (tmp / BACKTEST_FIGURES["cumulative"]).write_bytes(png_bytes(cumulative))
        write_page(tmp)
