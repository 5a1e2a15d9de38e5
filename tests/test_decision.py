"""Decisions (PRODUCT §5): option values, P(best), EVPI and EVPPI."""

import numpy as np
import pytest

from forecast import api
from forecast.decision import evpi, evppi, p_best

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
