"""The model against answers computed another way: conjugacy, NumPy, brute force."""

import itertools
import math

import numpy as np
import pytest
from scipy import optimize, stats

from forecast import api

CSV_3_OF_20 = "round_id,start_date,agreement,source\n" + "\n".join(
    f"r{i},2010-01-{i + 1:02d},{1 if i < 3 else 0},http://example.org/{i}" for i in range(20)
)


def beta_hdi(a: float, b: float, prob: float = 0.9) -> tuple[float, float]:
    """Exact HDI of a unimodal Beta: the shortest interval holding `prob`."""
    d = stats.beta(a, b)
    res = optimize.minimize_scalar(
        lambda lo_q: d.ppf(lo_q + prob) - d.ppf(lo_q), bounds=(0, 1 - prob), method="bounded"
    )
    return d.ppf(res.x), d.ppf(res.x + prob)


@pytest.mark.slow
def test_conjugate_beta_bernoulli(write_scenario, tmp_path):
    path = write_scenario(
        """
        stages:
          agreement:
            base_rate: {belief: {beta: [2, 8]}}
            column: agreement
        reference: {data: rounds.csv}
        sampling: {draws: 2000, chains: 4, seed: 7}
        """,
        csv=CSV_3_OF_20,
    )
    prep = api.prepare(path)
    assert prep.data.n_rounds == 20
    result = api.run(prep, out=tmp_path / "reports")
    s = result.summary
    assert s["diagnostics"]["method"] == "nuts" and s["diagnostics"]["passed"]
    # Beta(2 + 3, 8 + 17): mean 1/6, sd 0.067. With bulk ESS > 2000 the Monte Carlo
    # error of the mean is < 0.0015, so 0.005 is over three standard errors.
    assert s["p_success"]["mean"] == pytest.approx(5 / 30, abs=0.005)
    # HDI endpoints are tail quantities with roughly twice that error: allow 0.012.
    lo, hi = beta_hdi(5, 25)
    assert s["p_success"]["hdi_90"][0] == pytest.approx(lo, abs=0.012)
    assert s["p_success"]["hdi_90"][1] == pytest.approx(hi, abs=0.012)
    # the whole distribution, not only its mean and HDI: KS against Beta(5, 25) with the
    # draws' bulk ESS as the effective sample size (autocorrelated draws would make the
    # nominal n too strict); p > 0.01 fails a correct sampler 1% of the time
    import arviz_stats as azs

    draws = result.fit.tree["posterior"]["stages.agreement.base_rate.belief"]
    ess = float(azs.ess(draws, method="bulk"))
    d = stats.kstest(draws.values.ravel(), stats.beta(5, 25).cdf).statistic
    assert stats.kstwo(int(ess)).sf(d) > 0.01, (d, ess)
    # and the reported Monte Carlo error is ArviZ's, and small enough to trust 3 decimals
    assert 0 < s["p_success"]["mcse"] < 0.0015
    # with no factors the only stage's pass probability is the base rate itself
    row = next(a for a in s["assumptions"] if a["path"] == "stages.agreement.base_rate.belief")
    assert row["posterior"]["mean"] == pytest.approx(5 / 30, abs=0.005)
    assert row["prior"]["mean"] == pytest.approx(0.2, abs=0.01)


PRIOR_ONLY = """
question: {text: Will it work?, success: It works., resolves: 2013-12-31, rounds: 2}
factors:
  leader: {holds: likely}
  pressure: {holds: {between: [0.2, 0.6]}}
stages:
  agreement:
    base_rate: {belief: unlikely}
    effects:
      leader: {odds_ratio: strongly lowers}
      pressure: {odds_ratio: {lognormal: [0.5, 0.3]}}
  implementation:
    base_rate: {belief: {beta: [6, 3]}}
    effects:
      leader: {odds_ratio: lowers}
evidence:
  signal: {likelihood_ratio: {between: [0.5, 0.9]}}
sampling: {draws: 5000, chains: 4, seed: 3}
"""


def numpy_p_success(prep, n: int, rng) -> np.ndarray:
    """PRODUCT §2's case formula, written independently with NumPy and SciPy."""

    def draw(path):
        p = prep.priors[path]
        if p.family == "beta":
            return rng.beta(*p.params, size=n)
        if p.family == "lognormal":
            return rng.lognormal(*p.params, size=n)
        return np.full(n, p.params[0])

    spec = prep.loaded.spec
    holds = {f: draw(f"factors.{f}.holds") for f in spec.factors}
    base = {s: draw(f"stages.{s}.base_rate.belief") for s in spec.stages}
    odds_ratio = {
        (s, f): draw(f"stages.{s}.effects.{f}.odds_ratio")
        for s in spec.stages
        for f in spec.stages[s].effects
    }
    # the factor state persists over the rounds: each round is a fresh try given x
    p0 = np.zeros(n)
    for x in itertools.product([0, 1], repeat=len(spec.factors)):
        state = dict(zip(spec.factors, x, strict=True))
        weight = np.prod([holds[f] if v else 1 - holds[f] for f, v in state.items()], axis=0)
        passes = np.ones(n)
        for s in spec.stages:
            log_odds = np.log(base[s] / (1 - base[s]))
            for (s2, f), ratio in odds_ratio.items():
                if s2 == s and state[f]:
                    log_odds = log_odds + np.log(ratio)
            passes = passes * (1 / (1 + np.exp(-log_odds)))
        p0 += weight * (1 - (1 - passes) ** spec.question.rounds)
    # the evidence acts on the question's final odds
    odds = (
        p0
        / (1 - p0)
        * np.prod([draw(f"evidence.{e}.likelihood_ratio") for e in spec.evidence], axis=0)
    )
    return odds / (1 + odds)


def test_prior_only_matches_numpy(write_scenario, tmp_path):
    prep = api.prepare(write_scenario(PRIOR_ONLY))
    result = api.run(prep, out=tmp_path)
    assert result.summary["diagnostics"]["method"] == "prior"
    assert result.summary["diagnostics"]["r_hat_max"] is None
    reference = numpy_p_success(prep, 200_000, np.random.default_rng(0))
    model_draws = result.fit.tree["prior"]["p_success"].values.ravel()
    assert model_draws.size == 20_000
    # both are Monte Carlo means: allow four standard errors of their difference
    se = math.sqrt(reference.var() / reference.size + model_draws.var() / model_draws.size)
    assert result.summary["p_success"]["mean"] == pytest.approx(reference.mean(), abs=4 * se)
    # the whole distribution agrees too, not just the mean (two-sample KS at 1%)
    assert stats.ks_2samp(model_draws, reference[:20_000]).pvalue > 0.01


def test_same_seed_same_numbers(write_scenario, tmp_path):
    prep = api.prepare(write_scenario(PRIOR_ONLY))
    a = api.run(prep, out=tmp_path / "a").summary
    b = api.run(prep, out=tmp_path / "b").summary
    assert a["p_success"] == b["p_success"] and a["assumptions"] == b["assumptions"]
    c = api.run(api.prepare(write_scenario(PRIOR_ONLY), seed=99), out=tmp_path / "c").summary
    assert c["p_success"] != a["p_success"]


def test_round_likelihood_sums_over_unknown_factor_values(write_scenario):
    """The outcomes' log-density equals a brute-force sum over the blank factor values."""
    import pymc as pm

    from forecast.model import build_model

    path = write_scenario(
        """
        factors:
          leader: {holds: 0.7, column: leader_backing, in_reference: 0.6}
          pressure: {holds: 0.5, in_reference: 0.3}
        stages:
          agreement:
            base_rate: {belief: 0.3}
            effects:
              leader: {odds_ratio: 4}
              pressure: {odds_ratio: 0.5}
            column: agreement
          implementation:
            base_rate: {belief: 0.6}
            effects:
              leader: {odds_ratio: 2}
            column: implemented_1yr
        reference: {data: rounds.csv}
        """,
        csv="""
        round_id,start_date,agreement,implemented_1yr,leader_backing,source
        a,2010-01-01,1,1,1,x
        b,2010-02-01,1,0,,x
        c,2010-03-01,0,,,x
        d,2010-04-01,1,,0,x
        """,
    )
    prep = api.prepare(path)
    model = build_model(prep.loaded.spec, prep.priors, prep.data, seed=0)
    logp = pm.logp(model["outcomes"], prep.data.y.astype("int64")).eval(mode="FAST_COMPILE")

    def p_pass(stage, leader, pressure):
        base, effects = {
            "agreement": (0.3, {"leader": 4, "pressure": 0.5}),
            "implementation": (0.6, {"leader": 2}),
        }[stage]
        log_odds = math.log(base / (1 - base))
        log_odds += (
            math.log(effects.get("leader", 1)) * leader
            + math.log(effects.get("pressure", 1)) * pressure
        )
        return 1 / (1 + math.exp(-log_odds))

    def brute(outcomes, leader):
        total = 0.0
        for lv, pv in itertools.product([0, 1], repeat=2):
            if leader is not None and lv != leader:
                continue
            w = (0.3 if pv else 0.7) * (1 if leader is not None else (0.6 if lv else 0.4))
            lik = 1.0
            for stage, y in outcomes.items():
                p = p_pass(stage, lv, pv)
                lik *= p if y else 1 - p
            total += w * lik
        return math.log(total)

    expected = [
        brute({"agreement": 1, "implementation": 1}, 1),
        brute({"agreement": 1, "implementation": 0}, None),
        brute({"agreement": 0}, None),
        brute({"agreement": 1}, 0),  # implementation blank: not yet known
    ]
    np.testing.assert_allclose(logp, expected, rtol=1e-10)


def test_monte_carlo_case_beyond_twelve_factors(write_scenario, tmp_path):
    factors = "\n".join(f"  f{i}: {{holds: 0.5}}" for i in range(14))
    effects = "\n".join(f"      f{i}: {{odds_ratio: 0.9}}" for i in range(14))
    path = write_scenario(
        f"factors:\n{factors}\nstages:\n  agreement:\n    base_rate: {{belief: 0.4}}\n    effects:\n{effects}\n"
        "sampling: {draws: 100, chains: 1, seed: 1}\n"
    )
    result = api.run(api.prepare(path), out=tmp_path)
    assert result.summary["case_states"] == "monte carlo"
    # all constants: exact answer is E over x ~ Binomial(14, 0.5) of logistic(logit 0.4 + k log 0.9)
    k = np.arange(15)
    exact = np.sum(
        stats.binom.pmf(k, 14, 0.5) / (1 + np.exp(-(math.log(0.4 / 0.6) + k * math.log(0.9))))
    )
    # fresh states for every draw: all beliefs are constants, yet the draws differ, and
    # their mean over 100 draws × 1024 states has a standard error < 0.1/√102400 ≈ 0.0003
    draws = result.fit.tree["prior"]["p_success"].values.ravel()
    assert np.unique(draws).size == draws.size
    assert result.summary["p_success"]["mean"] == pytest.approx(exact, abs=0.0015)


WORKED = """
question: {{text: q, success: s, resolves: 2013-12-31, rounds: 3}}
factors:
  f: {{holds: {holds}}}
stages:
  agreement:
    base_rate: {{belief: 0.6}}
    effects: {{f: {{odds_ratio: {ratio!r}}}}}
evidence:
  e: {{likelihood_ratio: 0.5}}
"""
#: odds(0.05) / odds(0.6): P(pass) 0.05 with the factor, 0.6 without
WORKED_RATIO = (0.05 / 0.95) / (0.6 / 0.4)


def worked_by_hand(holds: float) -> float:
    """PRODUCT §2's worked example: x persists over 3 rounds, the evidence on the final odds."""
    p0 = holds * (1 - 0.95**3) + (1 - holds) * (1 - 0.4**3)
    odds = p0 / (1 - p0) * 0.5
    return odds / (1 + odds)


@pytest.mark.parametrize("holds", [0.5, 0, 1])
def test_case_formula_against_the_worked_example(write_scenario, tmp_path, holds):
    path = write_scenario(WORKED.format(holds=holds, ratio=WORKED_RATIO))
    result = api.run(api.prepare(path), out=tmp_path)
    assert worked_by_hand(0.5) == pytest.approx(0.369, abs=5e-4)  # the figure PRODUCT quotes
    # every belief is a constant: the forecast is exact, up to float rounding
    p = result.fit.tree["prior"]["p_success"].values
    np.testing.assert_allclose(p, worked_by_hand(holds), rtol=1e-9)
    # stages stay per round and without evidence: P(pass) marginal over x
    stage = result.fit.tree["prior"]["p_stage"].values
    np.testing.assert_allclose(stage, holds * 0.05 + (1 - holds) * 0.6, rtol=1e-9)


@pytest.mark.parametrize("item", ["factors.f.holds=0", "factors.f.holds=1"])
def test_constant_holds_set_from_the_command_line_is_exact(write_scenario, tmp_path, cli, item):
    path = write_scenario(WORKED.format(holds="likely", ratio=WORKED_RATIO))
    result = cli("run", path, "--set", item, "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    import json

    summary = json.loads(result.stdout)[0]  # progress goes to stderr
    expected = worked_by_hand(float(item[-1]))
    assert summary["p_success"]["mean"] == pytest.approx(expected, abs=1e-4)


INFORMED = """
factors:
  f: {{holds: 0.5, column: f, in_reference: {in_reference}}}
stages:
  agreement:
    base_rate: {{belief: {{beta: [2, 2]}}}}
    effects: {{f: {{odds_ratio: {{lognormal: [0, 0.5]}}}}}}
    column: agreement
reference: {{data: rounds.csv, before: 2030-01-01}}
sampling: {{draws: 1000, chains: 4, seed: 3}}
"""


def informed_csv(blanks: int) -> str:
    """14 recorded rounds, 4 of them with the factor holding, then ``blanks`` blank ones."""
    rows = [f"r{i},2010-01-{i + 1:02d},{i % 2},{int(i < 4)}" for i in range(14)]
    rows += [f"b{i},2011-01-{i + 1:02d},{i % 2}," for i in range(blanks)]
    return "round_id,start_date,agreement,f\n" + "\n".join(rows)


@pytest.mark.slow
def test_recorded_factor_values_inform_in_reference(write_scenario, tmp_path):
    """Beta(1, 1) and 4 of 14 recorded rounds holding: the rate's posterior is Beta(5, 11)."""
    path = write_scenario(INFORMED.format(in_reference="{beta: [1, 1]}"), csv=informed_csv(0))
    result = api.run(api.prepare(path), out=tmp_path)
    assert result.fit.passed
    draws = result.fit.tree["posterior"]["factors.f.in_reference"]
    # with every value recorded the outcomes say nothing more about the rate: exactly
    # conjugate. KS against Beta(5, 11) at the draws' bulk ESS (the test's effective n);
    # p > 0.01 fails a correct sampler 1% of the time
    import arviz_stats as azs

    ess = float(azs.ess(draws, method="bulk"))
    values = draws.values.ravel()
    d = stats.kstest(values, stats.beta(5, 11).cdf).statistic
    assert stats.kstwo(int(ess)).sf(d) > 0.01, (d, ess)
    assert values.mean() == pytest.approx(5 / 16, abs=4 * values.std() / math.sqrt(ess))


@pytest.mark.slow
def test_in_reference_of_one_with_blank_values_is_exact(write_scenario, tmp_path):
    """A constant rate of 1 fills every blank with "holds": no 0 · log 0, a finite answer."""
    path = write_scenario(INFORMED.format(in_reference=1), csv=informed_csv(4))
    prep = api.prepare(path)
    result = api.run(prep, out=tmp_path)
    assert result.summary["p_success"]["mean"] is not None
    from forecast.fit import pointwise
    from forecast.model import build_model

    model = build_model(prep.loaded.spec, prep.priors, prep.data)
    posterior = result.fit.tree["posterior"].to_dataset()
    loglik, _ = pointwise(model, posterior)
    assert np.isfinite(loglik).all()
    # a blank round's likelihood is that of the factor holding: P(pass) = σ(logit p + log OR)
    p = posterior["stages.agreement.base_rate.belief"].values.ravel()
    ratio = posterior["stages.agreement.effects.f.odds_ratio"].values.ravel()
    held = 1 / (1 + (1 - p) / (p * ratio))
    blank = prep.data.round_id.index("b1")  # outcome 1
    np.testing.assert_allclose(loglik[:, blank], np.log(held), rtol=1e-9)


@pytest.mark.slow
def test_beliefs_the_data_do_not_touch_keep_their_exact_prior(write_scenario, tmp_path):
    """`holds` never meets the reference data: its posterior draws are exact prior draws."""
    path = write_scenario(
        """
        factors:
          leader: {holds: {beta: [2, 5]}, column: leader}
        stages:
          agreement:
            base_rate: {belief: {beta: [2, 8]}}
            effects: {leader: {odds_ratio: lowers}}
            column: agreement
        reference: {data: rounds.csv}
        sampling: {draws: 1000, chains: 4, seed: 9}
        """,
        csv="round_id,start_date,agreement,leader,source\n"
        + "\n".join(f"r{i},2010-01-{i + 1:02d},{int(i < 4)},{i % 2},x" for i in range(20)),
    )
    result = api.run(api.prepare(path), out=tmp_path)
    draws = result.fit.tree["posterior"]["factors.leader.holds"].values.ravel()
    # 4,000 exact Beta(2, 5) draws: a KS test at 1% rejects a correct sampler 1% of the time
    assert stats.kstest(draws, stats.beta(2, 5).cdf).pvalue > 0.01
    # and the forecast was recomputed from them: p_success varies with holds as it should
    p = result.fit.tree["posterior"]["p_success"].values.ravel()
    assert np.corrcoef(draws, p)[0, 1] < -0.1  # the leader lowers the odds


def test_pointwise_densities_equal_pymcs(write_scenario):
    """The one-pass log-likelihood and log-prior equal PyMC's compute_log_* at any draws."""
    import pymc as pm
    import xarray as xr

    from forecast.data import load_reference
    from forecast.fit import configure_jax, forward_sample, log_prior_group, pointwise
    from forecast.model import build_model

    configure_jax(2)
    csv = (
        "round_id,track,start_date,agreement,implemented,leader,source\n"
        "a,x,2001-01-01,1,1,1,s\nb,x,2002-01-01,0,,,s\nc,y,2003-01-01,1,0,,s\n"
        "d,y,2004-01-01,1,,0,s\ne,z,2005-01-01,0,,1,s\n"
    )
    path = write_scenario(
        """
        factors:
          leader: {holds: likely, column: leader, in_reference: even odds}
          mood: {holds: unlikely, in_reference: unlikely}
        stages:
          agreement:
            base_rate: {belief: unlikely}
            effects: {leader: {odds_ratio: raises}, mood: {odds_ratio: lowers}}
            column: agreement
          implementation: {base_rate: {belief: likely}, column: implemented}
        reference: {data: rounds.csv, group: track}
        decision:
          question: Talk?
          value_scale: -100 .. 100
          value_of_success: {between: [50, 90]}
          options:
            talk: {p_success: model}
            no_talks: {p_success: 0}
        """.replace("even odds", "roughly even chance"),
        csv=csv,
    )
    prep = api.prepare(path)
    model = build_model(prep.loaded.spec, prep.priors, load_reference(prep.loaded), 1)
    draws = forward_sample(model, 50, 2, seed=3)  # any draws will do: densities are pointwise
    names = [rv.name for rv in model.free_RVs]
    tree = xr.DataTree.from_dict({"posterior": draws[names]})
    pm.stats.compute_log_likelihood(tree, model=model, progressbar=False)
    pm.stats.compute_log_prior(tree, model=model, progressbar=False)
    loglik, p_pass = pointwise(model, draws[names])
    want = tree["log_likelihood"]["outcomes"].values.reshape(100, -1)
    np.testing.assert_allclose(loglik, want, rtol=1e-9, atol=1e-12)
    ours = log_prior_group(model, draws[names])
    for name in names:
        np.testing.assert_allclose(ours[name].values, tree["log_prior"][name].values, rtol=1e-9)
    assert p_pass.shape == (100, 5, 2) and ((p_pass > 0) & (p_pass < 1)).all()
    # the joint log prior importance reweighting uses, per draw, is PyMC's too: every
    # family here (Beta beliefs, LogNormal odds ratios, a Normal value, the HalfNormal
    # group scale and Normal offsets of the pooling)
    from forecast.engine import log_prior
    from forecast.fit import flat_draws

    families = {type(rv.owner.op).__name__ for rv in model.free_RVs}
    assert {"BetaRV", "LogNormalRV", "NormalRV", "HalfNormalRV"} <= families, families
    joint = sum(tree["log_prior"][n].values.reshape(100, -1).sum(axis=1) for n in names)
    np.testing.assert_allclose(log_prior(model, flat_draws(draws, names)), joint, rtol=1e-9)


def test_stages_without_a_column_get_no_group_spread(write_scenario):
    """Only observed stages are pooled: no dead group_scale or group_offset for the rest."""
    from forecast.model import build_model

    path = write_scenario(
        """
        stages:
          agreement:
            base_rate: {belief: unlikely}
            column: agreement
          implementation:
            base_rate: {belief: likely}
        reference: {data: rounds.csv, group: track, case_group: a}
        """,
        csv="round_id,start_date,agreement,track\n"
        + "\n".join(f"r{i},2010-01-{i + 1:02d},{i % 2},{'ab'[i % 2]}" for i in range(6)),
    )
    prep = api.prepare(path)
    model = build_model(prep.loaded.spec, prep.priors, prep.data)
    assert model.coords["pooled_stage"] == ("agreement",)
    assert model.named_vars_to_dims["group_scale"] == ("pooled_stage",)
    assert model.named_vars_to_dims["group_offset"] == ("pooled_stage", "group")
