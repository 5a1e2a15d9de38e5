"""The plain-PyMC baseline: ``scenarios/commentary-2013.yaml`` written by hand.

The same model as ``forecast run scenarios/commentary-2013.yaml`` builds (PRODUCT §2),
as an analyst would write it without the toolkit: the reference rounds read and
filtered with pandas, the priors copied from the report's ``scenario.resolved.yaml``,
the unknown "bomb guarantees survival" value of each round marginalised by hand, and
``pm.sample()`` with PyMC's default sampler and the scenario's draws, chains and seed.
It prints one line of JSON (P(success) mean) so the benchmark can check that both
fitted the same thing.
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
opposes = (rounds["leader_backing"] == 0).to_numpy(float)  # holds_when: 0
groups = sorted(set(rounds["track"]) | {CASE_GROUP})
group_idx = np.array([groups.index(g) for g in rounds["track"]])


def bernoulli_logit(y, logit):
    """log P(y | logit) for y in {0, 1}; 0 where y is -1 (not observed)."""
    lp = pt.switch(pt.eq(y, 1), -pt.softplus(-logit), -pt.softplus(logit))
    return pt.switch(pt.ge(y, 0), lp, 0.0)


with pm.Model(coords={"stage": ["agreement", "implementation"], "group": groups}) as model:
    holds_opposes = pm.Beta("holds_opposes", 170.051633, 5.329398)
    holds_bomb = pm.Beta("holds_bomb", 170.051633, 5.329398)
    bomb_in_reference = pm.Beta("bomb_in_reference", 42.230364, 6.110097)
    base_rate = pm.Beta("base_rate", [3.056491, 24.776876], [5.542818, 11.986976], dims="stage")
    or_agree_opposes = pm.LogNormal("or_agree_opposes", -1.497866, 0.489234)
    or_agree_bomb = pm.LogNormal("or_agree_bomb", -1.497866, 0.489234)
    or_impl_opposes = pm.LogNormal("or_impl_opposes", -0.510826, 0.246505)
    lr = pm.LogNormal("likelihood_ratio", -0.654667, 0.333954)
    value_of_success = pm.Normal("value_of_success", 80.0, 12.159137)
    p_time_bought = pm.Beta("p_time_bought", 170.051633, 5.329398)
    value_time_bought = pm.Normal("value_time_bought", -25.0, 9.119352)
    group_scale = pm.HalfNormal("group_scale", 0.5, dims="stage")
    group_offset = pm.Normal("group_offset", 0.0, 1.0, dims=("stage", "group"))

    shift = group_scale[:, None] * group_offset  # (stage, group)
    logit_agree = pm.math.logit(base_rate[0]) + shift[0, group_idx]
    logit_impl = pm.math.logit(base_rate[1]) + shift[1, group_idx]
    impl_term = bernoulli_logit(y_impl, logit_impl + pt.log(or_impl_opposes) * opposes)
    # the bomb factor has no column: sum each round over it, weighted by its rate
    with_bomb = (
        pt.log(bomb_in_reference)
        + bernoulli_logit(
            y_agree,
            logit_agree + pt.log(or_agree_opposes) * opposes + pt.log(or_agree_bomb),
        )
        + impl_term
    )
    without_bomb = (
        pt.log1p(-bomb_in_reference)
        + bernoulli_logit(y_agree, logit_agree + pt.log(or_agree_opposes) * opposes)
        + impl_term
    )
    pm.Potential("rounds", pm.math.logaddexp(with_bomb, without_bomb).sum())

    # the case: sum over the four states of the two factors
    case = groups.index(CASE_GROUP)
    p_round = 0.0
    for a in (0, 1):
        for b in (0, 1):
            weight = (holds_opposes if a else 1 - holds_opposes) * (
                holds_bomb if b else 1 - holds_bomb
            )
            agree = pm.math.sigmoid(
                pm.math.logit(base_rate[0])
                + shift[0, case]
                + a * pt.log(or_agree_opposes)
                + b * pt.log(or_agree_bomb)
            )
            impl = pm.math.sigmoid(
                pm.math.logit(base_rate[1]) + shift[1, case] + a * pt.log(or_impl_opposes)
            )
            p_round = p_round + weight * agree * impl
    p_signal = pm.math.sigmoid(pm.math.logit(p_round) + pt.log(lr))
    p_success = pm.Deterministic("p_success", 1 - (1 - p_signal) ** 3)
    pm.Deterministic(
        "option_value",
        pt.stack(
            [
                p_success * value_of_success + (1 - p_success) * p_time_bought * value_time_bought,
                pt.zeros(()),
            ]
        ),
    )

    idata = pm.sample(draws=1000, chains=4, random_seed=2013, progressbar=False)

print(json.dumps({"p_success": float(idata.posterior["p_success"].mean())}))
