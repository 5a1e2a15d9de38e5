"""Sampling: NUTS when there are reference data, exact forward sampling otherwise.

NUTS runs through numpyro (JAX), whose compiled code is kept in a per-user cache
so that only the first run of a model shape pays for compilation; forward sampling
uses PyTensor's FAST_COMPILE mode, which needs no C or numba compilation at all.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecast.beliefs import cache_dir

#: Thresholds of PRODUCT §3: the fit "fails its diagnostics" past these.
RHAT_MAX = 1.01
ESS_PER_CHAIN = 100


def forward_mode():
    """The mode of vectorised draws and densities: FAST_COMPILE rewrites, NumPy
    ``perform`` only, no constant folding (which would compile C thunks to fold the
    model's constant arrays). Every op works on whole batches of draws, so C thunks would
    gain little, while compiling them cost a cold run 12 s."""
    from pytensor.compile.mode import Mode

    return Mode(linker="py", optimizer="fast_compile").excluding("constant_folding")


#: Model checks hold (draw × round) arrays; past this many elements they thin the draws
#: (2e6 float64 = 16 MB per array, several alive at once) to keep within 1 GiB.
CHECK_ELEMENTS = 2_000_000


def check_stride(n_rounds: int, n_draws: int) -> int:
    """Keep every k-th draw for per-round model checks; 1 for any ordinary data set."""
    return max(1, -(-n_rounds * n_draws // CHECK_ELEMENTS))


def configure_jax(chains: int) -> None:
    """Keep JAX's compiled programs across runs, and give each chain a CPU device.

    Must run before JAX is imported. The persistent cache spares a warm run XLA's
    compilation; one virtual device per chain lets numpyro run the chains in
    parallel (``chain_method="parallel"``), which measured twice as fast as
    vectorised chains on two cores.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        count = max(4, chains)
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_dir() / "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


@dataclass
class Fit:
    """The result of fitting one scenario."""

    tree: Any  # xarray.DataTree
    method: str  # "nuts" | "prior"
    diagnostics: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)  # model checks, when there are data
    #: P(pass stage | reached it) per (thinned) posterior draw, round and stage, for the checks
    p_pass: Any = None

    @property
    def passed(self) -> bool:
        return self.diagnostics.get("passed", True)

    @property
    def draws_group(self) -> str:
        return "posterior" if self.method == "nuts" else "prior"


def seeds(seed: int, n: int) -> list[int]:
    """``n`` independent integer seeds from one scenario seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


#: Largest intermediate array (elements) of a batch of vectorised draws: 4e6 float64 =
#: 32 MB, so that the dozen or so alive at once stay well inside the 1 GiB target.
BATCH_ELEMENTS = 4_000_000


def _cells_per_draw(outputs) -> int:
    """The largest static size of any array in the graph of one draw (1 if none known)."""
    from pytensor.graph.traversal import ancestors

    sizes = [
        int(np.prod(v.type.shape))
        for v in ancestors(outputs)
        if getattr(v.type, "shape", None) is not None and None not in v.type.shape
    ]
    return max(sizes, default=1)


def vectorised_draws(
    model,
    names: list[str],
    n: int,
    seed: int,
    with_loglik: bool = False,
    given: dict[str, np.ndarray] | None = None,
    extra: list | None = None,
):
    """``n`` exact prior draws of ``names`` (and the data log-likelihood), vectorised.

    The model's own graph is vectorised: each free variable is redrawn with a leading
    batch dimension and everything downstream is recomputed from those batches, so one
    FAST_COMPILE function replaces ``n`` calls of ``pm.sample_prior_predictive``
    (measured 0.5 s against 2.3 s for 4,000 draws). Draws are taken in batches sized
    so that no intermediate array exceeds ``BATCH_ELEMENTS`` (50 factors summed over
    by Monte Carlo would otherwise need gigabytes); ``given`` fixes some variables to
    supplied draws (one row per draw). :class:`DrawsFunction` is the same, compiled once
    and called many times.
    """
    given = {k: np.asarray(v) for k, v in (given or {}).items()}
    shapes = {k: (v.dtype, v.shape[1:]) for k, v in given.items()}
    return DrawsFunction(model, names, n, with_loglik, shapes, extra)(n, seed, given)


class DrawsFunction:
    """Vectorised draws of ``names`` from a model, compiled once, reseeded per call.

    ``given`` names the free variables supplied by the caller (name → (dtype, shape of
    one draw)); the others are drawn from their prior. Calling it with a seed gives the
    same numbers as a fresh :func:`vectorised_draws` with that seed, so a cached function
    never makes a result depend on what was computed before it. A model built with
    shared prior parameters (:func:`forecast.model.build_model` ``tunable``) keeps one
    compiled function for every variant of its shape.
    """

    def __init__(self, model, names, n: int, with_loglik: bool, given, extra=None):
        import pymc as pm
        import pytensor.tensor as pt
        from pymc.distributions.shape_utils import change_dist_size
        from pymc.pytensorf import collect_default_updates
        from pytensor.compile.ops import ViewOp
        from pytensor.graph.replace import vectorize_graph
        from pytensor.graph.traversal import ancestors
        from pytensor.tensor.random.op import RandomVariable

        free = list(model.free_RVs)
        # a Deterministic is a view of its value; take the value, which vectorises
        # without a loop
        outputs = [
            v.owner.inputs[0] if v.owner is not None and isinstance(v.owner.op, ViewOp) else v
            for v in (model[name] for name in names)
        ]
        if with_loglik:
            outputs.append(round_loglik(model).sum(axis=-1))  # over rounds, per draw
        outputs += list(extra or [])
        batch = self.batch = int(min(n, max(1, BATCH_ELEMENTS // _cells_per_draw(outputs))))
        inputs, batched = [], {}
        self.given = [rv.name for rv in free if rv.name in given]
        for rv in free:
            if rv.name in given:
                dtype, shape = given[rv.name]
                x = pt.tensor(rv.name, dtype=dtype, shape=(batch, *shape))
                inputs.append(x)
                batched[rv] = x
            else:
                batched[rv] = change_dist_size(rv, new_size=(batch,), expand=True)
        # random nodes that are not model variables (the case's Monte Carlo factor states)
        # are redrawn for every draw too, not shared by a batch
        for node in ancestors(outputs):
            if (
                node.owner is not None
                and isinstance(node.owner.op, RandomVariable)
                and node not in batched
                and node is node.owner.default_output()
                and not set(ancestors(node.owner.inputs)) & set(free)
            ):
                batched[node] = change_dist_size(node, new_size=(batch,), expand=True)
        outputs = vectorize_graph(outputs, replace=batched)
        self.rngs = list(collect_default_updates(inputs=inputs, outputs=outputs))
        self.fn = pm.pytensorf.compile(
            inputs, outputs, random_seed=False, mode=forward_mode(), on_unused_input="ignore"
        )
        self.n_outputs = len(outputs)

    def __call__(self, n: int, seed: int, given: dict[str, np.ndarray]) -> list[np.ndarray]:
        from pymc.pytensorf import reseed_rngs

        if self.rngs:
            reseed_rngs(self.rngs, seed)
        batch = self.batch
        chunks: list[list[np.ndarray]] = []
        for start in range(0, n, batch):
            args = []
            for name in self.given:
                part = given[name][start : start + batch]
                pad = batch - len(part)  # the last batch: pad, and drop the padding below
                args.append(np.concatenate([part, np.repeat(part[-1:], pad, axis=0)]))
            chunks.append([np.asarray(v) for v in self.fn(*args)])
        out = []
        for i in range(self.n_outputs):
            first = chunks[0][i]
            if first.ndim == 0 or first.shape[0] != batch:  # depends on no free variable
                out.append(np.broadcast_to(first, (n, *first.shape)))
            else:
                out.append(np.concatenate([c[i] for c in chunks])[:n])
        return out


def forward_sample(model, draws: int, chains: int, seed: int):
    """Exact draws from the prior of ``model``, shaped (chain, draw) like a posterior."""
    import xarray as xr

    names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    values = vectorised_draws(model, names, draws * chains, seed)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    return xr.Dataset(coords=coords).assign(_as_draws(model, names, values, chains, draws))


def _as_draws(model, names: list[str], values: list[np.ndarray], chains: int, draws: int):
    """Flat draws of model variables as (chain, draw, *dims) DataArrays with the model's coords."""
    import xarray as xr

    out = {}
    for name, value in zip(names, values, strict=True):
        value = value.reshape(chains, draws, *value.shape[1:])
        dims = list(model.named_vars_to_dims.get(name, ()))
        dims += [f"{name}_dim_{i}" for i in range(value.ndim - 2 - len(dims))]
        coords = {d: list(model.coords[d]) for d in dims if d in model.coords}
        out[name] = xr.DataArray(value, dims=("chain", "draw", *dims), coords=coords)
    return out


def flat_draws(posterior, names: list[str]) -> dict[str, np.ndarray]:
    """Draws of ``names`` with chain and draw flattened into one leading axis."""
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    return {
        name: posterior[name]
        .transpose("chain", "draw", ...)
        .values.reshape(n, *posterior[name].shape[2:])
        for name in names
    }


class _quiet_pymc:
    """Silence PyMC's "Sampling: [...]" chatter; the CLI shows its own progress."""

    def __enter__(self):
        self.logger = logging.getLogger("pymc")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def run_fit(
    model,
    *,
    has_data: bool,
    draws: int,
    chains: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
    nuts=None,
) -> Fit:
    """Fit a built model: prior always, posterior by NUTS when there are data.

    Parameters
    ----------
    model
        The ``pm.Model`` from :func:`forecast.model.build_model`.
    has_data
        Whether the model has observed reference rounds.
    draws, chains, seed
        Sampling settings; the same seed gives the same numbers.
    progress
        Called with a short phase description ("sampling", ...).
    nuts
        The model's :class:`~forecast.nuts.TunableNuts`, compiled before (a tunable
        model's, set to this scenario); by default one is made for this fit.
    """
    import xarray as xr

    say = progress or (lambda _msg: None)
    start = time.perf_counter()
    prior_seed, nuts_seed, exact_seed = seeds(seed, 3)
    say("drawing from the prior")
    prior = forward_sample(model, draws, chains, prior_seed)
    notes: list[str] = []
    if not has_data or not model.free_RVs:
        if has_data:
            notes.append("every belief is a constant: the data have nothing to update")
        tree = xr.DataTree.from_dict({"prior": prior})
        return Fit(tree, "prior", PRIOR_DIAGNOSTICS, time.perf_counter() - start, notes)

    configure_jax(chains)
    say(f"sampling {chains} chains × {draws} draws (NUTS)")
    learned = data_dependent(model)
    with warnings.catch_warnings(), _quiet_pymc():
        warnings.simplefilter("ignore")
        if nuts is None:
            from forecast.nuts import TunableNuts

            nuts = TunableNuts(model, {}, learned)
        started = time.perf_counter()
        sampled = nuts.sample(draws, chains, nuts.start(chains, nuts_seed))
        tree = _as_tree(model, sampled, time.perf_counter() - started)
        exact_unlearned(model, tree, learned, exact_seed)
        say("computing log densities")
        p_pass = add_log_densities(model, tree, nuts_seed, notes)
    tree["prior"] = xr.DataTree(prior)
    diag = diagnostics(tree, learned, chains)
    return Fit(tree, "nuts", diag, time.perf_counter() - start, notes, p_pass=p_pass)


def _as_tree(model, sampled, seconds: float):
    """NUTS draws as the DataTree ``pm.sample`` gives (ArviZ ``from_dict``, the model's
    coords and dims, its observed data, numpyro's statistics under PyMC's names)."""
    import numpyro
    from arviz_base import from_dict, make_attrs
    from pymc.backends.arviz import (
        coords_and_dims_for_inferencedata,
        find_constants,
        find_observations,
    )

    from forecast.nuts import TUNE

    coords, dims = coords_and_dims_for_inferencedata(model)
    groups = {"posterior": sampled.values, "sample_stats": sampled.stats}
    for name, found in (
        ("observed_data", find_observations(model)),
        ("constant_data", find_constants(model)),
    ):
        if found:
            groups[name] = found
    attrs = {"sampling_time": seconds, "tuning_steps": TUNE}
    return from_dict(
        data=groups,
        coords=coords,
        dims=dims,
        sample_dims=["chain", "draw"],
        attrs={"posterior": make_attrs(attrs, inference_library=numpyro)},
    )


#: The diagnostics of a forward-sampled (prior) run: no MCMC, nothing to fail.
PRIOR_DIAGNOSTICS = {
    "r_hat_max": None,
    "ess_bulk_min": None,
    "divergences": None,
    "method": "prior",
    "passed": True,
}


def add_log_densities(model, tree, seed: int, notes: list[str]):
    """Add the ``log_likelihood`` (per round) and ``log_prior`` groups to a fitted tree.

    Past 2 million round × draw cells the likelihood is taken at every n-th draw (a note
    says so). Returns P(pass) per (draw, round, stage), for the model checks.
    """
    import xarray as xr

    outcomes = tree["observed_data"]["outcomes"]
    n = tree["posterior"].sizes["chain"] * tree["posterior"].sizes["draw"]
    stride = check_stride(outcomes.shape[0], n)
    posterior = tree["posterior"].to_dataset().isel(draw=slice(None, None, stride))
    chains = posterior.sizes["chain"]
    if stride > 1:
        notes.append(
            f"model checks use every {stride}th draw ({chains * posterior.sizes['draw']} of "
            f"{n}) to keep {outcomes.shape[0]:,} rounds within memory"
        )
    loglik, p_pass = pointwise(model, posterior, seed)
    shape = (chains, posterior.sizes["draw"], outcomes.shape[0])
    tree["log_likelihood"] = xr.DataTree(
        xr.Dataset(
            {"outcomes": (("chain", "draw", outcomes.dims[0]), loglik.reshape(shape))},
            coords={
                "chain": posterior["chain"],
                "draw": posterior["draw"],
                outcomes.dims[0]: outcomes[outcomes.dims[0]],
            },
        )
    )
    tree["log_prior"] = xr.DataTree(log_prior_group(model, tree["posterior"].to_dataset()))
    return p_pass


def log_prior_group(model, posterior):
    """Each free variable's prior log-density at its posterior draws (ArviZ ``log_prior``).

    The densities are on the variables' own (constrained) scale, as
    ``pm.stats.compute_log_prior`` gives them. A forecast model's beliefs have fixed
    prior parameters, so each density is elementwise over the draws: one NumPy-mode
    function evaluates all of them at once (measured 0.2 s, against 2.4 s for JAX
    tracing a function per draw batch); a model where a prior depends on another
    variable falls back to PyMC's own function.
    """
    import pymc as pm
    import xarray as xr
    from pytensor.graph.traversal import ancestors

    free = list(model.free_RVs)
    dependent = [rv for rv in free if set(ancestors(rv.owner.inputs)) & set(free)]
    if dependent:
        tree = xr.DataTree.from_dict({"posterior": posterior})
        pm.stats.compute_log_prior(tree, model=model, progressbar=False, backend="jax")
        return tree["log_prior"].to_dataset()
    densities = prior_densities(model, {rv.name: posterior[rv.name].values for rv in free})
    return xr.Dataset(
        {
            name: posterior[name].copy(data=np.broadcast_to(d, posterior[name].shape))
            for name, d in densities.items()
        }
    )


def prior_densities(model, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyMC's prior log-density of each named free variable at the given values.

    Elementwise (each prior of a forecast model has fixed parameters), so any leading
    batch dimensions of the values pass through; one NumPy-mode function for all.
    """
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    free = [rv for rv in model.free_RVs if rv.name in values]
    outputs = [pm.logp(rv, pt.constant(np.asarray(values[rv.name]))) for rv in free]
    densities = pytensor.function([], outputs, mode=forward_mode())() if outputs else []
    return {rv.name: np.asarray(d) for rv, d in zip(free, densities, strict=True)}


def round_loglik(model):
    """The data's log-likelihood per reference round, as a graph of shape (round,).

    The observed outcomes of the round, plus, when recorded factor values inform an
    ``in_reference`` rate, the Bernoulli terms of those values. Importance weights of
    what-ifs and of the backtest use this whole likelihood; LOO uses the outcomes only.
    """
    import pymc as pm

    total = 0
    for name in ("outcomes", "factor_values"):
        if name in model.named_vars:
            rv = model[name]
            term = pm.logp(rv, model.rvs_to_values[rv])
            total = total + (term.sum(axis=-1) if name == "factor_values" else term)
    return total


def data_dependent(model) -> list[str]:
    """Free variables the reference data bear on (ancestors of the observed variables)."""
    from pytensor.graph.traversal import ancestors

    if not model.observed_RVs:
        return []
    upstream = set(ancestors(list(model.observed_RVs)))
    return [rv.name for rv in model.free_RVs if rv in upstream]


def nuts_model(model, learned: list[str]):
    """The model NUTS needs: the beliefs the data do not touch fixed at constants.

    The posterior factorises: a belief no data bear on (whether a factor holds now, an
    evidence ratio, a decision's values) keeps its prior, independent of the rest, so
    NUTS only has to explore the others. Fewer dimensions and a smaller graph: diplomat-2011
    samples 12 variables instead of 31 (see :func:`exact_unlearned` for the rest).
    """
    import pymc as pm
    from pymc.model.transform.conditioning import do

    fixed = [rv for rv in model.free_RVs if rv.name not in learned]
    if not fixed:
        return model
    # any value in the support will do: nothing NUTS samples depends on these
    values = pm.draw(fixed, random_seed=0, mode=forward_mode())
    return do(model, {rv.name: np.asarray(v) for rv, v in zip(fixed, values, strict=True)})


def exact_unlearned(model, tree, learned: list[str], seed: int) -> None:
    """Give the beliefs the data do not touch exact prior draws, and every deterministic.

    NUTS sampled only ``learned`` (see :func:`nuts_model`); exact draws of the rest are
    better than MCMC ones would be, and the deterministics are computed from both.
    """
    import xarray as xr

    post = tree["posterior"].to_dataset()
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    given = flat_draws(post, learned)
    names = [rv.name for rv in model.free_RVs if rv.name not in given]
    names += [v.name for v in model.deterministics]
    values = vectorised_draws(model, names, chains * draws, seed, given=given)
    tree["posterior"] = xr.DataTree(post.assign(_as_draws(model, names, values, chains, draws)))


def diagnostics(tree, free: list[str], chains: int) -> dict[str, Any]:
    """R-hat, bulk ESS and divergences over the free variables (ArviZ)."""
    import arviz_stats as azs

    rhat = azs.rhat(tree, var_names=free)
    ess = azs.ess(tree, var_names=free, method="bulk")
    r_hat_max = float(max(float(rhat[v].max()) for v in free))
    ess_min = float(min(float(ess[v].min()) for v in free))
    div = int(tree["sample_stats"]["diverging"].sum())
    passed = r_hat_max <= RHAT_MAX and ess_min >= ESS_PER_CHAIN * chains and div == 0
    return {
        "r_hat_max": round(r_hat_max, 4),
        "ess_bulk_min": round(ess_min, 1),
        "divergences": div,
        "method": "nuts",
        "passed": passed,
    }


def stage_pass_probabilities(model, posterior, seed: int = 0) -> np.ndarray:
    """P(round i passes stage s | it reached s), per posterior draw: (draw, round, stage)."""
    return pointwise(model, posterior, seed)[1]


def pointwise(model, posterior, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-round log-likelihood (draw, round) and stage pass probabilities (draw, round, stage).

    Both are read off the outcomes' own log-density, so unknown factor values are summed
    over exactly as in the fit, in one vectorised evaluation at the posterior draws:
    P(pass s | reached s) = exp(log P(pass stages ≤ s) − log P(pass stages < s)).
    """
    import pymc as pm

    rv = model["outcomes"]
    observed = model.rvs_to_values[rv]
    n_rounds, n_stages = observed.type.shape
    learned = [name for name in data_dependent(model) if name in posterior]
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    given = flat_draws(posterior, learned)
    extra = [pm.logp(rv, observed)]  # per round
    for s in range(n_stages):
        value = np.full((n_rounds, n_stages), -1, dtype="int64")
        value[:, : s + 1] = 1
        extra.append(pm.logp(rv, value))
    loglik, *values = vectorised_draws(model, [], n, seed, given=given, extra=extra)
    log_reach = np.stack(values, axis=-1)  # (draw, round, stage): log P(pass stages <= s)
    previous = np.concatenate([np.zeros_like(log_reach[..., :1]), log_reach[..., :-1]], axis=-1)
    return loglik, np.exp(log_reach - previous)
