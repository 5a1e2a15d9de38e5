"""Summaries of draws: mean with its Monte Carlo error, median and 90% HDI (ArviZ).

The statistics layer below the report: the decision summary and the report's tables
both read their interval figures from here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from forecast.mcse import mcse_mean, round_to, sig

HDI_PROB = 0.9


def _r(x: float | None, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def interval_stats(da) -> dict[str, Any]:
    """Mean (with its MCSE), median and 90% HDI of draws with dims (chain, draw).

    Each figure is rounded to the digits the mean's Monte Carlo error supports
    (PRODUCT §2); the MCSE itself keeps two significant figures.
    """
    import arviz_stats as azs

    values = np.asarray(da)
    if values.size and np.ptp(values) == 0:  # a point mass: exact, no Monte Carlo error
        return constant_stats(float(values.flat[0]))
    error = mcse_mean(da)
    hdi = azs.hdi(da, prob=HDI_PROB)

    def r(x: float) -> float | None:
        return round_to(float(x), error)

    return {
        "mean": r(da.mean()),
        "mcse": sig(error),
        "median": r(da.median()),
        "hdi_90": [r(hdi.sel(ci_bound="lower")), r(hdi.sel(ci_bound="upper"))],
    }


def constant_stats(value: float) -> dict[str, Any]:
    v = _r(value)
    return {"mean": v, "mcse": 0.0, "median": v, "hdi_90": [v, v]}


def exact_stats(prior) -> dict[str, Any]:
    """Mean, median and 90% HDI of a fitted belief itself, exactly (no draws, MCSE 0)."""
    if prior.is_constant:
        return constant_stats(prior.params[0])
    from scipy import optimize

    dist = prior.dist()
    tail = 1 - HDI_PROB  # the HDI is the narrowest interval holding HDI_PROB of the mass
    t = optimize.minimize_scalar(
        lambda t: dist.ppf(t + HDI_PROB) - dist.ppf(t),
        bounds=(0, tail),
        method="bounded",
        options={"xatol": 1e-9},
    ).x
    return {
        "mean": _r(dist.mean()),
        "mcse": 0.0,
        "median": _r(dist.median()),
        "hdi_90": [_r(dist.ppf(t)), _r(dist.ppf(t + HDI_PROB))],
    }


def p_greater(a, b) -> tuple[float, float]:
    """P(A > B) over all pairs of draws, ties counted as one half, and its Monte Carlo error.

    The estimate is a two-sample U-statistic; its variance is Var(G(a))/n_a + Var(H(b))/n_b
    with G(a) = P(B < a) and H(b) = P(A > b) (draws treated as independent).
    """
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)

    def share_below(sorted_x, y):  # per y: P(X < y), ties one half
        lo = np.searchsorted(sorted_x, y, side="left")
        hi = np.searchsorted(sorted_x, y, side="right")
        return (lo + 0.5 * (hi - lo)) / len(sorted_x)

    g = share_below(np.sort(b), a)  # P(B < a_i)
    h = 1 - share_below(np.sort(a), b)  # P(A > b_j)
    error = math.sqrt(g.var(ddof=1) / len(a) + h.var(ddof=1) / len(b))
    return float(g.mean()), error
