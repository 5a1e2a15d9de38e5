"""Monte Carlo standard errors, and rounding a figure to the digits its error supports.

PRODUCT §2: every estimate the tool prints or writes carries its Monte Carlo standard
error. MCMC and exact draws get ArviZ's MCSE of the mean (it accounts for
autocorrelation within chains; for independent draws it is the usual sd/√n);
self-normalised importance-sampling estimates get the PSIS-weighted error with the
draws' relative efficiency (Vehtari et al. 2024, as the ``loo`` package's ``E_loo``);
differences of two estimates from the same draws get a paired error.
"""

from __future__ import annotations

import math

import numpy as np


def mcse_mean(da) -> float:
    """ArviZ MCSE of the mean of draws with dims (chain, draw); 0 for a constant (exact)."""
    import arviz_stats as azs

    if np.ptp(np.asarray(da)) == 0:  # ArviZ gives NaN where there is no spread
        return 0.0
    return float(azs.mcse(da, method="mean"))


def iid_mcse(x) -> float:
    """MCSE of the mean of independent draws (the first axis): sd / √n."""
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    return float(np.std(x, axis=0, ddof=1) / math.sqrt(n)) if n > 1 else math.inf


def relative_efficiency(chains: np.ndarray) -> float:
    """ESS of the mean divided by the number of draws, from (chain, draw) draws (ArviZ).

    The importance-sampling error of a reweighted estimate is inflated by 1 / r_eff
    when the proposal draws are autocorrelated MCMC draws (1 for exact draws).
    """
    import arviz_stats as azs

    chains = np.asarray(chains, dtype=float)
    if chains.ndim != 2 or chains.shape[0] < 2 or np.ptp(chains) == 0:
        return 1.0
    ess = float(azs.ess(chains, method="mean"))
    return float(min(max(ess / chains.size, 1e-3), 1.0)) if math.isfinite(ess) else 1.0


def weighted_mcse(x, weights, r_eff: float = 1.0) -> float:
    """MCSE of the self-normalised weighted mean of ``x`` (first axis) under ``weights``.

    Var ≈ Σ w_i² (x_i − μ)² / r_eff with the weights normalised to sum to 1.
    """
    x = np.asarray(x, dtype=float)
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    mu = np.tensordot(w, x, axes=(0, 0))
    var = np.tensordot(w**2, (x - mu) ** 2, axes=(0, 0)) / r_eff
    return float(np.sqrt(var))


def paired_mcse(a, b, weights_a=None, weights_b=None) -> float:
    """MCSE of mean(a) − mean(b) where a and b are evaluated at the same draws.

    Unweighted: the error of the mean of the per-draw differences. Weighted (each side
    its own self-normalised weights over the same draws): the linearised error
    Σ (w_a (a − μ_a) − w_b (b − μ_b))², which keeps the correlation the shared draws
    give and so is much smaller than the two errors combined.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if weights_a is None and weights_b is None:
        return iid_mcse(a - b)
    n = a.shape[0]
    wa = np.full(n, 1 / n) if weights_a is None else np.asarray(weights_a) / np.sum(weights_a)
    wb = np.full(n, 1 / n) if weights_b is None else np.asarray(weights_b) / np.sum(weights_b)
    ia = wa * (a - wa @ a)
    ib = wb * (b - wb @ b)
    return float(np.sqrt(((ia - ib) ** 2).sum()))


def combined(*errors: float | None) -> float | None:
    """The error of a difference of independent estimates: √(Σ se²)."""
    if any(e is None or not math.isfinite(e) for e in errors):
        return None
    return float(math.sqrt(sum(e * e for e in errors)))


def sig(x: float | None, digits: int = 2) -> float | None:
    """An error to ``digits`` significant figures (it needs no more); None stays None."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def decimals(mcse: float | None, scale: float = 1.0, most: int = 4) -> int:
    """Decimal places a figure with this MCSE supports, on a display ``scale`` (100 for %).

    The last digit shown is the one the error first touches: 2·MCSE of 0.0024 supports
    three decimals (0.119), of 0.024 two (0.12). Never more than ``most``.
    """
    if mcse is None or not math.isfinite(mcse) or mcse <= 0:
        return most
    d = -math.floor(math.log10(2 * mcse * scale))
    return int(min(max(d, 0), most))


def round_to(x: float | None, mcse: float | None, most: int = 4) -> float | None:
    """``x`` rounded to the digits its MCSE supports (None stays None)."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), decimals(mcse, most=most))


def pct(x: float | None, mcse: float | None, most: int = 2) -> str:
    """A probability as a percentage with the digits its MCSE supports: ``11.9%``."""
    if x is None:
        return "—"
    return f"{100 * x:.{decimals(mcse, 100, most)}f}%"


def num(x: float | None, mcse: float | None, most: int = 4) -> str:
    """A number with the digits its MCSE supports."""
    if x is None:
        return "—"
    return f"{x:.{decimals(mcse, 1, most)}f}"


def se(mcse: float | None, scale: float = 1.0) -> str:
    """An MCSE itself, to two significant figures: ``0.0012``, or ``0.12`` points."""
    if mcse is None or not math.isfinite(mcse):
        return "—"
    if mcse == 0:
        return "0"
    return f"{mcse * scale:.2g}"
