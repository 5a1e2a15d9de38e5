"""Simulation-based calibration (SBC) of forecast's model, with real power.

Talts et al. (2018): draw the parameters from the prior, data from the model given them,
fit the model to those data; if the model, its likelihood and the sampler are right, the
rank of each true value among its posterior draws is uniform. Uniformity is judged by
the ECDF of the (randomised, scaled) ranks against simultaneous confidence bands
(Säilynoja, Bürkner & Vehtari 2022), computed with ``arviz_stats.ecdf_utils``.
SBC alone passes a model that ignores its data (the posterior is then the prior, and the
ranks are uniform), so the posterior contraction, posterior SD / prior SD, is reported too.

The scenario exercises every part of the likelihood: partial pooling over three groups,
two stages with columns (the second observed only for rounds that passed the first, and
blank for some of those), a factor whose column is partly blank (marginalised with its
``in_reference`` belief), a factor recorded in every round, and beliefs no data touch (a
factor's ``holds``, an evidence ratio), which the fit draws exactly from the prior while
NUTS samples the rest. The data are simulated in NumPy, written as a CSV and fitted with
the real code path (``api.prepare`` → ``build_model`` → ``run_fit``).

Run ``uv run python validation/sbc.py --sims 200`` (add ``--planted-bug`` to count the
likelihood twice and watch the check fail); results go to ``docs/validation.md``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "validation.md"

SCENARIO = """\
schema: 1
id: sbc
title: Simulation-based calibration
source: {outlet: validation/sbc.py, date: 2020-06-01}
question:
  text: Will the simulated talks succeed?
  success: Both stages pass.
  resolves: 2021-06-01
factors:
  backing:
    label: The leader backs the talks (recorded, with gaps)
    holds: likely
    column: backing
    in_reference: {beta: [3, 3]}   # a partly blank column, blanks marginalised with it
  sanctions:
    label: Broad sanctions in force (recorded in every round)
    holds: very likely
    column: sanctions
    holds_when: 2                  # a fully recorded column; 2 means "holds"
stages:
  agreement:
    base_rate: {belief: {between: [0.2, 0.6]}}
    effects:
      backing: {odds_ratio: raises}
      sanctions: {odds_ratio: {lognormal: [0, 0.5]}}
    column: agreement
  implementation:
    base_rate: {belief: {beta: [4, 3]}}
    effects:
      backing: {odds_ratio: {between: [0.5, 3]}}
    column: implemented
    known_after_days: 365
evidence:
  signal: {likelihood_ratio: {between: [0.3, 0.9]}}   # no data touch it
reference:
  data: rounds.csv
  group: track
  case_group: gamma
  pooling_scale: 0.5
sampling: {draws: 500, chains: 2, seed: 1}
"""

GROUPS = ("alpha", "beta", "gamma")
#: Rate at which a factor without an ``in_reference`` belief holds in the simulated
#: rounds: such a factor is a covariate the model conditions on, not a parameter.
COVARIATE_RATE = 0.4
#: Missingness, completely at random (so ignorable): a blank value of a factor that has an
#: ``in_reference`` belief; a blank first-stage outcome (the round then drops out); a blank
#: later-stage outcome of a round that reached that stage ("not yet recorded").
BLANK_FACTOR, BLANK_FIRST, BLANK_LATER = 0.3, 0.05, 0.15


@dataclass(frozen=True)
class Settings:
    """One SBC run."""

    sims: int = 200
    draws: int = 500  # per chain, after run_fit's 1000 tuning steps
    chains: int = 2
    keep: int = 100  # posterior draws kept (thinned evenly) for each rank
    rounds_per_group: int = 30
    seed: int = 20240601
    likelihood_weight: float = 1.0  # 2.0 plants the bug "likelihood counted twice"


@dataclass
class SBCResult:
    """Ranks, contraction and sampler diagnostics of every simulation."""

    settings: Settings
    labels: list[str]  # one per scalar parameter, e.g. "group_offset[agreement, alpha]"
    learned: list[bool]  # sampled by NUTS (the data bear on it) or drawn from the prior
    ranks: np.ndarray  # (sim, label): number of kept posterior draws below the truth
    n_kept: int  # so each rank lies in 0..n_kept
    contraction: np.ndarray  # (sim, label): posterior SD / prior SD
    diagnostics: list[dict] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    started: str = ""
    wall_seconds: float = 0.0
    jobs: int = 1
    sessions: int = 1  # more than one when resumed from a checkpoint

    def pit(self, seed: int = 0) -> np.ndarray:
        """Ranks as uniform(0, 1) values: (rank + U) / (n_kept + 1), exact under the null."""
        rng = np.random.default_rng(seed)
        return (self.ranks + rng.uniform(size=self.ranks.shape)) / (self.n_kept + 1)

    @classmethod
    def from_json(cls, d: dict) -> SBCResult:
        return cls(
            Settings(**d["settings"]),
            d["labels"],
            d["learned"],
            np.array(d["ranks"], dtype=int),
            d["n_kept"],
            np.array(d["contraction"]),
            d["diagnostics"],
            d["seconds"],
            d["started"],
            d["wall_seconds"],
            d["jobs"],
            d.get("sessions", 1),
        )

    def to_json(self) -> dict:
        return {
            "settings": self.settings.__dict__,
            "labels": self.labels,
            "learned": self.learned,
            "ranks": self.ranks.tolist(),
            "n_kept": self.n_kept,
            "contraction": np.round(self.contraction, 4).tolist(),
            "diagnostics": self.diagnostics,
            "seconds": [round(s, 2) for s in self.seconds],
            "started": self.started,
            "wall_seconds": round(self.wall_seconds, 1),
            "jobs": self.jobs,
            "sessions": self.sessions,
        }


# ---------------------------------------------------------------- the simulator


@dataclass(frozen=True)
class Design:
    """What stays fixed across simulations: rounds, their groups and dates."""

    round_id: list[str]
    group: list[str]
    start: list[dt.date]
    end: list[dt.date]


def design(rounds_per_group: int, seed: int) -> Design:
    """Rounds spread over 2000–2020, interleaved across groups; the last year's rounds
    have ``end + known_after_days`` after the cut-off, so their implementation is unknown."""
    rng = np.random.default_rng([seed, 1])
    n = rounds_per_group * len(GROUPS)
    first, last = dt.date(2000, 1, 1), dt.date(2020, 5, 1)
    days = np.sort(rng.integers(0, (last - first).days, n))
    start = [first + dt.timedelta(days=int(d)) for d in days]
    end = [s + dt.timedelta(days=int(k)) for s, k in zip(start, rng.integers(0, 6, n), strict=True)]
    group = list(rng.permutation(np.repeat(GROUPS, rounds_per_group)))
    return Design([f"r{i:03d}" for i in range(n)], [str(g) for g in group], start, end)


def _draw(prior, rng: np.random.Generator) -> float:
    a, b = prior.params
    if prior.family == "beta":
        return float(rng.beta(a, b))
    if prior.family == "lognormal":
        return float(rng.lognormal(a, b))
    return float(rng.normal(a, b))


def pooled_stages(spec) -> list[str]:
    """Stages that get a group spread: those with a column (PRODUCT §2)."""
    return [s for s, st in spec.stages.items() if st.column is not None]


def draw_truth(spec, priors: dict, rng: np.random.Generator) -> dict[str, float]:
    """True parameters from the scenario's priors, keyed as :func:`scalar_draws` keys them.

    Pooling: tau_s ~ HalfNormal(pooling_scale), z_sg ~ Normal(0, 1) (PRODUCT §2).
    """
    truth = {path: _draw(p, rng) for path, p in priors.items() if not p.is_constant}
    scale = spec.reference.pooling_scale
    for s in pooled_stages(spec):
        truth[f"group_scale[{s}]"] = abs(float(rng.normal(0.0, scale)))
    for s, g in itertools.product(pooled_stages(spec), sorted(GROUPS)):
        truth[f"group_offset[{s}, {g}]"] = float(rng.normal())
    return truth


def _value(name: str, truth: dict, priors: dict) -> float:
    prior = priors[name]
    return prior.params[0] if prior.is_constant else truth[name]


def simulate_csv(
    spec, priors: dict, truth: dict, plan: Design, rng: np.random.Generator
) -> tuple[str, dict]:
    """Reference rounds from the generative model of PRODUCT §2, as CSV text.

    logit P_s(pass | x) = logit(p_s) + tau_s z_sg + sum_f log(OR_sf) x_f, each stage tried
    only by rounds that passed the earlier ones. A factor's value is Bernoulli(in_reference)
    (a fixed rate for a factor without that belief), then blanked at random. Returns the
    text and a few counts for the record.
    """
    n = len(plan.round_id)
    g_idx = np.array([sorted(GROUPS).index(g) for g in plan.group])
    x, cells = {}, {}
    for f, fac in spec.factors.items():
        path = f"factors.{f}.in_reference"
        rate = _value(path, truth, priors) if fac.in_reference is not None else COVARIATE_RATE
        x[f] = rng.random(n) < rate
        other = fac.holds_when - 1 - rng.integers(0, 2, n)  # any integer but holds_when
        text = np.where(x[f], str(fac.holds_when), other.astype(str))
        if fac.in_reference is not None:
            text = np.where(rng.random(n) < BLANK_FACTOR, "", text)
        cells[fac.column] = text
    reached = np.ones(n, dtype=bool)  # passed every earlier stage (per the file)
    counts = {}
    for k, (s, st) in enumerate(spec.stages.items()):
        logit = math.log(_value(f"stages.{s}.base_rate.belief", truth, priors))
        logit -= math.log1p(-_value(f"stages.{s}.base_rate.belief", truth, priors))
        logit = np.full(n, logit)
        if s in pooled_stages(spec):
            z = np.array([truth[f"group_offset[{s}, {g}]"] for g in sorted(GROUPS)])
            logit = logit + truth[f"group_scale[{s}]"] * z[g_idx]
        for f in spec.factors:
            path = f"stages.{s}.effects.{f}.odds_ratio"
            if path in priors:
                logit = logit + math.log(_value(path, truth, priors)) * x[f]
        passed = rng.random(n) < 1 / (1 + np.exp(-logit))
        blank = rng.random(n) < (BLANK_FIRST if k == 0 else BLANK_LATER)
        recorded = reached & ~blank
        cells[st.column] = np.where(recorded, passed.astype(int).astype(str), "")
        counts[s] = int(recorded.sum())
        reached = recorded & passed
    header = ["round_id", "track", "start_date", "end_date", *cells]
    rows = [
        [plan.round_id[i], plan.group[i], str(plan.start[i]), str(plan.end[i])]
        + [str(c[i]) for c in cells.values()]
        for i in range(n)
    ]
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n", counts


# ---------------------------------------------------------------- fitting and ranks


def scalar_draws(da) -> dict[str, np.ndarray]:
    """A posterior variable's draws, (chain, draw), one entry per coordinate cell.

    ``group_offset`` with dims (pooled_stage, group) gives "group_offset[agreement, alpha]"
    and so on, whatever the name of the stage dimension.
    """
    extra = [d for d in da.dims if d not in ("chain", "draw")]
    if not extra:
        return {str(da.name): da.transpose("chain", "draw").values}
    out = {}
    for cell in itertools.product(*(da[d].values.tolist() for d in extra)):
        sel = da.sel(dict(zip(extra, cell, strict=True)))
        out[f"{da.name}[{', '.join(map(str, cell))}]"] = sel.transpose("chain", "draw").values
    return out


def prior_sd(label: str, spec, priors: dict) -> float:
    """Prior SD, on the scale contraction is measured on (log for LogNormal ratios)."""
    if label.startswith("group_scale["):
        return spec.reference.pooling_scale * math.sqrt(1 - 2 / math.pi)
    if label.startswith("group_offset["):
        return 1.0
    p = priors[label]
    if p.family == "beta":
        a, b = p.params
        return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    return p.params[1]  # normal sigma; lognormal sigma, the SD of the log


def on_contraction_scale(label: str, priors: dict, values: np.ndarray) -> np.ndarray:
    p = priors.get(label)
    return np.log(values) if p is not None and p.family == "lognormal" else values


@contextlib.contextmanager
def likelihood_weight(weight: float) -> Iterator[None]:
    """Multiply the reference rounds' log-likelihood by ``weight`` (2 = counted twice).

    ``build_model`` hands ``forecast.model._outcomes_logp`` (the outcomes) and
    ``_factor_values_logp`` (the recorded factor values) to ``pm.CustomDist`` by their
    module-global names, so replacing both before a model is built takes effect; the fit
    of a planted bug checks that it did (see :func:`check_weight`).
    """
    if weight == 1.0:
        yield
        return
    import forecast.model as fm

    names = ("_outcomes_logp", "_factor_values_logp")
    originals = {name: getattr(fm, name) for name in names}

    def weighted(original):
        return lambda *args, **kwargs: weight * original(*args, **kwargs)

    for name in names:
        setattr(fm, name, weighted(originals[name]))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(fm, name, original)


def outcomes_loglik(model) -> float:
    """The data's log-likelihood (outcomes and recorded factor values) at the initial point."""
    from forecast.fit import forward_mode

    logp = model.compile_logp(vars=list(model.observed_RVs), sum=True, mode=forward_mode())
    return float(logp(model.initial_point()))


def fit_simulation(path: Path, settings: Settings, seed: int):
    """Fit one simulated data set through the real code path; returns (model, Fit)."""
    from forecast import api
    from forecast.fit import run_fit
    from forecast.model import build_model

    prep = api.prepare(path)
    with likelihood_weight(settings.likelihood_weight):
        model = build_model(prep.loaded.spec, prep.priors, prep.data, seed)
    fit = run_fit(model, has_data=True, draws=settings.draws, chains=settings.chains, seed=seed)
    return prep, model, fit


def check_weight(path: Path, settings: Settings, seed: int) -> float:
    """The ratio of planted to true log-likelihood, for the record (must be the weight)."""
    from forecast import api
    from forecast.model import build_model

    prep = api.prepare(path)
    plain = outcomes_loglik(build_model(prep.loaded.spec, prep.priors, prep.data, seed))
    with likelihood_weight(settings.likelihood_weight):
        planted = outcomes_loglik(build_model(prep.loaded.spec, prep.priors, prep.data, seed))
    return planted / plain


@contextlib.contextmanager
def quiet_jax_cache() -> Iterator[None]:
    """Each simulation's data are constants of its JAX program, so no two compile alike:
    keep 200 one-off programs out of the user's persistent compilation cache."""
    os.environ.setdefault("JAX_ENABLE_COMPILATION_CACHE", "false")
    if "jax" not in sys.modules:
        yield
        return
    import jax

    before = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", before)


def scenario_priors(path: Path):
    """The scenario's spec and fitted priors (they do not change between simulations).

    Read before any data exist: a CSV with only the header gives a prior-only scenario.
    """
    from forecast import api
    from forecast.scenario import load

    spec = load(path).spec
    columns = [st.column for st in spec.stages.values() if st.column]
    columns += [f.column for f in spec.factors.values() if f.column]
    header = ["round_id", "start_date", spec.reference.group, *columns]
    (path.parent / spec.reference.data).write_text(",".join(header) + "\n")
    prep = api.prepare(path)
    return prep.loaded.spec, prep.priors


@dataclass
class Simulation:
    """What one simulation contributes: ranks and contraction per label, diagnostics."""

    index: int
    labels: list[str]
    learned: list[bool]
    ranks: list[int]
    contraction: list[float]
    diagnostics: dict
    seconds: float


def one_simulation(settings: Settings, index: int, folder: Path) -> Simulation:
    """Draw truths, simulate rounds, fit them and rank the truths: simulation ``index``.

    Pure given (settings, index): the seeds come from ``settings.seed`` and the index, so a
    simulation gives the same numbers whichever worker runs it.
    """
    from forecast.fit import data_dependent

    start = time.perf_counter()
    folder = Path(folder) / f"sim-{index:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sbc.yaml"
    path.write_text(SCENARIO)
    spec, priors = scenario_priors(path)
    ss = np.random.SeedSequence(settings.seed).spawn(index + 1)[index]
    rng = np.random.default_rng(ss)
    fit_seed = int(ss.generate_state(1)[0])
    truth = draw_truth(spec, priors, rng)
    text, counts = simulate_csv(
        spec, priors, truth, design(settings.rounds_per_group, settings.seed), rng
    )
    (folder / spec.reference.data).write_text(text)
    if settings.likelihood_weight != 1.0 and index == 0:
        ratio = check_weight(path, settings, fit_seed)
        if not math.isclose(ratio, settings.likelihood_weight, rel_tol=1e-6):
            raise RuntimeError(f"the planted likelihood weight came out as {ratio}: not applied")
    prep, model, fit = fit_simulation(path, settings, fit_seed)
    post = fit.tree["posterior"].to_dataset()
    learned = set(data_dependent(model))
    draws: dict[str, np.ndarray] = {}
    owner: dict[str, str] = {}
    for rv in model.free_RVs:  # every belief and the pooling parameters, in model order
        for label, values in scalar_draws(post[rv.name]).items():
            draws[label], owner[label] = values, rv.name
    if set(draws) != set(truth):
        raise RuntimeError(f"parameters and truths differ: {sorted(set(draws) ^ set(truth))}")
    per_chain = max(1, settings.keep // settings.chains)
    kept_at = np.linspace(0, settings.draws - 1, per_chain).round().astype(int)
    ranks, contraction = [], []
    for label, values in draws.items():
        kept = values[:, kept_at].ravel()  # evenly thinned, against autocorrelation
        ranks.append(int((kept < truth[label]).sum()))
        post_sd = on_contraction_scale(label, priors, values.ravel()).std()
        contraction.append(float(post_sd / prior_sd(label, spec, priors)))
    diag = {k: fit.diagnostics[k] for k in ("r_hat_max", "ess_bulk_min", "divergences")}
    diag |= {"rounds": prep.data.n_rounds, "observed": counts}
    return Simulation(
        index,
        list(draws),
        [owner[lb] in learned for lb in draws],
        ranks,
        contraction,
        diag,
        time.perf_counter() - start,
    )


def fast_pytensor() -> None:
    """No C compilation (as the console script) and no stack traces on graph nodes.

    Every fit builds several PyTensor graphs, and recording where each node was created
    cost about a second per fit; must run before PyTensor is imported.
    """
    from forecast.cli import no_c_compilation

    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "traceback__limit" not in flags and "pytensor" not in sys.modules:
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, "traceback__limit=0") if f)
    no_c_compilation()


def run_sbc(
    settings: Settings,
    progress: Callable[[Simulation], None] | None = None,
    executor: cf.Executor | None = None,
    folder: Path | None = None,
    done: list[Simulation] = (),
    indices: list[int] | None = None,
) -> SBCResult:
    """Run ``settings.sims`` simulations, in this process or on ``executor``.

    Each fit compiles its own JAX program (the data are constants of it), which is
    single-threaded work: two worker processes on two cores (:func:`worker_pool`) overlap
    one's compilation with the other's sampling. Simulations in ``done`` (from a
    checkpoint) are not run again; ``indices`` runs only those simulations.
    """
    return run_many([settings], progress, executor, folder, [list(done)], indices)[0]


def run_many(
    runs: list[Settings],
    progress: Callable[[Simulation], None] | None = None,
    executor: cf.Executor | None = None,
    folder: Path | None = None,
    done: list[list[Simulation]] | None = None,
    indices: list[int] | None = None,
) -> list[SBCResult]:
    """Several SBC runs whose simulations share one executor (no idle worker between runs)."""
    sims: list[list[Simulation]] = [list(d) for d in done] if done else [[] for _ in runs]
    todo = [
        (k, i)
        for k, st in enumerate(runs)
        for i in sorted(
            set(range(st.sims) if indices is None else indices) - {x.index for x in sims[k]}
        )
    ]
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sbc-")))
        stack.enter_context(quiet_jax_cache())
        if executor is None:
            for k, i in todo:
                sims[k].append(one_simulation(runs[k], i, folder / f"run-{k}"))
                if progress:
                    progress(sims[k][-1])
        else:
            futures = {
                executor.submit(one_simulation, runs[k], i, folder / f"run-{k}"): k for k, i in todo
            }
            for future in cf.as_completed(futures):
                sims[futures[future]].append(future.result())
                if progress:
                    progress(sims[futures[future]][-1])
    return [_collect(st, s) for st, s in zip(runs, sims, strict=True)]


def _collect(settings: Settings, sims: list[Simulation]) -> SBCResult:
    sims = sorted(sims, key=lambda x: x.index)
    first = sims[0]
    return SBCResult(
        settings,
        first.labels,
        first.learned,
        np.array([x.ranks for x in sims], dtype=int),
        max(1, settings.keep // settings.chains) * settings.chains,
        np.array([x.contraction for x in sims]),
        [x.diagnostics for x in sims],
        [x.seconds for x in sims],
    )


#: Simulations a worker runs before it is replaced. Every fit leaves ~45 MB of JAX's
#: compiled programs behind in its process (measured); 180 fits per worker ran a shared
#: machine out of memory. ``jax.clear_caches()`` stops that too, but costs each fit ~5 s
#: of recompiling JAX's own helpers; a fresh pool costs ~10 s per 40 fits per worker and
#: keeps each worker under ~2.5 GB. (Not ``max_tasks_per_child``: on Python 3.12 a pool
#: whose workers retire that way stops handing out work and hangs.)
TASKS_PER_WORKER = 40


def worker_pool(jobs: int) -> cf.ProcessPoolExecutor:
    """Worker processes for :func:`run_sbc` (spawned: JAX must not be forked)."""
    import multiprocessing as mp

    os.environ.setdefault("JAX_ENABLE_COMPILATION_CACHE", "false")  # see quiet_jax_cache
    return cf.ProcessPoolExecutor(
        jobs, mp_context=mp.get_context("spawn"), initializer=fast_pytensor
    )


def run_in_pools(
    settings: Settings,
    jobs: int,
    progress: Callable[[Simulation], None] | None = None,
    done: list[Simulation] = (),
) -> SBCResult:
    """:func:`run_sbc` on ``jobs`` workers, a fresh pool every ``TASKS_PER_WORKER`` fits each."""
    finished = list(done)
    while True:
        todo = sorted(set(range(settings.sims)) - {x.index for x in finished})
        if not todo:
            return _collect(settings, finished)
        chunk = todo[: TASKS_PER_WORKER * jobs]
        with worker_pool(jobs) as pool:
            try:
                part = run_sbc(settings, progress, pool, indices=chunk)
            except BaseException:  # ^C or out of time: drop the queue, let running fits end
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        finished += [
            Simulation(i, part.labels, part.learned, list(r), list(c), d, t)
            for i, r, c, d, t in zip(
                chunk, part.ranks, part.contraction, part.diagnostics, part.seconds, strict=True
            )
        ]


# ---------------------------------------------------------------- uniformity and the table


@dataclass(frozen=True)
class Band:
    """Simultaneous 1 - alpha band for the ECDF of ``n`` uniform values (Säilynoja et al.
    2022): the pointwise binomial band whose level ``gamma`` is widened, by simulation,
    until the whole ECDF of uniform values stays inside with probability 1 - alpha."""

    eval_points: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    gamma: float


_BANDS: dict[tuple[int, float], Band] = {}


def band(n: int, prob: float = 0.95, n_simulations: int = 5000) -> Band:
    """The band for ``n`` values, from ``arviz_stats.ecdf_utils`` (cached per n, prob)."""
    from arviz_stats.ecdf_utils import get_pointwise_confidence_band, simulate_confidence_bands

    key = (n, prob)
    if key not in _BANDS:
        eval_points = np.arange(1, n) / n
        rng = np.random.default_rng(214)
        gamma = simulate_confidence_bands(n, 1, eval_points, prob, n_simulations, rng)
        lower, upper = get_pointwise_confidence_band(gamma, n, eval_points)
        _BANDS[key] = Band(eval_points, lower, upper, float(gamma))
    return _BANDS[key]


@dataclass(frozen=True)
class Uniformity:
    """One variable's rank-uniformity verdict."""

    inside: bool  # the ECDF stays inside the simultaneous band
    max_deviation: float  # max |ECDF(u) - u| over the band's evaluation points
    p_value: float  # arviz_stats' pot_c uniformity test (Cauchy-combined Beta tests)
    dispersion_p: float  # two-sided chi-square test of the spread (see dispersion)


def uniformity(pit: np.ndarray, prob: float = 0.95) -> Uniformity:
    """Test PIT values for uniformity: simultaneous ECDF band, and the pot_c p-value."""
    import arviz_stats  # noqa: F401  (registers the .azstats accessor)
    import xarray as xr

    pit = np.asarray(pit, dtype=float)
    inside, deviation = inside_band(pit, prob)
    p_value, _, _ = xr.DataArray(pit, dims=["sim"]).azstats.uniformity_test(dim="sim")
    return Uniformity(inside, deviation, float(p_value), dispersion(pit))


def inside_band(pit: np.ndarray, prob: float = 0.95) -> tuple[bool, float]:
    """Whether the ECDF of ``pit`` stays inside the simultaneous band, and its largest
    deviation from the uniform CDF."""
    from arviz_stats.ecdf_utils import compute_ecdf

    b = band(len(pit), prob)
    ecdf = compute_ecdf(np.asarray(pit, dtype=float), b.eval_points)
    inside = bool(np.all((ecdf >= b.lower) & (ecdf <= b.upper)))
    return inside, float(np.max(np.abs(ecdf - b.eval_points)))


def dispersion(pit: np.ndarray) -> float:
    """Two-sided p-value of T = sum of Phi^-1(u)^2 against chi-square(N).

    Exact for N independent uniform values. A posterior too narrow (the likelihood counted
    twice) puts the truths in its tails, so T is large; one too wide (information lost)
    makes T small. Aimed at exactly that failure, it has more power with few simulations
    than the ECDF band, which looks for any departure.
    """
    from scipy import stats

    pit = np.asarray(pit, dtype=float)
    t = float((stats.norm.ppf(pit) ** 2).sum())
    n = len(pit)
    return float(min(1.0, 2 * min(stats.chi2.cdf(t, n), stats.chi2.sf(t, n))))


@dataclass(frozen=True)
class Row:
    label: str
    learned: bool
    uniform: Uniformity
    contraction: float  # mean over simulations of posterior SD / prior SD


def results(result: SBCResult, prob: float = 0.95) -> list[Row]:
    pit = result.pit()
    return [
        Row(
            lb,
            result.learned[j],
            uniformity(pit[:, j], prob),
            float(result.contraction[:, j].mean()),
        )
        for j, lb in enumerate(result.labels)
    ]


def table(result: SBCResult, prob: float = 0.95) -> str:
    """The results as a markdown table."""
    lines = [
        f"| variable | fitted by | ranks uniform ({prob:.0%} band) | max ECDF deviation "
        "| pot_c p | dispersion p | mean contraction (post SD / prior SD) |",
        "|---|---|:---:|---:|---:|---:|---:|",
    ]
    for r in results(result, prob):
        lines.append(
            f"| `{r.label}` | {'NUTS' if r.learned else 'prior draws'} "
            f"| {'yes' if r.uniform.inside else '**no**'} | {r.uniform.max_deviation:.3f} "
            f"| {_p(r.uniform.p_value)} | {_p(r.uniform.dispersion_p)} | {r.contraction:.2f} |"
        )
    return "\n".join(lines)


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def summary(result: SBCResult, prob: float = 0.95) -> str:
    """Settings, timing, sampler health and the multiplicity note, in markdown."""
    s = result.settings
    rows = results(result, prob)
    k = len(rows)
    failed = [r.label for r in rows if not r.uniform.inside]
    d = result.diagnostics
    div = sum(1 for x in d if x["divergences"])
    ess = np.array([x["ess_bulk_min"] for x in d], dtype=float)
    rhat = np.array([x["r_hat_max"] for x in d], dtype=float)
    rounds = np.array([x["rounds"] for x in d])
    secs = np.array(result.seconds)
    expected = k * (1 - prob)
    bonferroni = 1 - (1 - prob) / k
    strict = [r.label for r in results(result, bonferroni) if not r.uniform.inside]
    weight = (
        ""
        if s.likelihood_weight == 1.0
        else f" **Planted bug: the rounds' log-likelihood is multiplied by {s.likelihood_weight:g}.**"
    )
    return "\n".join(
        [
            f"Run {result.started}: {s.sims} simulations, {s.chains} chains × {s.draws} draws "
            f"(after 1000 tuning steps) per fit, ranks among {result.n_kept} evenly thinned "
            f"draws, {s.rounds_per_group} rounds per group × {len(GROUPS)} groups "
            f"({rounds.min()}–{rounds.max()} rounds with an outcome after blanks), seed {s.seed}."
            + weight,
            "",
            f"Time: {result.wall_seconds / 60:.1f} min wall"
            + (
                f", summed over {result.sessions} sessions (interrupted and resumed)"
                if result.sessions > 1
                else ""
            )
            + f", {result.jobs} worker process(es) on a shared 2-core machine; a simulation "
            f"(simulate, build, NUTS incl. JAX compilation, exact draws of the rest) took "
            f"{np.median(secs):.1f} s median in its worker ({np.percentile(secs, 10):.1f}–"
            f"{np.percentile(secs, 90):.1f} s, 10–90%).",
            f"Sampler: divergences in {div} of {len(d)} fits; min bulk ESS per fit "
            f"median {np.median(ess):.0f} (lowest {ess.min():.0f}) for {s.chains * s.draws} "
            f"draws; max R-hat median {np.median(rhat):.3f} (highest {rhat.max():.3f}).",
            "",
            f"Multiplicity: {k} variables, each tested at a {prob:.0%} simultaneous band, so "
            f"about {expected:.1f} false failures are expected when all is well; "
            f"{len(failed)} failed ({', '.join(f'`{x}`' for x in failed) or 'none'}). "
            f"At the Bonferroni level ({bonferroni:.2%} bands, family-wise 5%): "
            f"{len(strict)} failed ({', '.join(f'`{x}`' for x in strict) or 'none'}).",
        ]
    )


def plot(result: SBCResult, path: Path, prob: float = 0.95) -> None:
    """ECDF minus uniform CDF of each variable's PIT values, inside its simultaneous band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from arviz_stats.ecdf_utils import compute_ecdf

    pit = result.pit()
    n, k = pit.shape
    b = band(n, prob)
    cols = 4
    fig, axes = plt.subplots(-(-k // cols), cols, figsize=(12, 2.2 * -(-k // cols)), sharey=True)
    for j, ax in enumerate(axes.flat):
        if j >= k:
            ax.axis("off")
            continue
        ecdf = compute_ecdf(pit[:, j], b.eval_points)
        ax.fill_between(b.eval_points, b.lower - b.eval_points, b.upper - b.eval_points, alpha=0.25)
        inside = bool(np.all((ecdf >= b.lower) & (ecdf <= b.upper)))
        ax.plot(b.eval_points, ecdf - b.eval_points, color="C0" if inside else "C3", lw=1.2)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(result.labels[j].replace("stages.", "").replace(".belief", ""), fontsize=8)
        ax.tick_params(labelsize=7)
    weight = result.settings.likelihood_weight
    fig.suptitle(
        f"SBC: ECDF − uniform of {n} ranks per variable, {prob:.0%} simultaneous bands"
        + ("" if weight == 1 else f" — planted bug, likelihood × {weight:g}"),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_doc(result: SBCResult, key: str, prob: float = 0.95, doc: Path = DOC) -> None:
    """Replace the block between ``<!-- sbc:KEY -->`` and ``<!-- /sbc:KEY -->`` in the doc."""
    start, stop = f"<!-- sbc:{key} -->", f"<!-- /sbc:{key} -->"
    block = f"{start}\n{summary(result, prob)}\n\n{table(result, prob)}\n{stop}"
    text = doc.read_text() if doc.exists() else ""
    if start in text and stop in text:
        text = text[: text.index(start)] + block + text[text.index(stop) + len(stop) :]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    doc.write_text(text)


def load_checkpoint(path: Path, settings: Settings) -> tuple[list[Simulation], float, int]:
    """Simulations a checkpoint holds for these settings, the wall time and the number of
    sessions they took."""
    if not path.exists():
        return [], 0.0, 0
    sims: dict[int, Simulation] = {}
    sessions: dict[str, float] = {}
    for text in path.read_text().splitlines():
        line = json.loads(text)
        if {**line.pop("settings"), "sims": settings.sims} != settings.__dict__:
            continue  # another run's (more simulations of the same run do resume)
        session, elapsed = line.pop("session"), line.pop("session_elapsed")
        sessions[session] = max(sessions.get(session, 0.0), elapsed)
        sims[line["index"]] = Simulation(**line)
    sims = {i: x for i, x in sims.items() if i < settings.sims}
    return sorted(sims.values(), key=lambda x: x.index), sum(sessions.values()), len(sessions)


class _OutOfTime(Exception):
    """Raised by the progress callback when ``--budget`` seconds have passed."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--draws", type=int, default=Settings.draws, help="per chain")
    parser.add_argument("--chains", type=int, default=Settings.chains)
    parser.add_argument("--keep", type=int, default=Settings.keep, help="thinned draws per rank")
    parser.add_argument("--rounds-per-group", type=int, default=Settings.rounds_per_group)
    parser.add_argument("--seed", type=int, default=Settings.seed)
    parser.add_argument(
        "--planted-bug", action="store_true", help="count the likelihood twice; must fail"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/validation.md")
    parser.add_argument("--json", type=Path, help="also write the ranks and diagnostics here")
    parser.add_argument("--from-json", type=Path, help="only re-render a saved run's results")
    parser.add_argument("--plot", type=Path, help="also draw the ECDF bands into this PNG")
    parser.add_argument(
        "--budget",
        type=float,
        help="stop after this many seconds and report the simulations finished by then",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="JSON lines of finished simulations, resumed from "
        "(default validation/results/.sbc-main.jsonl or .sbc-planted-bug.jsonl)",
    )
    args = parser.parse_args(argv)

    if args.from_json:  # re-render the table and the doc from a saved run
        result = SBCResult.from_json(json.loads(args.from_json.read_text()))
        print(summary(result), table(result), sep="\n\n")
        if args.plot:
            plot(result, args.plot)
        if not args.no_doc:
            write_doc(result, "planted-bug" if result.settings.likelihood_weight != 1 else "main")
        return 0
    fast_pytensor()
    settings = Settings(
        sims=args.sims,
        draws=args.draws,
        chains=args.chains,
        keep=args.keep,
        rounds_per_group=args.rounds_per_group,
        seed=args.seed,
        likelihood_weight=2.0 if args.planted_bug else 1.0,
    )
    started = dt.datetime.now().astimezone().isoformat(timespec="minutes")

    # every finished simulation is appended to a checkpoint, so that a crash (or ^C) loses
    # nothing: the same command again resumes where it stopped
    tag = "planted-bug" if args.planted_bug else "main"
    checkpoint = args.checkpoint or ROOT / "validation" / "results" / f".sbc-{tag}.jsonl"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    resumed, earlier, sessions = load_checkpoint(checkpoint, settings)
    if resumed:
        print(f"resuming: {len(resumed)} simulations from {checkpoint}", flush=True)
    done = [x.index for x in resumed]
    wall = time.perf_counter()

    finished: list[Simulation] = list(resumed)

    def progress(sim: Simulation) -> None:
        line = {"settings": settings.__dict__, "session": started, **sim.__dict__}
        line["session_elapsed"] = time.perf_counter() - wall
        with checkpoint.open("a") as f:
            f.write(json.dumps(line) + "\n")
        done.append(sim.index)
        finished.append(sim)
        d = sim.diagnostics
        print(
            f"[{len(done)}/{settings.sims}, {time.perf_counter() - wall:.0f} s] sim {sim.index}: "
            f"{sim.seconds:.1f} s, {d['rounds']} rounds, ESS min {d['ess_bulk_min']}, "
            f"R-hat {d['r_hat_max']}, divergences {d['divergences']}",
            flush=True,
        )
        if args.budget is not None and time.perf_counter() - wall > args.budget:
            raise _OutOfTime  # the queued simulations are dropped, the running ones finish

    try:
        if args.jobs > 1:
            result = run_in_pools(settings, args.jobs, progress, done=resumed)
        else:
            result = run_sbc(settings, progress, done=resumed)
    except _OutOfTime:
        print(f"time budget of {args.budget:.0f} s reached after {len(finished)} simulations")
        settings = dataclasses.replace(settings, sims=len(finished))
        result = _collect(settings, finished)
    result.wall_seconds = time.perf_counter() - wall + earlier
    result.jobs = args.jobs
    result.sessions = sessions + 1
    result.started = started
    print()
    print(summary(result))
    print()
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=1))
    if args.plot:
        plot(result, args.plot)
    if not args.no_doc:
        write_doc(result, "planted-bug" if args.planted_bug else "main")
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
