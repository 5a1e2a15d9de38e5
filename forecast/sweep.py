"""``forecast sweep``: P(success) over every combination of several beliefs (PRODUCT §10).

A sweep is planned here (:func:`plan`: the grid read from ``--vary PATH=[V1, V2, ...]``,
every value checked as ``--set`` checks it, nothing written), then run on an
:mod:`forecast.executor` (:func:`run`): the scenario's fitted report (fitted first if
missing) is shipped to each worker once, and each variant is a small job, its index,
its ``PATH=VALUE`` changes and its seed, evaluated by :func:`forecast.engine.try_variant`:
reweighted from the fit where PRODUCT §2 trusts the weights, refitted otherwise.

Seeds: variant ``i`` gets the first 32-bit word of
``numpy.random.SeedSequence(entropy=<scenario seed>, spawn_key=(i,))`` (the ``i``-th child
of ``SeedSequence(seed).spawn``), so a sweep gives the same rows wherever it runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecast.engine import BaseFit, Variant, try_variant
from forecast.errors import ScenarioError, UsageError
from forecast.executor import Executor
from forecast.mcse import round_to, sig
from forecast.overrides import apply_override
from forecast.prepared import Prepared, prepare
from forecast.records import SCHEMA
from forecast.summaries import HDI_PROB
from forecast.yamlfile import parse_yaml

#: Largest grid run without ``--yes``.
MAX_VARIANTS = 10_000

SEEDS = (
    "variant i's seed is the first 32-bit word of numpy.random.SeedSequence(entropy=<scenario "
    "seed>, spawn_key=(i,)), i.e. of the i-th child of SeedSequence(seed).spawn; i counts the "
    "grid in row-major order (the last --vary changes fastest)"
)
INTERVAL = (
    "hdi_lo, hdi_hi: the 90% equal-tailed interval of the variant's per-draw P(success) under its "
    "weights (arviz_stats eti with weights, numpy's inverted_cdf quantiles): PSIS weights for a "
    "reweighted variant, equal weights for exact forward draws and for a refit's NUTS draws; "
    "equal-tailed because arviz_stats has no weighted HDI; empty where the engine returns no "
    "draws"
)
METHOD = (
    "every combination of the varied values applied to the scenario as --set would; P(success) "
    "by exact forward sampling without data, with data by PSIS reweighting of the fitted "
    "posterior (or of prior draws), NUTS refit where the weights fail the trust rule "
    "(Pareto k ≥ min(1 − 1/log10 S, 0.7) or ESS < 400); each figure is rounded to the digits "
    "its MCSE supports"
)


@dataclass
class Axis:
    """One ``--vary``: a dotted path and its values, each as scenario-syntax text."""

    path: str
    values: list[str]
    label: str = ""


@dataclass
class Plan:
    """A checked sweep, ready to run: the scenario, its axes and one job per variant."""

    prep: Prepared
    axes: list[Axis]
    allow_outside: bool = False
    jobs: list[tuple[int, tuple[str, ...], int]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    @property
    def folder_name(self) -> str:
        """``sweep-<id>-<hash>`` of the grid, the ``--set`` changes and the settings."""
        key = json.dumps(
            [
                [[a.path, a.values] for a in self.axes],
                list(self.prep.loaded.overrides),
                sorted(self.prep.settings.changed.items()),
            ]
        )
        return f"sweep-{self.prep.id}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"

    def values_of(self, index: int) -> dict[str, str]:
        """Variant ``index``'s value (text) of each varied path."""
        return dict(zip((a.path for a in self.axes), self.combination(index), strict=True))

    def combination(self, index: int) -> tuple[str, ...]:
        """The values (text) of variant ``index``, one per axis."""
        out = []
        for axis in reversed(self.axes):
            index, i = divmod(index, len(axis.values))
            out.append(axis.values[i])
        return tuple(reversed(out))


def variant_seed(seed: int, index: int) -> int:
    """The seed of variant ``index`` of a sweep of a scenario seeded ``seed`` (see module)."""
    import numpy as np

    return int(np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1)[0])


def flow(value: Any) -> str:
    """A value as scenario-syntax text that reads back as the same value (YAML flow)."""
    import datetime as dt

    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    text = str(value)
    try:  # plain where plain reads back the same, quoted otherwise
        if parse_yaml(text, Path("--vary"))[0] == text and text.strip() == text:
            return text
    except ScenarioError:
        pass
    return json.dumps(text)


def parse_vary(item: str) -> Axis:
    """``PATH=[V1, V2, ...]`` as an :class:`Axis` (the list read as YAML, scenario syntax)."""
    if "=" not in item:
        raise UsageError.one(f"--vary expects PATH=[V1, V2, ...], got {item!r}", field="--vary")
    path, text = (s.strip() for s in item.split("=", 1))
    if not path or any(not p for p in path.split(".")):
        raise UsageError.one(f"--vary: {path!r} is not a dotted path", field="--vary")
    values, _ = parse_yaml(text, Path("--vary"))
    if not isinstance(values, list):
        raise UsageError.one(
            f"--vary {path}: expected a list such as [likely, unlikely], got {text!r}",
            field="--vary",
        )
    if not values:
        raise UsageError.one(f"--vary {path}: the list is empty", field="--vary")
    texts = [flow(v) for v in values]
    twice = sorted({t for t in texts if texts.count(t) > 1})
    if twice:
        raise UsageError.one(f"--vary {path}: {', '.join(twice)} given twice", field="--vary")
    return Axis(path, texts)


def label_of(prep: Prepared, path: str) -> str:
    """The varied belief in the scenario's own words (its label), else its path."""
    from forecast.scenario import assumptions

    every = assumptions(prep.loaded.spec)
    exact = [a for a in every if path == a.path]
    # else the belief whose section holds the path (the innermost one)
    inside = sorted(
        (a for a in every if path == a.at or path.startswith(a.at + ".")),
        key=lambda a: len(a.at),
        reverse=True,
    )
    for a in exact or inside[:1]:
        if a.path == path and path.startswith("factors.") and path.endswith(".holds"):
            return f"how likely it holds: {a.label}"
        return a.label or path
    return path


def plan(
    path: str | Path,
    vary: Sequence[str],
    overrides: Sequence[str] = (),
    *,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    allow_outside: bool = False,
    yes: bool = False,
) -> Plan:
    """Read and check a sweep: every value of every axis is applied alone as ``--set``
    would (the same messages), the grid counted; nothing is fitted or written.

    Raises
    ------
    ScenarioError
        Bad input (exit 2): a path the scenario does not have, a value it does not take,
        a ``--vary`` that is not a list, more than :data:`MAX_VARIANTS` without ``yes``.
    """
    from forecast.loading import load

    if not vary:
        raise UsageError.one("sweep needs at least one --vary PATH=[V1, V2, ...]", field="--vary")
    axes = [parse_vary(item) for item in vary]
    seen = [a.path for a in axes]
    if len(set(seen)) < len(seen):
        raise UsageError.one("--vary: the same path is varied twice", field="--vary")
    prep = prepare(
        path, overrides, draws=draws, chains=chains, seed=seed, allow_outside=allow_outside
    )
    result = Plan(prep, axes, allow_outside)
    if result.n > MAX_VARIANTS and not yes:
        raise UsageError.one(
            f"the grid has {result.n:,} variants, more than {MAX_VARIANTS:,}: "
            "pass --yes to run them all",
            field="--vary",
        )
    for axis in axes:  # each value alone, as --set checks it (its exact messages)
        axis.label = label_of(prep, axis.path)
        for value in axis.values:
            load(prep.loaded.path, [*overrides, f"{axis.path}={value}"])
    for index in range(result.n):
        items = tuple(f"{a.path}={v}" for a, v in zip(axes, result.combination(index), strict=True))
        result.jobs.append((index, items, variant_seed(prep.settings.seed, index)))
    return result


# ----------------------------------------------------------------------------- the job


@dataclass
class Shared:
    """What every job needs, shipped to each worker once: the scenario and its fit."""

    prep: Prepared
    base: BaseFit | None
    allow_outside: bool


def variant_job(shared: Shared, job: tuple[int, tuple[str, ...], int]) -> dict[str, Any]:
    """One variant: its changes applied to the scenario, evaluated, summarised as a row."""
    index, items, seed = job
    loaded = shared.prep.loaded
    raw, lines = copy.deepcopy(loaded.raw), dict(loaded.lines)
    try:  # each value alone was checked; two varied paths can still clash (one inside another)
        for item in items:
            apply_override(raw, lines, item, loaded.path)
    except ScenarioError as e:
        v = Variant(None, "invalid", note="; ".join(p.message for p in e.problems))
    else:
        v = try_variant(raw, shared.prep, seed, shared.allow_outside, shared.base)
    return {"index": index, "seed": seed, **row_numbers(v)}


def row_numbers(v: Variant) -> dict[str, Any]:
    """A variant's figures as written: each to the digits its MCSE supports."""
    lo = hi = None
    if v.draws is not None and v.p_success is not None:
        lo, hi = weighted_interval(v.draws, v.weights)
    return {
        "p_success_mean": round_to(v.p_success, v.mcse),
        "p_success_mcse": sig(v.mcse),
        "hdi_lo": round_to(lo, v.mcse),
        "hdi_hi": round_to(hi, v.mcse),
        "method": v.method,
        "pareto_k": None if v.pareto_k is None else round(float(v.pareto_k), 3),
        "ess": None if v.ess is None else round(float(v.ess)),
        "recommended": v.recommended,
        "note": v.note,
    }


def weighted_interval(draws, weights) -> tuple[float, float]:
    """The 90% equal-tailed interval of weighted draws (see :data:`INTERVAL`)."""
    import numpy as np
    from arviz_stats.base import array_stats

    x = np.asarray(draws, dtype=float).ravel()
    w = np.full(x.shape, 1 / x.size) if weights is None else np.asarray(weights, dtype=float)
    lo, hi = array_stats.eti(x, HDI_PROB, weights=w, method="inverted_cdf")
    return float(lo), float(hi)


# ----------------------------------------------------------------------------- running


def run(
    sweep: Plan,
    executor: Executor,
    out: str | Path = "reports",
    progress: Callable[[str], None] | None = None,
    tick: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Run every variant of ``sweep`` on ``executor``; write and return ``sweep.json``.

    ``progress`` hears the phases, ``tick(done, total, row)`` each variant as it lands.
    The scenario's report is fitted first if it is missing (its posterior is the
    proposal of every reweighted variant).
    """
    from forecast.report.sweep import write_sweep

    say = progress or (lambda _m: None)
    prep, out = sweep.prep, Path(out)
    folder = ensure_base(sweep, out, progress)
    shared = Shared(prep, BaseFit.from_report(prep, folder), sweep.allow_outside)
    say(f"{sweep.n} variants on {executor.kind} ({executor.workers} workers)")
    rows: dict[int, dict[str, Any]] = {}
    jobs = [(job[0], job) for job in sweep.jobs]
    for index, row in executor.results(variant_job, shared, jobs):
        rows[index] = row
        if tick:
            tick(len(rows), sweep.n, row)
    result = record(sweep, [rows[i] for i in range(sweep.n)], executor, folder)
    target = out / sweep.folder_name
    write_sweep(result, target)
    return result, target


def ensure_base(
    sweep: Plan, out: str | Path, progress: Callable[[str], None] | None = None
) -> Path:
    """The scenario's report folder, fitted and written first if it is missing."""
    from forecast.api import _ensure_report

    return _ensure_report(sweep.prep, out, progress)


def record(
    sweep: Plan, rows: list[dict[str, Any]], executor: Executor, base_folder: Path
) -> dict[str, Any]:
    """``sweep.json``: the grid, one row per variant, how they were computed and where."""
    import datetime as dt

    from forecast.summary import versions

    prep = sweep.prep
    for row in rows:
        row["values"] = sweep.values_of(row["index"])
    spec = prep.loaded.spec
    methods: dict[str, int] = {}
    for row in rows:
        methods[row["method"]] = methods.get(row["method"], 0) + 1
    decision = None
    if spec.decision is not None:
        best: dict[str, int] = {name: 0 for name in spec.decision.options}
        for row in rows:
            if row["recommended"] is not None:
                best[row["recommended"]] += 1
        decision = {"question": spec.decision.question, "best_counts": best}
    return {
        "schema": SCHEMA,
        "id": prep.id,
        "title": spec.title,
        "question": spec.question.text,
        "vary": [{"path": a.path, "label": a.label, "values": a.values} for a in sweep.axes],
        "n_variants": sweep.n,
        "methods": methods,
        "rows": rows,
        "decision": decision,
        "retried": [{"index": i, "values": sweep.values_of(i)} for i in executor.retried],
        "executor": executor.describe(),
        "base_report": str(base_folder),
        "seeds": SEEDS,
        "interval": INTERVAL,
        "method": METHOD,
        "provenance": {
            "scenario": str(prep.loaded.path),
            "scenario_sha256": prep.loaded.sha256,
            "data_sha256": None if prep.data is None else prep.data.sha256,
            "overrides": list(prep.loaded.overrides)
            + [f"--{k}={v}" for k, v in sorted(prep.settings.changed.items())],
            "seed": prep.settings.seed,
            "draws": prep.settings.draws,
            "chains": prep.settings.chains,
            "versions": versions(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    }


__all__ = [
    "MAX_VARIANTS",
    "Axis",
    "Plan",
    "Shared",
    "parse_vary",
    "plan",
    "run",
    "variant_job",
    "variant_seed",
]
