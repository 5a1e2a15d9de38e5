"""Scores of resolved forecasts (PRODUCT §7) and the page that shows them.

A binary forecast p of an outcome o (1 yes, 0 no) scores

- Brier ``(p − o)²`` (0 is perfect, 0.25 a coin flip; lower is better),
- log score ``ln p(o)`` with ``p(o) = p`` if yes, ``1 − p`` if no (higher is better),
- baseline score ``100 · log2(2 · p(o))``: 0 for a coin flip, 100 for certainty that
  came true, −100 for each halving of the probability given to what happened.

p is clipped to [1e-6, 1 − 1e-6] so that a forecast of exactly 0 or 1 has a finite log.
Forecasts are grouped (by author, outlet, scenario or question, and kind: ``model``,
the fit on the author's reasons, or ``stated``, the author's own bottom line); where a
group has several forecasts of one question, each is scored and the question's figure
is their mean, so a question counts once. A group's score is the mean over its
questions, its standard error the questions' standard deviation over √n (none for one
question). Annulled questions are left out and counted.
"""

from __future__ import annotations

import base64
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

EPS = 1e-6
BY = ("author", "outlet", "scenario", "question")
SCORES = ("brier", "log_score", "baseline")
MIN_CALIBRATION = 5  # resolved questions before a calibration plot is drawn
CALIBRATION_BINS = 5
BAND = 0.90  # the binomial band's probability
AUTHOR_SUFFIX = ":author"  # as forecast.ledger names the author's stated forecast


def p_outcome(p: float, outcome: int) -> float:
    """The probability the forecast gave to what happened (clipped away from 0 and 1)."""
    p = min(max(float(p), EPS), 1 - EPS)
    return p if outcome else 1 - p


def brier(p: float, outcome: int) -> float:
    """(p − o)²."""
    return (float(p) - outcome) ** 2


def log_score(p: float, outcome: int) -> float:
    """ln p(o)."""
    return math.log(p_outcome(p, outcome))


def baseline_score(p: float, outcome: int) -> float:
    """100 · log2(2 · p(o)); 0 for a coin flip."""
    return 100 * math.log2(2 * p_outcome(p, outcome))


def kind(row: dict[str, Any]) -> str:
    """``stated`` for the author's own bottom line, ``model`` for a fitted scenario."""
    return "stated" if row["scenario_id"].endswith(AUTHOR_SUFFIX) else "model"


def author_label(row: dict[str, Any]) -> str:
    """The author's name, or the outlet's where the article names no author."""
    if row.get("author"):
        return row["author"]
    return f"{row['outlet']} (unsigned)" if row.get("outlet") else "(unsigned)"


def group_label(row: dict[str, Any], by: str) -> str:
    """The group a forecast belongs to under ``--by``."""
    if by == "author":
        return author_label(row)
    if by == "outlet":
        return row.get("outlet") or "(no outlet)"
    if by == "scenario":
        return row["scenario_id"]
    return row["question_id"]


def scored(forecasts: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The forecasts of resolved questions with their scores, and the counts of resolved,
    annulled (left out) and unresolved questions and forecasts."""
    out: list[dict[str, Any]] = []
    questions: dict[str, set[str]] = defaultdict(set)
    n: dict[str, int] = defaultdict(int)
    for row in forecasts:
        state = {"yes": "resolved", "no": "resolved", "annulled": "annulled"}.get(
            row["outcome"], "unresolved"
        )
        questions[state].add(row["question_id"])
        n[state] += 1
        if state != "resolved":
            continue
        o, p = int(row["outcome"] == "yes"), row["p_mean"]
        out.append(
            {
                **row,
                "kind": kind(row),
                "o": o,
                "brier": brier(p, o),
                "log_score": log_score(p, o),
                "baseline": baseline_score(p, o),
            }
        )
    counts = {
        s: {"questions": len(questions[s]), "forecasts": n[s]}
        for s in ("resolved", "annulled", "unresolved")
    }
    return out, counts


def _mean_se(values: list[float]) -> tuple[float, float | None]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    return mean, se


def group_scores(rows: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """One record per (group, kind): n questions, the forecasts, each score's mean over
    questions and its standard error; best mean baseline score first."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}, got {by!r}")
    groups: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        groups[(group_label(row, by), row["kind"])][row["question_id"]].append(row)
    out = []
    for (label, k), by_question in groups.items():
        record: dict[str, Any] = {
            "group": label,
            "kind": k,
            "n": len(by_question),
            "forecasts": sum(len(v) for v in by_question.values()),
        }
        for score in SCORES:
            per_question = [statistics.fmean(r[score] for r in v) for v in by_question.values()]
            mean, se = _mean_se(per_question)
            record[score], record[f"{score}_se"] = round(mean, 6), _round(se)
        out.append(record)
    return sorted(out, key=lambda r: (-r["baseline"], r["group"], r["kind"]))


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def author_records(forecasts: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Each named author's mean baseline score over resolved questions (the model's
    forecasts of their views: what a pool weighs)."""
    rows, _ = scored(forecasts)
    named = [r for r in rows if r.get("author") and r["kind"] == "model"]
    return {g["group"]: g["baseline"] for g in group_scores(named, "author")}


def score_table(forecasts: Iterable[dict[str, Any]], by: str, ledger: str) -> dict[str, Any]:
    """What ``forecast scores --json`` prints: the groups, the counts, every scored forecast."""
    rows, counts = scored(forecasts)
    return {
        "schema": 1,
        "ledger": ledger,
        "by": by,
        "groups": group_scores(rows, by),
        "counts": counts,
        "forecasts": [
            {
                "question_id": r["question_id"],
                "scenario_id": r["scenario_id"],
                "kind": r["kind"],
                "author": r["author"],
                "outlet": r["outlet"],
                "p": r["p_mean"],
                "hdi_90": [r["p_hdi_lo"], r["p_hdi_hi"]],
                "outcome": r["outcome"],
                **{s: round(r[s], 6) for s in SCORES},
            }
            for r in rows
        ],
    }


# -- figures ---------------------------------------------------------------------------


def calibration_bins(
    p: list[float], o: list[int], bins: int = CALIBRATION_BINS
) -> list[dict[str, Any]]:
    """Forecasts in equal-width bins: per non-empty bin n, the mean forecast, the observed
    frequency and the binomial band (5%–95%) the frequency falls in if the forecasts
    are calibrated."""
    from scipy.stats import binom

    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [
            (x, y) for x, y in zip(p, o, strict=True) if lo <= x < hi or (b == bins - 1 and x == 1)
        ]
        if not inside:
            continue
        n = len(inside)
        mean = statistics.fmean(x for x, _ in inside)
        tail = (1 - BAND) / 2
        out.append(
            {
                "bin": [lo, hi],
                "n": n,
                "forecast": mean,
                "observed": statistics.fmean(y for _, y in inside),
                "band": [
                    float(binom.ppf(tail, n, mean)) / n,
                    float(binom.ppf(1 - tail, n, mean)) / n,
                ],
            }
        )
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def calibration_figure(rows: list[dict[str, Any]]) -> str:
    """Forecast bins against observed frequency, a panel per kind, with the binomial 90%
    band a calibrated forecaster's frequency would fall in; a PNG data URI."""
    plt = _pyplot()
    kinds = [k for k in ("model", "stated") if any(r["kind"] == k for r in rows)]
    fig, axes = plt.subplots(
        1, len(kinds), figsize=(4.6 * len(kinds), 4.4), squeeze=False, layout="constrained"
    )
    for ax, k in zip(axes[0], kinds, strict=True):
        mine = [r for r in rows if r["kind"] == k]
        bins = calibration_bins([r["p_mean"] for r in mine], [r["o"] for r in mine])
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
        for i, b in enumerate(bins):
            ax.plot(
                [b["forecast"]] * 2,
                b["band"],
                color="tab:blue",
                lw=6,
                alpha=0.25,
                solid_capstyle="butt",
                label="90% binomial band" if i == 0 else None,
            )
            ax.annotate(
                f"n={b['n']}",
                (b["forecast"], b["observed"]),
                textcoords="offset points",
                xytext=(6, -3),
                fontsize=7,
            )
        ax.plot(
            [b["forecast"] for b in bins],
            [b["observed"] for b in bins],
            "o",
            color="tab:blue",
            label="observed frequency",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("forecast probability (mean within bin)")
        ax.set_ylabel("observed frequency of yes")
        what = "the model on the authors' reasons" if k == "model" else "the authors' own words"
        ax.set_title(f"{what} ({len(mine)} forecasts)", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def authors_figure(rows: list[dict[str, Any]]) -> str:
    """Each author's forecasts (a row per author) against what happened; a PNG data URI."""
    plt = _pyplot()
    authors = sorted({author_label(r) for r in rows})
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.55 * len(authors)), layout="constrained")
    for y, author in enumerate(authors):
        mine = [r for r in rows if author_label(r) == author]
        for j, r in enumerate(mine):
            dy = (j - (len(mine) - 1) / 2) * min(0.6 / max(len(mine), 1), 0.15)
            color = "tab:green" if r["o"] else "tab:red"
            if r["p_hdi_lo"] is not None and r["p_hdi_hi"] is not None:
                ax.plot(
                    [r["p_hdi_lo"], r["p_hdi_hi"]], [y + dy] * 2, color=color, lw=1.5, alpha=0.6
                )
            ax.plot(
                r["p_mean"],
                y + dy,
                "o" if r["kind"] == "model" else "D",
                color=color,
                markersize=7,
                markerfacecolor=color if r["kind"] == "model" else "white",
            )
    for label, style in (("model", "o"), ("stated by the author", "D")):
        ax.plot(
            [],
            [],
            style,
            color="black",
            markerfacecolor="black" if style == "o" else "white",
            label=label,
        )
    ax.plot([], [], "s", color="tab:green", label="came true")
    ax.plot([], [], "s", color="tab:red", label="did not")
    ax.set_yticks(range(len(authors)), authors)
    ax.set_ylim(-0.7, len(authors) - 0.3)
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("forecast probability of yes")
    ax.set_title("each forecast, with its 90% interval", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncols=4, frameon=False)
    return _png(fig)


# -- the page --------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def render_page(
    result: dict[str, Any], rows: list[dict[str, Any]], questions: list[dict[str, Any]]
) -> str:
    """``report.html`` of ``forecast scores``: one self-contained, autoescaped page."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("forecast", "ledger_templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["f"] = _fmt
    n = result["counts"]["resolved"]["questions"]
    return env.get_template("scores.html").render(
        result=result,
        rows=sorted(rows, key=lambda r: (author_label(r), r["question_id"], r["scenario_id"])),
        questions=questions,
        author_label=author_label,
        calibration=calibration_figure(rows) if n >= MIN_CALIBRATION else None,
        authors=authors_figure(rows) if rows else None,
        min_calibration=MIN_CALIBRATION,
        band=int(BAND * 100),
    )
