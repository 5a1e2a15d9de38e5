"""The backtest section: backtest.json, calibration and cumulative-score figures."""

from __future__ import annotations

import base64
import json
import re
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from forecast import mcse as mc
from forecast.report.atomic import atomic_folder
from forecast.report.tables import finite_or_none

START, END = "<!-- backtest -->", "<!-- /backtest -->"
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


def _mcse(err: float | None) -> str:
    text = "exact" if err == 0 else f"MCSE {mc.se(err)}"
    return f" <span class='meta'>({text})</span>"


def _score(value: float | None, err: float | None) -> str:
    """A score with the digits its Monte Carlo error supports, and that error."""
    if value is None:
        return "—"
    return mc.num(value, err, most=3) + _mcse(err)


def _difference(d: dict, score: str) -> str:
    """scenario − baseline ± its standard error over rounds, with its Monte Carlo error."""
    value, se, err = d[score], d[f"{score}_se"], d[f"{score}_mcse"]
    if value is None:
        return "—"
    places = mc.decimals(err, most=3)
    text = f"{value:+.{places}f}"
    if se is not None:
        text += f" ± {mc.se(se)}"
    return text + _mcse(err)


def _table(rec: dict) -> str:
    rows = [
        "<table><tr><th>forecaster</th><th>rounds</th><th>Brier (lower is better)</th>"
        "<th>log score (higher is better)</th><th>Brier: scenario − this ± SE</th>"
        "<th>log score: scenario − this ± SE</th></tr>",
        f"<tr><td>{escape(FORECASTERS['p'])}</td><td class='num'>{rec['n']}</td>"
        f"<td class='num'>{_score(rec['brier'], rec['brier_mcse'])}</td>"
        f"<td class='num'>{_score(rec['log_score'], rec['log_score_mcse'])}</td>"
        "<td class='num'>—</td><td class='num'>—</td></tr>",
    ]
    for base, label in BASELINE_LABELS.items():
        b, d = rec["baselines"][base], rec["differences"][base]
        rows.append(
            f"<tr><td>{escape(label)}</td><td class='num'>{rec['n']}</td>"
            f"<td class='num'>{_score(b['brier'], b['brier_mcse'])}</td>"
            f"<td class='num'>{_score(b['log_score'], b['log_score_mcse'])}</td>"
            f"<td class='num'>{_difference(d, 'brier')}</td>"
            f"<td class='num'>{_difference(d, 'log_score')}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def section(result: dict[str, Any], calibration: str, cumulative: str) -> str:
    parts = [
        START,
        "<h2>Backtest</h2>",
        f"<div class='warn'>⚠ {escape(result['hindsight'])}</div>",
        "<p>Each reference round, in date order, forecast from the author's priors and what was "
        "known at its start: every stage the round reached, and, where it is settled, its whole "
        f"pathway. Method: {escape(result['method'])}.</p>",
        "<p class='meta'>A difference is the scenario's score minus the baseline's, round by "
        "round, averaged: a negative Brier or a positive log-score difference favours the "
        "scenario. Its ± is the standard error over rounds (SD / √n), the sampling uncertainty "
        "of which rounds history gave, not Monte Carlo error; MCSE is the Monte Carlo error of "
        "the figure beside it (delta method over the forecasts' draws), and figures are shown "
        "to the digits it supports.</p>",
    ]
    for _key, title, rec in targets(result):
        parts += [f"<h3>{escape(title)}</h3>", _table(rec)]
    path = result["pathway"]
    if len(path["stages"]) > 1:
        parts.append(
            "<p class='meta'>The pathway is scored only where it is settled: a failed stage (0), "
            "or every stage passed (1). Rounds that passed the stages known so far but whose "
            "later outcome was not yet known are left out, so the most recent successes are "
            "under-represented.</p>"
        )
    parts += [
        f"<img src='{calibration}' alt='Calibration plot per stage and pathway'>",
        f"<img src='{cumulative}' alt='Cumulative Brier score per stage and pathway'>",
    ]
    if result["unreliable_rounds"]:
        parts.append(
            "<div class='warn'>Importance weights not trusted (Pareto k or ESS) and not refitted "
            "for: " + escape(", ".join(result["unreliable_rounds"])) + "</div>"
        )
    parts.append(END)
    return "\n".join(parts)


def write_backtest(result: dict[str, Any], folder: Path) -> None:
    result = finite_or_none(result)
    calibration, cumulative = figures(result)
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
