"""Numbers of a report: the summary dictionary behind summary.json, .md and .html.

Statistics come from ArviZ (``arviz_stats.hdi``); this module only arranges them.
"""

from __future__ import annotations

import datetime as dt
import math
from importlib import metadata
from typing import Any

import numpy as np

from forecast.scenario import SCHEMA_VERSION, assumptions

HDI_PROB = 0.9


def _r(x: float | None, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def interval_stats(da) -> dict[str, Any]:
    """Mean, median and 90% HDI of draws with dims (chain, draw)."""
    import arviz_stats as azs

    hdi = azs.hdi(da, prob=HDI_PROB)
    return {
        "mean": _r(float(da.mean())),
        "median": _r(float(da.median())),
        "hdi_90": [_r(float(hdi.sel(ci_bound="lower"))), _r(float(hdi.sel(ci_bound="upper")))],
    }


def constant_stats(value: float) -> dict[str, Any]:
    v = _r(value)
    return {"mean": v, "median": v, "hdi_90": [v, v]}


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


def build_summary(prep, fit) -> dict[str, Any]:
    """The ``summary.json`` dictionary (PRODUCT §4)."""
    spec = prep.loaded.spec
    tree = fit.tree
    draws = tree[fit.draws_group]
    prior = tree["prior"]
    stages = {}
    for s in spec.stages:
        st = interval_stats(draws["p_stage"].sel(stage=s))
        stages[s] = {
            "label": spec.stages[s].label,
            "mean": st["mean"],
            "median": st["median"],
            "hdi_90": st["hdi_90"],
        }
    rows = []
    for a in assumptions(spec):
        p = prep.priors[a.path]
        if p.is_constant:
            pr = post = constant_stats(p.params[0])
        else:
            pr = interval_stats(prior[a.path])
            post = interval_stats(draws[a.path])
        rows.append(
            {
                "path": a.path,
                "label": a.label,
                "belief": a.belief.written(),
                "distribution": str(p),
                "prior": pr,
                "posterior": post,
                "why": a.why,
            }
        )
    data = prep.data
    reference = None
    if spec.reference is not None:
        reference = {
            "data": spec.reference.data,
            "before": spec.before.isoformat(),
            "rounds": 0 if data is None else data.n_rounds,
            "round_ids": [] if data is None else data.round_id,
            "rounds_not_yet_known": 0 if data is None else data.n_unknown_outcome,
        }
    settings = prep.settings
    decision = None
    if spec.decision is not None:
        from forecast.report import summary_decision

        decision = summary_decision(prep, draws)
    summary = {
        "schema": SCHEMA_VERSION,
        "id": spec.id,
        "title": spec.title,
        "source": {
            k: (v.isoformat() if isinstance(v, dt.date) else v)
            for k, v in spec.source.model_dump().items()
            if v is not None
        },
        "question": {
            "text": spec.question.text,
            "success": spec.question.success,
            "resolves": spec.question.resolves.isoformat(),
            "rounds": spec.question.rounds,
        },
        "p_success": interval_stats(draws["p_success"]),
        "p_success_prior": interval_stats(prior["p_success"]),
        "p_round": interval_stats(draws["p_round"]),
        "stages": stages,
        "assumptions": rows,
        "diagnostics": {k: v for k, v in fit.diagnostics.items()},
        **({"decision": decision} if decision is not None else {}),
        "checks": _checks(fit, rows),
        "case_states": "exact" if len(spec.factors) <= 12 else "monte carlo",
        "reference": reference,
        "warnings": [w.message if not w.field else f"{w.field}: {w.message}" for w in prep.warnings]
        + fit.notes,
        "provenance": {
            "scenario": str(prep.loaded.path),
            "scenario_sha256": prep.loaded.sha256,
            "data_sha256": None if data is None else data.sha256,
            "overrides": list(prep.loaded.overrides)
            + [f"--{k}={v}" for k, v in sorted(settings.changed.items())],
            "seed": settings.seed,
            "draws": settings.draws,
            "chains": settings.chains,
            "sampler": "numpyro NUTS (tune 1000)"
            if fit.method == "nuts"
            else "forward sampling (exact)",
            "versions": versions(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    }
    return summary


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


def checks_markdown(checks: dict[str, Any] | None) -> list[str]:
    if not checks:
        return []
    lines = [
        "",
        "## Model checks",
        "",
        "| stage | group | rounds | observed rate | replicated (90%) | p |",
        "|---|---|---:|---:|---|---:|",
    ]
    for r in checks["ppc"]:
        lo, hi = r["replicated_90"]
        lines.append(
            f"| {r['stage']} | {r['group']} | {r['rounds']} | {r['observed_rate']:.2f} | "
            f"{r['replicated_mean']:.2f} ({lo:.2f}–{hi:.2f}) | {r['p_value']:.2f} |"
        )
    loo = checks.get("loo")
    if loo:
        lines += [
            "",
            f"LOO: ELPD {loo['elpd_loo']} (SE {loo['se']}), p_loo {loo['p_loo']}, Pareto k max "
            f"{loo['pareto_k_max']} ({loo['pareto_k_above_0_7']} of {loo['rounds']} rounds above 0.7).",
        ]
    if checks["notes"]:
        lines += [""] + [f"- {n}" for n in checks["notes"]]
    return lines


def answer_sentence(summary: dict[str, Any]) -> str:
    """The answer in one sentence."""
    p = summary["p_success"]
    lo, hi = p["hdi_90"]
    ref = summary.get("reference") or {}
    basis = "the author's assumptions"
    if summary["diagnostics"]["method"] == "nuts" and ref.get("rounds"):
        basis += f", updated by {ref['rounds']} past rounds,"
    return (
        f"On {basis} the talks succeed with probability {p['mean']:.0%} "
        f"(90% interval {lo:.0%}–{hi:.0%})."
    )


def decision_sentence(decision: dict[str, Any]) -> str:
    """Which option the author's own assumptions favour, and how sure that is."""
    best = decision["recommended"]
    o = decision["options"][best]
    return (
        f"{decision['question']} On these assumptions: **{best}** "
        f"(expected value {o['mean']:.1f}; best in {o['p_best']:.0%} of draws; "
        f"value of perfect information {decision['evpi']:.2f})."
    )


def written(belief: Any) -> str:
    """A belief in scenario syntax, as a user would type it."""
    if isinstance(belief, dict):
        inner = ", ".join(
            f"{k}: {list(v) if isinstance(v, list | tuple) else v}" for k, v in belief.items()
        )
        return "{" + inner + "}"
    return str(belief)


def fmt_interval(st: dict[str, Any], pct: bool = True) -> str:
    lo, hi = st["hdi_90"]
    if pct:
        return f"{st['mean']:.1%} [{lo:.1%}, {hi:.1%}]"
    return f"{st['mean']:.3g} [{lo:.3g}, {hi:.3g}]"


def markdown(summary: dict[str, Any]) -> str:
    """``summary.md``: the same for a terminal or a pull request."""
    d = summary["diagnostics"]
    lines = [
        f"# {summary['title']} (`{summary['id']}`)",
        "",
        f"**Question.** {summary['question']['text']}  ",
        f"**Success means.** {summary['question']['success']}  ",
        f"**Resolves.** {summary['question']['resolves']}, over {summary['question']['rounds']} round(s) of talks.",
        "",
        f"**Answer.** {answer_sentence(summary)}",
        "",
        "| | mean | 90% HDI |",
        "|---|---:|---|",
        f"| P(success), {'posterior' if d['method'] == 'nuts' else 'prior only'} | {summary['p_success']['mean']:.1%} | {summary['p_success']['hdi_90'][0]:.1%} – {summary['p_success']['hdi_90'][1]:.1%} |",
        f"| P(success), prior | {summary['p_success_prior']['mean']:.1%} | {summary['p_success_prior']['hdi_90'][0]:.1%} – {summary['p_success_prior']['hdi_90'][1]:.1%} |",
    ]
    for name, st in summary["stages"].items():
        lines.append(
            f"| stage `{name}`: P(pass \\| reached) | {st['mean']:.1%} | {st['hdi_90'][0]:.1%} – {st['hdi_90'][1]:.1%} |"
        )
    lines += [
        "",
        "## Assumptions",
        "",
        "| path | belief | prior | posterior | why |",
        "|---|---|---|---|---|",
    ]
    for a in summary["assumptions"]:
        why = (a["why"] or "*(no quote)*").replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| `{a['path']}` | {written(a['belief'])} → {a['distribution']} | {fmt_interval(a['prior'], False)} | "
            f"{fmt_interval(a['posterior'], False)} | {why} |"
        )
    lines += ["", "## Diagnostics", ""]
    if d["method"] == "nuts":
        verdict = "pass" if d["passed"] else "**FAIL**"
        lines.append(
            f"NUTS: R-hat max {d['r_hat_max']}, bulk ESS min {d['ess_bulk_min']}, "
            f"divergences {d['divergences']} — {verdict} (R-hat ≤ 1.01, ESS ≥ 100 per chain, no divergences)."
        )
    else:
        lines.append(
            "Forward sampling from the prior (no reference data): exact, no MCMC diagnostics."
        )
    if summary.get("reference"):
        r = summary["reference"]
        lines.append(
            f"Reference: {r['rounds']} rounds from `{r['data']}` known before {r['before']}."
        )
    lines += checks_markdown(summary.get("checks"))
    if summary["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in summary["warnings"]]
    p = summary["provenance"]
    lines += [
        "",
        "## Provenance",
        "",
        f"scenario sha256 `{p['scenario_sha256'][:12]}`, data sha256 `{(p['data_sha256'] or '—')[:12]}`, "
        f"seed {p['seed']}, {p['chains']}×{p['draws']} draws, overrides {p['overrides'] or 'none'}, "
        f"created {p['created']}.",
        "",
    ]
    return "\n".join(lines)


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
