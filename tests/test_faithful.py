"""Faithful to the article (PRODUCT §1: Quotes, note:, Prior strength, Resolution).

Quotes are checked against ``source.text``; every assumption is the author's (quoted) or
the analyst's (noted); a belief's weight in reference rounds is shown and a base rate
that outweighs the history is warned of; a question that cannot resolve in time is
warned of; the author's own bottom line is reported beside the model's answer.
"""

from __future__ import annotations

import json

import pytest
from scipy import stats
from test_beliefs import mass_in

from forecast import api
from forecast.beliefs import BetaFits, fit, parse_belief, scale_ranges
from forecast.quotes import Found, Missing, locate, normalise
from forecast.scenario import assumptions, load

ARTICLE = normalise(
    """Talks resume this week. The odds of a breakthrough? Close to zero, for reasons
    that a scholar explains.   The regime “can’t afford” to bargain away its programme – it
    fears for its survival. Nothing else."""
)


@pytest.mark.parametrize(
    "quote",
    [
        "Close to zero",
        'The regime "can\'t afford" to bargain',  # typographic quotes normalised
        "its programme - it fears",  # an en dash with spaces is a hyphen
        "programme—it fears",  # ... and an em dash without
        "for reasons\n that a scholar",  # whitespace and line breaks collapse
        "The odds of a breakthrough? ... for its survival.",  # ... skips text
        "Talks resume … Close to zero",  # so does …
    ],
)
def test_quotes_are_found_after_normalising(quote):
    assert isinstance(locate(quote, ARTICLE), Found)


def test_a_quote_must_be_verbatim_and_its_parts_in_order():
    miss = locate("The odds of success are good", ARTICLE)
    assert isinstance(miss, Missing)
    assert miss.words.startswith("success are good") and miss.matched == 3
    # each part is right, but not in the article's order
    assert isinstance(locate("Close to zero ... Talks resume", ARTICLE), Missing)
    assert isinstance(locate("close to zero", ARTICLE), Missing)  # case is the author's


def test_a_quote_is_shown_inside_its_sentence():
    found = locate("Close to zero", ARTICLE)
    assert found.before == ""  # the sentence starts with the quote (after "breakthrough?")
    assert found.after == ", for reasons that a scholar explains."
    # a skip shows as one ellipsis, not as the text it skipped
    found = locate("The odds of a breakthrough? ... that a scholar explains.", ARTICLE)
    assert found.quote == "The odds of a breakthrough? … that a scholar explains."
    found = locate("to bargain away", ARTICLE)
    assert found.before == 'The regime "can\'t afford"'
    assert found.after.endswith("for its survival.")


def test_widened_word_keeps_its_range_with_less_mass(tmp_path):
    fits, ranges = BetaFits(tmp_path / "fits.json"), scale_ranges()
    plain = fit(parse_belief("unlikely", "probability"), ranges, fits)
    wide = fit(parse_belief({"word": "unlikely", "mass": 0.5}, "probability"), ranges, fits)
    assert mass_in(wide, 0.20, 0.45) == pytest.approx(0.5, abs=0.005)
    assert mass_in(plain, 0.20, 0.45) == pytest.approx(0.9, abs=0.005)
    # a wider belief weighs less: fewer reference rounds' worth of information
    assert wide.strength < plain.strength / 3
    assert parse_belief({"word": "unlikely", "mass": 0.5}, "probability").written() == {
        "word": "unlikely",
        "mass": 0.5,
    }


BODY = """
source: {{outlet: Test, date: 2013-02-26, text: article.txt}}
question:
  id: {qid}
  text: Will it work?
  success: It works.
  resolves: {resolves}
  author_forecast: {{belief: almost no chance, why: "Close to zero"}}
factors:
  enmity:
    holds: likely
    why: "to bargain away its programme"
    in_reference: {{belief: {{between: [0.2, 0.6]}}, note: the analyst's guess for past rounds}}
stages:
  agreement:
    base_rate: {{belief: unlikely, note: the article gives no base rate}}
    effects:
      enmity: {{odds_ratio: strongly lowers, why: "it fears for its survival"}}
  implementation:
    base_rate: {{belief: {{between: [0.3, 0.9]}}}}
    known_after_days: 365
"""


def scenario(tmp_path, qid="my-question", resolves="2014-06-30"):
    (tmp_path / "article.txt").write_text(ARTICLE)
    path = tmp_path / "s.yaml"
    text = BODY.format(qid=qid, resolves=resolves)
    head = "schema: 1\nid: faithful\ntitle: T\n"
    path.write_text(head + text)
    return path


def test_every_assumption_is_marked_author_analyst_or_neither(tmp_path):
    loaded = api.check(scenario(tmp_path))
    basis = {a.path: a.basis for a in assumptions(loaded.spec)}
    assert basis == {
        "factors.enmity.holds": "author",
        "factors.enmity.in_reference": "analyst",  # its own note, not the factor's quote
        "stages.agreement.base_rate.belief": "analyst",
        "stages.agreement.effects.enmity.odds_ratio": "author",
        "stages.implementation.base_rate.belief": None,
    }
    unjustified = [w.field for w in loaded.warnings if "neither a `why:`" in w.message]
    assert unjustified == ["stages.implementation.base_rate"]


def test_question_id_names_the_event_and_defaults_to_the_scenario_id(tmp_path):
    assert load(scenario(tmp_path)).spec.question_id == "my-question"
    path = tmp_path / "s.yaml"
    path.write_text(path.read_text().replace("  id: my-question\n", ""))
    assert load(path).spec.question_id == "faithful"


def test_resolving_before_the_last_stage_can_be_known_is_warned(tmp_path):
    def warned(resolves):
        loaded = load(scenario(tmp_path, resolves=resolves))
        return [w.message for w in loaded.warnings if w.field == "question.resolves"]

    # 2013-02-26 + 365 days = 2014-02-26: the implementation stage cannot be known earlier
    (message,) = warned("2013-12-31")
    assert "no earlier than 2014-02-26" in message
    assert warned("2014-02-26") == []


CSV = "round_id,start_date,agreement,enmity\n" + "".join(
    f"r{i},2010-0{1 + i % 9}-01,{int(i % 3 == 0)},{i % 2}\n" for i in range(12)
)


def test_a_base_rate_that_outweighs_the_history_is_warned(tmp_path):
    path = scenario(tmp_path)
    (tmp_path / "rounds.csv").write_text(CSV)
    text = path.read_text()
    text = text.replace(
        "    effects:\n      enmity", "    column: agreement\n    effects:\n      enmity"
    )
    text = text.replace("    in_reference:", "    column: enmity\n    in_reference:")
    path.write_text(text + "reference: {data: rounds.csv}\n")

    def strength_warnings(belief):
        p = tmp_path / "t.yaml"
        p.write_text(path.read_text().replace("belief: unlikely,", f"belief: {belief},"))
        return [w.message for w in api.check(p).warnings if w.field.endswith("base_rate.belief")]

    # "unlikely" is Beta(12.0, 24.8): 36.8 rounds' worth, against 12 rounds observed
    (message,) = strength_warnings("unlikely")
    assert "weighs as much as 37 reference rounds, more than the 12 observed" in message
    assert strength_warnings("{word: unlikely, mass: 0.5}") == []


def test_a_quote_not_in_the_article_stops_check_and_run(tmp_path, cli):
    path = scenario(tmp_path)
    path.write_text(path.read_text().replace('"Close to zero"', '"Close to nothing"'))
    for command in (["check", path], ["run", path, "--out", tmp_path / "reports"]):
        result = cli(*command)
        assert result.exit_code == 2, result.output
        assert "question.author_forecast.why" in result.output
        assert "“nothing…” not found after the first 2 words" in result.output
    assert not (tmp_path / "reports").exists()


def test_the_report_shows_basis_strength_quotes_in_context_and_the_authors_view(tmp_path, cli):
    path = scenario(tmp_path)
    out = tmp_path / "reports"
    result = cli("run", path, "--out", out, "--draws", "500", "--chains", "2")
    assert result.exit_code == 0, result.output
    (folder,) = out.glob("faithful+*")  # --draws and --chains change the numbers
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["question"]["id"] == "my-question"
    rows = {a["path"]: a for a in summary["assumptions"]}
    effect = rows["stages.agreement.effects.enmity.odds_ratio"]
    assert effect["basis"] == "author" and effect["strength"] is None  # not a Beta belief
    assert effect["quote"] == {
        "before": 'The regime "can\'t afford" to bargain away its programme-',
        "quote": "it fears for its survival",
        "after": ".",
    }
    base = rows["stages.agreement.base_rate.belief"]
    assert base["basis"] == "analyst" and base["note"] == "the article gives no base rate"
    assert base["strength"] == pytest.approx(36.8, abs=0.05)  # Beta(12.0, 24.8)
    assert rows["stages.implementation.base_rate.belief"]["basis"] is None

    # the author's own bottom line: "almost no chance" is Beta(5.33, 170.06), exactly
    af = summary["question"]["author_forecast"]
    a, b = 5.329657, 170.055868
    assert af["mean"] == pytest.approx(a / (a + b), abs=1e-4) and af["mcse"] == 0
    lo, hi = af["hdi_90"]
    assert stats.beta.cdf(hi, a, b) - stats.beta.cdf(lo, a, b) == pytest.approx(0.9, abs=1e-3)
    # the HDI of a unimodal density has equal density at its ends
    assert stats.beta.pdf(lo, a, b) == pytest.approx(stats.beta.pdf(hi, a, b), rel=0.01)
    assert af["basis"] == "author" and af["quote"]["quote"] == "Close to zero"

    html = (folder / "report.html").read_text()
    md = (folder / "summary.md").read_text()
    assert "The author's own bottom line" in html and "The author's own bottom line" in md
    assert "<mark>it fears for its survival</mark>" in html
    assert "weighs as 37 rounds" in html
    assert html.count("class='basis analyst'") >= 2 + 1  # two rows and the legend
    assert "| analyst | *Note:* the article gives no base rate |" in md
