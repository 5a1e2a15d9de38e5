"""History: partial pooling, backtest and simulation-based calibration."""

import datetime as dt

import numpy as np
import pytest

from forecast import api


def rounds_csv(groups: dict[str, tuple[int, float]], seed: int = 0) -> str:
    """Simulated rounds: group -> (number of rounds, true agreement rate)."""
    rng = np.random.default_rng(seed)
    lines = ["round_id,track,start_date,agreement,source"]
    day = dt.date(1990, 1, 1)
    for g, (n, rate) in groups.items():
        for i in range(n):
            day += dt.timedelta(days=20)
            lines.append(f"{g}{i},{g},{day.isoformat()},{int(rng.random() < rate)},sim")
    return "\n".join(lines)


POOLED = """
stages:
  agreement:
    base_rate: {{belief: {{between: [0.1, 0.9]}}, why: x}}
    column: agreement
reference: {{data: rounds.csv, {extra}}}
sampling: {{draws: 1000, chains: 4, seed: 5}}
"""


def test_one_group_is_the_unpooled_model(write_scenario):
    csv = rounds_csv({"a": (15, 0.3)})
    pooled = api.prepare(
        write_scenario(POOLED.format(extra="group: track, case_group: a"), csv=csv)
    )
    plain = api.prepare(
        write_scenario(POOLED.format(extra="before: 2030-01-01"), csv=csv, name="p.yaml")
    )
    from forecast.model import build_model

    model = build_model(pooled.loaded.spec, pooled.priors, pooled.data, 1)
    assert "group_offset" not in model.named_vars and "group" not in model.coords
    # the same model, so the same numbers from the same seed
    assert api.evaluate(pooled).p_success == api.evaluate(plain).p_success


@pytest.mark.slow
def test_pooling_separates_groups_and_shrinks_small_ones(write_scenario, tmp_path):
    csv = rounds_csv(
        {"big_high": (40, 0.85), "big_low": (40, 0.15), "small_high": (4, 0.85)}, seed=1
    )
    path = write_scenario(
        POOLED.format(extra="group: track, case_group: big_high, pooling_scale: 1.5"), csv=csv
    )
    result = api.run(api.prepare(path), out=tmp_path)
    d = result.summary["diagnostics"]
    assert d["divergences"] == 0 and d["r_hat_max"] <= 1.01
    post = result.fit.tree["posterior"]
    groups = list(post["group_offset"].coords["group"].values)
    logit = np.log(
        post["base_rate"].sel(stage="agreement") / (1 - post["base_rate"].sel(stage="agreement"))
    )
    rate = {
        g: float(
            (
                1
                / (
                    1
                    + np.exp(
                        -(
                            logit
                            + post["group_scale"].sel(pooled_stage="agreement")
                            * post["group_offset"].sel(pooled_stage="agreement", group=g)
                        )
                    )
                )
            ).mean()
        )
        for g in groups
    }
    observed = {
        g: np.mean([int(x.split(",")[3]) for x in csv.splitlines()[1:] if x.split(",")[1] == g])
        for g in groups
    }
    assert rate["big_high"] - rate["big_low"] > 0.4  # the groups separate
    # the small group is pulled toward the middle more than the big group with the same rate
    assert abs(rate["small_high"] - observed["small_high"]) > abs(
        rate["big_high"] - observed["big_high"]
    )


@pytest.mark.slow
def test_backtest_rewards_the_true_prior_and_never_looks_ahead(write_scenario, tmp_path):
    # 20 rounds (a fit each): the prior matters most in the early rounds, before the data
    # take over, so few rounds separate the two priors best (on these seeded rounds:
    # Brier 0.250 vs 0.287; with 40 rounds 0.201 vs 0.219)
    csv = rounds_csv({"a": (20, 0.3)}, seed=2)
    body = """
stages:
  agreement:
    base_rate: {{belief: {{between: {rng}}}, why: x}}
    column: agreement
reference: {{data: rounds.csv, before: 2030-01-01}}
sampling: {{draws: 500, chains: 2, seed: 5}}
"""
    true = write_scenario(body.format(rng="[0.25, 0.35]"), csv=csv, name="truth.yaml", id="truth")
    wrong = write_scenario(body.format(rng="[0.75, 0.9]"), csv=csv, name="wrong.yaml", id="wrong")
    good, _ = api.backtest(true, out=tmp_path)
    bad, _ = api.backtest(wrong, out=tmp_path)
    assert good["brier"] < bad["brier"] and good["log_score"] > bad["log_score"]
    for row in good["rounds"] + bad["rounds"]:
        assert row["latest_known"] is None or row["latest_known"] < row["date"]
    assert [r["date"] for r in good["rounds"]] == sorted(r["date"] for r in good["rounds"])
    assert (
        good["rounds"][0]["rounds_known"] == 0
    )  # the first round is forecast from the prior alone
    assert good["rounds"][0]["p"] == pytest.approx(good["rounds"][0]["p_priors_only"], abs=1e-9)


# Eight rounds, two stages; implementation is known a year after a round. Hand counts:
# stage 2 was reached, with a known outcome, by r1, r3, r6, r8 (r4 passed stage 1 but its
# implementation is blank); the pathway is settled for every round but r4.
TWO_STAGE_CSV = """
round_id,start_date,agreement,implemented
r1,2000-01-01,1,1
r2,2000-03-01,0,
r3,2000-05-01,1,0
r4,2000-07-01,1,
r5,2000-09-01,0,
r6,2001-03-01,1,1
r7,2001-06-01,0,
r8,2002-01-01,1,1
"""
TWO_STAGE = """
stages:
  agreement:
    base_rate: {belief: {between: [0.2, 0.8]}, why: x}
    column: agreement
  implementation:
    base_rate: {belief: {between: [0.3, 0.9]}, why: x}
    column: implemented
    known_after_days: 365
reference: {data: rounds.csv, before: 2030-01-01}
sampling: {draws: 500, chains: 2, seed: 3}
"""


def _prior_backtest(path, seed: int = 1, draws: int = 8000):
    """The backtest's forecasts from prior draws alone (no fit): fast, and exact to test."""
    from forecast import backtest as bt
    from forecast.model import build_model

    prep = api.prepare(path)
    model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
    return bt.forecasts(model, prep.data, prep.loaded.spec, seed, draws=draws)


def test_backtest_scores_every_stage_reached_and_the_settled_pathway(write_scenario):
    result = _prior_backtest(write_scenario(TWO_STAGE, csv=TWO_STAGE_CSV))
    stage1, stage2 = result["stages"]["agreement"], result["stages"]["implementation"]
    path = result["pathway"]
    assert [r["round_id"] for r in stage1["rounds"]] == [f"r{i}" for i in range(1, 9)]
    assert [r["round_id"] for r in stage2["rounds"]] == ["r1", "r3", "r6", "r8"]
    assert [r["outcome"] for r in stage2["rounds"]] == [1, 0, 1, 1]
    assert [r["round_id"] for r in path["rounds"]] == ["r1", "r2", "r3", "r5", "r6", "r7", "r8"]
    assert [r["outcome"] for r in path["rounds"]] == [1, 0, 0, 0, 1, 0, 1]
    assert (stage1["n"], stage2["n"], path["n"]) == (8, 4, 7)
    assert path["stages"] == ["agreement", "implementation"]
    # the first stage is also backtest.json's top level (PRODUCT §4)
    assert result["rounds"] == stage1["rounds"] and result["brier"] == stage1["brier"]
    # running base rates count only outcomes known before the round's start: at r6
    # (2001-03-01) r1's implementation is known (2000-12-31), r3's not yet (2001-05-01)
    base2 = {r["round_id"]: r["p_running_base_rate"] for r in stage2["rounds"]}
    assert base2["r6"] == pytest.approx(2 / 3, abs=1e-4)  # (1 + 1) / (1 + 2)
    assert base2["r8"] == pytest.approx(2 / 4, abs=1e-4)  # r1, r3 known; r6 not until 2002-03
    # the pathway at r8: settled r1 (1), r2, r3, r5, r7 (0); r4 and r6 not yet
    assert {r["round_id"]: r["p_running_base_rate"] for r in path["rounds"]}["r8"] == (
        pytest.approx(2 / 7, abs=1e-4)
    )
    # a stage-2 forecast is P(pass | reached), above the pathway's P(pass both)
    both = {r["round_id"]: r["p"] for r in path["rounds"]}
    assert all(0 < both[r["round_id"]] < r["p"] < 1 for r in stage2["rounds"])
    for rec in (stage1, stage2, path):
        assert set(rec["differences"]) == {"running_base_rate", "priors_only"}
        assert all(r["p_mcse"] > 0 for r in rec["rounds"])
    assert result["hindsight"].startswith("Hindsight: the priors were written on 2013-02-26")


def test_backtest_paired_difference_and_its_standard_error_over_rounds():
    from forecast import backtest as bt

    # four rounds, forecasts without Monte Carlo error so the figures are exact
    p = [0.2, 0.7, 0.4, 0.9]
    base = [0.5, 0.5, 2 / 3, 0.5]
    y = [1, 0, 0, 1]
    records = [
        {
            "round_id": f"r{i}",
            "date": f"2000-01-0{i + 1}",
            "group": None,
            "outcome": y[i],
            "scenario": bt.Estimate(p[i], 0.0),
            "running_base_rate": base[i],
            "base_rate_rounds": i,
            "priors_only": bt.Estimate(0.5, 0.0),
            "proposal": "prior",
            "pareto_k": 0.0,
            "ess": 100.0,
            "reliable": True,
            "rounds_known": i,
            "latest_known": None,
        }
        for i in range(4)
    ]
    got = bt.summarise(records)["differences"]["running_base_rate"]
    # by hand: Brier per round (p - y)^2 minus (base - y)^2
    d = [
        (0.2 - 1) ** 2 - (0.5 - 1) ** 2,  # 0.64 - 0.25
        (0.7 - 0) ** 2 - (0.5 - 0) ** 2,  # 0.49 - 0.25
        (0.4 - 0) ** 2 - (2 / 3 - 0) ** 2,  # 0.16 - 0.4444
        (0.9 - 1) ** 2 - (0.5 - 1) ** 2,  # 0.01 - 0.25
    ]
    mean = sum(d) / 4
    sd = (sum((x - mean) ** 2 for x in d) / 3) ** 0.5
    assert got["brier"] == pytest.approx(mean, abs=1e-4)
    assert got["brier_se"] == float(f"{sd / 2:.2g}")  # SD / √4, to two significant figures
    assert got["brier_mcse"] == 0.0
    logs = [
        np.log(0.2) - np.log(0.5),
        np.log(0.3) - np.log(0.5),
        np.log(0.6) - np.log(1 / 3),
        np.log(0.9) - np.log(0.5),
    ]
    assert got["log_score"] == pytest.approx(np.mean(logs), abs=1e-4)
    assert got["log_score_se"] == float(f"{np.std(logs, ddof=1) / 2:.2g}")


def test_backtest_monte_carlo_errors_match_the_spread_over_seeds(write_scenario):
    """Two seeds' forecasts differ by about √(mcse₁² + mcse₂²) per round.

    With 30 rounds × 3 targets the mean of z² = (p₁ − p₂)² / (mcse₁² + mcse₂²) is near 1
    if the errors are right. Targets of one round share draws, so there are fewer than 90
    independent terms; rounding each p to its supported digits adds at most a third of
    the variance. [0.4, 2.5] still catches an error misjudged by a factor of 1.6 or more.
    """
    lines = ["round_id,start_date,agreement,implemented"]
    rng = np.random.default_rng(4)
    for i in range(30):
        passed = int(rng.random() < 0.5)
        implemented = int(rng.random() < 0.6) if passed else ""
        lines.append(
            f"r{i},{dt.date(1990, 1, 1) + dt.timedelta(days=200 * i)},{passed},{implemented}"
        )
    path = write_scenario(TWO_STAGE, csv="\n".join(lines))
    a, b = _prior_backtest(path, seed=1), _prior_backtest(path, seed=2)
    z2 = []
    for key in ("agreement", "implementation"):
        pairs = zip(a["stages"][key]["rounds"], b["stages"][key]["rounds"], strict=True)
        z2 += [(x["p"] - y["p"]) ** 2 / (x["p_mcse"] ** 2 + y["p_mcse"] ** 2) for x, y in pairs]
    pairs = zip(a["pathway"]["rounds"], b["pathway"]["rounds"], strict=True)
    z2 += [(x["p"] - y["p"]) ** 2 / (x["p_mcse"] ** 2 + y["p_mcse"] ** 2) for x, y in pairs]
    assert all(r["p_mcse"] > 0 for r in a["stages"]["agreement"]["rounds"])
    assert 0.4 < np.mean(z2) < 2.5, np.mean(z2)
    # the scores' errors are propagated, and small beside the spread over rounds
    stage = a["stages"]["agreement"]
    assert 0 < stage["brier_mcse"] < stage["differences"]["running_base_rate"]["brier_se"]


def test_backtest_never_uses_a_later_rounds_factor_values(write_scenario):
    body = TWO_STAGE.replace(
        "stages:",
        "factors:\n  f: {holds: 0.5, column: f, in_reference: {between: [0.2, 0.8]}}\nstages:",
    ).replace(
        "base_rate: {belief: {between: [0.2, 0.8]}, why: x}",
        "base_rate: {belief: {between: [0.2, 0.8]}, why: x}\n    effects: {f: {odds_ratio: lowers}}",
    )
    csv = TWO_STAGE_CSV.replace("implemented\n", "implemented,f\n")
    rows = csv.strip().splitlines()
    first = rows[:1] + [r + ",1" for r in rows[1:]]
    changed = [*first[:-1], first[-1][:-1] + "0"]  # r8's factor value, recorded after all others
    a = _prior_backtest(write_scenario(body, csv="\n".join(first)))
    from forecast.model import build_model

    prep = api.prepare(write_scenario(body, csv="\n".join(changed), name="t.yaml"))
    if "factor_values" not in build_model(prep.loaded.spec, prep.priors, prep.data).named_vars:
        pytest.skip("the model does not learn in_reference from recorded factor values")
    b = _prior_backtest(prep.loaded.path)
    for key in ("agreement", "implementation"):
        ra, rb = a["stages"][key]["rounds"], b["stages"][key]["rounds"]
        assert [r["p"] for r in ra[:-1]] == [r["p"] for r in rb[:-1]]  # before r8: the same
    assert a["rounds"][-1]["p"] != b["rounds"][-1]["p"]  # r8's own factor value counts


@pytest.mark.slow
def test_backtest_json_and_report_give_each_stage_and_the_pathway(write_scenario, tmp_path):
    import json

    _, folder = api.backtest(write_scenario(TWO_STAGE, csv=TWO_STAGE_CSV), out=tmp_path)
    written = json.loads((folder / "backtest.json").read_text())
    assert written["stages"]["implementation"]["n"] == 4 and written["pathway"]["n"] == 7
    for key in ("rounds", "brier", "log_score", "baselines", "stages", "pathway", "hindsight"):
        assert key in written
    assert set(written["baselines"]) == {"running_base_rate", "priors_only"}
    for rec in [*written["stages"].values(), written["pathway"]]:
        for base in ("running_base_rate", "priors_only"):
            d = rec["differences"][base]
            assert set(d) >= {"brier", "brier_se", "log_score", "log_score_se"}
        assert rec["brier_mcse"] > 0 and rec["log_score_mcse"] > 0
        assert all(r["p_mcse"] > 0 for r in rec["rounds"])
    page = (folder / "report.html").read_text()
    section = page[page.index("<!-- backtest -->") : page.index("<!-- /backtest -->")]
    assert written["hindsight"] in section
    assert "Stage implementation" in section and "Whole pathway" in section
    assert section.count("<table>") == 3  # agreement, implementation, pathway
