"""Beliefs: words and ranges become the distributions PRODUCT §1 names."""

import math

import pytest
from scipy import stats

from forecast.beliefs import (
    Belief,
    BetaFits,
    equal_tail_lognormal,
    equal_tail_normal,
    fit,
    parse_belief,
    scale_ranges,
    shipped_scales,
)


def mass_in(prior, lo, hi):
    if prior.family == "beta":
        d = stats.beta(*prior.params)
    elif prior.family == "lognormal":
        d = stats.lognorm(s=prior.params[1], scale=math.exp(prior.params[0]))
    else:
        d = stats.norm(*prior.params)
    return d.cdf(hi) - d.cdf(lo)


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    return BetaFits(tmp_path_factory.mktemp("cache") / "fits.json")


@pytest.mark.parametrize("scale", ["probability", "odds_ratio"])
def test_each_word_puts_90_percent_in_its_range(scale, fits):
    role = "probability" if scale == "probability" else "ratio"
    for word, (lo, hi) in scale_ranges()[scale].items():
        prior = fit(parse_belief(word, role), scale_ranges(), fits)
        # maxent solves for the mass numerically; 1% is far above its tolerance
        assert mass_in(prior, lo, hi) == pytest.approx(0.9, abs=0.01), word


def test_shipped_betas_match_maxent():
    # the data file is the single source of truth; refitting must reproduce it
    from forecast.beliefs import maxent_beta

    for word, spec in shipped_scales()["probability"].items():
        a, b = maxent_beta(*spec["range"], 0.9)
        assert spec["beta"] == pytest.approx([a, b], rel=1e-3), word
    for word, spec in shipped_scales()["odds_ratio"].items():
        assert spec["lognormal"] == pytest.approx(
            equal_tail_lognormal(*spec["range"], 0.9), rel=1e-5
        ), word


@pytest.mark.parametrize(
    ("raw", "role", "lo", "hi", "mass"),
    [
        ({"between": [0.1, 0.3]}, "probability", 0.1, 0.3, 0.9),
        ({"between": [0.6, 0.7], "mass": 0.5}, "probability", 0.6, 0.7, 0.5),
        ({"between": [0.3, 0.9]}, "ratio", 0.3, 0.9, 0.9),
        ({"between": [2, 8], "mass": 0.8}, "ratio", 2, 8, 0.8),
        ({"between": [-50, 20]}, "value", -50, 20, 0.9),
    ],
)
def test_between_puts_its_mass_in_the_range(raw, role, lo, hi, mass, fits):
    prior = fit(parse_belief(raw, role), scale_ranges(), fits)
    assert prior.family == {"probability": "beta", "ratio": "lognormal", "value": "normal"}[role]
    assert mass_in(prior, lo, hi) == pytest.approx(mass, abs=0.01)


def test_lognormal_between_has_equal_tails():
    mu, sigma = equal_tail_lognormal(0.3, 0.9, 0.9)
    assert mu == pytest.approx((math.log(0.3) + math.log(0.9)) / 2)
    d = stats.lognorm(s=sigma, scale=math.exp(mu))
    assert d.cdf(0.3) == pytest.approx(0.05, abs=1e-9)
    assert d.sf(0.9) == pytest.approx(0.05, abs=1e-9)
    m, s = equal_tail_normal(-1, 3, 0.5)
    assert stats.norm(m, s).cdf(-1) == pytest.approx(0.25)


def test_explicit_distributions_and_constants_are_exact(fits):
    assert fit(parse_belief({"beta": [2, 8]}, "probability"), {}, fits).params == (2, 8)
    assert fit(parse_belief({"lognormal": [0, 1]}, "ratio"), {}, fits).params == (0, 1)
    c = fit(parse_belief(0.3, "probability"), {}, fits)
    assert c.is_constant and c.params == (0.3,)


@pytest.mark.parametrize(
    ("raw", "role", "message"),
    [
        ({"between": [0.4, 0.2]}, "probability", "lo < hi"),
        ({"between": [0.2, 1.4]}, "probability", "in [0, 1]"),
        ({"between": [0, 2]}, "ratio", "positive"),
        ({"between": [0.2, 0.4], "mass": 1.0}, "probability", "mass"),
        (1.5, "probability", "[0, 1]"),
        (-0.1, "probability", "[0, 1]"),
        (0, "ratio", "positive"),
        (float("nan"), "probability", "finite"),
        (float("inf"), "ratio", "finite"),
        (True, "probability", "belief"),
        ({"beta": [0, 1]}, "probability", "positive"),
        ({"normal": [0, 1]}, "probability", "beta"),
        ({"normal": [0, 1]}, "ratio", "lognormal"),
        ({"lognormal": [0, -1]}, "ratio", "sigma"),
        ({"betwen": [0.1, 0.2]}, "probability", "did you mean 'between'"),
        ({"between": [0.1]}, "probability", "two numbers"),
        ({"between": ["a", 0.2]}, "probability", "number"),
        ("likely", "value", "not a number"),
        # friendlier words for the usual slips
        ("70%", "probability", "write 0.7, not 70%: probabilities are 0 to 1"),
        (" 12.5 % ", "probability", "write 0.125, not 12.5 %"),
        (60, "probability", "got 60 (did you mean 0.6?)"),
        (150, "probability", "got 150"),
        ({"word": "likely", "mass": 1.2}, "probability", "mass must lie strictly between"),
        ({"word": "likely"}, "value", "not a word"),
    ],
)
def test_invalid_beliefs_are_rejected(raw, role, message):
    with pytest.raises(ValueError, match=None) as info:
        parse_belief(raw, role)
    assert message in str(info.value)


def test_fits_are_cached_on_disk(tmp_path):
    cache = tmp_path / "fits.json"
    BetaFits(cache).get(0.12, 0.34, 0.9)
    assert "0.12:0.34:0.9" in cache.read_text()
    # a second instance reads the file instead of refitting
    again = BetaFits(cache)
    assert again.key(0.12, 0.34, 0.9) in again._fits


def test_belief_written_round_trips():
    b = parse_belief({"between": [0.1, 0.3], "mass": 0.8}, "probability")
    assert parse_belief(b.written(), "probability") == b
    assert isinstance(parse_belief("likely", "probability"), Belief)
