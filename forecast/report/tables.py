"""Words and tables of a report: summary.md, and the sentences and figures in words that
report.html and the terminal share. It renders records (summary.json's content, built by
:mod:`forecast.summary`) and never builds them.
"""

from __future__ import annotations

from typing import Any

from forecast import mcse
from forecast.mcse import decimals, num, se
from forecast.summary import build_summary, finite_or_none

__all__ = ["build_summary", "finite_or_none", "hidden_note", "markdown", "pct", "with_effect"]

#: Decimals a percentage shows at most, wherever a report prints one (the sentence, the
#: tables, the terminal): "3.7%", "13.2%"; fewer where the Monte Carlo error says so.
PCT_DECIMALS = 1


def pct(x: float | None, error: float | None, most: int = PCT_DECIMALS) -> str:
    """A probability in percent, as every part of a report prints it: to the digits its
    Monte Carlo error supports, and at most one decimal (``3.7%``, never ``3.68%``)."""
    return mcse.pct(x, error, min(most, PCT_DECIMALS))


def with_effect(rows: list[dict[str, Any]], key: str) -> tuple[list[dict[str, Any]], int]:
    """The rows whose ``key`` is not exactly zero (a swing, a change), and how many were
    left out: a tornado or table shows what moves the answer, and says what it hid."""
    shown = [r for r in rows if r.get(key) != 0]
    return shown, len(rows) - len(shown)


def hidden_note(n: int, what: str = "belief") -> str:
    """``3 beliefs with no effect hidden``, or nothing when none was."""
    if not n:
        return ""
    return f"{n} {what}{'' if n == 1 else 's'} with no effect hidden"


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
            f"| {r['stage']} | {r['group']} | {r['rounds']} | {r['observed_rate']:.0%} | "
            f"{r['replicated_mean']:.0%} ({lo:.0%}–{hi:.0%}) | {r['p_value']:.2f} |"
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
    """The answer in one sentence, to the digits its Monte Carlo error supports."""
    p = summary["p_success"]
    lo, hi = p["hdi_90"]
    ref = summary.get("reference") or {}
    basis = "the author's assumptions"
    if summary["diagnostics"]["method"] == "nuts" and ref.get("rounds"):
        basis += f", updated by {ref['rounds']} past rounds,"
    e = p.get("mcse")
    return (
        f"On {basis} the talks succeed with probability {pct(p['mean'], e)} "
        f"(90% interval {pct(lo, e)}–{pct(hi, e)}; Monte Carlo error ±{se(e, 100)} points)."
    )


def decision_sentence(decision: dict[str, Any]) -> str:
    """Which option the author's own assumptions favour, and how sure that is."""
    best = decision["recommended"]
    o = decision["options"][best]
    return (
        f"{decision['question']} On these assumptions: **{best}** "
        f"(expected value {num(o['mean'], o.get('mcse'), 2)}; best in "
        f"{pct(o['p_best'], o.get('p_best_mcse'), 1)} of draws; value of perfect information "
        f"{num(decision['evpi'], decision.get('evpi_mcse'), 3)})."
    )


def written(belief: Any) -> str:
    """A belief in scenario syntax, as a user would type it."""
    if isinstance(belief, dict):
        inner = ", ".join(
            f"{k}: {list(v) if isinstance(v, list | tuple) else v}" for k, v in belief.items()
        )
        return "{" + inner + "}"
    if isinstance(belief, float):  # a constant: as it was typed, 1 not 1.0
        return f"{belief:g}"
    return str(belief)


def fmt_interval(st: dict[str, Any], as_pct: bool = True) -> str:
    """``mean [lo, hi]`` to the digits the mean's MCSE supports."""
    lo, hi = st["hdi_90"]
    e = st.get("mcse")
    if e == 0 and lo == hi == st["mean"]:  # a point mass: one value, said once
        return (pct(lo, None) if as_pct else f"{lo:g}") + " (a single value)"
    f = pct if as_pct else num
    return f"{f(st['mean'], e)} [{f(lo, e)}, {f(hi, e)}]"


def fmt_mcse(st: dict[str, Any], as_pct: bool = True) -> str:
    """The MCSE of a summary's mean, in points for a probability shown in percent."""
    e = st.get("mcse")
    if e is None:
        return "—"
    return "exact" if e == 0 else f"±{se(e, 100 if as_pct else 1)}"


def pct_row(st: dict[str, Any]) -> tuple[str, str, str]:
    """(mean, 90% HDI, MCSE) of a probability, each to the digits the MCSE supports."""
    e = st.get("mcse")
    lo, hi = st["hdi_90"]
    return pct(st["mean"], e), f"{pct(lo, e)} – {pct(hi, e)}", fmt_mcse(st)


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
        *author_line(summary),
        "",
        "| | mean | 90% HDI | MCSE (points) |",
        "|---|---:|---|---:|",
    ]
    rows = [
        (
            f"P(success), {'posterior' if d['method'] == 'nuts' else 'prior only'}",
            summary["p_success"],
        ),
        ("P(success), prior", summary["p_success_prior"]),
    ]
    rows += [(f"stage `{n}`: P(pass \\| reached)", st) for n, st in summary["stages"].items()]
    for name, st in rows:
        mean, hdi, error = pct_row(st)
        lines.append(f"| {name} | {mean} | {hdi} | {error} |")
    lines += assumptions_markdown(summary["assumptions"])
    lines += pull_markdown(summary)
    lines += diagnostics_markdown(summary)
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


NOT_INFORMED = "not informed by the data: its prior"


def first_quoted(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each row whose quote an earlier row already shows (its path) -> that row's path,
    so a quote that backs several beliefs is shown once and referred to after."""
    first: dict[str, str] = {}
    out = {}
    for a in rows:
        why = a.get("why")
        if not why:
            continue
        if why in first:
            out[a["path"]] = first[why]
        else:
            first[why] = a["path"]
    return out


_SAME_WIDTH = str.maketrans("‘’“”–—", "''\"\"--")


def _parts(why: str) -> list[str]:
    """A quote's pieces (``...`` skips text), long enough to recognise elsewhere."""
    import re

    pieces = re.split(r"\.\.\.|…", why.translate(_SAME_WIDTH))
    return [p.strip(" ,.;:") for p in pieces if len(p.strip(" ,.;:")) >= 15]


def trimmed_quotes(rows: list[dict[str, Any]], also: list[str] = ()) -> dict[str, dict]:
    """Each row's quote in its sentence, with the sentence cut where it runs into
    another row's quote (or one of ``also``, such as the author's bottom line): that
    quote is shown in its own row, not again as this one's context."""
    out = {}
    whys = [a["why"] for a in rows if a.get("why")] + [w for w in also if w]
    for a in rows:
        q = a.get("quote")
        if not q:
            continue
        others = [p for w in whys if w != a.get("why") for p in _parts(w)]
        before, after = q["before"], q["after"]
        plain_before, plain_after = before.translate(_SAME_WIDTH), after.translate(_SAME_WIDTH)
        ends = [plain_before.rfind(p) + len(p) for p in others if p in plain_before]
        if ends:
            before = before[max(ends) :].lstrip(" ,.;:-–—")
            before = "… " + before if before else ""
        else:
            before = "…" + before
        starts = [plain_after.find(p) for p in others if p in plain_after]
        if starts:
            after = after[: min(starts)].rstrip(" ,;:-–—")
            after = after + " …" if after.strip(" .-–—") else ""
        else:
            after = after + "…"
        out[a["path"]] = {**q, "before": before, "after": after}
    return out


def posterior_text(a: dict[str, Any]) -> str | None:
    """The posterior as a table cell shows it, or None where the data never touch the
    belief (the prior, already shown, is its posterior: the cell says so instead)."""
    if a.get("informed_by_data", True) is False and a["prior"] == a["posterior"]:
        return None
    return f"{fmt_interval(a['posterior'], False)} ({fmt_mcse(a['posterior'], False)})"


def assumptions_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """Each assumption's belief, prior, posterior, weight, basis and its quote or note."""
    lines = [
        "",
        "## Assumptions",
        "",
        "Basis: *author* = the article's words (quoted), *analyst* = a number the article does "
        "not state (noted). Weight: a Beta belief counts as a + b reference rounds. A belief "
        "the reference data never touch keeps its prior: it is shown once.",
        "",
        "| path | belief | prior | posterior (MCSE) | weight | basis | why / note |",
        "|---|---|---|---|---:|---|---|",
    ]
    shown_before = first_quoted(rows)
    for a in rows:
        reason = []
        if a["path"] in shown_before:
            reason.append(f"(the quote of `{shown_before[a['path']]}` above)")
        elif a["why"]:
            reason.append(f"“{a['why']}”")
        if a.get("note"):
            reason.append(f"*Note:* {a['note']}")
        text = (" ".join(reason) or "*(no reason given)*").replace("|", "\\|").replace("\n", " ")
        weight = "" if a.get("strength") is None else f"{a['strength']:.0f}"
        post = posterior_text(a) or f"*{NOT_INFORMED}*"
        lines.append(
            f"| `{a['path']}` | {written(a['belief'])} → {a['distribution']} | {fmt_interval(a['prior'], False)} | "
            f"{post} | {weight} | {a.get('basis') or '—'} | {text} |"
        )
    return lines


def diagnostics_markdown(summary: dict[str, Any]) -> list[str]:
    """The sampler's verdict, the reference class, model checks and warnings."""
    d = summary["diagnostics"]
    lines = ["", "## Diagnostics", ""]
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
    return lines


def update_sentence(summary: dict[str, Any]) -> str | None:
    """How far history moved the answer, and which group of rounds pulled it most."""
    ref = summary.get("reference") or {}
    if summary["diagnostics"]["method"] != "nuts" or not ref.get("rounds"):
        return None
    prior, post = summary["p_success_prior"], summary["p_success"]
    e = max(prior.get("mcse") or 0, post.get("mcse") or 0)
    shift = post["mean"] - prior["mean"]
    size = abs(shift) / max(abs(prior["mean"]), 1e-9)
    how = "hardly at all" if size < 0.05 else ("up" if shift > 0 else "down")
    text = (
        f"The {ref['rounds']} reference rounds move P(success) {how}: from {pct(prior['mean'], e)} "
        f"on the author's beliefs alone to {pct(post['mean'], e)}."
    )
    groups = [g for g in ref.get("groups") or [] if g.get("trusted")]
    if groups:
        top = max(groups, key=lambda g: abs(g["p_success"]["delta"] or 0))
        d = top["p_success"]
        text += (
            f" The group that pulls it most is {top['group']} ({top['rounds']} rounds): without "
            f"them it would be {pct(d['without'], d['mcse'])} ({sign_points(d['delta'], d['mcse'])} "
            "points from them)."
        )
    return text


def sign_points(delta: float | None, mcse: float | None) -> str:
    """A move in P(success) in percentage points, signed, to the digits its MCSE supports."""
    if delta is None:
        return "—"
    return f"{100 * delta:+.{decimals(mcse, 100, PCT_DECIMALS)}f}"


def belief_moves(g: dict[str, Any], top: int = 2) -> str:
    """A group's largest pulls on the beliefs, in words."""
    parts = []
    for path, m in list((g.get("beliefs") or {}).items())[:top]:
        parts.append(f"{path} {m['delta']:+.{decimals(m['mcse'], 1, 3)}f}")
    return "; ".join(parts) or "—"


def outcomes_text(g: dict[str, Any]) -> str:
    return ", ".join(f"{stage} {k}/{n}" for stage, (k, n) in g["outcomes"].items())


def pull_markdown(summary: dict[str, Any]) -> list[str]:
    """The update explained from the fit: each group's pull (PSIS leave-group-out)."""
    sentence = update_sentence(summary)
    if sentence is None:
        return []
    lines = ["", "## Where the update comes from", "", sentence]
    groups = (summary.get("reference") or {}).get("groups")
    if groups:
        lines += [
            "",
            "Each group's pull: P(success) and the beliefs with and without its rounds "
            "(PSIS leave-group-out from this fit; k ≥ the threshold means the group carries too "
            "much of the update to be taken out by reweighting).",
            "",
            "| group | rounds | passed / observed | P(success) without it | its pull (points) | largest moves of the beliefs | Pareto k |",
            "|---|---:|---|---:|---:|---|---:|",
        ]
        for g in groups:
            if g["trusted"]:
                d = g["p_success"]
                cells = (
                    pct(d["without"], d["mcse"]),
                    sign_points(d["delta"], d["mcse"]),
                    belief_moves(g),
                )
            else:
                cells = ("not reweightable", "—", f"refit: `forecast run ... {g['refit']}`")
            lines.append(
                f"| {g['group']} | {g['rounds']} | {outcomes_text(g)} | {cells[0]} | {cells[1]} | {cells[2]} | {g['pareto_k']} |"
            )
    return lines


def author_line(summary: dict[str, Any]) -> list[str]:
    """The author's own bottom line beside the model's answer, where the scenario gives it."""
    af = summary["question"].get("author_forecast")
    if not af:
        return []
    e = summary["p_success"].get("mcse")
    lo, hi = af["hdi_90"]
    quote = f" (“{af['why']}”)" if af.get("why") else ""
    return [
        "",
        f"**The author's own bottom line.** {written(af['belief'])}{quote}: read as "
        f"{pct(af['mean'], e)} (90% {pct(lo, e)}–{pct(hi, e)}), against the model's "
        f"{pct(summary['p_success']['mean'], e)} on the author's reasons.",
    ]
