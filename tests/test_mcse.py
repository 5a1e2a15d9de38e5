"""Monte Carlo errors (PRODUCT §2) against the spread of repeated estimates."""

import math

import numpy as np
import pytest

from forecast.mcse import decimals, iid_mcse, paired_mcse, pct, round_to, weighted_mcse

REPEATS = 400


def test_weighted_mcse_matches_the_spread_of_repeated_importance_estimates():
    """Self-normalised IS of E[x] under N(0.5, 1) from N(0, 1.5) proposals: the reported
    error should match the standard deviation of the estimates over repetitions."""
    rng = np.random.default_rng(1)
    estimates, errors = [], []
    for _ in range(REPEATS):
        x = rng.normal(0, 1.5, 2000)
        log_w = -0.5 * (x - 0.5) ** 2 + 0.5 * (x / 1.5) ** 2
        w = np.exp(log_w - log_w.max())
        estimates.append((w * x).sum() / w.sum())
        errors.append(weighted_mcse(x, w))
    # the sd of 400 estimates has a relative error of ~1/√800 ≈ 3.5%: 15% is > 4 of those
    assert np.mean(errors) == pytest.approx(np.std(estimates), rel=0.15)
    assert np.mean(estimates) == pytest.approx(0.5, abs=4 * np.std(estimates) / math.sqrt(REPEATS))


def test_paired_error_of_a_difference_uses_the_shared_draws():
    """Two weighted estimates from the same draws: the paired error matches the spread
    of the difference, and is far below the errors combined as if independent."""
    rng = np.random.default_rng(2)
    diffs, paired, independent = [], [], []
    for _ in range(REPEATS):
        theta = rng.beta(2, 5, 3000)
        a, b = theta, theta * 1.1  # a what-if that moves every draw a little
        wa = np.ones_like(theta)
        wb = np.exp(0.5 * theta)  # a reweighting of the same draws
        diffs.append((wb * b).sum() / wb.sum() - a.mean())
        paired.append(paired_mcse(b, a, wb, wa))
        independent.append(math.hypot(weighted_mcse(b, wb), iid_mcse(a)))
    assert np.mean(paired) == pytest.approx(np.std(diffs), rel=0.15)
    assert np.mean(paired) < 0.5 * np.mean(independent)
    # unweighted pairs: the error of the mean difference
    assert paired_mcse(np.arange(10.0), np.zeros(10)) == pytest.approx(iid_mcse(np.arange(10.0)))


@pytest.mark.parametrize(
    ("value", "error", "shown"),
    [
        (0.11934, 0.0014, "11.9%"),
        (0.11934, 0.014, "12%"),
        (0.5, 0.0, "50.00%"),
        (0.2, None, "20.00%"),
    ],
)
def test_figures_show_the_digits_their_error_supports(value, error, shown):
    assert pct(value, error) == shown


def test_rounding_to_the_error():
    assert (
        decimals(0.0012) == 3 and decimals(0.012) == 2 and decimals(0.3) == 1 and decimals(3) == 0
    )
    assert round_to(0.118734, 0.0012) == 0.119
    assert round_to(None, 0.1) is None and round_to(1.23456789, 0) == 1.2346
