"""The Python API the CLI wraps: ``check``, ``run`` and friends.

Each function takes file paths and plain options and returns plain results; the
CLI only parses arguments, prints and exits. Heavy libraries (PyMC, ArviZ,
matplotlib) are imported inside the functions that need them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.engine import VARIANT_DRAWS, BaseFit, Variant, difference, evaluate, try_variant
from forecast.prepared import (
    Prepared,
    Settings,
    check,
    fitted_priors,
    prepare,
    prepare_raw,
    settings_for,
    strength_warnings,
)
from forecast.psense import power_scaling
from forecast.records import SCHEMA
from forecast.summaries import p_greater

__all__ = [
    "VARIANT_DRAWS",
    "BaseFit",
    "Prepared",
    "Settings",
    "Variant",
    "backtest",
    "check",
    "compare",
    "difference",
    "evaluate",
    "fitted_priors",
    "p_greater",
    "prepare",
    "prepare_raw",
    "run",
    "sensitivity",
    "settings_for",
    "strength_warnings",
    "try_variant",
]

DEFAULT_OUT = Path("reports")


@dataclass
class RunResult:
    """What ``run`` produced for one scenario."""

    summary: dict[str, Any]
    folder: Path
    fit: Any  # forecast.fit.Fit

    @property
    def exit_code(self) -> int:
        return 0 if self.fit.passed else 1


def fit_prepared(prep: Prepared, progress: Callable[[str], None] | None = None):
    """Build the PyMC model of a prepared scenario and fit it."""
    from forecast.fit import run_fit
    from forecast.model import build_model

    if progress:
        progress("building the model")
    model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
    result = run_fit(
        model,
        has_data=prep.data is not None,
        draws=prep.settings.draws,
        chains=prep.settings.chains,
        seed=prep.settings.seed,
        progress=progress,
    )
    return model, result


def run(
    prep: Prepared,
    out: str | Path = DEFAULT_OUT,
    progress: Callable[[str], None] | None = None,
    folder_name: str | None = None,
) -> RunResult:
    """Fit a prepared scenario and write its report folder atomically.

    The folder is ``out / prep.folder_name`` unless ``folder_name`` says otherwise.

    Returns
    -------
    RunResult
        The summary (as in ``summary.json``), the folder written and the fit.
    """
    from forecast.report import write_report

    model, result = fit_prepared(prep, progress)
    if result.method == "nuts":
        if progress:
            progress("model checks (posterior predictive, LOO)")
        result.checks = model_checks(prep, model, result)
    if progress:
        progress("writing the report")
    folder = Path(out) / (folder_name or prep.folder_name)
    summary = write_report(prep, result, folder)
    return RunResult(summary, folder, result)


def model_checks(prep: Prepared, model, result) -> dict[str, Any]:
    """Posterior predictive rates per stage and group, LOO, and the plain-language notes."""
    from forecast.checks import loo_summary, ppc_rates
    from forecast.fit import data_dependent

    p_pass = result.p_pass  # computed by the fit with the log-likelihood, in one pass
    stages = list(prep.loaded.spec.stages)
    rows, arrays = ppc_rates(p_pass, prep.data, stages, prep.settings.seed)
    return {
        "ppc": rows,
        "ppc_arrays": arrays,
        "loo": loo_summary(result.tree),
        "learned": data_dependent(model),
    }


def summary_json(summaries: list[dict[str, Any]]) -> str:
    return json.dumps(summaries, indent=2, allow_nan=False)


@dataclass
class Side:
    """One side of a comparison: a fresh run or an existing report folder."""

    prep: Prepared
    summary: dict[str, Any]
    p_success: Any  # numpy array of draws
    label: str = ""
    folder: Path | None = None


def load_source(
    arg: str | Path,
    overrides: Sequence[str],
    *,
    draws: int | None,
    chains: int | None,
    seed: int | None,
    out: Path,
    allow_outside: bool,
    progress: Callable[[str], None] | None = None,
    taken: set[str] | None = None,
) -> Side:
    """A scenario file (fitted now, its report written) or a report folder (read, not refit).

    ``taken`` holds the report folders already written by this command: a second scenario
    file with the same id goes to ``<id>_2`` rather than over the first one's report.
    """
    import numpy as np

    from forecast.errors import ScenarioError

    arg = Path(arg)
    if arg.is_dir():
        summary_path = arg / "summary.json"
        if not summary_path.is_file():
            raise ScenarioError.one(
                "not a report folder (no summary.json) and not a scenario file", arg
            )
        summary = json.loads(summary_path.read_text())
        prov = summary["provenance"]
        scenario = Path(prov["scenario"])
        if not scenario.is_file():
            raise ScenarioError.one(
                f"the report's scenario {scenario} is gone; rerun it to compare", arg
            )
        set_items = [o for o in prov["overrides"] if not o.startswith("--")]
        prep = prepare(
            scenario,
            set_items,
            draws=prov["draws"],
            chains=prov["chains"],
            seed=prov["seed"],
            allow_outside=allow_outside,
        )
        if prep.loaded.sha256 != prov["scenario_sha256"]:
            raise ScenarioError.one(
                f"{scenario} changed since this report was written; rerun it to compare", arg
            )
        import xarray as xr

        tree = xr.open_datatree(arg / "posterior.nc", engine="h5netcdf")
        group = "posterior" if "posterior" in tree.children else "prior"
        draws_ = np.asarray(tree[group]["p_success"]).ravel()
        return Side(prep, summary, draws_, folder=arg)
    prep = prepare(
        arg, overrides, draws=draws, chains=chains, seed=seed, allow_outside=allow_outside
    )
    name, n = prep.folder_name, 1
    while taken is not None and name in taken:
        n += 1
        name = f"{prep.folder_name}_{n}"
    if taken is not None:
        taken.add(name)
    result = run(prep, out, progress, folder_name=name)
    return Side(
        prep,
        result.summary,
        np.asarray(result.fit.tree[result.fit.draws_group]["p_success"]).ravel(),
        folder=result.folder,
    )


def compare(
    args: Sequence[str | Path],
    overrides: Sequence[str] = (),
    *,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    out: str | Path = DEFAULT_OUT,
    allow_outside: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Compare scenario A (the first) with each of the others.

    Returns the ``compare.json`` dictionary and the folder it was written to.
    """
    from forecast.errors import UsageError
    from forecast.report.compare import write_compare

    if len(args) < 2:
        raise UsageError.one("compare needs at least two scenarios or report folders")
    out = Path(out)
    say = progress or (lambda _m: None)
    sources = load_sources(args, overrides, draws, chains, seed, out, allow_outside, progress)
    pairs = [compare_pair(sources[0], b, allow_outside, say) for b in sources[1:]]
    result = {
        "schema": SCHEMA,
        "scenarios": {
            s.label: {
                "title": s.summary["title"],
                "p_success": s.summary["p_success"],
                "report": str(s.folder),  # the folder fitted into, or the one read
            }
            for s in sources
        },
        **{
            k: pairs[0][k]
            for k in ("p_a_greater", "p_a_greater_mcse", "differences", "attribution")
        },
        "attribution_method": ATTRIBUTION_METHOD,
        "pairs": pairs,
    }
    folder = out / ("compare-" + "-vs-".join(s.label.replace("#", "_") for s in sources))
    write_compare(result, sources, folder)
    return result, folder


ATTRIBUTION_METHOD = (
    "each differing assumption of B swapped into A alone; P(success) by "
    "PSIS reweighting of A's posterior draws (or of prior draws weighted by the likelihood), "
    "exact forward sampling without data, NUTS refit where the weights fail the trust rule "
    "(Pareto k ≥ min(1 − 1/log10 S, 0.7) or ESS < 400); delta_mcse is the paired Monte Carlo "
    "error where both sides reweight the same draws, else the two errors combined"
)


def load_sources(args, overrides, draws, chains, seed, out: Path, allow_outside, progress):
    """Each argument fitted (a scenario file) or read (a report folder), labelled apart."""
    say = progress or (lambda _m: None)
    sources, taken = [], set()
    for arg in args:
        say(f"{arg}: fitting or reading")
        sources.append(
            load_source(
                arg,
                overrides,
                draws=draws,
                chains=chains,
                seed=seed,
                out=out,
                allow_outside=allow_outside,
                progress=progress,
                taken=taken,
            )
        )
    _label(sources)
    return sources


def _label(sources: list[Side]) -> None:
    """Equal ids are told apart as ``<id>``, ``<id>#2``, ... (PRODUCT §4)."""
    seen: dict[str, int] = {}
    for s in sources:
        seen[s.prep.id] = seen.get(s.prep.id, 0) + 1
        s.label = s.prep.id if seen[s.prep.id] == 1 else f"{s.prep.id}#{seen[s.prep.id]}"


def compare_pair(a: Side, b: Side, allow_outside: bool, say) -> dict[str, Any]:
    """A against B: the differences, each swapped into A alone, and P(A > B)."""
    from forecast.compare import differences, swap
    from forecast.mcse import round_to, sig

    diffs = differences(a.prep.loaded, a.prep.priors, b.prep.loaded, b.prep.priors)
    say(f"{a.label} vs {b.label}: {len(diffs)} differences")
    base_fit = BaseFit.from_report(a.prep, a.folder) if diffs else None
    base = evaluate(a.prep, base=base_fit) if diffs else None
    rows = []
    for i, d in enumerate(diffs, 1):
        say(f"attribution {i}/{len(diffs)}: {d.path}")
        raw = swap(a.prep.loaded, b.prep.loaded, d.path)
        v = try_variant(raw, a.prep, a.prep.settings.seed, allow_outside, base_fit)
        rows.append(attribution_row(d.path, base, v))
    rows.sort(key=lambda r: -abs(r["delta"] or 0))
    greater, greater_mcse = p_greater(a.p_success, b.p_success)
    return {
        "a": a.label,
        "b": b.label,
        "p_a_greater": round_to(greater, greater_mcse),
        "p_a_greater_mcse": sig(greater_mcse),
        "differences": [d.as_json() for d in diffs],
        "attribution": rows,
        "attribution_base": None if base is None else base.as_json(),
        "recommendations": {
            side.label: (side.summary.get("decision") or {}).get("recommended") for side in (a, b)
        },
        "flips": [r["path"] for r in rows if r.get("flips_recommendation")],
    }


def attribution_row(path: str, base: Variant, v: Variant) -> dict[str, Any]:
    """How far one swap moves A's P(success), with its paired Monte Carlo error."""
    from forecast.mcse import round_to, sig

    delta, delta_mcse = difference(base, v)
    row = {
        "path": path,
        "p_success_a": round_to(base.p_success, base.mcse),
        "p_success_swapped": round_to(v.p_success, v.mcse),
        "delta": round_to(delta, delta_mcse),
        "delta_mcse": sig(delta_mcse),
        **{k: val for k, val in v.as_json().items() if k not in ("p_success", "recommended")},
    }
    if base.recommended is not None or v.recommended is not None:
        row["recommended_swapped"] = v.recommended
        # a flip changes A's own recommendation; a decision that only B has, swapped in
        # whole, gives A a recommendation it did not have: no flip
        row["flips_recommendation"] = (
            base.recommended is not None
            and v.recommended is not None
            and v.recommended != base.recommended
        )
    return row


def _ensure_report(prep: Prepared, out: str | Path, progress=None) -> Path:
    """The scenario's report folder, fitting and writing it first if it is not there."""
    folder = Path(out) / prep.folder_name
    # figures/index.json: the page is rendered from the folder (a folder from an older
    # version has none, and is fitted again rather than rendered without its figures)
    needed = ("summary.json", "posterior.nc", "figures/index.json")
    if not all((folder / name).is_file() for name in needed):
        if progress:
            progress("no report yet: fitting first")
        run(prep, out, progress)
    return folder


def _with_report(path, overrides, draws, chains, seed, out, allow_outside, progress):
    prep = prepare(
        path, overrides, draws=draws, chains=chains, seed=seed, allow_outside=allow_outside
    )
    return prep, _ensure_report(prep, out, progress)


def sensitivity(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    out: str | Path = DEFAULT_OUT,
    allow_outside: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Tornado of P(success) over each belief's 90% interval, plus power-scaling (psense).

    Each belief in turn is moved to centre on the 5% and then the 95% quantile of its
    prior, its spread kept (see :meth:`Prior.centred_at`), the others held as they are. The scenario's report folder gets
    ``sensitivity.json``, the figures and a section of ``report.html``; a missing
    report is fitted first.
    """
    from forecast.mcse import round_to, sig
    from forecast.report.sensitivity import write_sensitivity

    say = progress or (lambda _m: None)
    prep, folder = _with_report(path, overrides, draws, chains, seed, out, allow_outside, progress)
    base_fit = BaseFit.from_report(prep, folder)
    base = evaluate(prep, base=base_fit)
    # a decision's beliefs (values, consequences) cannot move P(success): leave them out
    beliefs = [
        (p, pr)
        for p, pr in prep.priors.items()
        if not pr.is_constant and not p.startswith("decision.")
    ]
    rows = []
    for i, (belief_path, prior) in enumerate(beliefs, 1):
        say(f"tornado {i}/{len(beliefs)}: {belief_path}")
        rows.append(tornado_row(prep, belief_path, prior, allow_outside, base_fit))
    rows.sort(key=lambda r: r["swing"] or 0, reverse=True)
    psense = None
    if prep.data is not None:
        say("power-scaling sensitivity (psense)")
        learned = base_fit.learned if base_fit is not None else []
        psense = power_scaling(folder / "posterior.nc", [p for p, _ in beliefs], learned)
    result = {
        "schema": SCHEMA,
        "id": prep.id,
        "p_success_base": round_to(base.p_success, base.mcse),
        "p_success_base_mcse": sig(base.mcse),
        "base_method": base.method,
        "tornado": rows,
        "psense": psense,
        "method": "each belief, one at a time, moved to centre on the 5% and the 95% quantile of its "
        "prior with its spread kept (see each row's 'moved'); decision beliefs are left out, since "
        "they cannot move P(success); P(success) by exact forward sampling without data, with data by "
        "PSIS reweighting of the fitted posterior (or of prior draws), NUTS refit where the weights "
        "fail the trust rule (Pareto k ≥ min(1 − 1/log10 S, 0.7) or ESS < 400); swing_mcse is the "
        "paired Monte Carlo error of high − low",
    }
    write_sensitivity(result, folder)
    return result, folder


def tornado_row(prep: Prepared, path: str, prior, allow_outside: bool, base_fit) -> dict:
    """P(success) with one belief centred on its 5% and on its 95% quantile, spread kept."""
    import copy

    from forecast.mcse import round_to, sig

    row: dict[str, Any] = {"path": path, "distribution": str(prior), "moved": MOVED[prior.family]}
    ends = {}
    for end, q in (("low", 0.05), ("high", 0.95)):
        value = prior.ppf(q)
        raw = copy.deepcopy(prep.loaded.raw)
        node = raw
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = prior.centred_at(float(value)).as_yaml()
        v = ends[end] = try_variant(raw, prep, prep.settings.seed, allow_outside, base_fit)
        row[end] = round(float(value), 4)
        row[f"p_success_{end}"] = round_to(v.p_success, v.mcse)
        row[f"p_success_{end}_mcse"] = sig(v.mcse)
        row[f"method_{end}"] = _method_label(v)
    swing, swing_mcse = difference(ends["low"], ends["high"])
    row["swing"] = round_to(None if swing is None else abs(swing), swing_mcse)
    row["swing_mcse"] = sig(swing_mcse)
    return row


#: What "moved to the end of its interval" means for each family (sensitivity tornado).
MOVED = {
    "beta": "a Beta keeps its concentration a + b (its weight in reference rounds) and moves its "
    "mean to the quantile",
    "lognormal": "a LogNormal keeps its sigma and moves its median to the quantile",
    "normal": "a Normal keeps its sigma and moves its mean to the quantile",
}


def _method_label(v: Variant) -> str:
    """How a what-if was computed, with the Pareto k and ESS a reweighting rests on."""
    if v.method == "reweighted":
        return f"reweighted ({v.proposal} draws; k = {v.pareto_k:.2f}, ESS {v.ess:.0f})"
    if v.method == "refit":
        return f"refit ({v.note})"
    return v.method


def backtest(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    out: str | Path = DEFAULT_OUT,
    allow_outside: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Walk the reference rounds in date order, forecasting each from those known before it.

    Every stage a round reached, and its whole pathway, is forecast and scored (Brier,
    log score, each with its Monte Carlo error) beside a running base rate and the
    scenario's priors alone, with the paired differences and their standard errors over
    rounds; ``backtest.json``, figures and a section of ``report.html`` are added to the
    scenario's report folder (fitting it first if needed).
    """
    from forecast import backtest as bt
    from forecast.errors import ScenarioError
    from forecast.model import build_model

    say = progress or (lambda _m: None)
    prep = prepare(
        path, overrides, draws=draws, chains=chains, seed=seed, allow_outside=allow_outside
    )
    if prep.data is None:
        raise ScenarioError.one(
            "backtest needs reference data with outcomes: add a reference: section",
            prep.loaded.path,
            prep.loaded.line_of(("reference",)),
            "reference",
        )
    folder = _ensure_report(prep, out, progress)
    say(f"forecasting {prep.data.n_rounds} rounds from the rounds before each")
    model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
    import xarray as xr

    tree = xr.open_datatree(folder / "posterior.nc", engine="h5netcdf")
    posterior = tree["posterior"].to_dataset() if "posterior" in tree.children else None

    def refit(t: int, known) -> dict[str, bt.Estimate]:
        say(f"refitting for {prep.data.round_id[t]} (importance weights not trusted)")
        return bt.refit_round(prep.loaded.spec, prep.priors, prep.data, t, known, prep.settings)

    result = {
        "schema": SCHEMA,
        "id": prep.id,
        **bt.forecasts(model, prep.data, prep.loaded.spec, prep.settings.seed, posterior, refit),
    }
    from forecast.report.backtest import write_backtest

    write_backtest(result, folder)
    return result, folder


def pool(
    args: Sequence[str | Path],
    *,
    rule: str = "linear",
    extremize: float = 1.0,
    weights: str = "equal",
    ledger: str | None = None,
    overrides: Sequence[str] = (),
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    out: str | Path = DEFAULT_OUT,
    allow_outside: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Pool several views of one question (PRODUCT §8); returns pool.json and its folder."""
    from forecast.errors import UsageError
    from forecast.pool import RULES, pooled_stats
    from forecast.pool import pool as pool_draws
    from forecast.report.pool import member_record, write_pool

    if len(args) < 2:
        raise UsageError.one("pool needs at least two scenarios or report folders")
    if rule not in RULES:
        raise UsageError.one(
            f"--rule must be one of {', '.join(RULES)}, got {rule!r}", field="--rule"
        )
    if not extremize > 0:
        raise UsageError.one(
            f"--extremize must be positive, got {extremize:g}", field="--extremize"
        )
    out = Path(out)
    sources = load_sources(args, overrides, draws, chains, seed, out, allow_outside, progress)
    qids = {
        s.label: s.summary["question"].get("id") or s.prep.loaded.spec.question_id for s in sources
    }
    if len(set(qids.values())) > 1:
        first = sources[0].label
        other = next(lb for lb, q in qids.items() if q != qids[first])
        raise UsageError.one(
            f"these views forecast different questions: {first} has question.id "
            f"'{qids[first]}', {other} has '{qids[other]}' (pool views of one event)"
        )
    weight, weights_from = _pool_weights(sources, weights, ledger)
    pooled = pool_draws(
        {s.label: s.p_success for s in sources},
        weight,
        {s.label: s.summary["p_success"].get("mcse") or 0.0 for s in sources},
        rule,
        extremize,
        seed=sources[0].prep.settings.seed,
    )
    question = sources[0].summary["question"]
    result = {
        "schema": SCHEMA,
        "question": {"id": qids[sources[0].label], "text": question["text"]},
        "rule": rule,
        "extremize": extremize,
        "weights": {k: round(v, 4) for k, v in weight.items()},
        "weights_from": weights_from,
        "members": {s.label: member_record(s.summary) for s in sources},
        "pooled": pooled_stats(pooled),
    }
    folder = out / f"pool-{result['question']['id']}"
    draws_ = {s.label: s.p_success for s in sources} | {"pooled": pooled.draws}
    write_pool(result, draws_, folder)
    return result, folder


def _pool_weights(sources, weights: str, ledger: str | None) -> tuple[dict[str, float], str]:
    """Equal weights, or each author's record in the ledger (PRODUCT §8)."""
    from forecast.errors import UsageError
    from forecast.pool import normalise

    if weights == "equal":
        return normalise({s.label: 1.0 for s in sources}), "equal"
    if weights != "scores":
        raise UsageError.one(
            f"--weights must be equal or scores, got {weights!r}", field="--weights"
        )
    from forecast import ledger as ledger_mod  # the forecast ledger (PRODUCT §7)

    authors = {s.label: (s.summary.get("source") or {}).get("author") for s in sources}
    scores = ledger_mod.author_weights(ledger, [a for a in authors.values() if a])
    known = [v for v in scores.values() if v is not None]
    mean = sum(known) / len(known) if known else 1.0
    raw = {
        lb: (scores.get(a) if a and scores.get(a) is not None else mean)
        for lb, a in authors.items()
    }
    return normalise(raw), (
        "each author's mean baseline score on resolved questions in the ledger, softmax-"
        "normalised; authors with no record get the mean weight"
    )
