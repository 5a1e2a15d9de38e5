"""Pooling several views of one question into one forecast (PRODUCT §8).

``linear``: the weighted mixture of the members' draws (mean Σ wᵢ pᵢ, the opinion pool of
expert elicitation). ``logodds``: per draw σ(d · Σ wᵢ logit pᵢ), the members' draws paired
independently; ``d`` > 1 extremizes the consensus (Satopää et al. 2014). Every figure
carries its Monte Carlo error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.mcse import iid_mcse, round_to, sig

RULES = ("linear", "logodds")
#: Draws of the pooled distribution (a mixture, or independently paired members).
POOLED_DRAWS = 20_000
#: Keep probabilities off 0 and 1 on the log-odds scale (a constant 0 or 1 would be ±inf).
EPS = 1e-12


@dataclass(frozen=True)
class Pooled:
    """The pooled forecast: its draws, its mean with the mean's Monte Carlo error."""

    draws: np.ndarray
    mean: float
    mcse: float


def normalise(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    if not total > 0 or any(w < 0 or not math.isfinite(w) for w in weights.values()):
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
    return {k: w / total for k, w in weights.items()}


def pool(
    members: dict[str, np.ndarray],
    weights: dict[str, float],
    mcse: dict[str, float],
    rule: str = "linear",
    extremize: float = 1.0,
    seed: int = 0,
) -> Pooled:
    """Pool the members' P(success) draws by ``rule``; ``mcse`` is each member's mean MCSE."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    w = normalise(weights)
    rng = np.random.default_rng(seed)
    names = list(members)
    if rule == "linear":
        # the mixture's mean is exactly Σ wᵢ E[pᵢ]; its draws, for the interval, take each
        # member in proportion to its weight
        mean = float(sum(w[n] * np.mean(members[n]) for n in names))
        error = math.sqrt(sum((w[n] * mcse.get(n, 0.0)) ** 2 for n in names))
        counts = rng.multinomial(POOLED_DRAWS, [w[n] for n in names])
        draws = np.concatenate(
            [
                rng.choice(np.asarray(members[n]), size=c, replace=True)
                for n, c in zip(names, counts, strict=True)
            ]
        )
        return Pooled(rng.permutation(draws), mean, error)
    # logodds: members paired independently, draw by draw
    paired = [rng.choice(np.asarray(members[n]), size=POOLED_DRAWS, replace=True) for n in names]
    z = sum(w[n] * _logit(p) for n, p in zip(names, paired, strict=True))
    draws = 1 / (1 + np.exp(-extremize * z))
    error = 0.0 if np.ptp(draws) == 0 else iid_mcse(draws)  # views that are constants: exact
    return Pooled(draws, float(draws.mean()), error)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def pooled_stats(pooled: Pooled) -> dict[str, Any]:
    """Mean (with its MCSE), median and 90% HDI of the pooled draws (ArviZ)."""
    import arviz_stats as azs

    from forecast.summaries import HDI_PROB

    values = pooled.draws
    if np.ptp(values) == 0:
        v = round(float(values[0]), 4)
        return {"mean": v, "mcse": 0.0, "median": v, "hdi_90": [v, v]}
    lo, hi = azs.hdi(values, prob=HDI_PROB)
    e = pooled.mcse
    return {
        "mean": round_to(pooled.mean, e),
        "mcse": sig(e),
        "median": round_to(float(np.median(values)), e),
        "hdi_90": [round_to(float(lo), e), round_to(float(hi), e)],
    }
