"""NUTS compiled once per model shape, the priors' parameters passed in as arguments.

``pm.sample(nuts_sampler="numpyro")`` bakes every prior parameter into the JAX program
as a constant, so each refitted what-if (a sensitivity end, a swap of compare, a change
in explore the weights cannot carry) traced, lowered and compiled NUTS again: 15–25 s
each on two cores, for seconds of sampling. Here the log density of a tunable model
(:func:`forecast.model.build_model` ``tunable``) is turned into JAX with its shared
parameters as explicit inputs, and numpyro's NUTS kernels (``numpyro.infer.hmc.hmc``,
the same windowed step-size and diagonal mass-matrix adaptation ``pm.sample`` uses
through numpyro) run inside one ``jax.jit`` that takes the parameters as traced
arguments: every variant of a shape reuses the compiled program, in this process and
(JAX's persistent compilation cache, keyed by the program) in the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Warm-up steps, as ``pm.sample``'s default ``tune``.
TUNE = 1000
#: numpyro's and PyMC's default target acceptance rate.
TARGET_ACCEPT = 0.8


@dataclass
class Draws:
    """Posterior draws of the learned variables, (chain, draw, ...) each, constrained."""

    values: dict[str, np.ndarray]
    divergences: int


class TunableNuts:
    """NUTS over the data-dependent variables of a tunable model, compiled once.

    ``model`` is the tunable model, ``tunable`` its shared parameters (path → list of
    shared variables), ``learned`` the free variables the data bear on. The others are
    fixed (:func:`forecast.fit.nuts_model`): the posterior factorises, and their exact
    prior draws are added by whoever computes P(success) from these draws.
    """

    def __init__(self, model, tunable: dict[str, list], learned: list[str]):
        import pytensor.tensor as pt
        from pymc.initial_point import make_initial_point_fn
        from pymc.sampling.jax import get_jaxified_graph
        from pytensor.graph.replace import clone_replace

        from forecast.fit import nuts_model

        sampled = nuts_model(model, learned)
        self.shared = [v for shared in tunable.values() for v in shared]
        params = [pt.scalar(v.name, dtype="float64") for v in self.shared]
        replace = dict(zip(self.shared, params, strict=True))
        values = list(sampled.value_vars)
        self.value_names = [v.name for v in values]
        self.learned = [rv.name for rv in sampled.free_RVs]
        (logp,) = clone_replace([sampled.logp()], replace=replace)
        by_name = {v.name: v for v in sampled.unobserved_value_vars}
        # each learned variable on its own scale, as a function of the sampled values
        constrained = clone_replace([by_name[n] for n in self.learned], replace=replace)
        self._logp = get_jaxified_graph(inputs=[*values, *params], outputs=[logp])
        self._constrain = get_jaxified_graph(inputs=[*values, *params], outputs=constrained)
        self._initial = make_initial_point_fn(
            model=sampled, jitter_rvs=set(sampled.free_RVs), return_transformed=True
        )
        self._compiled: dict[tuple, Any] = {}

    def _program(self, draws: int, chains: int):
        """The jitted sampler for ``draws`` × ``chains`` (shapes are static)."""
        key = (draws, chains)
        if key in self._compiled:
            return self._compiled[key]
        import jax
        from numpyro.infer.hmc import hmc

        logp, constrain, names = self._logp, self._constrain, self.value_names

        def potential_fn_gen(params):
            def potential(z):
                return -logp(*(z[n] for n in names), *params)[0]

            return potential

        def one_chain(rng_key, z0, params):
            init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")
            state = init_kernel(
                z0,
                num_warmup=TUNE,
                target_accept_prob=TARGET_ACCEPT,
                model_args=(params,),
                rng_key=rng_key,
            )

            def step(state, _):
                state = sample_kernel(state, model_args=(params,))
                return state, (state.z, state.diverging)

            _, (zs, diverging) = jax.lax.scan(step, state, None, length=TUNE + draws)
            kept = {n: z[TUNE:] for n, z in zs.items()}
            values = jax.vmap(lambda z: constrain(*(z[n] for n in names), *params))(kept)
            return values, diverging[TUNE:].sum()

        if jax.local_device_count() >= chains:  # a device per chain: in parallel
            program = jax.pmap(one_chain, in_axes=(0, 0, None))
        else:  # in lock-step on one device
            program = jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None)))
        self._compiled[key] = program
        return program

    def start(self, chains: int, seed: int) -> tuple:
        """Initial points and parameters at the shared parameters' current values (set
        them first, under the program's lock); :meth:`sample` then needs no lock."""
        import jax.numpy as jnp

        from forecast.fit import seeds

        init_seeds = seeds(seed, chains + 1)
        starts = [self._initial(s) for s in init_seeds[1:]]
        z0 = {n: jnp.stack([jnp.asarray(p[n]) for p in starts]) for n in self.value_names}
        params = tuple(jnp.asarray(v.get_value(), dtype="float64") for v in self.shared)
        return init_seeds[0], z0, params

    def sample(self, draws: int, chains: int, start: tuple) -> Draws:
        """NUTS from :meth:`start`'s initial points, at its parameters."""
        import jax

        seed, z0, params = start
        keys = jax.random.split(jax.random.PRNGKey(seed), chains)
        values, diverging = self._program(draws, chains)(keys, z0, params)
        out = {n: np.asarray(v) for n, v in zip(self.learned, values, strict=True)}
        return Draws(out, int(np.asarray(diverging).sum()))
