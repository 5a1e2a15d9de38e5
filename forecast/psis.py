"""Importance weights: PSIS from ArviZ, the trust rule of PRODUCT §2, reweighted means.

Every what-if that is not refitted rests on these: ``importance`` draws from a model
(its prior, or given proposal draws such as a fit's posterior) and weights them by the
data likelihood and the prior ratio; ``psis_weights`` smooths the weights and gives the
Pareto k; ``trusted`` is the rule that sends a what-if to a NUTS refit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecast.fit import vectorised_draws

#: Pareto k above which importance weights are never trusted (Vehtari et al. 2024).
PARETO_K_MAX = 0.7
#: Fewest effective draws a reweighted estimate may rest on (PRODUCT §2).
MIN_IS_ESS = 400


def pareto_k_threshold(n: int) -> float:
    """The sample-size-dependent bound min(1 − 1/log10 S, 0.7) of Vehtari et al. (2024)."""
    return min(1 - 1 / math.log10(max(n, 11)), PARETO_K_MAX)


def trusted(pareto_k: float, ess: float, n: int) -> bool:
    """Whether a reweighted estimate from ``n`` draws may stand (else it is refitted)."""
    return pareto_k < pareto_k_threshold(n) and ess >= MIN_IS_ESS


@dataclass
class Reweighted:
    """Posterior means by importance sampling (PSIS), with what their trust rests on.

    ``draws`` and ``weights`` are kept so that a difference between two estimates from
    the same proposal draws can be given a paired Monte Carlo error.
    """

    means: dict[str, np.ndarray]
    mcse: dict[str, np.ndarray]
    pareto_k: float
    ess: float
    draws: dict[str, np.ndarray]
    weights: np.ndarray
    r_eff: float = 1.0
    proposal: str | None = None  # what the draws came from: "prior" or "posterior"

    @property
    def n(self) -> int:
        return len(self.weights)

    @property
    def p_success(self) -> float:
        return float(self.means["p_success"])

    @property
    def p_success_mcse(self) -> float:
        return float(self.mcse["p_success"])

    @property
    def reliable(self) -> bool:
        return trusted(self.pareto_k, self.ess, self.n)


def psis_weights(log_ratio: np.ndarray) -> tuple[np.ndarray, float]:
    """Normalised Pareto-smoothed importance weights and their Pareto k (ArviZ).

    Equal log ratios (nothing the data bear on differs) give equal weights and k = 0;
    a k that cannot be estimated counts as infinite, so it is never trusted.
    """
    import arviz_stats  # noqa: F401  (registers the .azstats accessor)
    import xarray as xr

    log_ratio = np.asarray(log_ratio, dtype=float)
    if np.ptp(log_ratio) < 1e-9:
        return np.full(len(log_ratio), 1 / len(log_ratio)), 0.0
    # psislw takes the *negated* log importance ratios (its LOO convention)
    log_w, k = (-xr.DataArray(log_ratio, dims=["draw"])).azstats.psislw(dim="draw")
    w = np.exp(log_w.values - log_w.values.max())
    return w / w.sum(), (float(k) if np.isfinite(k) else np.inf)


def importance(
    model,
    n: int,
    seed: int,
    log_q=0.0,
    given=None,
    log_prior_target=0.0,
    r_eff: float = 1.0,
    sampler=None,
    with_loglik: bool | None = None,
) -> Reweighted:
    """Posterior means by PSIS from a proposal: the prior (default) or given draws.

    With ``given`` (draws of some free variables, e.g. another fit's posterior) and
    ``log_q`` (the proposal's log density at them, up to a constant), the weights are
    target / proposal = prior_target(given) · likelihood(all) / q; ``log_prior_target``
    supplies the first factor. Variables not given are drawn from their prior, which
    cancels; without ``given`` the proposal is the prior and the weights the likelihood.
    ``r_eff`` is the proposal draws' relative efficiency (below 1 for MCMC draws): it
    scales the effective sample size and the Monte Carlo errors. ``sampler`` replaces
    :func:`~forecast.fit.vectorised_draws` of ``model`` (same arguments after the model),
    e.g. by a compiled program kept for the model's shape. ``with_loglik=False`` leaves
    the data likelihood out of the weights: right only where ``log_q`` leaves out the
    same likelihood at the same draws (a proposal fitted to the same data).
    """
    from forecast.mcse import weighted_mcse

    names = ["p_success"] + (["option_value"] if "option_value" in model.named_vars else [])
    has_data = bool(model.observed_RVs) if with_loglik is None else with_loglik
    if sampler is None:
        values = vectorised_draws(model, names, n, seed, with_loglik=has_data, given=given)
    else:
        values = sampler(names, n, seed, has_data, given)
    draws = dict(zip(names, values[: len(names)], strict=True))
    log_ratio = log_prior_target - log_q + (values[-1] if has_data else np.zeros(n))
    w, k = psis_weights(np.broadcast_to(log_ratio, (n,)))
    means = {name: np.tensordot(w, v, axes=(0, 0)) for name, v in draws.items()}
    errors = {
        name: np.array([weighted_mcse(col, w, r_eff) for col in v.reshape(n, -1).T]).reshape(
            v.shape[1:]
        )
        for name, v in draws.items()
    }
    ess = float(r_eff / (w**2).sum())
    return Reweighted(means, errors, pareto_k=k, ess=ess, draws=draws, weights=w, r_eff=r_eff)
