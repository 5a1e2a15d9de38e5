"""History: partial pooling, backtest and simulation-based calibration."""

import datetime as dt

import numpy as np
import pytest
from scipy import stats

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
                            + post["group_scale"].sel(stage="agreement")
                            * post["group_offset"].sel(stage="agreement", group=g)
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
    csv = rounds_csv({"a": (40, 0.3)}, seed=2)
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


@pytest.mark.slow
def test_simulation_based_calibration(tmp_path):
    """Data simulated from the priors give ranks of the truth that are uniform (Talts et al.)."""
    from forecast.fit import run_fit
    from forecast.model import build_model

    sims, draws_kept = 30, 99
    rng = np.random.default_rng(2024)
    ranks = {"stages.agreement.base_rate.belief": [], "stages.agreement.effects.f.odds_ratio": []}
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "schema: 1\nid: sbc\ntitle: SBC\nsource: {outlet: T, date: 2020-01-01}\n"
        "question: {text: q, success: s, resolves: 2021-01-01}\n"
        "factors:\n  f: {holds: 0.5, column: f}\n"
        "stages:\n  agreement:\n    base_rate: {belief: {beta: [2, 3]}}\n"
        "    effects: {f: {odds_ratio: {lognormal: [0, 0.7]}}}\n    column: agreement\n"
        "reference: {data: rounds.csv}\nsampling: {draws: 500, chains: 2, seed: 1}\n"
    )
    for i in range(sims):
        base = rng.beta(2, 3)
        ratio = rng.lognormal(0, 0.7)
        f = rng.integers(0, 2, 12)
        logit = np.log(base / (1 - base)) + np.log(ratio) * f
        y = rng.random(12) < 1 / (1 + np.exp(-logit))
        (tmp_path / "rounds.csv").write_text(
            "round_id,start_date,agreement,f\n"
            + "\n".join(f"r{j},2010-01-{j + 1:02d},{int(y[j])},{f[j]}" for j in range(12))
        )
        prep = api.prepare(scenario)
        model = build_model(prep.loaded.spec, prep.priors, prep.data, 1)
        fit = run_fit(model, has_data=True, draws=500, chains=2, seed=i)
        post = fit.tree["posterior"]
        for name, truth in (
            ("stages.agreement.base_rate.belief", base),
            ("stages.agreement.effects.f.odds_ratio", ratio),
        ):
            sample = post[name].values.ravel()
            thinned = sample[:: len(sample) // draws_kept][
                :draws_kept
            ]  # thin against autocorrelation
            ranks[name].append(int((thinned < truth).sum()))
    for name, r in ranks.items():
        # 30 ranks in 3 bins: expected 10 per bin, enough for a chi-square test at the 1% level
        counts = np.histogram(r, bins=3, range=(0, draws_kept + 1))[0]
        assert stats.chisquare(counts).pvalue > 0.01, (name, counts)
