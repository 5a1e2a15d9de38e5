"""Testing a view: --set, compare and sensitivity."""

import json
from pathlib import Path

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


def test_two_scenario_files_with_one_id_keep_their_own_reports(write_scenario, tmp_path):
    """The second is written to <id>_2, not over the first (whose fit A's swaps reuse)."""
    a = write_scenario(VIEW, name="a.yaml")
    b = write_scenario(VIEW.replace("holds: likely", "holds: very unlikely"), name="b.yaml")
    result, _ = api.compare([a, b], out=tmp_path)
    assert list(result["scenarios"]) == ["test", "test#2"]
    for label, folder in (("test", "test"), ("test#2", "test_2")):
        written = json.loads((tmp_path / folder / "summary.json").read_text())
        assert written["p_success"] == result["scenarios"][label]["p_success"]
        assert Path(result["scenarios"][label]["report"]) == tmp_path / folder
    assert (
        result["scenarios"]["test"]["p_success"]["mean"]
        != result["scenarios"]["test#2"]["p_success"]["mean"]
    )


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

    from forecast import views

    monkeypatch.setattr(views, "run", counting_run)  # compare fits through views.run
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
    # each end carries its Monte Carlo error; the swing's is paired, so smaller than the
    # two ends' errors combined (both ends reuse the same prior draws)
    for r in rows.values():
        assert r["p_success_low_mcse"] > 0 and r["p_success_high_mcse"] > 0
        assert r["swing"] == pytest.approx(abs(r["p_success_high"] - r["p_success_low"]), abs=2e-3)
        assert (
            r["swing_mcse"] < (r["p_success_low_mcse"] ** 2 + r["p_success_high_mcse"] ** 2) ** 0.5
        )
        assert r["moved"]
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

    from forecast.fit import run_fit
    from forecast.model import build_model
    from forecast.psis import importance

    prep = api.prepare(BUNDLED[1], ["stages.agreement.base_rate.belief=likely"])
    model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
    reweighted = importance(model, api.VARIANT_DRAWS, prep.settings.seed)
    assert reweighted.reliable
    fitted = run_fit(model, has_data=True, draws=1000, chains=4, seed=5)
    draws = fitted.tree["posterior"]["p_success"]
    refit = float(draws.mean())
    # Monte Carlo standard errors of both means: NUTS from ArviZ's MCSE, PSIS from the
    # effective sample size of its weights; they must agree within four of their combined se
    se_nuts = float(azs.mcse(draws, method="mean"))
    se_psis = reweighted.p_success_mcse
    assert 0 < se_psis < 0.01
    assert abs(reweighted.p_success - refit) < 4 * (se_nuts**2 + se_psis**2) ** 0.5


POSTERIOR_PROPOSAL = """
factors:
  leader: {holds: 0.6, column: leader}
stages:
  agreement:
    base_rate: {belief: {beta: [2, 8]}, why: x}
    effects: {leader: {odds_ratio: {lognormal: [0, 0.8]}, why: x}}
    column: agreement
reference: {data: rounds.csv}
sampling: {draws: 1000, chains: 4, seed: 11}
"""


@pytest.mark.slow
def test_posterior_proposal_reweighting_agrees_with_nuts_refits(write_scenario, tmp_path):
    """The path compare and sensitivity take: the base fit's posterior draws reweighted
    to a changed prior, against a NUTS fit of the changed scenario."""
    import arviz_stats as azs

    from forecast.fit import run_fit
    from forecast.model import build_model

    csv = "round_id,start_date,agreement,leader\n" + "\n".join(
        f"r{i},2010-01-{i + 1:02d},{int(i % 4 == 0)},{i % 2}" for i in range(24)
    )
    path = write_scenario(POSTERIOR_PROPOSAL, csv=csv)
    prep = api.prepare(path)
    folder = api.run(prep, out=tmp_path).folder
    base = api.BaseFit.from_report(prep, folder)
    for item in (
        "stages.agreement.base_rate.belief={beta: [3, 7]}",
        "stages.agreement.effects.leader.odds_ratio={lognormal: [-0.3, 0.6]}",
    ):
        changed = api.prepare(path, [item])
        v = api.evaluate(changed, base=base)
        assert (v.method, v.proposal) == ("reweighted", "posterior"), v
        assert v.ess >= 400 and v.pareto_k < 0.7
        model = build_model(changed.loaded.spec, changed.priors, changed.data)
        draws = run_fit(model, has_data=True, draws=1000, chains=4, seed=3).tree["posterior"]
        refit, se_nuts = float(draws["p_success"].mean()), azs.mcse(draws["p_success"])
        # both are Monte Carlo estimates of the same posterior mean: within four of their
        # combined standard errors (each reported by the tool itself)
        combined = (float(se_nuts) ** 2 + v.mcse**2) ** 0.5
        assert abs(v.p_success - refit) < 4 * combined, (item, v.p_success, refit, combined)


@pytest.mark.slow
def test_psense_with_data(write_scenario, tmp_path):
    from test_model import CSV_3_OF_20

    path = write_scenario(
        "stages:\n  agreement:\n    base_rate: {belief: unlikely, why: x}\n    column: agreement\n"
        "reference: {data: rounds.csv}\nsampling: {draws: 1000, chains: 2, seed: 3}\n",
        csv=CSV_3_OF_20,
    )
    result, _ = api.sensitivity(path, out=tmp_path)
    rows = {r["variable"]: r for r in result["psense"]}
    row = rows["stages.agreement.base_rate.belief"]
    assert row["touched_by_data"] and row["prior"] > 0 and row["likelihood"] > 0
    # one stage, no factors: P(success) is the base rate, so its sensitivity is the same
    assert rows["p_success"]["prior"] == pytest.approx(row["prior"], abs=1e-3)
    assert row["p_success_prior"] == pytest.approx(row["prior"], abs=1e-3)
    assert set(rows) == {"stages.agreement.base_rate.belief", "p_success"}


@pytest.mark.slow
def test_psense_lists_beliefs_the_data_never_touch(write_scenario, tmp_path):
    from test_model import CSV_3_OF_20

    path = write_scenario(
        "factors:\n  mood: {holds: {beta: [2, 2]}}\n"
        "stages:\n  agreement:\n    base_rate: {belief: unlikely, why: x}\n"
        "    effects: {mood: {odds_ratio: raises, why: x}}\n    column: agreement\n"
        "reference: {data: rounds.csv}\nsampling: {draws: 1000, chains: 2, seed: 3}\n",
        csv=CSV_3_OF_20,
    )
    result, _ = api.sensitivity(path, out=tmp_path)
    rows = {r["variable"]: r for r in result["psense"]}
    # the data have no mood column: mood's holds and its effect are untouched by them
    for name in ("factors.mood.holds", "stages.agreement.effects.mood.odds_ratio"):
        assert not rows[name]["touched_by_data"] and rows[name]["prior"] is None
        assert "not touched" in rows[name]["diagnosis"]
    assert rows["stages.agreement.base_rate.belief"]["touched_by_data"]


def test_every_swap_between_the_bundled_scenarios_is_a_valid_scenario():
    """Each assumption of one author, put into the other alone, makes a valid scenario."""
    from forecast.compare import differences, swap

    a, b = (api.prepare(p) for p in BUNDLED)
    for first, second in ((a, b), (b, a)):
        diffs = differences(first.loaded, first.priors, second.loaded, second.priors)
        assert len(diffs) > 10
        for d in diffs:
            api.prepare_raw(swap(first.loaded, second.loaded, d.path), first)  # raises if invalid


def test_sensitivity_leaves_decision_beliefs_out_of_the_p_success_tornado(write_scenario, tmp_path):
    path = write_scenario(
        VIEW.replace(
            "sampling:",
            "decision:\n  question: Talk?\n  value_scale: -100 .. 100\n"
            "  value_of_success: {between: [50, 90]}\n  options:\n"
            "    talk:\n      p_success: model\n      consequences:\n"
            "        cost: {probability: likely, value: {between: [-20, -5]}}\n"
            "    no_talks: {p_success: 0}\nsampling:",
        )
    )
    result, _ = api.sensitivity(path, out=tmp_path)
    paths = {r["path"] for r in result["tornado"]}
    assert paths and not any(p.startswith("decision.") for p in paths)
    assert "stages.agreement.base_rate.belief" in paths


def test_compare_counts_the_question_explains_the_gap_and_walks_the_path(write_scenario, tmp_path):
    """PRODUCT §4: rounds and resolves are differences; the single swaps' sum beside the gap;
    the cumulative path, largest first, ends at B (within Monte Carlo error)."""
    a = write_scenario(VIEW, name="a.yaml")
    b = write_scenario(
        VIEW.replace("holds: likely", "holds: very unlikely").replace(
            "sampling:",
            "question: {text: Will it work?, success: It works., resolves: 2014-06-30, rounds: 3}\nsampling:",
        ),
        id="other",
        name="b.yaml",
    )
    result, folder = api.compare([a, b], out=tmp_path)
    paths = {d["path"] for d in result["differences"]}
    assert paths == {"factors.leader.holds", "question.rounds", "question.resolves"}
    moves = {r["path"]: r["delta"] for r in result["attribution"]}
    assert moves["question.rounds"] > 0  # three tries at a deal rather than one
    assert moves["question.resolves"] == 0  # the deadline acts only through the rounds
    pa = result["scenarios"]["test"]["p_success"]["mean"]
    pb = result["scenarios"]["other"]["p_success"]["mean"]
    assert result["gap"] == pytest.approx(pb - pa, abs=2e-3)
    assert result["explained"] == pytest.approx(sum(moves.values()), abs=2e-3)
    # the rounds and the leader interact: the single swaps do not add up to the gap
    assert abs(result["explained"] - result["gap"]) > 0.01
    path = result["path"]
    assert [s["add"] for s in path] == [r["path"] for r in result["attribution"]]
    last = path[-1]  # every difference swapped in: A has become B
    tolerance = (
        4
        * (last["p_success_mcse"] ** 2 + result["scenarios"]["other"]["p_success"]["mcse"] ** 2)
        ** 0.5
    )
    assert abs(last["p_success"] - pb) < tolerance, (last, pb, tolerance)
    md = (folder / "compare.md").read_text()
    assert "add up to" in md and "becomes other" in md
    assert "flips" not in md  # neither scenario has a decision
