"""Decision statistics from the draws: each option's value, P(best), EVPI and EVPPI.

The option values are computed inside the PyMC model (``option_value``, dims
``option``), so they carry the same draws, and so the same uncertainty, as the
forecast. This module only summarises them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: EVPPI estimator: mean over quantile bins of one belief of the best conditional mean.
EVPPI_BINS = 20
EVPPI_ESTIMATOR = (
    f"binned conditional means: the draws are split into {EVPPI_BINS} equal-count bins of the "
    "belief, each option's value averaged within a bin, the best taken per bin, and the bins "
    "averaged (a nonparametric regression estimate of E[max_d E(V_d | belief)])"
)


def _flat(ds, name: str) -> np.ndarray:
    da = ds[name]
    other = [d for d in da.dims if d not in ("chain", "draw")]
    return da.transpose("chain", "draw", *other).values.reshape(
        da.sizes["chain"] * da.sizes["draw"], -1
    )


def p_best(values: np.ndarray) -> np.ndarray:
    """Share of draws in which each option (column) has the highest value."""
    best = values.argmax(axis=1)
    return np.bincount(best, minlength=values.shape[1]) / values.shape[0]


def evpi(values: np.ndarray) -> float:
    """Expected value of perfect information: E[max_d V_d] − max_d E[V_d] (≥ 0)."""
    return max(
        float(values.max(axis=1).mean() - values.mean(axis=0).max()), 0.0
    )  # ≥ 0 up to rounding


def evppi(values: np.ndarray, belief: np.ndarray, bins: int = EVPPI_BINS) -> float:
    """Expected value of partial perfect information about one belief (binned estimator)."""
    belief = np.asarray(belief).ravel()
    if np.ptp(belief) == 0:
        return 0.0
    order = np.argsort(belief, kind="stable")
    groups = np.array_split(order, min(bins, len(order)))
    conditional = sum(len(g) * values[g].mean(axis=0).max() for g in groups) / len(order)
    return float(max(conditional - values.mean(axis=0).max(), 0.0))


def best_at_ends(
    values: np.ndarray, belief: np.ndarray, options: list[str], bins: int = EVPPI_BINS
) -> tuple[str, str]:
    """Best option among the draws with the belief in its lowest and its highest bin."""
    order = np.argsort(np.asarray(belief).ravel(), kind="stable")
    groups = np.array_split(order, min(bins, len(order)))
    low, high = values[groups[0]].mean(axis=0), values[groups[-1]].mean(axis=0)
    return options[int(low.argmax())], options[int(high.argmax())]


def summarise(ds, spec, beliefs: list[str]) -> dict[str, Any]:
    """The ``decision`` block of summary.json from a posterior (or prior) dataset."""
    from forecast.report.tables import interval_stats

    options = list(spec.decision.options)
    values = _flat(ds, "option_value")
    pb = p_best(values)
    per_option = {}
    for i, name in enumerate(options):
        st = interval_stats(ds["option_value"].sel(option=name))
        per_option[name] = {
            "label": spec.decision.options[name].label,
            "mean": st["mean"],
            "hdi_90": st["hdi_90"],
            "p_best": round(float(pb[i]), 4),
        }
    candidates = ["p_success", *[b for b in beliefs if b in ds.data_vars]]
    evppi_by, flips = {}, {}
    for path in candidates:
        theta = _flat(ds, path)[:, 0]
        evppi_by[path] = round(evppi(values, theta), 4)
        low, high = best_at_ends(values, theta, options)
        flips[path] = {"best_when_low": low, "best_when_high": high, "flips": low != high}
    recommended = options[int(values.mean(axis=0).argmax())]
    return {
        "question": spec.decision.question,
        "value_scale": spec.decision.value_scale,
        "recommended": recommended,
        "options": per_option,
        "evpi": round(evpi(values), 4),
        "evppi": dict(sorted(evppi_by.items(), key=lambda kv: -kv[1])),
        "flips": flips,
        "evppi_estimator": EVPPI_ESTIMATOR,
    }
