"""Several views side by side: ``compare`` (which assumption explains the gap) and
``pool`` (one forecast from several views of one question).

Each argument is a scenario file (fitted now) or a report folder (read, not refitted);
the what-ifs go through the engine (:func:`forecast.engine.try_variant`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.engine import BaseFit, Variant, difference, evaluate
from forecast.prepared import Prepared, prepare
from forecast.records import SCHEMA
from forecast.running import DEFAULT_OUT, run
from forecast.summaries import p_greater


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
    scheduler: str | None = None,
) -> tuple[dict[str, Any], Path]:
    """Compare scenario A (the first) with each of the others.

    Returns the ``compare.json`` dictionary and the folder it was written to. With
    ``scheduler`` (``tcp://HOST:PORT``) the swaps run on that Dask cluster.
    """
    from forecast.errors import UsageError
    from forecast.report.compare import write_compare

    if len(args) < 2:
        raise UsageError.one("compare needs at least two scenarios or report folders")
    from forecast.executor import check_scheduler

    check_scheduler(scheduler)
    out = Path(out)
    say = progress or (lambda _m: None)
    sources = load_sources(args, overrides, draws, chains, seed, out, allow_outside, progress)
    pairs = [compare_pair(sources[0], b, allow_outside, say, scheduler) for b in sources[1:]]
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
            for k in (
                "p_a_greater",
                "p_a_greater_mcse",
                "differences",
                "attribution",
                "gap",
                "gap_mcse",
                "explained",
                "explained_mcse",
                "path",
            )
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


def compare_pair(a: Side, b: Side, allow_outside: bool, say, scheduler=None) -> dict[str, Any]:
    """A against B: the differences, each swapped into A alone, and P(A > B)."""
    from forecast.compare import differences, swap
    from forecast.executor import variants
    from forecast.mcse import round_to, sig

    diffs = differences(a.prep.loaded, a.prep.priors, b.prep.loaded, b.prep.priors)
    say(f"{a.label} vs {b.label}: {len(diffs)} differences, each swapped into {a.label}")
    base_fit = BaseFit.from_report(a.prep, a.folder) if diffs else None
    base = evaluate(a.prep, base=base_fit) if diffs else None
    raws = [swap(a.prep.loaded, b.prep.loaded, d.path) for d in diffs]
    done = variants(raws, a.prep, base_fit, allow_outside, scheduler, say)
    rows = [attribution_row(d.path, base, v) for d, v in zip(diffs, done, strict=True)]
    rows.sort(key=lambda r: -abs(r["delta"] or 0))
    greater, greater_mcse = p_greater(a.p_success, b.p_success)
    return {
        "a": a.label,
        "b": b.label,
        "p_a_greater": round_to(greater, greater_mcse),
        "p_a_greater_mcse": sig(greater_mcse),
        "differences": [d.as_json() for d in diffs],
        "attribution": rows,
        **explained(a, b, rows),
        "path": cumulative_path(a, b, rows, allow_outside, base_fit, say, scheduler),
        "attribution_base": None if base is None else base.as_json(),
        "recommendations": {
            side.label: (side.summary.get("decision") or {}).get("recommended") for side in (a, b)
        },
        "flips": [r["path"] for r in rows if r.get("flips_recommendation")],
    }


#: Swaps applied one by one on the cumulative path; past these, the rest in one step (B).
PATH_STEPS = 6


def explained(a: Side, b: Side, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The gap B − A, and how much of it the single swaps' moves add up to."""
    from forecast.mcse import combined, round_to, sig

    pa, pb = a.summary["p_success"], b.summary["p_success"]
    gap_mcse = combined(pa.get("mcse"), pb.get("mcse"))
    moves = [r for r in rows if r["delta"] is not None]
    total_mcse = combined(*(r["delta_mcse"] for r in moves)) if moves else 0.0
    return {
        "gap": round_to(pb["mean"] - pa["mean"], gap_mcse),
        "gap_mcse": sig(gap_mcse),
        "explained": round_to(sum(r["delta"] for r in moves), total_mcse),
        "explained_mcse": sig(total_mcse),
    }


def cumulative_path(
    a: Side, b: Side, rows, allow_outside: bool, base_fit, say, scheduler=None
) -> list[dict]:
    """A turned into B one swap at a time, the largest single move first (PRODUCT §4).

    Each step adds one more of B's assumptions to A; after ``PATH_STEPS`` swaps the rest
    are applied at once, which is B itself (its own fit's P(success)).
    """
    from forecast.compare import swap
    from forecast.executor import variants
    from forecast.mcse import round_to, sig

    raw, raws = a.prep.loaded.raw, []
    for r in rows[:PATH_STEPS]:  # each step adds one more of B's assumptions
        raw = swap(raw, b.prep.loaded, r["path"])
        raws.append(raw)
    say(f"cumulative path: {len(raws)} steps from {a.label} towards {b.label}")
    done = variants(raws, a.prep, base_fit, allow_outside, scheduler, say)
    steps = [
        {
            "add": r["path"],
            "p_success": round_to(v.p_success, v.mcse),
            "p_success_mcse": sig(v.mcse),
            "method": v.method,
        }
        for r, v in zip(rows[:PATH_STEPS], done, strict=True)
    ]
    if len(rows) > PATH_STEPS:
        pb = b.summary["p_success"]
        steps.append(
            {
                "add": f"the other {len(rows) - PATH_STEPS} differences (B itself)",
                "p_success": pb["mean"],
                "p_success_mcse": pb.get("mcse"),
                "method": "B's own fit",
            }
        )
    return steps


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
