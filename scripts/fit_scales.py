"""Refit the verbal scales shipped in ``forecast/scales.json`` (maintainers only).

Run ``uv run python scripts/fit_scales.py`` after changing a range. Probability
words become maximum-entropy Betas (PreliZ ``maxent``, mass 0.9); odds-ratio words
become equal-tailed LogNormals. ``tests/test_beliefs.py`` checks the file against
``maxent`` so it cannot drift.
"""

import json
from pathlib import Path

from forecast.beliefs import DEFAULT_MASS, equal_tail_lognormal, maxent_beta

# ICD 203 words of estimative probability; each range is the 90% interval.
PROBABILITY = {
    "almost no chance": [0.01, 0.05],
    "very unlikely": [0.05, 0.20],
    "unlikely": [0.20, 0.45],
    "roughly even chance": [0.45, 0.55],
    "likely": [0.55, 0.80],
    "very likely": [0.80, 0.95],
    "almost certain": [0.95, 0.99],
}
ODDS_RATIO = {
    "strongly lowers": [0.1, 0.5],
    "lowers": [0.4, 0.9],
    "no effect": [0.8, 1.25],
    "raises": [1.1, 2.5],
    "strongly raises": [2.0, 10.0],
}

scales = {
    "probability": {
        w: {"range": r, "beta": [round(x, 6) for x in maxent_beta(*r, DEFAULT_MASS)]}
        for w, r in PROBABILITY.items()
    },
    "odds_ratio": {
        w: {"range": r, "lognormal": [round(x, 6) for x in equal_tail_lognormal(*r, DEFAULT_MASS)]}
        for w, r in ODDS_RATIO.items()
    },
}
doc = {
    "about": "Verbal scales: each range is the 90% interval of the word's distribution. "
    "Probability words: ICD 203 words of estimative probability, maximum-entropy Beta "
    "(PreliZ maxent, mass 0.9). Odds-ratio words: equal-tailed LogNormal.",
    "mass": DEFAULT_MASS,
    "scales": scales,
}
out = Path(__file__).resolve().parents[1] / "forecast" / "scales.json"
out.write_text(json.dumps(doc, indent=2) + "\n")
print(f"wrote {out}")
