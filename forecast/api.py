"""The Python API the CLI wraps: ``check``, ``run`` and friends.

Each function takes file paths and plain options and returns plain results; the
CLI only parses arguments, prints and exits. Heavy libraries (PyMC, ArviZ,
matplotlib) are imported inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from forecast.running import DEFAULT_OUT, RunResult, fit_prepared, model_checks, run, summary_json
from forecast.summaries import p_greater
from forecast.views import Side, compare, load_source, load_sources, pool

__all__ = [
    "DEFAULT_OUT",
    "VARIANT_DRAWS",
    "BaseFit",
    "Prepared",
    "RunResult",
    "Settings",
    "Side",
    "Variant",
    "backtest",
    "check",
    "compare",
    "difference",
    "evaluate",
    "fit_prepared",
    "fitted_priors",
    "load_source",
    "load_sources",
    "model_checks",
    "p_greater",
    "pool",
    "prepare",
    "prepare_raw",
    "run",
    "sensitivity",
    "settings_for",
    "strength_warnings",
    "summary_json",
    "try_variant",
]


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
    scheduler: str | None = None,
) -> tuple[dict[str, Any], Path]:
    """Tornado of P(success) over each belief's 90% interval, plus power-scaling (psense).

    Each belief in turn is moved to centre on the 5% and then the 95% quantile of its
    prior, its spread kept (see :meth:`Prior.centred_at`), the others held as they are. The scenario's report folder gets
    ``sensitivity.json``, the figures and a section of ``report.html``; a missing
    report is fitted first. With ``scheduler`` (``tcp://HOST:PORT``) the what-ifs run on
    that Dask cluster.
    """
    from forecast.executor import check_scheduler
    from forecast.mcse import round_to, sig
    from forecast.report.sensitivity import write_sensitivity

    check_scheduler(scheduler)
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
    from forecast.executor import variants

    say(f"tornado: {len(beliefs)} beliefs, each at the two ends of its interval")
    ends = [tornado_ends(prep, path, prior) for path, prior in beliefs]
    raws = [raw for pair in ends for raw, _ in pair]
    done = variants(raws, prep, base_fit, allow_outside, scheduler, say)
    rows = [
        tornado_row(path, prior, [value for _, value in pair], done[2 * i : 2 * i + 2])
        for i, ((path, prior), pair) in enumerate(zip(beliefs, ends, strict=True))
    ]
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


def tornado_ends(prep: Prepared, path: str, prior) -> list[tuple[dict, float]]:
    """The scenario with one belief centred on its 5% and on its 95% quantile, its spread
    kept, and those two values."""
    import copy

    out = []
    for q in (0.05, 0.95):
        value = prior.ppf(q)
        raw = copy.deepcopy(prep.loaded.raw)
        node = raw
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = prior.centred_at(float(value)).as_yaml()
        out.append((raw, float(value)))
    return out


def tornado_row(path: str, prior, values: list[float], ends: list[Variant]) -> dict:
    """A tornado row: P(success) at the low and the high end, and the swing between."""
    from forecast.mcse import round_to, sig

    row: dict[str, Any] = {"path": path, "distribution": str(prior), "moved": MOVED[prior.family]}
    for end, value, v in zip(("low", "high"), values, ends, strict=True):
        row[end] = round(value, 4)
        row[f"p_success_{end}"] = round_to(v.p_success, v.mcse)
        row[f"p_success_{end}_mcse"] = sig(v.mcse)
        row[f"method_{end}"] = _method_label(v)
    swing, swing_mcse = difference(*ends)
    row["swing"] = round_to(None if swing is None else abs(swing), swing_mcse)
    row["swing_mcse"] = sig(swing_mcse)
    return row


def _refit_job(shared, args) -> dict:
    """One backtest round refitted on what was known at its start (a cluster job)."""
    from forecast import backtest as bt

    spec, priors, data, settings = shared
    t, known = args
    return bt.refit_round(spec, priors, data, t, known, settings)


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
    scheduler: str | None = None,
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
    from forecast.executor import check_scheduler

    check_scheduler(scheduler)
    folder = _ensure_report(prep, out, progress)
    say(f"forecasting {prep.data.n_rounds} rounds from the rounds before each")
    model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
    import xarray as xr

    tree = xr.open_datatree(folder / "posterior.nc", engine="h5netcdf")
    posterior = tree["posterior"].to_dataset() if "posterior" in tree.children else None

    def refit(t: int, known) -> dict[str, bt.Estimate]:
        say(f"refitting for {prep.data.round_id[t]} (importance weights not trusted)")
        return bt.refit_round(prep.loaded.spec, prep.priors, prep.data, t, known, prep.settings)

    def forecasts(refit):
        spec, seed = prep.loaded.spec, prep.settings.seed
        return bt.forecasts(model, prep.data, spec, seed, posterior, refit)

    if scheduler is not None:
        # the rounds the weights cannot carry, found first, are refitted on the cluster
        needed: dict[int, Any] = {}

        def note(t: int, known) -> None:  # a first pass: which rounds, nothing refitted
            needed[t] = known.copy()

        forecasts(note)
        from forecast.executor import run_jobs

        shared = (prep.loaded.spec, prep.priors, prep.data, prep.settings)
        done = run_jobs(_refit_job, shared, list(needed.items()), scheduler, say)
        result = {"schema": SCHEMA, "id": prep.id, **forecasts(lambda t, _known: done[t])}
    else:
        result = {"schema": SCHEMA, "id": prep.id, **forecasts(refit)}
    from forecast.report.backtest import write_backtest

    write_backtest(result, folder)
    return result, folder
