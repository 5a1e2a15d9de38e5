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
import threading
from collections.abc import Callable
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

    ``draws`` and ``weights`` (per-draw P(success) and its normalised weights; a refit
    has its NUTS draws and no weights) let a difference with another variant from the
    same proposal draws be given a paired Monte Carlo error; ``proposal`` names those
    draws (None for a refit, whose draws are its own).
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
    option_means: list[float] | None = None  # each option's mean value, if a decision
    option_mcse: list[float] | None = None

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
    """A fitted scenario whose posterior draws can serve as a proposal for its variants.

    ``log_q`` is the proposal's log density at its draws up to a constant (log prior +
    log likelihood), ``log_prior_q`` its prior part: a variant that reads the same
    reference data (``data_key``) has the same likelihood at the same draws, which then
    cancels from the weights and need not be computed again.
    """

    prep: Prepared
    posterior: Any  # xarray.Dataset, in memory
    learned: list[str]
    log_q: Any  # numpy (draw,): log prior + log likelihood of the learned draws
    r_eff: float = 1.0  # relative efficiency of the posterior's P(success) draws
    log_prior_q: Any = None  # numpy (draw,): the log prior part of log_q
    data_key: str | None = None  # the reference data the likelihood was computed from
    learned_draws: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_report(cls, prep: Prepared, folder: Path) -> BaseFit | None:
        """The report's posterior, or None for a prior-only report."""
        import xarray as xr

        path = folder / "posterior.nc"
        if prep.data is None or not path.is_file():
            return None
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            if "posterior" not in tree.children:
                return None
            posterior = tree["posterior"].to_dataset().load()
        from forecast.fit import flat_draws
        from forecast.mcse import relative_efficiency

        program = program_for(prep)
        with program.lock:
            program.set(prep)
            draws = flat_draws(posterior, program.learned)
            n = posterior.sizes["chain"] * posterior.sizes["draw"]
            # the whole data likelihood at the posterior draws (outcomes and recorded
            # factor values), from the model itself: one definition for fit and weights
            (loglik,) = program.draws([], n, prep.settings.seed, True, draws)
            log_prior_q = program.log_prior(draws)
        r_eff = relative_efficiency(posterior["p_success"].transpose("chain", "draw").values)
        return cls(
            prep,
            posterior,
            program.learned,
            loglik + log_prior_q,
            r_eff,
            log_prior_q,
            _data_identity(prep),
            draws,
        )

    def draws(self) -> dict[str, Any]:
        from forecast.fit import flat_draws

        if not self.learned_draws:
            self.learned_draws = flat_draws(self.posterior, self.learned)
        return self.learned_draws


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


def evaluate(
    prep: Prepared,
    seed: int | None = None,
    base: BaseFit | None = None,
    on_refit: Callable[[str], None] | None = None,
) -> Variant:
    """P(success) (and the recommended option) of a prepared scenario, as cheaply as is reliable.

    Without data, exact forward sampling. With data, importance sampling (PSIS) from the
    base scenario's posterior when the variant shares every variable the data bear on,
    or from the variant's prior, whichever gives the smaller Pareto k; where the weights
    fail the trust rule of PRODUCT §2 (k ≥ min(1 − 1/log10 S, 0.7) or ESS < 400) the
    scenario is refitted with NUTS; ``on_refit`` is told so (with why) before it starts.
    """
    import numpy as np

    seed = prep.settings.seed if seed is None else seed
    spec = prep.loaded.spec
    options = list(spec.decision.options) if spec.decision is not None else None

    def best(values) -> str | None:
        return None if options is None or values is None else options[int(np.argmax(values))]

    def variant(r, method: str, proposal: str | None) -> Variant:
        values, errors = r.means.get("option_value"), r.mcse.get("option_value")
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
            option_means=None if values is None else [float(x) for x in values],
            option_mcse=None if errors is None else [float(x) for x in errors],
        )

    program = program_for(prep)
    with program.lock:
        program.set(prep)
        r = _reweighted(program, prep, seed, base)
    if prep.data is None:  # exact: equal weights
        return variant(r, "forward", r.proposal)
    if r.reliable:
        return variant(r, "reweighted", r.proposal)
    why = f"best reweighting: k = {r.pareto_k:.2f}, ESS {r.ess:.0f}"
    if on_refit is not None:
        on_refit(why)
    fit = program.refit(prep, seed)
    return Variant(
        fit.mean,
        "refit",
        r.pareto_k,
        recommended=best(fit.option_means),
        mcse=fit.mcse,
        note=why + fit.note,
        draws=fit.draws,
        option_means=fit.option_means,
        option_mcse=fit.option_mcse,
    )


def _reweighted(program: Program, prep: Prepared, seed: int, base: BaseFit | None):
    """The best importance-sampling estimate of a scenario from ``program`` (set to it):
    exact forward draws without data; with data, the base fit's posterior draws as the
    proposal where the variant shares what the data bear on, else (or where those weights
    fail the trust rule) the variant's prior, whichever gives the smaller Pareto k.
    ``proposal`` is set on the result ("prior" or "posterior")."""
    from forecast.psis import importance

    model = program.model
    if prep.data is None:
        r = importance(model, VARIANT_DRAWS, seed, sampler=program.draws)
        r.proposal = "prior"
        return r
    candidates = []
    if base is not None and _shares_learned(model, base):
        draws = base.draws()
        # the same data at the same draws: the likelihood cancels from the weights
        same_data = base.log_prior_q is not None and _data_identity(prep) == base.data_key
        r = importance(
            model,
            len(base.log_q),
            seed,
            log_q=base.log_prior_q if same_data else base.log_q,
            given=draws,
            log_prior_target=program.log_prior(draws),
            r_eff=base.r_eff,
            sampler=program.draws,
            with_loglik=not same_data,
        )
        r.proposal = "posterior"
        candidates.append(r)
    if not candidates or not candidates[0].reliable:
        r = importance(model, VARIANT_DRAWS, seed, sampler=program.draws)
        r.proposal = "prior"
        candidates.append(r)
    return min(candidates, key=lambda c: (not c.reliable, c.pareto_k))


@dataclass
class Refit:
    """P(success) of a scenario refitted by NUTS, per draw and on average."""

    mean: float
    mcse: float
    draws: Any  # numpy (chain·draw,): P(success) per draw
    option_means: list[float] | None
    option_mcse: list[float] | None
    note: str  # "" or "; N divergences"


class Program:
    """A tunable model of one shape with its compiled functions, for many variants.

    Built once per :func:`~forecast.model.shape_key` (the beliefs' parameters and the
    number of rounds are shared variables), so a what-if that changes only numbers sets
    them (:meth:`set`) and calls functions compiled before: no model build, no graph
    rewriting. Calls are serialised by ``lock`` (the parameters are shared state).
    """

    def __init__(self, prep: Prepared):
        from forecast.fit import data_dependent
        from forecast.model import build_model

        self.tunable: dict[str, list] = {}
        spec = prep.loaded.spec
        self.model = build_model(spec, prep.priors, prep.data, prep.settings.seed, self.tunable)
        self.learned = data_dependent(self.model)
        self.lock = threading.RLock()
        self._draws: dict[tuple, Any] = {}
        self._log_prior: dict[tuple, Any] = {}
        self._nuts: Any = None  # forecast.nuts.TunableNuts, built on the first refit

    def refit(self, prep: Prepared, seed: int) -> Refit:
        """The scenario by NUTS: the learned variables by the shape's compiled NUTS
        (:class:`~forecast.nuts.TunableNuts`), the rest by exact prior draws, as
        :func:`forecast.fit.run_fit` does. The lock is held only to set parameters."""
        import numpy as np
        import xarray as xr

        from forecast.fit import configure_jax, seeds
        from forecast.mcse import mcse_mean

        draws, chains = prep.settings.draws, prep.settings.chains
        configure_jax(chains)
        nuts_seed, exact_seed = seeds(seed, 3)[1:]
        with self.lock:
            nuts = self.nuts()
            self.set(prep)
            start = nuts.start(chains, nuts_seed)
        sampled = nuts.sample(draws, chains, start)
        given = {k: v.reshape(chains * draws, *v.shape[2:]) for k, v in sampled.values.items()}
        names = ["p_success"] + (["option_value"] if prep.loaded.spec.decision else [])
        with self.lock:
            self.set(prep)
            values = self.draws(names, chains * draws, exact_seed, False, given)

        def chained(x):
            return xr.DataArray(x.reshape(chains, draws), dims=("chain", "draw"))

        means = errors = None
        if len(values) > 1:
            means = [float(x) for x in values[1].mean(axis=0)]
            errors = [mcse_mean(chained(col)) for col in values[1].T]
        note = f"; {sampled.divergences} divergences" if sampled.divergences else ""
        p = values[0]
        return Refit(float(np.mean(p)), mcse_mean(chained(p)), p, means, errors, note)

    def nuts(self):
        """The shape's :class:`~forecast.nuts.TunableNuts`, built on first use."""
        with self.lock:
            if self._nuts is None:
                from forecast.nuts import TunableNuts

                self._nuts = TunableNuts(self.model, self.tunable, self.learned)
            return self._nuts

    def set(self, prep: Prepared) -> None:
        from forecast.model import set_tunable

        set_tunable(self.tunable, prep.loaded.spec, prep.priors)

    def draws(self, names, n: int, seed: int, with_loglik: bool, given) -> list:
        """:func:`~forecast.fit.vectorised_draws` of the model, compiled once per signature."""
        import numpy as np

        from forecast.fit import DrawsFunction

        given = {k: np.asarray(v) for k, v in (given or {}).items()}
        shapes = {k: (v.dtype, v.shape[1:]) for k, v in given.items()}
        key = (tuple(names), n, with_loglik, tuple((k, str(d), s) for k, (d, s) in shapes.items()))
        if key not in self._draws:
            self._draws[key] = DrawsFunction(self.model, list(names), n, with_loglik, shapes)
        return self._draws[key](n, seed, given)

    def log_prior(self, draws: dict[str, Any]):
        """:func:`log_prior` of the model at ``draws``, compiled once per set of names."""
        import numpy as np

        key = tuple((k, np.asarray(v).shape[1:]) for k, v in draws.items())
        if key not in self._log_prior:
            self._log_prior[key] = _log_prior_function(self.model, draws)
        fn = self._log_prior[key]
        return fn(*(np.asarray(v) for v in draws.values())) if fn is not None else 0.0


def _log_prior_function(model, draws: dict[str, Any]):
    """A compiled :func:`log_prior`: the joint prior log density of the named free
    variables (PyMC's own ``pm.logp``), per draw, with the draws as inputs."""
    import numpy as np
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    from forecast.fit import forward_mode

    free = [rv for rv in model.free_RVs if rv.name in draws]
    if not free:
        return None
    inputs, total = [], 0
    for name, value in draws.items():
        value = np.asarray(value)
        x = pt.tensor(name, dtype=value.dtype, shape=(None, *value.shape[1:]))
        inputs.append(x)
        rv = next((r for r in free if r.name == name), None)
        if rv is not None:
            total = total + pm.logp(rv, x).reshape((x.shape[0], -1)).sum(axis=1)
    return pytensor.function(inputs, total, mode=forward_mode(), on_unused_input="ignore")


#: Compiled programs by model shape, most recently used last; a handful covers a
#: sensitivity run, a compare, an explore session or a sweep.
_PROGRAMS: dict[str, Program] = {}
_PROGRAMS_LOCK = threading.Lock()
PROGRAMS_KEPT = 4


def _data_identity(prep: Prepared) -> str:
    """Which reference rounds a scenario reads: the file's content (its SHA-256) and the
    selection from it (:func:`~forecast.prepared.data_key`); two scenarios in different
    folders may name different files by the same relative path."""
    from forecast.prepared import data_key

    sha = None if prep.data is None else prep.data.sha256
    return f"{sha}:{data_key(prep.loaded)}"


def program_for(prep: Prepared) -> Program:
    """The cached :class:`Program` of the scenario's shape, built on first use."""
    from forecast.model import shape_key

    key = shape_key(prep.loaded.spec, prep.priors, _data_identity(prep))
    with _PROGRAMS_LOCK:  # explore asks from worker threads: one program per shape
        program = _PROGRAMS.pop(key, None) or Program(prep)
        _PROGRAMS[key] = program
        while len(_PROGRAMS) > PROGRAMS_KEPT:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
    return program


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
    raw: dict[str, Any],
    like: Prepared,
    seed: int,
    allow_outside: bool,
    base: BaseFit | None = None,
    on_refit: Callable[[str], None] | None = None,
) -> Variant:
    from forecast.errors import ScenarioError

    try:
        prep = prepare_raw(raw, like, allow_outside)
    except ScenarioError as e:
        return Variant(None, "invalid", note="; ".join(p.message for p in e.problems))
    return evaluate(prep, seed, base, on_refit)
