"""The compiled program kept per model shape (forecast.engine.Program).

A what-if that changes only numbers reuses one tunable model and its compiled
functions. Caching must never change an answer: the same variant gives the same
numbers whatever was computed before it, the same as a model built from scratch, and a
changed constant or structure gets a program of its own.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from forecast import api, engine
from forecast.fit import vectorised_draws
from forecast.model import build_model

CONSTANT = """
question: {text: Will it work?, success: It works., resolves: 2013-12-31, rounds: 2}
stages:
  agreement:
    base_rate: {belief: 0.3, note: a constant}
"""

VIEW = """
factors:
  leader: {holds: likely, why: a}
stages:
  agreement:
    base_rate: {belief: unlikely, why: b}
    effects:
      leader: {odds_ratio: lowers, why: c}
sampling: {draws: 300, chains: 2, seed: 5}
"""

CSV = "round_id,start_date,agreement\n" + "".join(
    f"r{i},2010-01-{1 + i:02d},{int(i < 3)}\n" for i in range(10)
)
# 2 × 1000 draws: a reweighting needs an ESS of 400 (PRODUCT §2) after MCMC's own loss
WITH_DATA = VIEW.replace("    effects:", "    column: agreement\n    effects:").replace(
    "draws: 300", "draws: 1000"
) + ("reference: {data: rounds.csv}\n")


def _with(prep, **changes):
    """The prepared scenario with ``--set``-style changes of its raw dict."""
    raw = copy.deepcopy(prep.loaded.raw)
    for path, value in changes.items():
        node = raw
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return api.prepare_raw(raw, prep)


def test_constants_and_rounds_are_exact_through_the_cache(write_scenario):
    """P(success) = 1 − (1 − p)^rounds exactly for a constant pass rate p, through one
    program: constants and the number of rounds are shared parameters; a constant that
    becomes a distribution is another shape."""
    engine._PROGRAMS.clear()
    prep = api.prepare(write_scenario(CONSTANT))
    assert api.evaluate(prep).p_success == pytest.approx(1 - 0.7**2, abs=1e-12)
    other = _with(prep, **{"stages.agreement.base_rate.belief": 0.5})
    assert api.evaluate(other).p_success == pytest.approx(1 - 0.5**2, abs=1e-12)
    three = _with(other, **{"question.rounds": 3})
    assert api.evaluate(three).p_success == pytest.approx(1 - 0.5**3, abs=1e-12)
    assert len(engine._PROGRAMS) == 1
    spread = _with(prep, **{"stages.agreement.base_rate.belief": {"beta": [3, 7]}})
    # a Beta(3, 7) pass rate over 2 rounds: 1 − E[(1 − p)^2] = 1 − B(3, 9)/B(3, 7)
    want = 1 - (7 * 8) / (10 * 11)
    v = api.evaluate(spread)
    assert v.p_success == pytest.approx(want, abs=4 * v.mcse)  # 4 MCSE: false alarm < 1e-4
    assert len(engine._PROGRAMS) == 2
    assert api.evaluate(prep).p_success == pytest.approx(1 - 0.7**2, abs=1e-12)


@pytest.mark.parametrize("body", [VIEW, WITH_DATA], ids=["prior-only", "with-data"])
def test_a_cached_answer_does_not_depend_on_history(write_scenario, body):
    """Exactly the numbers of a model built from scratch, before and after other variants."""
    from forecast.psis import importance

    prep = api.prepare(write_scenario(body, CSV))
    a = _with(prep, **{"factors.leader.holds": "very likely"})
    b = _with(prep, **{"factors.leader.holds": "unlikely"})
    engine._PROGRAMS.clear()
    first = api.evaluate(a, seed=3)
    api.evaluate(b, seed=3)
    api.evaluate(prep, seed=4)
    again = api.evaluate(a, seed=3)
    assert again.p_success == first.p_success and again.mcse == first.mcse
    # the uncached computation: a model of a's numbers built afresh, drawn from its prior
    model = build_model(a.loaded.spec, a.priors, a.data, a.settings.seed)
    fresh = importance(model, engine.VARIANT_DRAWS, 3)
    assert first.p_success == pytest.approx(fresh.p_success, rel=1e-12)
    assert first.method == ("forward" if body is VIEW else "reweighted")
    assert first.p_success != api.evaluate(b, seed=3).p_success


def test_draws_function_reseeds_like_a_fresh_compile(write_scenario):
    """DrawsFunction called twice with a seed gives vectorised_draws' numbers both times."""
    from forecast.fit import DrawsFunction

    prep = api.prepare(write_scenario(VIEW))
    model = build_model(prep.loaded.spec, prep.priors, prep.data)
    (want,) = vectorised_draws(model, ["p_success"], 500, 9)
    fn = DrawsFunction(model, ["p_success"], 500, False, {})
    assert np.array_equal(fn(500, 9, {})[0], want)
    fn(500, 10, {})
    assert np.array_equal(fn(500, 9, {})[0], want)


@pytest.mark.slow
def test_the_likelihood_cancels_only_for_the_same_data(write_scenario, tmp_path, cli):
    """A variant reading the base fit's data reuses its likelihood (it cancels from the
    weights); computing it again gives the same weights to rounding. A variant whose data
    differ (a round excluded) has its likelihood computed, not cancelled."""
    path = write_scenario(WITH_DATA, CSV)
    r = cli("run", path, "--out", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    prep = api.prepare(path)
    base = api.BaseFit.from_report(prep, tmp_path / "test")
    variant = _with(prep, **{"factors.leader.holds": "very likely"})
    quick = api.evaluate(variant, base=base)
    full = api.evaluate(variant, base=engine.BaseFit(**{**vars(base), "log_prior_q": None}))
    assert quick.method == full.method == "reweighted" and quick.proposal == "posterior"
    assert quick.p_success == pytest.approx(full.p_success, abs=1e-12)
    np.testing.assert_allclose(quick.weights, full.weights, atol=1e-12)
    # one round fewer: the base's likelihood no longer applies; the answer must move
    # towards the data without round r0 (one of the three agreements)
    fewer = _with(prep, **{"reference.exclude": {"round_id": "r0"}})
    moved = api.evaluate(fewer, base=base)
    assert json.dumps(fewer.loaded.raw["reference"]) != json.dumps(prep.loaded.raw["reference"])
    assert moved.p_success < api.evaluate(prep, base=base).p_success


@pytest.mark.slow
def test_compiled_nuts_refits_are_conjugate_exact_for_each_prior(write_scenario):
    """One compiled NUTS program, two priors: each refit matches its own conjugate answer.

    Beta(a, b) prior, 3 agreements in 20 rounds, one stage, one round: P(success) is the
    posterior mean (a + 3) / (a + b + 20). A program that kept the first prior's numbers
    (a stale constant) would miss the second by 0.25. The factor has no effect; it is
    there because a belief NUTS does not sample makes the sampled model a copy (pm.do),
    whose shared parameters must still follow the variant's.
    """
    from test_model import CSV_3_OF_20

    path = write_scenario(
        """
        factors:
          idle: {holds: likely, note: no effect on any stage}
        stages:
          agreement:
            base_rate: {belief: {beta: [2, 8]}}
            column: agreement
        reference: {data: rounds.csv}
        sampling: {draws: 1000, chains: 2, seed: 7}
        """,
        csv=CSV_3_OF_20,
    )
    prep = api.prepare(path)
    program = engine.program_for(prep)
    for (a, b), seed in (((2, 8), 1), ((12, 3), 2)):
        variant = _with(prep, **{"stages.agreement.base_rate.belief": {"beta": [a, b]}})
        assert engine.program_for(variant) is program
        fit = program.refit(variant, seed)
        mean, mcse, options, note = fit.mean, fit.mcse, fit.option_means, fit.note
        assert fit.draws.shape == (2000,) and fit.draws.mean() == mean
        # 2 × 1000 NUTS draws of a Beta with sd ≈ 0.07: an ESS of a few hundred or more
        # gives an MCSE under 0.005 (asserted, so the tolerance below stays tight); four
        # MCSE leaves a false alarm under 1e-4 for a right sampler
        assert 0 < mcse < 0.005 and options is None and note == ""
        assert mean == pytest.approx((a + 3) / (a + b + 20), abs=4 * mcse)
    assert len(program._nuts._compiled) == 1  # compiled once for both


def test_same_relative_data_path_in_two_folders_is_two_programs(tmp_path):
    """Two scenarios naming `rounds.csv` in different folders read different rounds: each
    gets its own program (the data are constants of the graph), so neither answer is
    the other's. With no factors the prior-draw reweighting is the conjugate posterior
    mean, Beta(1 + k, 1 + n − k): 3 of 10 gives 4/12, 8 of 10 gives 9/12."""
    from conftest import MINIMAL

    engine._PROGRAMS.clear()
    body = """
stages:
  agreement:
    base_rate: {belief: {beta: [1, 1]}, note: flat}
    column: agreement
reference: {data: rounds.csv}
"""
    answers = {}
    for k in (3, 8):
        folder = tmp_path / f"k{k}"
        folder.mkdir()
        (folder / "s.yaml").write_text(MINIMAL.format(id="same") + body)
        rows = "".join(f"r{i},2010-01-{1 + i:02d},{int(i < k)}\n" for i in range(10))
        (folder / "rounds.csv").write_text("round_id,start_date,agreement\n" + rows)
        v = api.evaluate(api.prepare(folder / "s.yaml"))
        answers[k] = v
        # prior draws reweighted by the likelihood: 4 MCSE, false alarm under 1e-4
        assert v.p_success == pytest.approx((1 + k) / 12, abs=4 * v.mcse), k
    assert len(engine._PROGRAMS) == 2
