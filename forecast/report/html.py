"""report.html: one self-contained page (figures embedded, no network)."""

from __future__ import annotations

from html import escape
from typing import Any

from forecast.mcse import num, pct, se
from forecast.report.tables import (
    answer_sentence,
    belief_moves,
    decision_sentence,
    fmt_interval,
    fmt_mcse,
    outcomes_text,
    pct_row,
    sign_points,
    update_sentence,
    written,
)

CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1020px;margin:2em auto;padding:0 1em;color:#1b1b1b}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd}
.answer{font-size:1.25em;background:#f3f6fa;border-left:4px solid #3465a4;padding:.6em 1em}
table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border-bottom:1px solid #e3e3e3;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#fafafa}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
code{font-size:.9em;background:#f4f4f4;padding:0 .2em;overflow-wrap:anywhere}
table.assumptions{table-layout:fixed}blockquote{margin:0;color:#444;font-style:italic}
img{max-width:100%;display:block;margin:.5em 0}.fail{color:#b00020;font-weight:bold}.pass{color:#1a7f37;font-weight:bold}
.warn{background:#fff8e1;border-left:4px solid #f0ad00;padding:.4em .8em;margin:.3em 0}
.meta{color:#555;font-size:.9em}
table.assumptions td:first-child{width:34%}table.assumptions td:last-child{width:40%}
.basis{font-size:.75em;font-weight:bold;text-transform:uppercase;letter-spacing:.04em;padding:0 .4em;border-radius:3px}
.basis.author{background:#e3f1e6;color:#1a5e2c}.basis.analyst{background:#fdecd8;color:#7a4100}.basis.none{background:#f6d7da;color:#8a1020}
blockquote mark{background:none;font-weight:bold;color:#1b1b1b}.note{color:#555;margin:.3em 0 0}
.author-view{background:#fbf7ef;border-left:4px solid #b08400;padding:.5em 1em}
"""


def _fig(uri: str | None, alt: str) -> str:
    return f'<img src="{uri}" alt="{escape(alt)}">' if uri else ""


def checks_section(checks: dict[str, Any], figures: dict[str, str]) -> str:
    parts = [
        "<h3>Posterior predictive check</h3>",
        "<p>Each stage's pass rate per group in the reference rounds, against rates replicated from the fitted model. "
        "A small p means the model finds the observed rate surprising.</p>",
        _fig(figures.get("ppc"), "Replicated vs observed pass rates"),
        "<table><tr><th>stage</th><th>group</th><th>rounds</th><th>observed</th><th>replicated (90%)</th><th>p</th></tr>",
    ]
    for r in checks["ppc"]:
        lo, hi = r["replicated_90"]
        parts.append(
            f"<tr><td>{escape(r['stage'])}</td><td>{escape(r['group'])}</td><td class='num'>{r['rounds']}</td>"
            f"<td class='num'>{r['observed_rate']:.2f}</td><td class='num'>{r['replicated_mean']:.2f} ({lo:.2f}–{hi:.2f})</td>"
            f"<td class='num'>{r['p_value']:.2f}</td></tr>"
        )
    parts.append("</table>")
    loo = checks.get("loo")
    if loo:
        parts.append(
            f"<p>Leave-one-round-out cross-validation (PSIS-LOO, ArviZ): ELPD {loo['elpd_loo']} (SE {loo['se']}), "
            f"effective parameters {loo['p_loo']}, Pareto k max {loo['pareto_k_max']} "
            f"({loo['pareto_k_above_0_7']} of {loo['rounds']} rounds above 0.7).</p>"
        )
    if checks["notes"]:
        parts.append("<h3>What the data did to the assumptions</h3><ul>")
        parts += [f"<li>{escape(n)}</li>" for n in checks["notes"]]
        parts.append("</ul>")
    return "\n".join(parts)


def reason_html(a: dict[str, Any], repeated: bool = False) -> str:
    """Whose number this is, the quote inside its sentence, and the analyst's note."""
    basis = a.get("basis")
    tag = {
        "author": "<span class='basis author' title='quoted from the article'>author</span>",
        "analyst": "<span class='basis analyst' title=\"the analyst's number: the article does not say it\">analyst</span>",
    }.get(basis, "<span class='basis none'>no reason given</span>")
    parts = [tag]
    if a.get("why") and repeated:
        parts.append("<p class='note'>(the same quote as above)</p>")
    elif a.get("quote"):
        q = a["quote"]
        parts.append(
            f"<blockquote>…{escape(q['before'])} <mark>{escape(q['quote'])}</mark> {escape(q['after'])}…</blockquote>"
        )
    elif a.get("why"):
        parts.append(f"<blockquote>“{escape(a['why'])}”</blockquote>")
    if a.get("note"):
        parts.append(f"<p class='note'><b>Note:</b> {escape(a['note'])}</p>")
    return "".join(parts)


def author_view(q: dict[str, Any], summary: dict[str, Any]) -> str:
    """The author's own bottom line beside the model's answer, where the scenario gives it."""
    af = q.get("author_forecast")
    if not af:
        return ""
    lo, hi = af["hdi_90"]
    e = summary["p_success"].get("mcse")
    return (
        f"<div class='author-view'><b>The author's own bottom line:</b> {escape(written(af['belief']))} "
        f"(read as {pct(af['mean'], e)}, 90% {pct(lo, e)}–{pct(hi, e)}) "
        f"against the model's {pct(summary['p_success']['mean'], e)} on the author's reasons."
        f"{reason_html(af)}</div>"
    )


def pull_section(summary: dict[str, Any]) -> str:
    """Where the update comes from: each reference group's pull, from the fit itself."""
    sentence = update_sentence(summary)
    if sentence is None:
        return ""
    parts = ["<h3>Where the update comes from</h3>", f"<p>{escape(sentence)}</p>"]
    groups = (summary.get("reference") or {}).get("groups")
    if groups:
        parts += [
            "<p>Each group of reference rounds, taken out of this fit by Pareto-smoothed importance "
            "sampling (leave-group-out): P(success) without its rounds, how far its rounds pull the "
            "answer, and the beliefs they move most. A Pareto k at or above the threshold means the "
            "group carries too much of the update to be taken out by reweighting.</p>",
            "<table><tr><th>group</th><th>rounds</th><th>passed / observed</th><th>P(success) without it</th>"
            "<th>its pull (points)</th><th>largest moves of the beliefs</th><th>Pareto k</th></tr>",
        ]
        for g in groups:
            if g["trusted"]:
                d = g["p_success"]
                cells = (
                    pct(d["without"], d["mcse"]),
                    f"{sign_points(d['delta'], d['mcse'])} ±{se(d['mcse'], 100)}",
                    belief_moves(g),
                )
            else:
                cells = ("not reweightable", "—", f"refit to see it: forecast run ... {g['refit']}")
            parts.append(
                f"<tr><td>{escape(g['group'])}</td><td class='num'>{g['rounds']}</td>"
                f"<td>{escape(outcomes_text(g))}</td><td class='num'>{cells[0]}</td>"
                f"<td class='num'>{cells[1]}</td><td><small>{escape(cells[2])}</small></td>"
                f"<td class='num'>{g['pareto_k']}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts)


def decision_section(summary: dict[str, Any], figures: dict[str, str]) -> str:
    """What the author's assumptions say to do, and which belief could change that."""
    d = summary["decision"]
    quotes = {a["path"]: a["why"] for a in summary["assumptions"]}
    sentence = escape(decision_sentence(d)).replace("**", "")
    parts = [
        "<h2>Decision</h2>",
        f"<p class='answer'>{sentence}</p>",
        f"<p>Values on the scale: {escape(d['value_scale'])}.</p>",
        _fig(figures.get("decision"), "Distribution of each option's value"),
        "<table><tr><th>option</th><th>mean value</th><th>MCSE</th><th>90% HDI</th><th>P(best)</th></tr>",
    ]
    for name, o in d["options"].items():
        label = f" — {escape(o['label'])}" if o.get("label") else ""
        e = o.get("mcse")
        parts.append(
            f"<tr><td><code>{escape(name)}</code>{label}</td><td class='num'>{num(o['mean'], e, 2)}</td>"
            f"<td class='num'>{fmt_mcse(o, False)}</td>"
            f"<td class='num'>{num(o['hdi_90'][0], e, 2)} – {num(o['hdi_90'][1], e, 2)}</td>"
            f"<td class='num'>{pct(o['p_best'], o.get('p_best_mcse'), 1)}</td></tr>"
        )
    parts += [
        "</table>",
        f"<p>Expected value of perfect information (EVPI): <b>{num(d['evpi'], d.get('evpi_mcse'), 3)}</b> "
        f"(Monte Carlo error ±{num(d.get('evpi_mcse'), None, 3)}). Per belief, the expected "
        "value of partial perfect information (EVPPI) — how much knowing that one belief exactly would be "
        f"worth — and the best option when the belief sits in its lowest or highest tenth. Estimator: "
        f"{escape(d['evppi_estimator'])}.</p>",
        _fig(figures.get("evppi"), "Which beliefs are worth knowing better (EVPPI)"),
    ]
    shown = {p: v for p, v in d["evppi"].items() if v > 0 or d["flips"][p]["flips"]}
    if shown:
        parts.append(
            "<table><tr><th>belief</th><th>EVPPI</th><th>SE</th><th>best if low</th>"
            "<th>best if high</th><th>why</th></tr>"
        )
    for path, value in shown.items():
        f = d["flips"][path]
        flag = " <b>(flips)</b>" if f["flips"] else ""
        why = quotes.get(path)
        quote = f"<blockquote>“{escape(why)}”</blockquote>" if why else ""
        parts.append(
            f"<tr><td><code>{escape(path)}</code>{flag}</td>"
            f"<td class='num'>{num(value, d.get('evppi_se', {}).get(path), 3)}</td>"
            f"<td class='num'>{num(d.get('evppi_se', {}).get(path), None, 3)}</td>"
            f"<td>{escape(f['best_when_low'])}</td><td>{escape(f['best_when_high'])}</td><td>{quote}</td></tr>"
        )
    if shown:
        parts.append("</table>")
    hidden = len(d["evppi"]) - len(shown)
    if hidden:
        other = " other" if shown else ""
        parts.append(f"<p class='meta'>{hidden}{other} beliefs have EVPPI 0 and flip nothing.</p>")
    return "\n".join(parts)


def render(
    summary: dict[str, Any],
    figures: dict[str, str],
    sections: list[str] | None = None,
    seconds: float | None = None,
) -> str:
    """The whole page. ``sections`` are extra HTML blocks (sensitivity, backtest...);
    ``seconds`` is the fit's run time (not in summary.json, which a rerun reproduces)."""
    q, d = summary["question"], summary["diagnostics"]
    src = summary.get("source", {})
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{escape(summary['title'])} — forecast</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(summary['title'])}</h1>",
        f"<p class='meta'>{escape(str(src.get('outlet', '')))}, {escape(str(src.get('date', '')))} · scenario <code>{escape(summary['id'])}</code></p>",
        "<h2>The question</h2>",
        f"<p><b>{escape(q['text'])}</b><br>Success means: {escape(q['success'])}<br>"
        f"Resolves {escape(q['resolves'])}, over {q['rounds']} round(s) of talks.</p>",
        f"<p class='answer'>{escape(answer_sentence(summary))}</p>",
        author_view(q, summary),
    ]
    for w in summary.get("warnings", []):
        parts.append(f"<div class='warn'>⚠ {escape(w)}</div>")
    parts += [
        "<h2>P(success)</h2>",
        _fig(figures.get("p_success"), "Density of P(success) with its 90% HDI"),
        "<table><tr><th></th><th>mean</th><th>MCSE (points)</th><th>median</th><th>90% HDI</th></tr>",
    ]
    for key, name in (
        ("p_success", "forecast"),
        ("p_success_prior", "prior (no data)"),
        ("p_round", "one round, before evidence"),
    ):
        st = summary[key]
        mean, hdi, error = pct_row(st)
        parts.append(
            f"<tr><td>{name}</td><td class='num'>{mean}</td><td class='num'>{error}</td>"
            f"<td class='num'>{pct(st['median'], st.get('mcse'))}</td><td class='num'>{hdi}</td></tr>"
        )
    parts.append("</table>")
    if figures.get("prior_posterior"):
        parts += [
            "<h3>Prior vs posterior</h3>",
            _fig(figures["prior_posterior"], "Prior and posterior of P(success)"),
        ]
    parts += [
        "<h2>Stages</h2><p>P(pass | the talks reached the stage), marginal over the factors, before evidence.</p>",
        _fig(figures.get("stages"), "Densities of each stage's pass probability"),
        "<table><tr><th>stage</th><th>mean</th><th>MCSE (points)</th><th>90% HDI</th></tr>",
    ]
    for name, st in summary["stages"].items():
        label = f" — {escape(st['label'])}" if st.get("label") else ""
        mean, hdi, error = pct_row(st)
        parts.append(
            f"<tr><td><code>{escape(name)}</code>{label}</td><td class='num'>{mean}</td>"
            f"<td class='num'>{error}</td><td class='num'>{hdi}</td></tr>"
        )
    if summary.get("decision"):
        parts += ["</table>", decision_section(summary, figures)]
    else:
        parts.append("</table>")
    parts += [
        "<h2>Assumptions</h2>",
        "<p>Each belief as written, the distribution it became, and what the reference data made "
        "of it. <span class='basis author'>author</span> marks a number that rests on the article's "
        "words (shown in their sentence); <span class='basis analyst'>analyst</span> one the article "
        "does not state, added by whoever encoded it, with the reason. A Beta belief weighs as much "
        "as a + b reference rounds.</p>",
        "<table class='assumptions'><tr><th>assumption</th><th>prior</th><th>posterior</th><th>basis: the quote or the note</th></tr>",
    ]
    previous = None
    for a in summary["assumptions"]:
        weight = (
            f"<br><small>weighs as {a['strength']:.0f} rounds</small>"
            if a.get("strength") is not None
            else ""
        )
        parts.append(
            f"<tr><td><code>{escape(a['path'])}</code><br>{escape(a['label'] or '')}<br>"
            f"<small>{escape(written(a['belief']))} → {escape(a['distribution'])}</small></td>"
            f"<td class='num'>{fmt_interval(a['prior'], False)}{weight}</td>"
            f"<td class='num'>{fmt_interval(a['posterior'], False)}<br><small>MCSE "
            f"{fmt_mcse(a['posterior'], False)}</small></td>"
            f"<td>{reason_html(a, repeated=bool(a['why']) and a['why'] == previous)}</td></tr>"
        )
        previous = a["why"]
    parts.append("</table>")
    parts.append(_fig(figures.get("assumptions"), "Prior and posterior of each assumption"))
    parts.append(pull_section(summary))
    parts.append("<h2>Model checks and diagnostics</h2>")
    if d["method"] == "nuts":
        cls = "pass" if d["passed"] else "fail"
        verdict = "pass" if d["passed"] else "FAIL — do not rely on these numbers"
        parts.append(
            f"<p>NUTS (numpyro), {summary['provenance']['chains']} chains × {summary['provenance']['draws']} draws: "
            f"R-hat max <b>{d['r_hat_max']}</b>, bulk ESS min <b>{d['ess_bulk_min']}</b>, "
            f"divergences <b>{d['divergences']}</b> — <span class='{cls}'>{verdict}</span> "
            "(thresholds: R-hat ≤ 1.01, bulk ESS ≥ 100 per chain, no divergences).</p>"
        )
        parts.append(
            _fig(
                figures.get("rank"),
                "Rank plots of the beliefs NUTS sampled (the others are exact prior draws)",
            )
        )
    else:
        parts.append(
            "<p>No reference data: the forecast is the prior, sampled forward exactly. No MCMC, so no R-hat or ESS.</p>"
        )
    checks = summary.get("checks")
    if checks:
        parts.append(checks_section(checks, figures))
    ref = summary.get("reference")
    if ref:
        ids = ", ".join(ref["round_ids"]) or "none"
        parts.append(
            f"<p>Reference class: {ref['rounds']} round(s) from <code>{escape(ref['data'])}</code> with an outcome "
            f"known before {escape(ref['before'])}: {escape(ids)}.</p>"
        )
    parts += sections or []
    p = summary["provenance"]
    rows = [
        ("scenario", p["scenario"]),
        ("scenario sha256", p["scenario_sha256"]),
        ("data sha256", p["data_sha256"] or "—"),
        ("overrides", ", ".join(p["overrides"]) or "none"),
        ("seed / chains / draws", f"{p['seed']} / {p['chains']} / {p['draws']}"),
        ("sampler", p["sampler"]),
        ("run time", "—" if seconds is None else f"{seconds:.1f} s"),
        ("versions", ", ".join(f"{k} {v}" for k, v in p["versions"].items())),
        ("created", p["created"]),
    ]
    parts.append("<h2>Provenance</h2><table>")
    parts += [f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows]
    parts.append("</table></body></html>")
    return "\n".join(parts)
