"""Decision statistics from the draws: each option's value, P(best), EVPI and EVPPI.

The option values are computed inside the PyMC model (``option_value``, dims
``option``), so they carry the same draws, and so the same uncertainty, as the
forecast. This module only summarises them, each figure with its Monte Carlo
standard error (PRODUCT §2).

EVPPI, the value of knowing one belief exactly, is estimated by regression (Strong,
Oakley & Brennan 2014, *Med Decis Making* 34:311): E[V_d | belief] is a smooth function
of the belief, fitted to the draws; EVPPI is the mean over draws of the best fitted value
minus the best mean. The smoother here is a P-spline (Eilers & Marx 1996): a cubic
B-spline basis in the belief's rank, a difference penalty, the penalty's weight chosen
by REML. Binned conditional means, the estimator this replaced, take a maximum over the
noise of every bin and so give a belief that touches no option a few percent of the
EVPI; :func:`evppi_binned` keeps it for comparison.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.mcse import mcse_mean, relative_efficiency, round_to, sig

#: The P-spline: cubic B-splines on this many equal segments of the belief's rank.
SPLINE_SEGMENTS = 20
SPLINE_DEGREE = 3
#: Order of the difference penalty. First differences shrink towards a constant, the
#: fit of "this belief does not matter", so an irrelevant belief can reach EVPPI 0; a
#: second-order penalty leaves every straight line unpenalised and, fitted to noise,
#: its slope alone gives a tie about 1% of the EVPI.
PENALTY_ORDER = 1
#: Penalty weights tried, relative to the penalty's typical eigenvalue: from almost
#: unpenalised (23 free coefficients) to a constant.
LAMBDA_GRID = np.logspace(-8, 8, 81)
#: Draws of the fitted curves for the regression standard error, and the grid of the
#: belief's quantiles they are evaluated on (the mean over the draws of the belief is
#: the mean over its quantiles; 256 of them are accurate to far below the error). 400
#: draws give the SE to ~3.5% (1/√800), at 40% of the cost of 1,000 (2 s a report).
SE_SIMULATIONS = 400
SE_GRID = 256
#: Quantiles of the belief at which "best when low / high" is read off the fitted curves
#: (the middles of its lowest and highest tenths).
END_QUANTILES = (0.05, 0.95)
#: The estimator this module replaced: quantile bins of the belief.
EVPPI_BINS = 20

EVPPI_ESTIMATOR = (
    "regression (Strong, Oakley & Brennan 2014): each option's value minus the best-mean "
    "option's, regressed on the belief's rank by a penalised cubic spline (P-spline, "
    f"{SPLINE_SEGMENTS} segments, first-difference penalty, smoothing chosen by REML); EVPPI "
    "is the mean over draws of the best fitted value minus the best mean. Its standard error "
    f"combines {SE_SIMULATIONS} draws of the fitted curves from their approximate posterior "
    "(the smoother's error, its smoothing drawn too) with the Monte Carlo error of the mean "
    "over draws"
)


@dataclass(frozen=True)
class EvppiEstimate:
    """EVPPI of one belief, with its standard error and the pieces it is made of.

    Attributes
    ----------
    value : float
        The estimate, ≥ 0.
    se : float
        Its standard error: ``se_regression`` and ``mcse`` combined in quadrature.
    se_regression : float
        The smoother's error, as Strong et al. (2014) give it: the SD of the EVPPI over
        draws of the fitted curves from N(fit, σ² (BᵀB + λP)⁻¹), the Bayesian posterior
        of a penalised regression (Wood 2006), σ² inflated by 1 / relative efficiency
        for autocorrelated draws. Unlike theirs, λ is drawn too, from its restricted
        likelihood under a flat prior on the degrees of freedom. Measured on synthetic
        draws: the spread of repeated estimates is 0.85–1.1 of this SE for a belief that
        matters, and about half of it for one that touches no option at a tie (the
        draws of λ that fit a little of the noise widen it: conservative near 0).
    mcse : float
        The Monte Carlo error of the mean over draws of the belief, with the fitted
        curves held fixed (ArviZ MCSE over chain × draw).
    edf : tuple of float
        Effective degrees of freedom of each fitted difference (1 = a constant).
    best_when_low, best_when_high : int
        Index of the best option by the fitted curves at the belief's 5% and 95% quantiles
        (the best-mean option where the others only tie it).
    """

    value: float
    se: float
    se_regression: float
    mcse: float
    edf: tuple[float, ...]
    best_when_low: int
    best_when_high: int


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


def regret(values: np.ndarray) -> np.ndarray:
    """Per draw, what choosing the best-mean option d* loses: max_d V_d − V_{d*} (≥ 0).

    Its mean is the EVPI, so its MCSE is the EVPI's (d* held fixed, as it is by any
    number of extra draws once the means are apart).
    """
    return values.max(axis=1) - values[:, int(values.mean(axis=0).argmax())]


def evpi(values: np.ndarray) -> float:
    """Expected value of perfect information: E[max_d V_d] − max_d E[V_d] (≥ 0)."""
    return max(float(regret(values).mean()), 0.0)  # ≥ 0 up to rounding


def _ranks(belief: np.ndarray) -> np.ndarray:
    """The belief's mid-ranks scaled to (0, 1).

    E[V | belief] is the same function of any one-to-one transform of the belief, so the
    spline may work in ranks: every segment then holds the same number of draws, however
    skewed the belief (a log-normal odds ratio would leave most knots in an empty tail).
    Tied draws share a rank, so the fit stays a function of the belief.
    """
    from scipy.stats import rankdata

    return (rankdata(belief) - 0.5) / len(belief)


def _basis(u: np.ndarray):
    """The B-spline design matrix at ranks ``u``, sparse (degree + 1 non-zeros a row).

    Kept sparse: the products with it are then a few thousand multiplications, where a
    dense tall-and-thin product hands BLAS threads work too small to share.
    """
    from scipy.interpolate import BSpline

    knots = np.arange(-SPLINE_DEGREE, SPLINE_SEGMENTS + SPLINE_DEGREE + 1) / SPLINE_SEGMENTS
    return BSpline.design_matrix(np.clip(u, 0.0, 1.0), knots, SPLINE_DEGREE)


@dataclass(frozen=True)
class _PSpline:
    """P-spline fits of several responses on one covariate, over a grid of penalties.

    In Demmler–Reinsch form: with BᵀB = RᵀR and R⁻ᵀ P R⁻¹ = U diag(s) Uᵀ, the columns of
    Q = B R⁻¹ U are orthonormal and the penalised fit of y is Q diag(f) Qᵀy with
    f = 1 / (1 + λ s). Every λ then costs O(k), not a k × k solve, and the posterior of
    the fit, N(fit, σ² (BᵀB + λP)⁻¹), is diagonal in Q: σ² f.
    """

    transform: np.ndarray  # (k, k): B-spline coefficients = transform @ Q-coefficients
    projection: np.ndarray  # (k, m): Qᵀy
    shrink: np.ndarray  # (L, k): f at each λ of the grid
    sigma2: np.ndarray  # (L, m): residual variance at each λ
    weight: np.ndarray  # (L, m): posterior of λ over the grid, per response
    chosen: np.ndarray  # (m,): index of the λ that maximises the restricted likelihood

    @property
    def coef(self) -> np.ndarray:
        """Fitted Q-coefficients at REML's λ, shape (k, m)."""
        return self.shrink[self.chosen].T * self.projection

    @property
    def edf(self) -> np.ndarray:
        """Effective degrees of freedom at REML's λ, Σ f (1 = a constant)."""
        return self.shrink[self.chosen].sum(axis=1)

    def at(self, u: np.ndarray) -> np.ndarray:
        """Fitted values at ranks ``u``, shape (len(u), m)."""
        return _basis(u) @ (self.transform @ self.coef)

    def draw(
        self, rng: np.random.Generator, size: int, r_eff: np.ndarray, corr: np.ndarray
    ) -> np.ndarray:
        """Q-coefficients from their posterior, λ drawn too, shape (size, k, m).

        Holding λ at its estimate would understate the error exactly where it matters
        most: noise that REML smooths to a constant gives curves that are all constant,
        an EVPPI of 0 ± 0, though a little less smoothing was almost as likely.
        """
        k, m = self.projection.shape
        picks = np.stack([rng.choice(len(self.shrink), size, p=w) for w in self.weight.T], 1)
        f = self.shrink[picks].transpose(0, 2, 1)  # (size, k, m)
        sigma2 = np.take_along_axis(self.sigma2, picks, axis=0)[:, None, :]  # (size, 1, m)
        z = rng.standard_normal((size * k, m)) @ np.linalg.cholesky(corr).T
        z = z.reshape(size, k, m)
        return f * self.projection + z * np.sqrt(f * sigma2 / r_eff)


def _fit_pspline(u: np.ndarray, responses: np.ndarray) -> _PSpline:
    """Each column of ``responses`` smoothed on ``u`` ∈ (0, 1), λ by REML per column."""
    n = len(u)
    basis = _basis(u)
    k = basis.shape[1]
    diff = np.diff(np.eye(k), n=PENALTY_ORDER, axis=0)
    gram = (basis.T @ basis).toarray()
    # a ridge far below any penalty keeps the Cholesky factor defined when draws leave a
    # basis function (almost) empty, as heavily tied draws of a belief can
    chol = np.linalg.cholesky(gram + 1e-9 * np.trace(gram) / k * np.eye(k)).T
    chol_inv = np.linalg.inv(chol)
    s, rotation = np.linalg.eigh(chol_inv.T @ diff.T @ diff @ chol_inv)
    s = np.clip(s, 0.0, None)
    s[:PENALTY_ORDER] = 0.0  # the penalty's null space (eigh sorts ascending)
    transform = chol_inv @ rotation
    c = transform.T @ (basis.T @ responses)  # Qᵀy, (k, m)
    lam = LAMBDA_GRID / np.median(s[PENALTY_ORDER:])
    shrink = 1.0 / (1.0 + lam[:, None] * s[None, :])  # (L, k)
    edf = shrink.sum(axis=1)
    c2 = c**2
    rss = np.maximum((responses**2).sum(axis=0) - c2.sum(axis=0) + (1 - shrink) ** 2 @ c2, 0.0)
    penalty = (lam[:, None] * shrink**2 * s) @ c2
    # Restricted likelihood with σ² profiled out (Wood 2011): −2 log L = (n − M)
    # log σ̂² + log|BᵀB + λP| − log|λP|₊ + const, the determinants in the eigenvalues s.
    nu = n - PENALTY_ORDER
    sigma2_reml = np.maximum((rss + penalty) / nu, 1e-300)
    logdet = np.log(1.0 / lam[:, None] + s[None, PENALTY_ORDER:]).sum(axis=1)
    minus2ll = nu * np.log(sigma2_reml) + logdet[:, None]  # (L, m)
    # The posterior of λ on the grid, under a flat prior on the fit's degrees of freedom
    # (the grid is even in log λ, hence the Jacobian |d edf / d log λ|): a flat prior on
    # log λ would put most of its mass on the two ends, where λ no longer changes the fit.
    prior = np.abs(np.gradient(edf))
    weight = np.exp(-(minus2ll - minus2ll.min(axis=0)) / 2) * prior[:, None]
    weight /= weight.sum(axis=0)
    sigma2 = rss / np.maximum(n - edf, 1.0)[:, None]
    return _PSpline(transform, c, shrink, sigma2, weight, minus2ll.argmin(axis=0))


def _evppi_of(fitted: np.ndarray) -> np.ndarray:
    """EVPPI from fitted differences to a reference option (the reference is 0).

    ``fitted`` has the draws (or quantiles) of the belief on its second-to-last axis and
    the other options on its last; any leading axes are simulations.
    """
    best_fitted = np.maximum(fitted.max(axis=-1), 0.0).mean(axis=-1)
    best_mean = np.maximum(fitted.mean(axis=-2).max(axis=-1), 0.0)
    return best_fitted - best_mean


def evppi_estimate(
    values: np.ndarray,
    belief: np.ndarray,
    *,
    shape: tuple[int, int] | None = None,
    rng: np.random.Generator | None = None,
) -> EvppiEstimate:
    """EVPPI of one belief by regression, with its standard error.

    Parameters
    ----------
    values : ndarray, shape (n, options)
        Each option's value per draw.
    belief : ndarray, shape (n,)
        The belief's value at the same draws.
    shape : (chains, draws), optional
        How the n draws split into chains (chain-major), for the MCSE and the relative
        efficiency of autocorrelated draws. Default: one chain of independent draws.
    rng : numpy.random.Generator, optional
        For the draws of the fitted curves behind ``se_regression``. Default: seed 0.

    Returns
    -------
    EvppiEstimate
    """
    values = np.asarray(values, dtype=float)
    belief = np.asarray(belief, dtype=float).ravel()
    n, n_options = values.shape
    shape = shape or (1, n)
    rng = rng or np.random.default_rng(0)
    reference = int(values.mean(axis=0).argmax())
    if np.ptp(belief) == 0 or n_options < 2:
        return EvppiEstimate(0.0, 0.0, 0.0, 0.0, (), reference, reference)
    others = [d for d in range(n_options) if d != reference]
    # Differences to the best-mean option: the noise the options share (the rest of the
    # model's uncertainty) cancels, and the best mean of the fits is exactly 0, since a
    # fit whose constants are unpenalised keeps each response's mean.
    u = _ranks(belief)
    differences = values[:, others] - values[:, [reference]]
    fit = _fit_pspline(u, differences)
    fitted = fit.at(u)
    value = max(float(_evppi_of(fitted)), 0.0)

    # The smoother's error (Strong et al. 2014): draw the fitted curves from their
    # posterior and take the SD of the EVPPI they give. Autocorrelated draws carry less
    # information than their number (σ² / r_eff); the options' residuals are correlated,
    # so their draws are too.
    residuals = differences - fitted
    r_eff = np.array([relative_efficiency(r.reshape(shape)) for r in residuals.T])
    corr = np.corrcoef(residuals.T) if len(others) > 1 else np.ones((1, 1))
    corr = np.nan_to_num(np.atleast_2d(corr)) + 1e-9 * np.eye(len(others))
    coef = fit.draw(rng, SE_SIMULATIONS, r_eff, corr)
    grid = np.quantile(u, (np.arange(SE_GRID) + 0.5) / SE_GRID)
    # one matrix product, not one per simulation: (quantile, k) @ (k, simulation · option)
    size, k, m = coef.shape
    curves = (_basis(grid) @ fit.transform) @ coef.transpose(1, 0, 2).reshape(k, size * m)
    curves = curves.reshape(SE_GRID, size, m).transpose(1, 0, 2)  # (simulation, quantile, m)
    se_regression = float(np.std(_evppi_of(curves), ddof=1))

    # The error of averaging over the draws of the belief, the curves held fixed: the
    # per-draw gain of knowing the belief, whose mean is the EVPPI.
    gain = np.maximum(fitted.max(axis=1), 0.0)
    mcse = mcse_mean(gain.reshape(shape))

    # An option beats the reference at an end only by a thousandth of the advantage's
    # spread over the draws: at a tie, a fit smoothed (almost) to a constant would
    # otherwise "flip" on the sign of its last 1e-7.
    ends = fit.at(np.array(END_QUANTILES))
    tol = 1e-3 * float(differences.std(axis=0).max())
    low, high = (others[int(e.argmax())] if e.max() > tol else reference for e in ends)
    return EvppiEstimate(
        value=value,
        se=float(math.hypot(se_regression, mcse)),
        se_regression=se_regression,
        mcse=float(mcse),
        edf=tuple(float(e) for e in fit.edf),
        best_when_low=low,
        best_when_high=high,
    )


def evppi(values: np.ndarray, belief: np.ndarray, **kwargs: Any) -> float:
    """Expected value of partial perfect information about one belief (regression).

    The value of :func:`evppi_estimate`, which also gives its standard error.
    """
    return evppi_estimate(values, belief, **kwargs).value


def evppi_binned(values: np.ndarray, belief: np.ndarray, bins: int = EVPPI_BINS) -> float:
    """EVPPI by binned conditional means: the estimator the regression replaced.

    The best option's mean per equal-count bin of the belief, averaged over the bins.
    Kept for comparison only: the maximum over each bin's noise biases it upwards, by a
    few percent of the EVPI for a belief that touches no option when options are close.
    """
    belief = np.asarray(belief).ravel()
    if np.ptp(belief) == 0:
        return 0.0
    order = np.argsort(belief, kind="stable")
    groups = np.array_split(order, min(bins, len(order)))
    conditional = sum(len(g) * values[g].mean(axis=0).max() for g in groups) / len(order)
    return float(max(conditional - values.mean(axis=0).max(), 0.0))


def best_at_ends(values: np.ndarray, belief: np.ndarray, options: list[str]) -> tuple[str, str]:
    """Best option by the fitted curves at the belief's 5% and 95% quantiles."""
    est = evppi_estimate(values, belief)
    return options[est.best_when_low], options[est.best_when_high]


def _indicator_mcse(hit: np.ndarray, shape: tuple[int, int]) -> float:
    hit = hit.astype(float)
    return mcse_mean(hit.reshape(shape))


def summarise(ds, spec, beliefs: list[str]) -> dict[str, Any]:
    """The ``decision`` block of summary.json from a posterior (or prior) dataset.

    Every figure comes with its Monte Carlo standard error: ``mcse`` of each option's
    mean and ``p_best_mcse`` of its P(best) (ArviZ MCSE over chain × draw), ``evpi_mcse``
    (of the mean per-draw regret) and ``evppi_se`` per belief (see
    :class:`EvppiEstimate`). EVPI and EVPPI are rounded to the digits their errors support.
    """
    from forecast.summaries import interval_stats

    options = list(spec.decision.options)
    values = _flat(ds, "option_value")
    shape = (ds.sizes["chain"], ds.sizes["draw"])
    best = values.argmax(axis=1)
    pb = p_best(values)
    per_option = {}
    for i, name in enumerate(options):
        da = ds["option_value"].sel(option=name)
        st = interval_stats(da)
        per_option[name] = {
            "label": spec.decision.options[name].label,
            "mean": st["mean"],
            "mcse": st["mcse"],
            "hdi_90": st["hdi_90"],
            "p_best": round(float(pb[i]), 4),
            "p_best_mcse": sig(_indicator_mcse(best == i, shape)),
        }
    loss = regret(values)
    evpi_mcse = mcse_mean(loss.reshape(shape))
    candidates = [b for b in ["p_success", *beliefs] if b in ds.data_vars]
    # one stream per belief, seeded by the scenario's seed and the belief's path: the
    # same SE on every run, whichever other beliefs are summarised alongside
    estimates = {
        path: evppi_estimate(
            values,
            _flat(ds, path)[:, 0],
            shape=shape,
            rng=np.random.default_rng([spec.sampling.seed, zlib.crc32(path.encode())]),
        )
        for path in candidates
    }
    evppi_by = {path: max(round_to(e.value, e.se) or 0.0, 0.0) for path, e in estimates.items()}
    flips = {
        path: {
            "best_when_low": options[e.best_when_low],
            "best_when_high": options[e.best_when_high],
            "flips": e.best_when_low != e.best_when_high,
        }
        for path, e in estimates.items()
    }
    order = sorted(evppi_by, key=lambda p: -evppi_by[p])
    return {
        "question": spec.decision.question,
        "value_scale": spec.decision.value_scale,
        "recommended": options[int(values.mean(axis=0).argmax())],
        "options": per_option,
        "evpi": round_to(evpi(values), evpi_mcse),
        "evpi_mcse": sig(evpi_mcse),
        "evppi": {p: evppi_by[p] for p in order},
        "evppi_se": {p: sig(estimates[p].se) for p in order},
        "flips": flips,
        "evppi_estimator": EVPPI_ESTIMATOR,
    }
