"""Testing a view: --set, compare and sensitivity."""

import json

import pytest
from conftest import BUNDLED

from forecast import api

VIEW = """
factors:
  leader: {holds: likely, why: a}
stages:
  agreement:
    base_rate: {belief: unlikely, why: b}
    effects:
      leader: {odds_ratio: lowers, why: c}
sampling: {draws: 1000, chains: 2, seed: 11}
"""


def test_set_changes_the_right_node_and_the_folder(write_scenario):
    path = write_scenario(VIEW)
    base = api.prepare(path)
    changed = api.prepare(path, ["factors.leader.holds=very unlikely"])
    assert changed.loaded.spec.factors["leader"].holds.word == "very unlikely"
    assert changed.loaded.spec.stages == base.loaded.spec.stages
    assert changed.folder_name.startswith("test+") and base.folder_name == "test"
    assert changed.loaded.overrides == ["factors.leader.holds=very unlikely"]
    structured = api.prepare(path, ["stages.agreement.base_rate.belief={between: [0.1, 0.3]}"])
    assert structured.loaded.spec.stages["agreement"].base_rate.belief.params == (0.1, 0.3)
    # a value equal to the file's own is no change
    assert api.prepare(path, ["factors.leader.holds=likely"]).folder_name == "test"


def test_set_records_overrides_in_the_report(write_scenario, tmp_path, cli):
    path = write_scenario(VIEW)
    r = cli("run", path, "--set", "factors.leader.holds=unlikely", "--out", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    (summary,) = json.loads(r.stdout)
    assert summary["provenance"]["overrides"] == ["factors.leader.holds=unlikely"]
    folders = [p.name for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 1 and folders[0].startswith("test+")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("factors.leadr.holds=likely", "did you mean 'factors.leader'"),
        ("factors.leader.hold=likely", "did you mean 'factors.leader.holds'"),
        ("stages.agreement.base_rate.belief=likley", "did you mean 'likely'"),
        ("factors.leader.holds=1.5", "(value given with --set)"),
        ("nonsense", "PATH=VALUE"),
    ],
)
def test_bad_set_exits_2_with_a_suggestion(write_scenario, tmp_path, cli, item, message):
    path = write_scenario(VIEW)
    for command in (["check", path], ["run", path, "--out", tmp_path / "out"]):
        r = cli(*command, "--set", item)
        assert r.exit_code == 2, r.output
        assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_compare_with_itself(write_scenario, tmp_path):
    path = write_scenario(VIEW)
    result, folder = api.compare([path, path], out=tmp_path)
    assert list(result["scenarios"]) == ["test", "test#2"]
    assert result["differences"] == [] and result["attribution"] == []
    # the same draws on both sides: P(A > B) is one half by symmetry (ties count one half)
    assert result["p_a_greater"] == pytest.approx(0.5, abs=0.01)
    assert {p.name for p in folder.iterdir()} == {"compare.json", "compare.md", "report.html"}


def test_one_difference_is_attributed_to_that_path(write_scenario, tmp_path):
    a = write_scenario(VIEW, name="a.yaml")
    b = write_scenario(
        VIEW.replace("holds: likely", "holds: very unlikely"), id="other", name="b.yaml"
    )
    result, _ = api.compare([a, b], out=tmp_path)
    assert [d["path"] for d in result["differences"]] == ["factors.leader.holds"]
    (row,) = result["attribution"]
    assert row["path"] == "factors.leader.holds" and row["method"] == "forward"
    # swapping the only difference turns A into B: 20,000 forward draws against B's
    # 2,000 give a Monte Carlo standard error below 0.004 for the difference of means
    assert row["p_success_swapped"] == pytest.approx(
        result["scenarios"]["other"]["p_success"]["mean"], abs=0.012
    )
    assert (
        row["delta"] > 0
    )  # the leader lowers the odds; believing he is less likely to hold raises them
    assert 0 < result["p_a_greater"] < 0.5


def test_compare_reads_a_report_folder_without_refitting(write_scenario, tmp_path, monkeypatch):
    a = write_scenario(VIEW, name="a.yaml")
    b = write_scenario(VIEW.replace("lowers", "raises"), id="other", name="b.yaml")
    first, _ = api.compare([a, b], out=tmp_path)
    calls = []
    real_run = api.run

    def counting_run(prep, *args, **kwargs):
        calls.append(prep.id)
        return real_run(prep, *args, **kwargs)

    monkeypatch.setattr(api, "run", counting_run)
    again, _ = api.compare([tmp_path / "test", b], out=tmp_path)
    assert calls == ["other"]  # only b, the scenario file, was fitted
    assert again["scenarios"]["test"]["p_success"] == first["scenarios"]["test"]["p_success"]


def test_sensitivity_prior_only(write_scenario, tmp_path):
    path = write_scenario(VIEW)
    result, folder = api.sensitivity(path, out=tmp_path)
    assert result["psense"] is None
    rows = {r["path"]: r for r in result["tornado"]}
    base_rate = rows["stages.agreement.base_rate.belief"]
    assert base_rate["low"] < base_rate["high"]
    assert base_rate["p_success_low"] < result["p_success_base"] < base_rate["p_success_high"]
    assert set(rows) == {
        "factors.leader.holds",
        "stages.agreement.base_rate.belief",
        "stages.agreement.effects.leader.odds_ratio",
    }
    saved = json.loads((folder / "sensitivity.json").read_text())
    assert saved["tornado"] == result["tornado"]
    html = (folder / "report.html").read_text()
    assert html.count("<h2>Sensitivity</h2>") == 1
    api.sensitivity(path, out=tmp_path)  # a second run replaces the section
    assert (folder / "report.html").read_text().count("<h2>Sensitivity</h2>") == 1


@pytest.mark.slow
def test_reweighted_agrees_with_refit_on_a_bundled_scenario(tmp_path):
    """PSIS-reweighted prior draws against NUTS for the Diplomat view with a changed belief."""
    import arviz_stats as azs

    from forecast.fit import prior_importance, run_fit
    from forecast.model import build_model

    prep = api.prepare(BUNDLED[1], ["stages.agreement.base_rate.belief=likely"])
    model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
    reweighted = prior_importance(model, api.VARIANT_DRAWS, prep.settings.seed)
    assert reweighted.reliable
    fitted = run_fit(model, has_data=True, draws=1000, chains=4, seed=5)
    draws = fitted.tree["posterior"]["p_success"]
    refit = float(draws.mean())
    # Monte Carlo standard errors of both means: NUTS from ArviZ's MCSE, PSIS from the
    # effective sample size of its weights; they must agree within four of their combined se
    se_nuts = float(azs.mcse(draws, method="mean"))
    se_psis = float(draws.std()) / reweighted.ess**0.5
    assert abs(reweighted.p_success - refit) < 4 * (se_nuts**2 + se_psis**2) ** 0.5


@pytest.mark.slow
def test_psense_with_data(write_scenario, tmp_path):
    from test_model import CSV_3_OF_20

    path = write_scenario(
        "stages:\n  agreement:\n    base_rate: {belief: unlikely, why: x}\n    column: agreement\n"
        "reference: {data: rounds.csv}\nsampling: {draws: 1000, chains: 2, seed: 3}\n",
        csv=CSV_3_OF_20,
    )
    result, _ = api.sensitivity(path, out=tmp_path)
    (row,) = result["psense"]
    assert row["variable"] == "stages.agreement.base_rate.belief"
    assert row["prior"] > 0 and row["likelihood"] > 0 and row["diagnosis"]


def test_every_swap_between_the_bundled_scenarios_is_a_valid_scenario():
    """Each assumption of one author, put into the other alone, makes a valid scenario."""
    from forecast.compare import differences, swap

    a, b = (api.prepare(p) for p in BUNDLED)
    for first, second in ((a, b), (b, a)):
        diffs = differences(first.loaded, first.priors, second.loaded, second.priors)
        assert len(diffs) > 10
        for d in diffs:
            api.prepare_raw(swap(first.loaded, second.loaded, d.path), first)  # raises if invalid
