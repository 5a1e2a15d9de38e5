"""The what-if engine: P(success) of a changed scenario, as cheaply as is reliable.

``evaluate(prep, seed, base)`` is the one job every command that asks "what if" runs:
``compare`` (each swap), ``sensitivity`` (each end), ``backtest`` (each round), and next
``explore`` and ``sweep``. A job is a top-level function of picklable values (a
:class:`~forecast.prepared.Prepared`, a seed, a :class:`BaseFit`), so it can run in
another process or on a cluster. Without data the answer is exact forward sampling;
with data, PSIS importance sampling from the base fit's posterior or from the
variant's prior, refitted with NUTS where the weights fail the trust rule (PRODUCT §2).

The log prior of the reweighting comes from the variant's PyMC model itself
(:func:`log_prior`), so it is the density that was fitted, pooling included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecast.prepared import Prepared, prepare_raw

# ----------------------------------------------------------------------------- what-ifs

#: Prior draws per what-if: with an effective sample size of a few thousand the Monte
#: Carlo error of a mean P(success) is well under 0.002.
VARIANT_DRAWS = 20_000


@dataclass
class Variant:
    """P(success) of a scenario changed in one place, how it was computed, and its error.

    ``draws`` and ``weights`` (per-draw P(success) and its normalised weights, or None
    for a refit) let a difference with another variant from the same proposal draws be
    given a paired Monte Carlo error; ``proposal`` names those draws.
    """

    p_success: float | None
    method: str  # "forward" (exact), "reweighted" (PSIS), "refit" (NUTS) or "invalid"
    pareto_k: float | None = None
    note: str | None = None
    recommended: str | None = None  # the option with the highest mean value, if a decision
    mcse: float | None = None
    ess: float | None = None
    proposal: str | None = None  # "prior" | "posterior" | None (refit: independent draws)
    draws: Any = field(default=None, repr=False)
    weights: Any = field(default=None, repr=False)
    r_eff: float = 1.0  # relative efficiency of the proposal draws (MCMC: below 1)

    def as_json(self) -> dict[str, Any]:
        from forecast.mcse import round_to, sig

        return {
            "p_success": round_to(self.p_success, self.mcse),
            "p_success_mcse": sig(self.mcse),
            "method": self.method,
            "pareto_k": None if self.pareto_k is None else round(self.pareto_k, 3),
            "ess": None if self.ess is None else round(self.ess),
            "recommended": self.recommended,
            "note": self.note,
        }


def difference(a: Variant, b: Variant) -> tuple[float | None, float | None]:
    """b − a in P(success) and its Monte Carlo error: paired where both were reweighted
    from the same proposal draws (the shared draws cancel most of the noise), otherwise
    the two errors combined as independent."""
    from forecast.mcse import combined, paired_mcse

    if a.p_success is None or b.p_success is None:
        return None, None
    delta = b.p_success - a.p_success
    same_draws = (
        a.proposal is not None
        and a.proposal == b.proposal
        and a.draws is not None
        and b.draws is not None
        and len(a.draws) == len(b.draws)
    )
    if same_draws:
        r_eff = min(a.r_eff, b.r_eff)
        return delta, paired_mcse(b.draws, a.draws, b.weights, a.weights) / math.sqrt(r_eff)
    return delta, combined(a.mcse, b.mcse)


@dataclass
class BaseFit:
    """A fitted scenario whose posterior draws can serve as a proposal for its variants."""

    prep: Prepared
    posterior: Any  # xarray.Dataset
    learned: list[str]
    log_q: Any  # numpy (draw,): log prior + log likelihood of the learned draws
    r_eff: float = 1.0  # relative efficiency of the posterior's P(success) draws

    @classmethod
    def from_report(cls, prep: Prepared, folder: Path) -> BaseFit | None:
        """The report's posterior, or None for a prior-only report."""
        import xarray as xr

        path = folder / "posterior.nc"
        if prep.data is None or not path.is_file():
            return None
        tree = xr.open_datatree(path, engine="h5netcdf")
        if "posterior" not in tree.children:
            return None
        from forecast.fit import data_dependent, flat_draws, vectorised_draws
        from forecast.mcse import relative_efficiency
        from forecast.model import build_model

        posterior = tree["posterior"].to_dataset()
        model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
        learned = data_dependent(model)
        draws = flat_draws(posterior, learned)
        n = posterior.sizes["chain"] * posterior.sizes["draw"]
        # the whole data likelihood at the posterior draws (outcomes and recorded factor
        # values), from the model itself: one definition for the fit and the weights
        (loglik,) = vectorised_draws(model, [], n, prep.settings.seed, True, given=draws)
        r_eff = relative_efficiency(posterior["p_success"].transpose("chain", "draw").values)
        return cls(prep, posterior, learned, loglik + log_prior(model, draws), r_eff)

    def draws(self) -> dict[str, Any]:
        from forecast.fit import flat_draws

        return flat_draws(self.posterior, self.learned)


def log_prior(model, draws: dict[str, Any]):
    """Joint prior log density of ``draws`` (name → (draw, ...)) under ``model``, per draw.

    The density is PyMC's own (``pm.logp`` of each free variable, on its constrained
    scale, :func:`forecast.fit.prior_densities`): the beliefs and the pooling priors
    exactly as the model that was fitted defines them.
    """

    from forecast.fit import prior_densities

    densities = prior_densities(model, draws)
    if not densities:
        return 0.0
    n = len(next(iter(draws.values())))
    return sum(d.reshape(n, -1).sum(axis=1) for d in densities.values())


def evaluate(prep: Prepared, seed: int | None = None, base: BaseFit | None = None) -> Variant:
    """P(success) (and the recommended option) of a prepared scenario, as cheaply as is reliable.

    Without data, exact forward sampling. With data, importance sampling (PSIS) from the
    base scenario's posterior when the variant shares every variable the data bear on,
    or from the variant's prior, whichever gives the smaller Pareto k; where the weights
    fail the trust rule of PRODUCT §2 (k ≥ min(1 − 1/log10 S, 0.7) or ESS < 400) the
    scenario is refitted with NUTS.
    """
    import numpy as np

    from forecast.fit import run_fit
    from forecast.mcse import mcse_mean
    from forecast.model import build_model
    from forecast.psis import importance

    seed = prep.settings.seed if seed is None else seed
    spec = prep.loaded.spec
    options = list(spec.decision.options) if spec.decision is not None else None

    def best(values) -> str | None:
        return None if options is None or values is None else options[int(np.argmax(values))]

    def variant(r, method: str, proposal: str) -> Variant:
        return Variant(
            r.p_success,
            method,
            None if method == "forward" else r.pareto_k,
            recommended=best(r.means.get("option_value")),
            mcse=r.p_success_mcse,
            ess=r.ess,
            proposal=proposal,
            draws=r.draws["p_success"],
            weights=r.weights,
            r_eff=r.r_eff,
        )

    model = build_model(spec, prep.priors, prep.data, prep.settings.seed)
    if prep.data is None:
        return variant(importance(model, VARIANT_DRAWS, seed), "forward", "prior")
    candidates = []
    if base is not None and _shares_learned(model, base):
        draws = base.draws()
        r = importance(
            model,
            len(base.log_q),
            seed,
            log_q=base.log_q,
            given=draws,
            log_prior_target=log_prior(model, draws),
            r_eff=base.r_eff,
        )
        candidates.append(("posterior", r))
    if not candidates or not candidates[0][1].reliable:
        candidates.append(("prior", importance(model, VARIANT_DRAWS, seed)))
    proposal, r = min(candidates, key=lambda c: (not c[1].reliable, c[1].pareto_k))
    if r.reliable:
        return variant(r, "reweighted", proposal)
    fitted = run_fit(
        model, has_data=True, draws=prep.settings.draws, chains=prep.settings.chains, seed=seed
    )
    post = fitted.tree["posterior"]
    values = post["option_value"].mean(("chain", "draw")).values if options else None
    return Variant(
        float(post["p_success"].mean()),
        "refit",
        r.pareto_k,
        recommended=best(values),
        mcse=mcse_mean(post["p_success"]),
        note=f"best reweighting: k = {r.pareto_k:.2f}, ESS {r.ess:.0f}",
    )


def _shares_learned(model, base: BaseFit) -> bool:
    """Whether every variable the data bear on in the base is a same-shaped free variable here."""
    free = {rv.name: rv for rv in model.free_RVs}
    for name in base.learned:
        if name not in free:
            return False
        shape = tuple(base.posterior[name].shape[2:])
        if tuple(free[name].type.shape) != shape and any(
            d is not None for d in free[name].type.shape
        ):
            return False
    return True


def try_variant(
    raw: dict[str, Any], like: Prepared, seed: int, allow_outside: bool, base: BaseFit | None = None
) -> Variant:
    from forecast.errors import ScenarioError

    try:
        prep = prepare_raw(raw, like, allow_outside)
    except ScenarioError as e:
        return Variant(None, "invalid", note="; ".join(p.message for p in e.problems))
    return evaluate(prep, seed, base)
