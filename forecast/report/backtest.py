"""The backtest section: backtest.json, calibration and cumulative-score figures."""

from __future__ import annotations

import base64
import json
import re
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from forecast.report.atomic import atomic_folder
from forecast.report.tables import finite_or_none

START, END = "<!-- backtest -->", "<!-- /backtest -->"
FORECASTERS = {
    "p": "scenario (priors + earlier rounds)",
    "p_running_base_rate": "running base rate",
    "p_priors_only": "priors alone",
}


def figures(rows: list[dict]) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from forecast.report.figures import _png

    y = np.array([r["outcome"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    for key, label in FORECASTERS.items():
        p = np.array([r[key] for r in rows], dtype=float)
        edges = np.unique(np.quantile(p, np.linspace(0, 1, 6)))
        idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
        xs, ys, ns = [], [], []
        for b in np.unique(idx):
            m = idx == b
            xs.append(p[m].mean())
            ys.append(y[m].mean())
            ns.append(m.sum())
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel("forecast probability (mean within bin)")
    ax.set_ylabel("observed frequency of agreement")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Calibration (quintile bins of each forecaster)")
    calibration = _png(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for key, label in FORECASTERS.items():
        p = np.array([r[key] for r in rows], dtype=float)
        ax.plot(np.arange(1, len(p) + 1), np.cumsum((p - y) ** 2), label=label)
    ax.set_xlabel("rounds forecast, in date order")
    ax.set_ylabel("cumulative Brier score (lower is better)")
    ax.legend(fontsize=8)
    cumulative = _png(fig)
    return calibration, cumulative


def section(result: dict[str, Any], calibration: str, cumulative: str) -> str:
    b = result["baselines"]
    parts = [
        START,
        "<h2>Backtest</h2>",
        f"<p>Each reference round, in date order, forecast from the author's priors and the rounds known before it "
        f"(outcome: {escape(result['outcome'])}). {escape(result['method'])}.</p>",
        "<table><tr><th>forecaster</th><th>Brier (lower is better)</th><th>log score (higher is better)</th></tr>",
        f"<tr><td>scenario</td><td class='num'>{result['brier']:.3f}</td><td class='num'>{result['log_score']:.3f}</td></tr>",
        f"<tr><td>running base rate</td><td class='num'>{b['running_base_rate']['brier']:.3f}</td><td class='num'>{b['running_base_rate']['log_score']:.3f}</td></tr>",
        f"<tr><td>priors alone</td><td class='num'>{b['priors_only']['brier']:.3f}</td><td class='num'>{b['priors_only']['log_score']:.3f}</td></tr>",
        "</table>",
        f"<img src='{calibration}' alt='Calibration plot'>",
        f"<img src='{cumulative}' alt='Cumulative Brier score'>",
    ]
    if result["unreliable_rounds"]:
        parts.append(
            "<div class='warn'>Pareto k above 0.7 (importance weights not reliable) for: "
            + escape(", ".join(result["unreliable_rounds"]))
            + "</div>"
        )
    parts.append(END)
    return "\n".join(parts)


def write_backtest(result: dict[str, Any], folder: Path) -> None:
    result = finite_or_none(result)
    calibration, cumulative = figures(result["rounds"])
    with atomic_folder(folder, keep=True) as tmp:
        (tmp / "backtest.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
        (tmp / "backtest_calibration.png").write_bytes(
            base64.b64decode(calibration.split(",", 1)[1])
        )
        (tmp / "backtest_cumulative.png").write_bytes(base64.b64decode(cumulative.split(",", 1)[1]))
        page = tmp / "report.html"
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), "", page.read_text(), flags=re.S)
        text = text.replace(
            "<h2>Provenance</h2>",
            section(result, calibration, cumulative) + "\n<h2>Provenance</h2>",
            1,
        )
        page.write_text(text)
