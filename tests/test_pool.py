"""Pooling views of one question (PRODUCT §8) against hand computations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import integrate, stats

from forecast.pool import pool, pooled_stats

# two constant views: linear (0.3692 + 0.1) / 2; log odds σ((logit 0.3692 + logit 0.1) / 2)
HAND = [("linear", 1.0, 0.2346), ("logodds", 1.0, 0.2032), ("logodds", 2.0, 0.0611)]


@pytest.mark.parametrize(("rule", "d", "want"), HAND)
def test_two_constant_views_pool_as_by_hand(rule, d, want):
    views = {"a": np.full(500, 0.3692), "b": np.full(800, 0.1)}
    p = pool(views, {"a": 1, "b": 1}, {"a": 0.0, "b": 0.0}, rule, d)
    assert round(p.mean, 4) == want
    assert p.mcse == 0.0  # constants: the pooled mean is exact


def test_weights_are_normalised_and_shift_a_linear_pool():
    views = {"a": np.full(10, 0.4), "b": np.full(10, 0.1)}
    p = pool(views, {"a": 3, "b": 1}, {}, "linear")
    assert p.mean == pytest.approx(0.75 * 0.4 + 0.25 * 0.1)
    with pytest.raises(ValueError, match="non-negative"):
        pool(views, {"a": -1, "b": 1}, {}, "linear")


def test_log_odds_pool_of_uncertain_views_matches_numerical_integration():
    """E σ(½ logit X + ½ logit Y) for independent X ~ Beta(2, 5), Y ~ Beta(1, 9)."""
    rng = np.random.default_rng(5)
    views = {"a": rng.beta(2, 5, 40_000), "b": rng.beta(1, 9, 40_000)}
    p = pool(views, {"a": 1, "b": 1}, {}, "logodds", seed=3)

    def integrand(y, x):
        z = 0.5 * np.log(x / (1 - x)) + 0.5 * np.log(y / (1 - y))
        return stats.beta.pdf(x, 2, 5) * stats.beta.pdf(y, 1, 9) / (1 + np.exp(-z))

    exact, _ = integrate.dblquad(integrand, 0, 1, 0, 1)
    # the pooled mean's MCSE covers resampling the 20,000 pairs; the members' own 40,000
    # draws add less than half as much again: 4 MCSE is a safe bound, a false alarm ~1e-4
    assert abs(p.mean - exact) < 4 * p.mcse, (p.mean, exact, p.mcse)
    st = pooled_stats(p)
    assert st["hdi_90"][0] < st["mean"] < st["hdi_90"][1]


VIEW = """
question:
  id: {qid}
  text: Will it work?
  success: It works.
  resolves: 2013-12-31
stages:
  agreement: {{base_rate: {{belief: {p}, note: a fixed view}}}}
sampling: {{draws: 200, chains: 2, seed: 4}}
"""


def test_pool_command_writes_the_pooled_view(cli, write_scenario, tmp_path):
    a = write_scenario(VIEW.format(qid="deal", p=0.3692), id="hawk", name="a.yaml")
    b = write_scenario(VIEW.format(qid="deal", p=0.1), id="dove", name="b.yaml")
    out = tmp_path / "reports"
    result = cli("pool", a, b, "--rule", "logodds", "--extremize", "2", "--out", out, "--json")
    assert result.exit_code == 0, result.output
    pooled = json.loads(result.stdout)
    assert pooled["pooled"]["mean"] == 0.0611 and pooled["pooled"]["mcse"] == 0
    assert pooled["weights"] == {"hawk": 0.5, "dove": 0.5} and pooled["rule"] == "logodds"
    assert set(pooled["members"]) == {"hawk", "dove"} and pooled["question"]["id"] == "deal"
    folder = out / "pool-deal"
    assert {p.name for p in folder.iterdir()} >= {"pool.json", "pool.md", "report.html"}
    assert json.loads((folder / "pool.json").read_text())["pooled"] == pooled["pooled"]
    assert "6.11%" in (folder / "pool.md").read_text()
    linear = cli("pool", out / "hawk", out / "dove", "--out", out, "--json")  # report folders
    assert json.loads(linear.stdout)["pooled"]["mean"] == 0.2346


def test_pool_refuses_views_of_different_questions(cli, write_scenario, tmp_path):
    a = write_scenario(VIEW.format(qid="deal-2013", p=0.3), id="hawk", name="a.yaml")
    b = write_scenario(VIEW.format(qid="deal-2014", p=0.1), id="dove", name="b.yaml")
    result = cli("pool", a, b, "--out", tmp_path / "reports")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'deal-2013'" in result.output and "'deal-2014'" in result.output
    assert not (tmp_path / "reports" / "pool-deal-2013").exists()
    bad = cli("pool", a, a, "--rule", "average", "--out", tmp_path / "reports")
    assert bad.exit_code == 2 and "--rule must be one of linear, logodds" in bad.output
