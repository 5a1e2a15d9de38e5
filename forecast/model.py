"""Scenario (+ reference data) → PyMC model, formula for formula as PRODUCT §2.

For stage s, round i in group g with factor values x_i::

    logit P_s(pass | x_i) = logit(p_s) + tau_s * z_sg + sum_f log(OR_sf) * x_if

Every belief is one free variable named by its ``--set`` path (constants are not
variables). Reference rounds enter through one observed variable, ``outcomes``
(dims ``round``, ``stage``), whose log-density per round sums over the unknown factor
values of that round, jointly across stages. The case — the talks being forecast —
is marginalised over its factor states exactly (up to 12 factors) or by Monte Carlo.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

from forecast.beliefs import FAMILIES, Prior
from forecast.data import UNKNOWN, ReferenceData
from forecast.scenario import MAX_EXACT_FACTORS, Scenario

#: Factor states drawn afresh for every draw of the case when there are too many factors
#: to enumerate: the per-draw estimate of P(success) then has a Monte Carlo sd of at most
#: 0.5/√1024 ≈ 0.016, and its error averages out over draws instead of being shared.
MONTE_CARLO_STATES = 1024
#: Memory guard for the per-round enumeration of unknown factor values.
MAX_ROUND_STATES = 20_000_000


def all_states(n: int) -> np.ndarray:
    """Every 0/1 assignment of ``n`` factors, shape (2**n, n)."""
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=float).reshape(2**n, n)


def round_states(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Enumerate each round's unknown factor values.

    Returns
    -------
    states : (round, state, factor) factor values, known ones copied, unknown ones enumerated
    unknown : (round, state, factor) 1 where the value was enumerated
    valid : (round, state) 1 for real states, 0 for padding (rounds with fewer unknowns)
    """
    n, f = x.shape
    k = (x == UNKNOWN).sum(axis=1)
    n_states = 2 ** int(k.max(initial=0))
    if n * n_states * max(f, 1) > MAX_ROUND_STATES:
        from forecast.errors import ScenarioError

        raise ScenarioError.one(
            f"{n} reference rounds with up to {int(k.max())} unknown factor values each are too "
            "many to marginalise; give factor columns or fewer rounds"
        )
    states = np.repeat(x[:, None, :], n_states, axis=1).astype(float)
    unknown = np.zeros_like(states)
    valid = np.zeros((n, n_states))
    for i in range(n):
        cols = np.flatnonzero(x[i] == UNKNOWN)
        combos = all_states(len(cols))
        m = len(combos)
        states[i, :m][:, cols] = combos
        states[i, m:] = 0
        unknown[i, :m][:, cols] = 1
        valid[i, :m] = 1
    return states, unknown, valid


def _variable(name: str, prior: Prior, tunable: dict | None = None):
    """One free variable for a belief, or a constant.

    With ``tunable`` (a dict), the prior's parameters are shared variables, recorded
    there under the belief's path, so a compiled function of the model serves every
    variant that changes only the numbers (:func:`set_tunable`).
    """
    if prior.is_constant:
        if tunable is None:
            return pt.constant(prior.params[0], dtype="float64")
        # a shared scalar, not a free variable: the switch forms keep 0 and 1 exact
        tunable[name] = [pytensor.shared(np.float64(prior.params[0]), name=name)]
        return tunable[name][0]
    family = FAMILIES[prior.family]
    values = prior.params
    if tunable is not None:
        values = tunable[name] = [
            pytensor.shared(np.float64(v), name=f"{name}:{p}")
            for p, v in zip(family.pymc_params, prior.params, strict=True)
        ]
    params = dict(zip(family.pymc_params, values, strict=True))
    return getattr(pm, family.pymc)(name, **params)


#: The key of ``tunable`` that holds the question's number of rounds.
ROUNDS = "question.rounds"


def set_tunable(tunable: dict, spec: Scenario, priors: dict[str, Prior]) -> None:
    """Give a tunable model's shared parameters the values of ``priors`` and ``spec``.

    The priors must have the shape the model was built with (same paths, same families,
    the same constants): :func:`shape_key` says when they do.
    """
    for path, shared in tunable.items():
        values = (spec.question.rounds,) if path == ROUNDS else priors[path].params
        for variable, value in zip(shared, values, strict=True):
            variable.set_value(np.float64(value))


def shape_key(spec: Scenario, priors: dict[str, Prior], data_key: str) -> str:
    """What a tunable model's graph depends on beyond its shared parameters.

    Two scenarios with the same key build the same graph up to the prior parameters,
    the constants' values and the number of rounds: the beliefs' paths and families,
    the stages, factors, evidence and decision as they are wired, the pooling scale and
    the reference data (``data_key``, :func:`forecast.prepared.data_key`).
    """
    import json

    ref = spec.reference
    decision = spec.decision
    return json.dumps(
        [
            data_key,
            None if ref is None else [ref.pooling_scale, ref.group, str(ref.case_group)],
            list(spec.stages),
            list(spec.factors),
            list(spec.evidence),
            None
            if decision is None
            else [
                [name, opt.p_success == "model", [(c, x.when) for c, x in opt.consequences.items()]]
                for name, opt in decision.options.items()
            ],
            [(p, pr.family) for p, pr in priors.items()],
        ],
        default=str,
    )


def _softplus(x):
    """log(1 + e^x), stable, from ops that evaluate vectorised in every PyTensor mode.

    ``pt.softplus`` has no NumPy implementation, so FAST_COMPILE would evaluate it one
    element at a time (measured: 1.3 s of a 2.6 s importance-sampling pass).
    """
    return pt.maximum(x, 0.0) + pt.log1p(pt.exp(-pt.abs(x)))


def _outcomes_logp(value, logit_pass, log_weight):
    """Log-density of one round's stage outcomes, summed over its unknown factor states."""
    observed = pt.ge(value, 0)[..., None, :]
    y = value[..., None, :]
    per_stage = pt.switch(
        observed, -(y * _softplus(-logit_pass) + (1 - y) * _softplus(logit_pass)), 0.0
    )
    terms = log_weight + per_stage.sum(axis=-1)
    # logsumexp by hand: pt.logsumexp cannot vectorise over a batch of draws
    top = pt.max(terms, axis=-1, keepdims=True)
    return (top + pt.log(pt.exp(terms - top).sum(axis=-1, keepdims=True)))[..., 0]


def groups_of(spec: Scenario, data: ReferenceData | None) -> list[str] | None:
    """Group labels when partial pooling applies (a group column and more than one group)."""
    if data is None or spec.reference is None or spec.reference.group is None:
        return None
    labels = sorted(set(data.group or []))
    case = spec.reference.case_group
    if case is not None and str(case) not in labels:
        labels.append(str(case))
    elif case is None:
        labels.append("(new group)")
    return labels if len(labels) > 1 else None


def case_group_label(spec: Scenario) -> str:
    case = spec.reference.case_group if spec.reference else None
    return "(new group)" if case is None else str(case)


def build_model(
    spec: Scenario,
    priors: dict[str, Prior],
    data: ReferenceData | None,
    seed: int = 0,
    tunable: dict | None = None,
) -> pm.Model:
    """Build the PyMC model of a scenario, in the named steps of PRODUCT §2.

    Parameters
    ----------
    spec
        The validated scenario.
    priors
        Fitted prior of every belief, keyed by its dotted path.
    data
        Reference rounds, or ``None`` for a prior-only scenario.
    seed
        Kept for callers; the Monte Carlo factor states of the case (more than 12
        factors) are random nodes of the graph, seeded by whoever draws from it.
    tunable
        A dict to make the model tunable: the beliefs' parameters and the number of
        rounds become shared variables, recorded there (see :func:`set_tunable`).
    """
    stages, factors, evidence = list(spec.stages), list(spec.factors), list(spec.evidence)
    groups = groups_of(spec, data)
    pooled = [s for s in stages if spec.stages[s].column is not None] if groups else []
    coords: dict[str, list] = {"stage": stages, "factor": factors}
    if evidence:
        coords["evidence"] = evidence
    if groups:
        coords["group"] = groups
        coords["pooled_stage"] = pooled
    if spec.decision is not None:
        coords["option"] = list(spec.decision.options)
    if data is not None:
        coords["round"] = data.round_id

    with pm.Model(coords=coords) as model:
        var = {path: _variable(path, prior, tunable) for path, prior in priors.items()}
        b = _beliefs(spec, var)
        shift = _group_shift(spec, stages, pooled, groups)
        if data is not None and data.n_rounds:
            _reference_outcomes(spec, var, b, data, groups, shift)
            _factor_records(spec, var, data)
        case_shift = None if shift is None else shift[:, groups.index(case_group_label(spec))]
        p_success = _case(spec, var, b, case_shift, tunable)
        if spec.decision is not None:
            option_values(spec, var, p_success)
    return model


@dataclass(frozen=True)
class _Beliefs:
    """The beliefs arranged on named dims: logit base rates, log odds ratios, holds."""

    logit_base: pt.TensorVariable  # (stage,)
    log_odds_ratio: pt.TensorVariable  # (stage, factor)
    holds: pt.TensorVariable  # (factor,)


def _beliefs(spec: Scenario, var: dict) -> _Beliefs:
    """One free variable per belief (named by its --set path), arranged on dims."""
    stages, factors = list(spec.stages), list(spec.factors)
    base_rate = pt.stack([var[f"stages.{s}.base_rate.belief"] for s in stages])
    log_or_rows = []
    for s in stages:
        row = []
        for f in factors:
            path = f"stages.{s}.effects.{f}.odds_ratio"
            row.append(pt.log(var[path]) if path in var else pt.constant(0.0))
        log_or_rows.append(pt.stack(row) if row else pt.zeros((0,)))
    log_odds_ratio = pt.stack(log_or_rows).reshape((len(stages), len(factors)))
    holds = pt.stack([var[f"factors.{f}.holds"] for f in factors]) if factors else pt.zeros((0,))
    # the same beliefs on named dims, for readers of posterior.nc
    pm.Deterministic("base_rate", base_rate, dims="stage")
    if factors:
        pm.Deterministic("odds_ratio", pt.exp(log_odds_ratio), dims=("stage", "factor"))
        pm.Deterministic("holds", holds, dims="factor")
    return _Beliefs(pm.math.logit(base_rate), log_odds_ratio, holds)


def _group_shift(spec: Scenario, stages: list[str], pooled: list[str], groups):
    """tau_s · z_sg on the logit scale, (stage, group); zero for stages without a column.

    A stage no data observe has nothing to pool: its spread would be sampled from the
    prior and multiplied by zero, so it gets no ``group_scale`` or ``group_offset``.
    """
    if not groups or not pooled:
        return None
    tau = pm.HalfNormal("group_scale", sigma=spec.reference.pooling_scale, dims="pooled_stage")
    z = pm.Normal("group_offset", 0.0, 1.0, dims=("pooled_stage", "group"))
    rows = tau[:, None] * z
    zero = pt.zeros((len(groups),))
    return pt.stack([rows[pooled.index(s)] if s in pooled else zero for s in stages])


def _reference_outcomes(spec, var, b: _Beliefs, data: ReferenceData, groups, shift) -> None:
    """The observed ``outcomes`` (round, stage), each round summed over its unknown factors."""
    factors, stages = list(spec.factors), list(spec.stages)
    states, unknown, valid = round_states(data.x)
    # factors whose values are never unknown get a placeholder rate; it has no weight
    in_ref = (
        pt.stack([var.get(f"factors.{f}.in_reference", pt.constant(0.5)) for f in factors])
        if factors
        else pt.zeros((0,))
    )
    # log P(state) over the enumerated values only, exact for a rate of 0 or 1: the
    # log of the chosen probability, never 0 · log 0; padding states get ~ -inf
    chosen = pt.switch(pt.gt(states, 0), in_ref, 1.0 - in_ref)
    log_weight = pt.switch(pt.gt(unknown, 0), pt.log(chosen), 0.0).sum(axis=-1) + np.where(
        valid > 0, 0.0, -1e30
    )
    logit_round = pt.broadcast_to(b.logit_base, (data.n_rounds, len(stages)))
    if shift is not None:
        idx = np.array([groups.index(g) for g in data.group])
        logit_round = logit_round + shift.T[idx]
    # only factors that hold in some round (or may: unknown) enter: an effect of a factor
    # that never held in the reference rounds is not something the data bear on
    active = [j for j in range(len(factors)) if states[:, :, j].any()]
    round_shift = 0.0
    if active:
        log_or = pt.stack([b.log_odds_ratio[:, j] for j in active], axis=-1)  # (stage, active)
        # (round, state, stage); products and sums, not dot, so that batches of draws
        # vectorise as elementwise ops instead of a Python loop over draws
        round_shift = (states[:, :, None, active] * log_or[None, None, :, :]).sum(axis=-1)
    pm.CustomDist(
        "outcomes",
        logit_round[:, None, :] + round_shift,
        log_weight,
        logp=_outcomes_logp,
        signature="(c,s),(c)->(s)",
        observed=data.y.astype("int64"),
        dims=("round", "stage"),
    )


def _factor_values_logp(value, rate):
    """Bernoulli(rate) of each recorded factor value; 0 where not recorded (value -1)."""
    chosen = pt.switch(pt.gt(value, 0), rate, 1.0 - rate)
    return pt.switch(pt.ge(value, 0), pt.log(chosen), 0.0)


def _factor_records(spec: Scenario, var: dict, data: ReferenceData) -> None:
    """Recorded values of a factor with a column inform its ``in_reference`` rate.

    PRODUCT §1: each recorded round adds a Bernoulli(in_reference) term, so blanks are
    filled at the rate the records show rather than at the prior's.
    """
    factors = list(spec.factors)
    # a constant rate has nothing to learn; a free variable has an owner (its RV node)
    learns = [
        spec.factors[f].column is not None
        and getattr(var.get(f"factors.{f}.in_reference"), "owner", None) is not None
        for f in factors
    ]
    if not any(learns):
        return
    value = np.where(np.array(learns)[None, :], data.x, UNKNOWN).astype("int64")
    rate = pt.stack([var.get(f"factors.{f}.in_reference", pt.constant(0.5)) for f in factors])
    pm.CustomDist(
        "factor_values",
        rate,
        logp=_factor_values_logp,
        observed=value,
        dims=("round", "factor"),
    )


def _case(spec: Scenario, var: dict, b: _Beliefs, group_shift, tunable=None):
    """P(success) of the talks being forecast (PRODUCT §2, "The case").

    The factor state x persists over the question's rounds; each round is a fresh try
    at the whole pathway given x; the evidence then acts on the final odds:

        P0 = Σ_x w(x) · (1 − (1 − Π_s P_s(pass | x))^rounds)
        odds(P(success)) = odds(P0) · Π likelihood ratios
    """
    factors, stages = list(spec.factors), list(spec.stages)
    logit_case = b.logit_base if group_shift is None else b.logit_base + group_shift
    if len(factors) <= MAX_EXACT_FACTORS:
        x = pt.constant(all_states(len(factors)))  # (state, factor)
        # Π_f holds^x (1 − holds)^(1 − x) as a product of the chosen probabilities: exact
        # for holds of 0 or 1, where the log form would meet 0 · log 0
        weight = pt.switch(pt.gt(x, 0), b.holds, 1.0 - b.holds).prod(axis=-1)  # (state,)
    else:
        # Monte Carlo beyond 12 factors: fresh uniforms for every draw (a random node of
        # the graph, redrawn per draw by the vectorised sampler)
        u = pm.Uniform.dist(0.0, 1.0, shape=(MONTE_CARLO_STATES, len(factors)))
        x = pt.lt(u, b.holds).astype("float64")
        weight = pt.ones((MONTE_CARLO_STATES,)) / MONTE_CARLO_STATES
    shift = (x[:, None, :] * b.log_odds_ratio[None, :, :]).sum(axis=-1)  # (state, stage)
    pass_prob = pm.math.sigmoid(logit_case[None, :] + shift)
    # P(reach stage s) = product of the earlier stages' pass probabilities; one product
    # per stage (not cumprod, not ones_like: neither has a vectorised NumPy implementation,
    # so a batch of draws would be evaluated element by element in Python)
    reach = pt.stack([pt.prod(pass_prob[:, :s], axis=1) for s in range(len(stages))], axis=1)
    p_round_x = pt.prod(pass_prob, axis=1)  # (state,): one round passes every stage
    pm.Deterministic("p_round", (weight * p_round_x).sum())
    pm.Deterministic(
        "p_stage",
        (weight[:, None] * reach * pass_prob).sum(axis=0) / (weight[:, None] * reach).sum(axis=0),
        dims="stage",
    )
    rounds = spec.question.rounds
    if tunable is not None:
        rounds = pytensor.shared(np.float64(rounds), name=ROUNDS)
        tunable[ROUNDS] = [rounds]
    p_any = -pt.expm1(rounds * pt.log1p(-p_round_x))  # (state,): some round succeeds
    p0 = (weight * p_any).sum()
    if not spec.evidence:
        return pm.Deterministic("p_success", p0)
    lr = pm.Deterministic(
        "likelihood_ratio",
        pt.stack([var[f"evidence.{e}.likelihood_ratio"] for e in spec.evidence]),
        dims="evidence",
    )
    # odds(P0) · L as P0·L / (P0·L + 1 − P0): exact at P0 = 0 or 1, no logit of either
    scaled = p0 * pt.prod(lr)
    return pm.Deterministic("p_success", scaled / (scaled + 1.0 - p0))


def option_values(spec: Scenario, var: dict, p_success) -> None:
    """Each option's value per draw (PRODUCT §5), as ``option_value`` (dims ``option``).

    value = p·value_of_success + Σ P(when)·P(consequence | when)·value, with
    P(always) = 1, P(success) = p and P(failure) = 1 − p, p the option's P(success).
    """
    d = spec.decision
    values = []
    for name, opt in d.options.items():
        p = p_success if opt.p_success == "model" else var[f"decision.options.{name}.p_success"]
        total = p * var["decision.value_of_success"]
        for cname, c in opt.consequences.items():
            base = f"decision.options.{name}.consequences.{cname}"
            when = {"always": 1.0, "success": p, "failure": 1 - p}[c.when]
            total = total + when * var[f"{base}.probability"] * var[f"{base}.value"]
        values.append(total)
    pm.Deterministic("option_value", pt.stack(values), dims="option")
