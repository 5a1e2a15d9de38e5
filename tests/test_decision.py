"""Decisions (PRODUCT §5): option values, P(best), EVPI and EVPPI, with their errors (§2)."""

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from forecast import api
from forecast.decision import (
    evpi,
    evppi,
    evppi_binned,
    evppi_estimate,
    p_best,
    regret,
    summarise,
)

FIXED = """
stages:
  agreement:
    base_rate: {belief: 0.2, why: x}
decision:
  question: Talk?
  value_scale: -100 .. 100
  value_of_success: 80
  options:
    talk:
      p_success: model
      consequences:
        time_bought: {probability: 0.9, value: -20, when: failure, why: y}
        goodwill: {probability: 0.5, value: 10, why: z}
        prestige: {probability: 0.4, value: 30, when: success}
    no_talks:
      p_success: 0
      consequences:
        coalition_frays: {probability: 0.8, value: -15}
        windfall: {probability: 1, value: 50, when: success}
sampling: {draws: 200, chains: 2, seed: 1}
"""


def test_fixed_numbers_give_the_hand_computed_values(write_scenario, tmp_path):
    result = api.run(api.prepare(write_scenario(FIXED)), out=tmp_path)
    d = result.summary["decision"]
    p = 0.2
    talk = p * 80 + (1 - p) * 0.9 * -20 + 1 * 0.5 * 10 + p * 0.4 * 30  # = 16 - 14.4 + 5 + 2.4
    no_talks = 0 * 80 + 0.8 * -15 + 0 * 1 * 50  # success never happens without talks
    assert d["options"]["talk"]["mean"] == pytest.approx(talk, abs=1e-9)
    assert d["options"]["no_talks"]["mean"] == pytest.approx(no_talks, abs=1e-9)
    assert d["recommended"] == "talk"
    assert d["options"]["talk"]["p_best"] == 1.0 and d["options"]["no_talks"]["p_best"] == 0.0
    assert d["evpi"] == 0.0  # one option is best in every draw
    assert "decision" in (result.folder / "summary.md").read_text().lower()
    assert "<h2>Decision</h2>" in (result.folder / "report.html").read_text()


def test_uncertain_decision_p_best_evpi_and_evppi(write_scenario, tmp_path):
    body = FIXED.replace("value_of_success: 80", "value_of_success: {between: [-40, 120]}")
    result = api.run(api.prepare(write_scenario(body)), out=tmp_path)
    d = result.summary["decision"]
    total = sum(o["p_best"] for o in d["options"].values())
    assert total == pytest.approx(1.0, abs=1e-9)
    assert 0 < d["options"]["talk"]["p_best"] < 1
    assert d["evpi"] > 0
    # the only uncertain belief that matters is the value of success: its EVPPI carries
    # (almost) all of the EVPI; the binned estimator is within a few percent
    assert d["evppi"]["decision.value_of_success"] == pytest.approx(d["evpi"], rel=0.1)
    assert d["flips"]["decision.value_of_success"]["flips"]
    assert (
        'alt="Which beliefs are worth knowing better (EVPPI)"'
        in (result.folder / "report.html").read_text()
    )


def test_decision_functions():
    rng = np.random.default_rng(0)
    values = np.column_stack([rng.normal(0, 1, 5000), rng.normal(0, 1, 5000) - 10])
    pb = p_best(values)
    assert pb.sum() == 1 and pb[1] == 0  # a dominated option is never best
    assert evpi(values) == pytest.approx(0.0, abs=1e-12)
    a, b = rng.normal(0, 1, 5000), rng.normal(0, 1, 5000)
    close = np.column_stack([a, b])
    assert evpi(close) > 0
    # knowing a exactly is worth E[max(a, E b)] - max(E a, E b) ≈ E[max(a, 0)] = 1/sqrt(2π)
    assert evppi(close, a) == pytest.approx(1 / np.sqrt(2 * np.pi), abs=0.05)
    assert evppi(close, np.zeros(5000)) == 0.0


def test_decision_with_data_uses_the_same_draws(tmp_path):
    from conftest import BUNDLED

    prep = api.prepare(BUNDLED[1])
    v = api.evaluate(prep)
    assert v.recommended == "talk"


# --- EVPPI by regression, on synthetic draws (fast) -------------------------------------


def beta_case(rng, n, noise, a=2.0, b=3.0):
    """V_talk = θ + ε, V_wait = 0.5 + η with θ ~ Beta(a, b); ε, η stand for other beliefs.

    Knowing θ is worth E[max(θ, 0.5)] − max(E θ, 0.5) = E[(θ − 0.5)⁺] here (E θ = 0.4 <
    0.5), and E[θ; θ > 0.5] = E θ · P(Beta(a + 1, b) > 0.5): the closed form.
    """
    theta = rng.beta(a, b, n)
    values = np.column_stack([theta + rng.normal(0, noise, n), 0.5 + rng.normal(0, noise, n)])
    mean = a / (a + b)
    truth = mean * stats.beta(a + 1, b).sf(0.5) - 0.5 * stats.beta(a, b).sf(0.5)
    return values, theta, truth


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_evppi_matches_the_closed_form(noise):
    rng = np.random.default_rng(11)
    values, theta, truth = beta_case(rng, 4000, noise)
    est = evppi_estimate(values, theta, rng=rng)
    assert truth == pytest.approx(0.04375)  # 0.4 · 0.5 − 0.5 · 0.3125
    # 3 SE: a normal estimate misses by more 0.3% of the time; the SE is ~10% of the
    # value, so a wrong estimator (e.g. the EVPI, 0.044 + noise) would fail
    assert abs(est.value - truth) < 3 * est.se
    assert est.se < 0.15 * truth  # and the SE is not so wide that anything passes
    if noise == 0:
        # V_talk − V_wait is a smooth function of θ, so the smoother's own error is
        # negligible; what is left is the Monte Carlo error of averaging over θ
        assert est.se_regression < 0.2 * est.mcse
    else:
        assert est.se_regression > 0.5 * est.mcse
    assert (est.best_when_low, est.best_when_high) == (1, 0)  # θ at 5%: wait; at 95%: talk


def test_irrelevant_belief_gets_about_zero_where_bins_give_a_few_percent():
    """A belief independent of both options, options 0.05 SD apart: true EVPPI 0."""
    rows = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n = 4000
        values = np.column_stack([rng.normal(0, 1, n), rng.normal(0.05, 1, n)])
        belief = rng.beta(2, 5, n)
        est = evppi_estimate(values, belief, rng=rng)
        rows.append((est.value, est.se, evppi_binned(values, belief), evpi(values)))
    value, se, binned, total = np.array(rows).T
    assert total.mean() > 0.5  # the options are close: the EVPI is sizeable
    # every estimate within 2 of its SEs of 0 (the SE is conservative here, see
    # EvppiEstimate.se_regression), while the binned estimates are many SEs away
    assert np.all(value <= 2 * se)
    assert binned.mean() > 3 * se.mean()
    # on average well under 0.5% of the EVPI (measured: 0.1%); most replicates give 0.
    # The binned estimator, on the same draws, takes the best of each bin's noise: ~4%
    assert value.mean() < 0.005 * total.mean()
    assert np.median(value) < 1e-4
    assert binned.mean() > 0.02 * total.mean()
    assert binned.mean() > 10 * value.mean()


def test_evppi_standard_error_is_calibrated():
    """Across independent samples, the estimates spread about as the reported SE says."""
    rows = []
    for seed in range(30):
        rng = np.random.default_rng(1000 + seed)
        values, theta, truth = beta_case(rng, 2000, 0.3)
        est = evppi_estimate(values, theta, rng=rng)
        rows.append((est.value, est.se))
    value, se = np.array(rows).T
    ratio = value.std(ddof=1) / se.mean()
    # measured 1.06. The SD of 30 estimates is itself uncertain by ~13%, hence [0.5, 2].
    # The Monte Carlo error of the mean over θ alone would give 3.1 here (it misses the
    # smoother's error); the closed-form test at noise 0 catches an SE without it
    assert 0.5 < ratio < 2, ratio
    # and the estimator is not biased by more than its noise: mean within 3 SE of it
    assert abs(value.mean() - truth) < 3 * value.std(ddof=1) / np.sqrt(len(value))


def test_evppi_se_grows_with_autocorrelation():
    """Draws that are AR(1) within chains carry less information than their number."""
    rng = np.random.default_rng(5)
    chains, draws, rho = 4, 1000, 0.9

    def ar1():
        x = np.empty((chains, draws))
        x[:, 0] = rng.normal(size=chains)
        for t in range(1, draws):
            x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * rng.normal(size=chains)
        return x.ravel()

    theta, noise = stats.norm.cdf(ar1()), ar1()
    values = np.column_stack([theta + 0.3 * noise, np.full(theta.size, 0.5)])
    ordered = evppi_estimate(values, theta, shape=(chains, draws), rng=rng)
    order = rng.permutation(theta.size)
    shuffled = evppi_estimate(values[order], theta[order], shape=(chains, draws), rng=rng)
    assert ordered.value == pytest.approx(shuffled.value, abs=1e-9)  # order-free estimate
    # ESS ≈ n (1 − ρ) / (1 + ρ) ≈ n / 19: the SE should be ~4x the shuffled draws' one
    assert ordered.se > 2 * shuffled.se


def test_evppi_of_a_constant_belief_or_one_option_is_zero():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(500, 2))
    assert evppi_estimate(values, np.zeros(500)).se == 0.0
    assert evppi_estimate(values[:, :1], rng.normal(size=500)).value == 0.0


# --- summarise: the keys and their Monte Carlo errors ------------------------------------


def fake(values: dict[str, np.ndarray], beliefs: dict[str, np.ndarray], chains=4):
    """A (chain, draw) dataset and the little of a spec that ``summarise`` reads."""
    names = list(values)
    stacked = np.stack([values[k] for k in names], axis=-1)
    shape = (chains, stacked.shape[0] // chains)
    ds = xr.Dataset(
        {"option_value": (("chain", "draw", "option"), stacked.reshape(*shape, len(names)))}
        | {k: (("chain", "draw"), v.reshape(shape)) for k, v in beliefs.items()},
        coords={"option": names},
    )
    spec = SimpleNamespace(
        decision=SimpleNamespace(
            question="Talk?",
            value_scale="-100 .. 100",
            options={k: SimpleNamespace(label=None) for k in names},
        ),
        sampling=SimpleNamespace(seed=1),
    )
    return ds, spec


def test_summarise_gives_every_figure_its_monte_carlo_error():
    rng = np.random.default_rng(3)
    n = 4000
    value_of_success, irrelevant = rng.normal(0, 1, n), rng.uniform(size=n)
    ds, spec = fake(
        {"talk": value_of_success, "wait": np.full(n, 0.1)},
        {
            "decision.value_of_success": value_of_success,
            "irrelevant.belief": irrelevant,
            "p_success": np.full(n, 0.2),
        },
    )
    d = summarise(ds, spec, ["decision.value_of_success", "irrelevant.belief"])
    talk, wait = d["options"]["talk"], d["options"]["wait"]
    # iid draws: the ArviZ MCSE of a mean is about sd/√n (= 1/√4000 = 0.0158 for talk)
    assert talk["mcse"] == pytest.approx(1 / np.sqrt(n), rel=0.15)
    assert wait["mcse"] == 0.0  # a constant has no Monte Carlo error
    p = talk["p_best"]
    assert 0.3 < p < 0.6
    assert talk["p_best_mcse"] == pytest.approx(np.sqrt(p * (1 - p) / n), rel=0.15)
    assert wait["p_best_mcse"] == talk["p_best_mcse"]  # two options: the same indicator
    assert d["evpi"] > 0.3 and 0 < d["evpi_mcse"] < 0.05 * d["evpi"]
    assert d["evpi_mcse"] == pytest.approx(
        regret(ds["option_value"].values.reshape(n, 2)).std() / np.sqrt(n), rel=0.15
    )
    # the belief that is the value: its EVPPI is the EVPI (V_wait is constant); the
    # other two get 0, the constant one exactly
    assert (
        set(d["evppi"])
        == set(d["evppi_se"])
        == {
            "p_success",
            "decision.value_of_success",
            "irrelevant.belief",
        }
    )
    assert all(isinstance(v, float) and v >= 0 for v in d["evppi"].values())
    ev, se = d["evppi"]["decision.value_of_success"], d["evppi_se"]["decision.value_of_success"]
    assert ev == pytest.approx(d["evpi"], abs=3 * se) and se > 0
    assert d["evppi"]["irrelevant.belief"] <= 3 * d["evppi_se"]["irrelevant.belief"]
    assert d["evppi"]["p_success"] == 0.0 and d["evppi_se"]["p_success"] == 0.0
    assert next(iter(d["evppi"])) == "decision.value_of_success"  # sorted, largest first
    assert d["flips"]["decision.value_of_success"] == {
        "best_when_low": "wait",
        "best_when_high": "talk",
        "flips": True,
    }
    assert not d["flips"]["irrelevant.belief"]["flips"]
    assert "Strong, Oakley & Brennan 2014" in d["evppi_estimator"]
    # reproducible: the SE's simulations follow the scenario's seed
    assert (
        summarise(ds, spec, ["irrelevant.belief"])["evppi_se"]["irrelevant.belief"]
        == (d["evppi_se"]["irrelevant.belief"])
    )


def test_summarise_when_one_option_always_wins_has_no_error():
    rng = np.random.default_rng(4)
    n = 800
    ds, spec = fake(
        {"talk": rng.normal(10, 1, n), "wait": rng.normal(0, 1, n)},
        {"decision.value_of_success": rng.normal(size=n)},
    )
    d = summarise(ds, spec, ["decision.value_of_success"])
    assert d["options"]["talk"]["mcse"] > 0 and d["options"]["wait"]["mcse"] > 0
    assert d["options"]["talk"]["p_best"] == 1.0
    assert d["options"]["talk"]["p_best_mcse"] == 0.0 == d["options"]["wait"]["p_best_mcse"]
    assert d["evpi"] == 0.0 and d["evpi_mcse"] == 0.0
    assert d["evppi"]["decision.value_of_success"] == 0.0
    assert d["evppi_se"]["decision.value_of_success"] == 0.0
