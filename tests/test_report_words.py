"""The report says each thing once and the same way (#14): one rounding for a figure
wherever it is printed, a quote shown once, a belief the data never touch shown once,
point masses drawn as points, rows with no effect hidden (and counted), Markdown
rendered, and the predictive check drawn as rates with intervals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from forecast import api
from forecast.report import figures
from forecast.report.tables import first_quoted, fmt_interval, pct, pct_row

ROOT = Path(__file__).resolve().parents[1]

# prior only (exact forward sampling, a few seconds): P(success) near 3%, one quote that
# backs two beliefs (not next to each other), and a constant belief
PRIOR = """
factors:
  strong:
    label: The leader is strong
    holds: likely
    why: He holds every lever.
  broke:
    label: The economy is broke
    holds: 1
    note: a fact at the date
stages:
  agreement:
    label: They agree
    base_rate: {belief: almost no chance, why: Talks never work.}
    effects:
      strong: {odds_ratio: lowers, why: He holds every lever.}
      broke: {odds_ratio: raises, note: the analyst's}
"""


def _write(folder: Path, body: str, csv: str | None = None) -> Path:
    """The scenario writer of conftest, for module-scoped fixtures (it is function-scoped)."""
    import textwrap

    head = (
        "schema: 1\nid: test\ntitle: A test scenario\n"
        "source: {outlet: Test, date: 2013-02-26}\n"
        "question: {text: Will it work?, success: It works (`agreement` = 1)., "
        "resolves: 2013-12-31}\n"
    )
    path = folder / "s.yaml"
    path.write_text(head + textwrap.dedent(body))
    if csv is not None:
        (folder / "rounds.csv").write_text(textwrap.dedent(csv).lstrip())
    return path


@pytest.fixture(scope="module")
def prior_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("prior")
    return api.run(api.prepare(_write(folder, PRIOR)), out=folder / "reports").folder


def test_one_figure_prints_one_string_in_the_sentence_and_the_tables(prior_folder):
    summary = json.loads((prior_folder / "summary.json").read_text())
    p = summary["p_success"]
    assert p["mean"] < 0.1  # the case the rule is about
    shown = pct(p["mean"], p["mcse"])
    # one decimal below 10%: never "3.68%"
    assert re.fullmatch(r"\d\.\d%", shown), shown
    assert pct_row(p)[0] == shown
    md = (prior_folder / "summary.md").read_text()
    answer = next(line for line in md.splitlines() if line.startswith("**Answer.**"))
    assert f"probability {shown} " in answer
    assert f"| P(success), prior only | {shown} |" in md
    html = (prior_folder / "report.html").read_text()
    assert f"<div class='big-number'>{shown}</div>" in html
    assert f"succeed with probability {shown} " in html
    assert f"<td>forecast</td><td class='num'>{shown}</td>" in html
    # no percentage anywhere in the words of the page has two decimals
    text = re.sub(r"data:image/png;base64,[^\"']*", "", html)
    assert not re.findall(r"\d+\.\d\d%", text)


def test_a_quote_that_backs_two_beliefs_is_shown_once(prior_folder):
    summary = json.loads((prior_folder / "summary.json").read_text())
    refs = first_quoted(summary["assumptions"])
    assert refs == {"stages.agreement.effects.strong.odds_ratio": "factors.strong.holds"}
    md = (prior_folder / "summary.md").read_text()
    assert md.count("He holds every lever.") == 1
    assert "(the quote of `factors.strong.holds` above)" in md
    html = (prior_folder / "report.html").read_text()
    assert html.count("He holds every lever.") == 1
    assert "the same quote as <a href='#a-factors-strong-holds'>" in html
    assert "id='a-factors-strong-holds'" in html


def test_a_constant_is_one_value_in_the_tables_and_a_point_in_the_figure(prior_folder, monkeypatch):
    summary = json.loads((prior_folder / "summary.json").read_text())
    (broke,) = [a for a in summary["assumptions"] if a["path"] == "factors.broke.holds"]
    assert fmt_interval(broke["prior"], False) == "1 (a single value)"
    assert "1 (a single value)" in (prior_folder / "summary.md").read_text()

    drawn = []
    monkeypatch.setattr(figures, "_png", lambda fig: drawn.append(fig) or "data:,")
    rng = np.random.default_rng(0)
    tree = xr.DataTree.from_dict(
        {"prior": xr.Dataset({"x": (("chain", "draw"), rng.beta(2, 5, (2, 200)))})}
    )
    figures.distributions(tree, ["x"], "prior", "value", constants={"c": 0.3})
    (fig,) = drawn
    panels = {ax.get_title(): ax for ax in fig.axes}
    point = panels["c"]
    texts = [t.get_text() for t in point.texts]
    assert any("always 0.3" in t for t in texts), texts
    # a vertical line and a marker at 0.3: no density curve (every line sits at x = 0.3)
    assert point.lines and all(np.allclose(line.get_xdata(), 0.3) for line in point.lines)
    density = panels["x"]
    assert any(np.ptp(line.get_xdata()) > 0.1 for line in density.lines)


def test_point_masses_are_found_per_panel():
    ds = xr.Dataset(
        {
            "p_stage": (
                ("chain", "draw", "stage"),
                np.dstack([np.full((2, 5), 0.4), np.eye(2, 5)]),
            ),
            "p_success": (("chain", "draw"), np.full((2, 5), 0.1)),
        },
        coords={"stage": ["a", "b"]},
    )
    assert figures.point_masses(ds) == {"p_stage\na": 0.4, "p_success": 0.1}


def test_rows_with_no_effect_are_hidden_and_counted(prior_folder, monkeypatch):
    from forecast.report.sensitivity import write_sensitivity

    labels: list[list[str]] = []
    real = figures.tornado
    monkeypatch.setattr(
        figures, "tornado", lambda rows, *a, **k: labels.append(a[4]) or real(rows, *a, **k)
    )

    def row(path, low, high):
        return {
            "path": path,
            "low": 0.1,
            "high": 0.9,
            "p_success_low": low,
            "p_success_high": high,
            "p_success_low_mcse": 0.0,
            "p_success_high_mcse": 0.0,
            "swing": abs(high - low),
            "swing_mcse": 0.0,
            "method_low": "forward",
            "method_high": "forward",
            "moved": "a Beta keeps its concentration",
        }

    result = {
        "schema": 1,
        "id": "test",
        "p_success_base": 0.03,
        "p_success_base_mcse": 0.0,
        "base_method": "forward",
        "tornado": [
            row("stages.agreement.base_rate.belief", 0.01, 0.06),
            row("factors.broke.in_reference", 0.03, 0.03),
            row("factors.strong.in_reference", 0.03, 0.03),
        ],
        "psense": None,
        "method": "test",
    }
    write_sensitivity(result, prior_folder)
    assert labels == [["stages.agreement.base_rate.belief"]]
    html = (prior_folder / "report.html").read_text()
    section = html[html.index("<!-- sensitivity -->") : html.index("<!-- /sensitivity -->")]
    assert "factors.broke.in_reference" not in section
    assert "2 beliefs with no effect hidden" in section


def _compare_result() -> dict:
    st = {"mean": 0.2, "mcse": 0.001, "median": 0.2, "hdi_90": [0.1, 0.3]}
    swap = {
        "p_success_a": 0.2,
        "p_success_swapped": 0.3,
        "p_success_mcse": 0.001,
        "delta_mcse": 0.001,
        "method": "forward",
        "note": "moves **a lot** in `b`",
    }
    return {
        "scenarios": {n: {"title": n, "p_success": st} for n in ("a", "b")},
        "pairs": [
            {
                "a": "a",
                "b": "b",
                "p_a_greater": 0.5,
                "p_a_greater_mcse": 0.01,
                "recommendations": {"a": "talk", "b": "wait"},
                "flips": ["factors.x.holds"],
                "attribution": [
                    {**swap, "path": "factors.x.holds", "delta": 0.1},
                    {**swap, "path": "factors.y.holds", "delta": 0.0},
                ],
                "gap": None,
                "differences": [{"path": "factors.x.holds", "a": "likely", "b": "unlikely"}],
            }
        ],
        "attribution_method": "test",
    }


def test_compare_renders_its_markdown_and_hides_swaps_with_no_effect():
    from forecast.report import compare

    result = _compare_result()
    page = compare.html(result, {"overlay": "data:,"})
    assert "<code>a</code> → <strong>talk</strong>" in page
    assert "moves <strong>a lot</strong> in <code>b</code>" in page
    assert "**" not in page and "`" not in page
    assert "factors.y.holds" not in page and "1 swap with no effect hidden" in page
    md = compare.markdown(result)
    assert "factors.y.holds" not in md and "1 swap with no effect hidden" in md


def test_markdown_in_the_page_is_rendered_and_html_in_it_escaped():
    from forecast.report.html import inline_markdown

    assert inline_markdown("the `agreement` column") == "the <code>agreement</code> column"
    assert inline_markdown("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"


def test_the_question_success_text_renders_its_code(prior_folder):
    html = (prior_folder / "report.html").read_text()
    assert "It works (<code>agreement</code> = 1)." in html


@pytest.fixture(scope="module")
def fitted(bundled_run) -> Path:
    """The session's fit of the Commentary scenario (NUTS, with data): no fit of its own."""
    result, out = bundled_run
    assert result.exit_code == 0, result.output
    return out / "commentary-2013"


@pytest.mark.slow
def test_a_belief_the_data_never_touch_shows_its_prior_once(fitted):
    summary = json.loads((fitted / "summary.json").read_text())
    rows = {a["path"]: a for a in summary["assumptions"]}
    # whether the Leader needs enmity now: no reference round observes it
    holds = rows["factors.supreme_leader_opposes.holds"]
    rate = rows["stages.agreement.base_rate.belief"]
    assert holds["informed_by_data"] is False and rate["informed_by_data"] is True
    # exactly its prior: no sampling noise that would look like an update
    assert holds["posterior"] == holds["prior"]
    assert rate["posterior"] != rate["prior"]
    md = (fitted / "summary.md").read_text()
    (line,) = [
        x for x in md.splitlines() if x.startswith("| `factors.supreme_leader_opposes.holds`")
    ]
    assert "*not informed by the data: its prior*" in line
    untouched = [a for a in summary["assumptions"] if not a["informed_by_data"]]
    html = (fitted / "report.html").read_text()
    assert html.count("not informed by the data: its prior") == len(untouched) == 2
    index = json.loads((fitted / "figures" / "index.json").read_text())
    assert {"assumptions", "untouched", "ppc"} <= set(index["figures"])


@pytest.mark.slow
def test_the_predictive_check_is_rates_with_intervals(fitted, monkeypatch):
    """The figure is drawn from the table's own rows: each group's replicated rate as a
    point with its 90% interval as error bars, the observed rate as a dot beside it."""
    from matplotlib.container import ErrorbarContainer

    rows = json.loads((fitted / "summary.json").read_text())["checks"]["ppc"]
    drawn = []
    monkeypatch.setattr(figures, "_png", lambda fig: drawn.append(fig) or "data:,")
    figures.ppc_rates(rows, {r["stage"]: r["stage"] for r in rows})
    (fig,) = drawn
    panels = [ax for ax in fig.axes if ax.containers]
    assert len(panels) == len({r["stage"] for r in rows})  # one panel per stage
    for ax in panels:
        stage = ax.get_title().removeprefix("Stage: ")
        mine = [r for r in rows if r["stage"] == stage]
        (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        x, _ = bars.lines[0].get_data()
        assert np.allclose(x, [r["replicated_mean"] for r in mine])
        (segments,) = bars.lines[2]
        lo_hi = [sorted(seg[:, 0]) for seg in segments.get_segments()]
        assert np.allclose(lo_hi, [r["replicated_90"] for r in mine])
        observed = [line for line in ax.lines if line is not bars.lines[0]]
        assert any(
            np.allclose(line.get_xdata(), [r["observed_rate"] for r in mine]) for line in observed
        )
        # no density: nothing filled, and the only line collection is the error bars'
        assert [type(c).__name__ for c in ax.collections] == ["LineCollection"]


def test_the_vienna_example_uses_the_bundled_data_and_checks_clean(cli):
    examples = ROOT / "scenarios" / "examples"
    copy = (examples / "data" / "negotiation_rounds.csv").read_bytes()
    assert copy == (ROOT / "scenarios" / "data" / "negotiation_rounds.csv").read_bytes()
    r = cli("check", examples / "vienna-2021.yaml")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output.lower()
    assert "iran_vienna_2021: 6  ← the forecast's group" in r.output
    text = (examples / "vienna-2021.yaml").read_text()
    assert "why:" not in text and "text:" not in text.split("question:")[0]


def test_a_quote_in_its_sentence_stops_where_another_rows_quote_begins():
    from forecast.report.tables import trimmed_quotes

    rows = [
        {
            "path": "a",
            "why": "which has been weakened",
            "quote": {
                "before": "The timing leaves little doubt that it’s geared to his standing, ",
                "quote": "which has been weakened",
                "after": ", the Leader would reject any new deal he reached, as before.",
            },
        },
        {
            "path": "b",
            "why": "The timing leaves little doubt that it's geared to his standing",
            "quote": None,
        },
    ]
    (q,) = trimmed_quotes(rows, ["the Leader would reject any new deal he reached"]).values()
    # both neighbours are other rows' quotes (one with a typographic apostrophe): cut
    assert (q["before"], q["after"]) == ("", "")
    (q,) = trimmed_quotes(rows[:1]).values()  # alone, the whole sentence is its context
    assert q["before"].startswith("…The timing") and q["after"].endswith("as before.…")
