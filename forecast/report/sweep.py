"""The sweep report: sweep.csv, sweep.json and report.html (PRODUCT §10).

The page renders the ``sweep.json`` record: P(success) against each varied belief, a
heat map when two beliefs are varied, and the decision's best option over the grid.
Figures are matplotlib (ArviZ has no plot of a statistic against a grid), titled in
the scenario's words, probability axes in percent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forecast.mcse import pct, se
from forecast.report.atomic import atomic_folder
from forecast.report.html import ENV
from forecast.summary import finite_or_none

#: The columns of sweep.csv after the varied paths (PRODUCT §10).
COLUMNS = ("p_success_mean", "p_success_mcse", "hdi_lo", "hdi_hi", "method", "pareto_k")
#: Rows listed on the page (all of them are in sweep.csv).
PAGE_ROWS = 200


def csv_text(result: dict[str, Any]) -> str:
    """``sweep.csv``: one row per variant, each varied path's value, then the figures."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    paths = [a["path"] for a in result["vary"]]
    writer.writerow([*paths, *COLUMNS])
    for row in result["rows"]:
        cells = [row["values"][p] for p in paths]
        cells += ["" if row[c] is None else row[c] for c in COLUMNS]
        writer.writerow(cells)
    return buf.getvalue()


def _means_by_value(result: dict[str, Any], path: str, values: list[str]):
    """Each value's rows' P(success) means (the other beliefs at every one of theirs)."""
    by = {v: [] for v in values}
    for row in result["rows"]:
        if row["p_success_mean"] is not None:
            by[row["values"][path]].append(row)
    return by


def against(result: dict[str, Any], axis: dict[str, Any]) -> str:
    """P(success) against one varied belief: each variant a dot (with its 90% interval
    when it is the only belief varied), the line the mean over the other beliefs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    from forecast.report.figures import _png, wrap

    values = axis["values"]
    by = _means_by_value(result, axis["path"], values)
    alone = len(result["vary"]) == 1
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for x, v in enumerate(values):
        ys = [r["p_success_mean"] for r in by[v]]
        if alone:
            for r in by[v]:
                if r["hdi_lo"] is not None:
                    ax.vlines(x, r["hdi_lo"], r["hdi_hi"], color="#3465a4", lw=2, alpha=0.5)
        ax.scatter([x] * len(ys), ys, color="#3465a4", s=14, alpha=0.9 if alone else 0.35)
    line = [
        sum(r["p_success_mean"] for r in by[v]) / len(by[v]) if by[v] else float("nan")
        for v in values
    ]
    ax.plot(range(len(values)), line, color="#cc6600", marker="o", lw=1.5)
    ax.set_xticks(range(len(values)), [wrap(v, 18, 2) for v in values], fontsize=8)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("P(success)")
    ax.set_xlabel(axis["path"], fontsize=8)
    what = "bars: 90% interval" if alone else "dots: each variant; line: mean over the others"
    ax.set_title(wrap(f"P(success) against {axis['label']}", 70, 3) + f"\n({what})", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _png(fig)


def heat_map(result: dict[str, Any]) -> str:
    """Two varied beliefs: mean P(success) of every cell of the grid, in percent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import PercentFormatter

    from forecast.report.figures import _png, wrap

    a, b = result["vary"]
    grid = np.full((len(a["values"]), len(b["values"])), np.nan)
    cells = {}
    for row in result["rows"]:
        i = a["values"].index(row["values"][a["path"]])
        j = b["values"].index(row["values"][b["path"]])
        if row["p_success_mean"] is not None:
            grid[i, j] = row["p_success_mean"]
            cells[i, j] = pct(row["p_success_mean"], row["p_success_mcse"])
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(b["values"]) + 2.5), 0.6 * len(grid) + 2.2))
    image = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
    for (i, j), text in cells.items():
        light = grid[i, j] < np.nanmean(grid)
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if light else "k")
    ax.set_xticks(range(len(b["values"])), [wrap(v, 14, 2) for v in b["values"]], fontsize=8)
    ax.set_yticks(range(len(a["values"])), [wrap(v, 18, 2) for v in a["values"]], fontsize=8)
    ax.set_xlabel(wrap(b["label"], 70, 2), fontsize=8)
    ax.set_ylabel(wrap(a["label"], 40, 3), fontsize=8)
    fig.colorbar(image, ax=ax, format=PercentFormatter(1.0, decimals=0), label="P(success)")
    ax.set_title("P(success) over the grid", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def best_grid(result: dict[str, Any]) -> list[list[str]] | None:
    """Two varied beliefs and a decision: the best option in each cell (rows: the first)."""
    if result["decision"] is None or len(result["vary"]) != 2:
        return None
    a, b = result["vary"]
    grid = [["—"] * len(b["values"]) for _ in a["values"]]
    for row in result["rows"]:
        i = a["values"].index(row["values"][a["path"]])
        j = b["values"].index(row["values"][b["path"]])
        grid[i][j] = row["recommended"] or "—"
    return grid


def figures(result: dict[str, Any]) -> dict[str, str]:
    """The page's figures, as data URIs: ``against<i>`` per axis, ``heat`` for two."""
    out = {f"against{i}": against(result, axis) for i, axis in enumerate(result["vary"])}
    if len(result["vary"]) == 2:
        out["heat"] = heat_map(result)
    return out


def html(result: dict[str, Any], figs: dict[str, str]) -> str:
    """report.html of a sweep."""
    return ENV.get_template("sweep.html").render(
        result=result,
        figures=figs,
        rows=result["rows"][:PAGE_ROWS],
        page_rows=PAGE_ROWS,
        best_grid=best_grid(result),
        se=se,
    )


def write_sweep(result: dict[str, Any], folder: Path) -> None:
    """Write sweep.csv, sweep.json and report.html, all or nothing."""
    result = finite_or_none(result)
    figs = figures(result)
    with atomic_folder(folder) as tmp:
        (tmp / "sweep.csv").write_text(csv_text(result))
        (tmp / "sweep.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
        (tmp / "report.html").write_text(html(result, figs))
