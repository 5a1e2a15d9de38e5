"""Reference data: filters, the strict `before`, later stages, blanks."""

import pytest

from forecast import api
from forecast.errors import ScenarioError

CSV = """
round_id,track,start_date,end_date,agreement,implemented_1yr,leader_backing,interim,source
a1,a,2010-01-01,2010-01-02,1,1,1,0,x
a2,a,2011-06-01,2011-06-03,1,0,0,1,x
b1,b,2012-01-01,2012-01-02,0,,1,0,x
b2,b,2013-02-25,2013-02-26,0,,1,0,x
c1,c,2012-05-01,,1,,,0,x
"""

STAGES = """
factors:
  leader: {holds: likely, column: leader_backing, in_reference: likely}
stages:
  agreement:
    base_rate: {belief: unlikely}
    effects: {leader: {odds_ratio: raises}}
    column: agreement
  implementation:
    base_rate: {belief: likely}
    column: implemented_1yr
    known_after_days: 365
"""


def prepare(write_scenario, reference: str):
    return api.prepare(write_scenario(STAGES + reference, csv=CSV))


def test_before_is_strict_and_defaults_to_the_source_date(write_scenario):
    data = prepare(write_scenario, "reference: {data: rounds.csv}").data
    # b2 ends on 2013-02-26, the source date: not strictly before, so not known
    assert "b2" not in data.round_id
    assert data.round_id == ["a1", "a2", "b1", "c1"]
    rows = dict(zip(data.round_id, data.y.tolist(), strict=True))
    assert rows["a1"] == [1, 1]
    assert rows["a2"] == [1, 0]  # 2011-06-03 + 365 days < 2013-02-26
    assert rows["b1"] == [0, -1]  # failed the first stage: the second is not observed
    # c1 passed but its implementation is blank: known_after_days has not passed either
    assert rows["c1"] == [1, -1]


def test_known_after_days_hides_outcomes_not_yet_known(write_scenario):
    data = prepare(write_scenario, "reference: {data: rounds.csv, before: 2012-03-01}").data
    rows = dict(zip(data.round_id, data.y.tolist(), strict=True))
    assert rows["a2"] == [1, -1]  # agreement known, implementation not until 2012-06-02
    assert "c1" not in data.round_id


def test_filter_and_exclude(write_scenario):
    data = prepare(
        write_scenario,
        "reference: {data: rounds.csv, filter: {track: [a, b]}, exclude: {interim: 1}}",
    ).data
    assert data.round_id == ["a1", "b1"]


def test_blank_factor_values_are_unknown(write_scenario):
    data = prepare(write_scenario, "reference: {data: rounds.csv}").data
    x = dict(zip(data.round_id, data.x[:, 0].tolist(), strict=True))
    assert x == {"a1": 1, "a2": 0, "b1": 1, "c1": -1}


def test_blank_factor_without_in_reference_is_an_error(write_scenario):
    body = STAGES.replace(", in_reference: likely", "") + "reference: {data: rounds.csv}"
    with pytest.raises(ScenarioError) as info:
        api.prepare(write_scenario(body, csv=CSV))
    assert "in_reference" in str(info.value) and "rounds.csv:6" in str(info.value)


def test_factor_without_column_or_rate_warns_of_double_counting(write_scenario):
    body = STAGES + "  # \nreference: {data: rounds.csv}"
    body = body.replace("factors:\n", "factors:\n  mood: {holds: likely}\n")
    prep = api.prepare(write_scenario(body, csv=CSV))
    assert any("counted twice" in w.message for w in prep.warnings)


def test_symlink_out_of_the_tree_is_refused(write_scenario, tmp_path):
    outside = tmp_path.parent / "outside.csv"
    outside.write_text(CSV.lstrip())
    (tmp_path / "link.csv").symlink_to(outside)
    path = write_scenario(STAGES + "reference: {data: link.csv}")
    with pytest.raises(ScenarioError, match="leaves the scenario's folder tree"):
        api.prepare(path)
    assert api.prepare(path, allow_outside=True).data.n_rounds == 4


def test_no_rounds_before_the_date_falls_back_to_the_prior(write_scenario):
    prep = prepare(write_scenario, "reference: {data: rounds.csv, before: 2000-01-01}")
    assert prep.data is None
    assert any("no reference round" in w.message for w in prep.warnings)


def test_a_new_case_group_must_be_said_and_the_report_says_so(tmp_path):
    """A case_group with no rounds: an error (a typo forecasts an unseen track silently)
    unless case_group_is_new, and then the summary's notes say so."""
    from forecast import api
    from forecast.errors import ScenarioError
    from forecast.summary import model_notes

    (tmp_path / "rounds.csv").write_text(
        "round_id,track,start_date,agreement\nr1,a,2010-01-01,1\nr2,b,2011-01-01,0\n"
    )
    body = (
        "schema: 1\nid: t\ntitle: T\nsource: {outlet: X, date: 2013-02-26}\n"
        "question: {text: Q?, success: S, resolves: 2013-12-31}\n"
        "stages: {agreement: {base_rate: {belief: unlikely, note: n}, column: agreement}}\n"
        "reference: {data: rounds.csv, group: track, case_group: c%s}\n"
    )
    path = tmp_path / "s.yaml"
    path.write_text(body % "")
    with pytest.raises(ScenarioError, match="case_group_is_new: true"):
        api.check(path)
    path.write_text(body % ", case_group_is_new: true")
    loaded = api.check(path)
    assert loaded.data.n_rounds == 2
    (note,) = [n for n in model_notes(loaded.spec, loaded.data) if "no rounds" in n]
    assert "group c has no rounds in the reference class (case_group_is_new)" in note
    lines = loaded.data.describe(loaded.spec)  # what `check` prints
    assert "c: 0 (the forecast's group: no rounds, a fresh draw)" in " ".join(lines)
