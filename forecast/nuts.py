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
#: numpyro's and PyMC's default target acceptance rate; partial pooling (a scale and
#: non-centred offsets per group, a funnel when few groups inform the scale) takes
#: smaller steps, the usual first remedy for the divergences it would otherwise show.
TARGET_ACCEPT = 0.8
TARGET_ACCEPT_POOLED = 0.9


@dataclass
class Draws:
    """Posterior draws of the learned variables, (chain, draw, ...) each, constrained."""

    values: dict[str, np.ndarray]
    divergences: int
    stats: dict[str, np.ndarray]  # ArviZ's sample_stats names, (chain, draw) each


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
        from pytensor.compile.sharedvalue import SharedVariable
        from pytensor.graph.replace import clone_replace
        from pytensor.graph.traversal import graph_inputs

        from forecast.fit import nuts_model

        sampled = nuts_model(model, learned)
        values = list(sampled.value_vars)
        self.value_names = [v.name for v in values]
        self.learned = [rv.name for rv in sampled.free_RVs]
        by_name = {v.name: v for v in sampled.unobserved_value_vars}
        outputs = [sampled.logp(), *(by_name[n] for n in self.learned)]
        # the shared parameters as the graphs hold them: `nuts_model` (pm.do) clones the
        # model, and with it its shared variables, so they are found by name; their
        # values are read from the tunable model's own (set_tunable sets those)
        # (other shared variables, the dims' lengths, stay constants of the program)
        own = {v.name: v for shared in tunable.values() for v in shared}
        held = [v for v in graph_inputs(outputs) if isinstance(v, SharedVariable) and v.name in own]
        self.shared = [own[v.name] for v in held]
        params = [pt.scalar(v.name, dtype="float64") for v in held]
        logp, *constrained = clone_replace(outputs, replace=dict(zip(held, params, strict=True)))
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
        target_accept = TARGET_ACCEPT_POOLED if "group_scale" in self.learned else TARGET_ACCEPT

        def potential_fn_gen(params):
            def potential(z):
                return -logp(*(z[n] for n in names), *params)[0]

            return potential

        def one_chain(rng_key, z0, params):
            init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")
            state = init_kernel(
                z0,
                num_warmup=TUNE,
                target_accept_prob=target_accept,
                model_args=(params,),
                rng_key=rng_key,
            )

            def step(state, _):
                state = sample_kernel(state, model_args=(params,))
                stats = {
                    "diverging": state.diverging,
                    "lp": -state.potential_energy,
                    "energy": state.energy,
                    "n_steps": state.num_steps,
                    "acceptance_rate": state.accept_prob,
                    "step_size": state.adapt_state.step_size,
                }
                return state, (state.z, stats)

            _, (zs, stats) = jax.lax.scan(step, state, None, length=TUNE + draws)
            kept = {n: z[TUNE:] for n, z in zs.items()}
            values = jax.vmap(lambda z: constrain(*(z[n] for n in names), *params))(kept)
            return values, {k: v[TUNE:] for k, v in stats.items()}

        # a device per chain: in parallel; else in lock-step on one device
        parallel = jax.local_device_count() >= chains
        if self.shared:
            mapped = jax.pmap if parallel else (lambda f, **kw: jax.jit(jax.vmap(f, **kw)))
            program = mapped(one_chain, in_axes=(0, 0, None))
        else:
            # no parameters: not passed at all (pmap maps a leaf of the chains' starting
            # points wrongly when an empty tuple with in_axes None follows them)
            def fixed(rng_key, z0):
                return one_chain(rng_key, z0, ())

            inner = jax.pmap(fixed) if parallel else jax.jit(jax.vmap(fixed))

            def program(keys, z0, params):
                return inner(keys, z0)

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
        values, stats = self._program(draws, chains)(keys, z0, params)
        out = {n: np.asarray(v) for n, v in zip(self.learned, values, strict=True)}
        stats = {k: np.asarray(v) for k, v in stats.items()}
        # as PyMC names numpyro's statistics
        stats["tree_depth"] = np.log2(stats["n_steps"]).astype(int) + 1
        return Draws(out, int(stats["diverging"].sum()), stats)
