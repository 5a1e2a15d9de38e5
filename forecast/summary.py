"""The forecast record of a fitted scenario: the statistics behind summary.json.

:func:`build_forecast` reads a fit and returns a :class:`~forecast.records.Forecast`;
``summary.json`` is its ``as_json()``. Statistics come from ArviZ (``arviz_stats.hdi``,
MCSE); this module arranges them, the report renders them.
"""

from __future__ import annotations

import datetime as dt
import math
from importlib import metadata
from typing import Any

import numpy as np

from forecast.influence import group_pull
from forecast.records import AssumptionRecord, Forecast, Provenance, Stat
from forecast.scenario import MAX_EXACT_FACTORS, assumptions
from forecast.summaries import constant_stats, interval_stats


def build_summary(prep, fit) -> dict[str, Any]:
    """The ``summary.json`` dictionary (PRODUCT §4), NaN-free.

    Each assumption says whether the reference data bear on it (``informed_by_data``):
    one they never touch has its prior as its posterior, the same figures.
    """
    out = build_forecast(prep, fit).as_json()
    learned = learned_beliefs(fit)
    for a in out["assumptions"]:
        a["informed_by_data"] = a["path"] in learned
    return finite_or_none(out)


def learned_beliefs(fit) -> set[str]:
    """The beliefs the reference data bear on (none without data, or in a prior run)."""
    if fit.method != "nuts":
        return set()
    return set((fit.checks or {}).get("learned") or fit.tree["posterior"].data_vars)


def versions() -> dict[str, str]:
    out = {}
    for dist in (
        "scenario-forecast",
        "pymc",
        "pytensor",
        "arviz-base",
        "arviz-stats",
        "arviz-plots",
        "numpyro",
        "jax",
        "preliz",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    import platform

    out["python"] = platform.python_version()
    return out


def build_forecast(prep, fit) -> Forecast:
    """The forecast record of a fitted scenario (PRODUCT §4)."""
    spec = prep.loaded.spec
    draws, prior = fit.tree[fit.draws_group], fit.tree["prior"]
    rows = assumption_records(prep, draws, prior, learned_beliefs(fit))
    row_json = [r.as_json() for r in rows]
    return Forecast(
        id=spec.id,
        title=spec.title,
        source={
            k: (v.isoformat() if isinstance(v, dt.date) else v)
            for k, v in spec.source.model_dump().items()
            if v is not None
        },
        question={
            "id": spec.question_id,
            "text": spec.question.text,
            "success": spec.question.success,
            "resolves": spec.question.resolves.isoformat(),
            "rounds": spec.question.rounds,
            "author_forecast": author_forecast(prep),
        },
        p_success=_stat(draws["p_success"]),
        p_success_prior=_stat(prior["p_success"]),
        p_round=_stat(draws["p_round"]),
        stages={
            s: (spec.stages[s].label, _stat(draws["p_stage"].sel(stage=s))) for s in spec.stages
        },
        assumptions=rows,
        diagnostics=dict(fit.diagnostics),
        decision=None if spec.decision is None else decision_summary(prep, draws),
        checks=_checks(fit, row_json),
        case_states="exact" if len(spec.factors) <= MAX_EXACT_FACTORS else "monte carlo",
        reference=reference_record(prep, fit, row_json),
        warnings=[w.message if not w.field else f"{w.field}: {w.message}" for w in prep.warnings]
        + model_notes(spec, prep.data)
        + fit.notes,
        provenance=provenance(prep, fit),
    )


def _stat(da) -> Stat:
    return Stat.from_json(interval_stats(da))


def assumption_records(prep, draws, prior, learned: set[str]) -> list[AssumptionRecord]:
    """Each belief as written, as fitted, before and after the data, and whose it is.

    A belief the data never touch (not in ``learned``) keeps its prior exactly: the
    posterior's own draws of it are fresh prior draws, whose sampling noise would look
    like an update, so its posterior is given as the very same figures as its prior.
    """
    out = []
    for a in assumptions(prep.loaded.spec):
        p = prep.priors[a.path]
        if p.is_constant:
            pr = post = Stat.from_json(constant_stats(p.params[0]))
        elif a.path not in learned:
            pr = post = _stat(prior[a.path])
        else:
            pr, post = _stat(prior[a.path]), _stat(draws[a.path])
        out.append(
            AssumptionRecord(
                path=a.path,
                label=a.label,
                belief=a.belief.written(),
                distribution=str(p),
                prior=pr,
                posterior=post,
                why=a.why,
                note=a.note,
                basis=a.basis,
                strength=None if p.strength is None else round(p.strength, 1),
                quote=quote_of(prep, a.at, a.why),
            )
        )
    return out


def reference_record(prep, fit, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The reference class used, and each group's pull on the answer."""
    spec, data = prep.loaded.spec, prep.data
    if spec.reference is None:
        return None
    learnable = [r["path"] for r in rows if r["path"].startswith(("stages.", "factors."))]
    return {
        "data": spec.reference.data,
        "before": spec.before.isoformat(),
        "rounds": 0 if data is None else data.n_rounds,
        "round_ids": [] if data is None else data.round_id,
        "rounds_not_yet_known": 0 if data is None else data.n_unknown_outcome,
        "groups": group_pull(prep, fit, learnable),
    }


def decision_summary(prep, draws) -> dict[str, Any]:
    """Each option's value, P(best), EVPI and EVPPI (PRODUCT §5)."""
    from forecast.decision import summarise

    beliefs = [a.path for a in assumptions(prep.loaded.spec) if not prep.priors[a.path].is_constant]
    return summarise(draws, prep.loaded.spec, beliefs)


def provenance(prep, fit) -> Provenance:
    settings, data = prep.settings, prep.data
    return Provenance(
        scenario=str(prep.loaded.path),
        scenario_sha256=prep.loaded.sha256,
        data_sha256=None if data is None else data.sha256,
        overrides=list(prep.loaded.overrides)
        + [f"--{k}={v}" for k, v in sorted(settings.changed.items())],
        seed=settings.seed,
        draws=settings.draws,
        chains=settings.chains,
        sampler="numpyro NUTS (tune 1000)" if fit.method == "nuts" else "forward sampling (exact)",
        versions=versions(),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def quote_of(prep, at: str, why: str | None) -> dict[str, str] | None:
    """The quote in its sentence, where the scenario names the article's text."""
    found = prep.quotes.get(at) if why else None
    return None if found is None else found.as_json()


def author_forecast(prep) -> dict[str, Any] | None:
    """The author's own bottom line (``question.author_forecast``), as its belief says."""
    from forecast.beliefs import BetaFits, fit, scale_ranges
    from forecast.summaries import exact_stats

    spec = prep.loaded.spec
    claim = spec.question.author_forecast
    if claim is None:
        return None
    ranges = scale_ranges(spec.words.model_dump() if spec.words else None)
    prior = fit(claim.belief, ranges, BetaFits())
    return {
        "belief": claim.belief.written(),
        "distribution": str(prior),
        **exact_stats(prior),
        "why": claim.why,
        "note": claim.note,
        "basis": "author" if claim.why else ("analyst" if claim.note else None),
        "quote": quote_of(prep, "question.author_forecast", claim.why),
    }


def model_notes(spec, data=None) -> list[str]:
    """What the model does that a reader of the numbers should know (PRODUCT §2)."""
    from forecast.model import MONTE_CARLO_STATES

    notes = []
    if len(spec.factors) > MAX_EXACT_FACTORS:
        notes.append(
            f"{len(spec.factors)} factors are too many to enumerate: the case is averaged over "
            f"{MONTE_CARLO_STATES:,} Monte Carlo factor states drawn afresh for every draw"
        )
    ref = spec.reference
    unpooled = [s for s, st in spec.stages.items() if st.column is None]
    if ref is not None and ref.group and unpooled:
        notes.append(
            f"stage(s) {', '.join(unpooled)} have no reference column, so no group spread: "
            "nothing observes them, and the case's group does not shift them"
        )
    unseen = (
        ref is not None
        and ref.case_group is not None
        and data is not None
        and (data.group is None or str(ref.case_group) not in data.group)
    )
    if unseen:
        new = " (case_group_is_new)" if ref.case_group_is_new else ""
        notes.append(
            f"the forecast's group {ref.case_group} has no rounds in the reference class"
            f"{new}: its base rates are a fresh draw from the spread between groups"
        )
    return notes


def _checks(fit, rows: list[dict]) -> dict[str, Any] | None:
    if not fit.checks:
        return None
    from forecast.checks import assumption_notes

    return {
        "ppc": fit.checks["ppc"],
        "loo": fit.checks["loo"],
        "notes": assumption_notes(rows, set(fit.checks["learned"])),
        "learned": fit.checks["learned"],
    }


def finite_or_none(obj: Any) -> Any:
    """Replace NaN/inf anywhere in a JSON-able structure by None."""
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
