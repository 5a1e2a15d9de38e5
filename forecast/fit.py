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
FORWARD_MODE = "FAST_COMPILE"


def configure_jax_cache() -> None:
    """Keep JAX's compiled programs across runs (users feel the cold start)."""
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

    @property
    def passed(self) -> bool:
        return self.diagnostics.get("passed", True)

    @property
    def draws_group(self) -> str:
        return "posterior" if self.method == "nuts" else "prior"


def seeds(seed: int, n: int) -> list[int]:
    """``n`` independent integer seeds from one scenario seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def forward_sample(model, draws: int, chains: int, seed: int):
    """Exact draws from the prior, shaped (chain, draw) like a posterior."""
    import pymc as pm

    names = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    with warnings.catch_warnings(), _quiet_pymc():
        warnings.simplefilter("ignore")
        tree = pm.sample_prior_predictive(
            draws * chains,
            model=model,
            var_names=names,
            random_seed=seed,
            compile_kwargs={"mode": FORWARD_MODE},
        )
    prior = tree["prior"].to_dataset()
    # one long chain → `chains` chains, so prior and posterior share their shape
    prior = prior.isel(chain=0, drop=True).assign_coords(draw=np.arange(draws * chains))
    prior = prior.coarsen(draw=draws).construct(draw=("chain", "draw"))
    prior = prior.assign_coords(chain=np.arange(chains), draw=np.arange(draws))
    return prior


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
    """
    import xarray as xr

    say = progress or (lambda _msg: None)
    start = time.perf_counter()
    prior_seed, nuts_seed = seeds(seed, 2)
    say("drawing from the prior")
    prior = forward_sample(model, draws, chains, prior_seed)
    notes: list[str] = []
    if not has_data or not model.free_RVs:
        if has_data:
            notes.append("every belief is a constant: the data have nothing to update")
        tree = xr.DataTree.from_dict({"prior": prior})
        diag = {
            "r_hat_max": None,
            "ess_bulk_min": None,
            "divergences": None,
            "method": "prior",
            "passed": True,
        }
        return Fit(tree, "prior", diag, time.perf_counter() - start, notes)

    import pymc as pm

    configure_jax_cache()
    say(f"sampling {chains} chains × {draws} draws (NUTS)")
    with warnings.catch_warnings(), _quiet_pymc():
        warnings.simplefilter("ignore")
        tree = pm.sample(
            draws,
            tune=1000,
            chains=chains,
            model=model,
            nuts_sampler="numpyro",
            random_seed=nuts_seed,
            progressbar=False,
            compute_convergence_checks=False,
            nuts={"chain_method": "vectorized"},
        )
        say("computing log densities")
        pm.compute_log_likelihood(tree, model=model, progressbar=False, backend="jax")
        pm.compute_log_prior(tree, model=model, progressbar=False, backend="jax")
    tree["prior"] = xr.DataTree(prior)
    diag = diagnostics(tree, [v.name for v in model.free_RVs], chains)
    return Fit(tree, "nuts", diag, time.perf_counter() - start, notes)


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
