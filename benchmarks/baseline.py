"""The plain-PyMC baseline: ``scenarios/commentary-2013.yaml`` written by hand.

The same model as ``forecast run scenarios/commentary-2013.yaml`` builds (PRODUCT §2),
as an analyst would write it without the toolkit: the reference rounds read and
filtered with pandas, the priors copied from the report's ``scenario.resolved.yaml``,
the two factors (recorded in no column) marginalised by hand in every round at their
``in_reference`` rates, jointly across both stages, the case's factor state shared by
its three rounds, and ``pm.sample()`` with PyMC's default sampler and the scenario's
draws, chains and seed. It prints one line of JSON (P(success) mean) so the benchmark
can check that both fitted the same thing.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

CSV = Path(__file__).resolve().parents[1] / "scenarios" / "data" / "negotiation_rounds.csv"
BEFORE = pd.Timestamp("2013-02-26")  # the article's date: outcomes known strictly before
CASE_GROUP = "iran_p5p1"

df = pd.read_csv(CSV)
start = pd.to_datetime(df["start_date"])
end = pd.to_datetime(df["end_date"]).fillna(start)
agreed = df["agreement"].notna() & (end < BEFORE)
implemented = (
    agreed
    & (df["agreement"] == 1)
    & df["implemented_1yr"].notna()
    & (end + pd.Timedelta(days=365) < BEFORE)
)
rounds = df[agreed]
y_agree = rounds["agreement"].to_numpy(int)
y_impl = rounds["implemented_1yr"].where(implemented[agreed], -1).fillna(-1).to_numpy(int)
groups = sorted(set(rounds["track"]) | {CASE_GROUP})
group_idx = np.array([groups.index(g) for g in rounds["track"]])


def bernoulli_logit(y, logit):
    """log P(y | logit) for y in {0, 1}; 0 where y is -1 (not observed)."""
    lp = pt.switch(pt.eq(y, 1), -pt.softplus(-logit), -pt.softplus(logit))
    return pt.switch(pt.ge(y, 0), lp, 0.0)


STATES = [(a, b) for a in (0, 1) for b in (0, 1)]  # (Leader opposes, bomb guarantees)

with pm.Model(coords={"stage": ["agreement", "implementation"], "group": groups}) as model:
    holds = pm.Beta("holds", 170.051633, 5.329398, shape=2)
    in_reference = pm.Beta("in_reference", 3.610394, 2.474982, shape=2)
    base_rate = pm.Beta("base_rate", [2.129216, 2.374506], [4.252326, 1.996039], dims="stage")
    odds_ratio = pm.LogNormal("odds_ratio", -1.497866, 0.489234, shape=2)  # agreement only
    group_scale = pm.HalfNormal("group_scale", 0.5, dims="stage")
    group_offset = pm.Normal("group_offset", 0.0, 1.0, dims=("stage", "group"))

    shift = group_scale[:, None] * group_offset  # (stage, group)
    logit_agree = pm.math.logit(base_rate[0]) + shift[0, group_idx]
    logit_impl = pm.math.logit(base_rate[1]) + shift[1, group_idx]
    impl_term = bernoulli_logit(y_impl, logit_impl)  # no factor acts on implementation
    # neither factor has a column: sum each round over the four states, weighted by the
    # rates at which they held in the reference rounds
    terms = []
    for a, b in STATES:
        weight = pt.log(in_reference[0] if a else 1 - in_reference[0]) + pt.log(
            in_reference[1] if b else 1 - in_reference[1]
        )
        shift_or = a * pt.log(odds_ratio[0]) + b * pt.log(odds_ratio[1])
        terms.append(weight + bernoulli_logit(y_agree, logit_agree + shift_or) + impl_term)
    pm.Potential("rounds", pm.math.logsumexp(pt.stack(terms), axis=0).sum())

    # the case: the factor state persists over the question's 3 rounds
    case = groups.index(CASE_GROUP)
    p_success = 0.0
    for a, b in STATES:
        weight = (holds[0] if a else 1 - holds[0]) * (holds[1] if b else 1 - holds[1])
        agree = pm.math.sigmoid(
            pm.math.logit(base_rate[0])
            + shift[0, case]
            + a * pt.log(odds_ratio[0])
            + b * pt.log(odds_ratio[1])
        )
        impl = pm.math.sigmoid(pm.math.logit(base_rate[1]) + shift[1, case])
        p_success = p_success + weight * (1 - (1 - agree * impl) ** 3)
    pm.Deterministic("p_success", p_success)

    idata = pm.sample(draws=1000, chains=4, random_seed=2013, progressbar=False)

print(json.dumps({"p_success": float(idata.posterior["p_success"].mean())}))
