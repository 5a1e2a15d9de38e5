"""Backtest: forecast each reference round, stage by stage, from what was known before it.

One set of draws serves every round. For the round starting on day t, each draw is
weighted by the likelihood of what was known then — the outcomes known strictly before
t and, when recorded factor values inform an ``in_reference`` rate, the factor values of
the rounds that had started by t (PSIS, Pareto k per round). The forecasts are weighted
estimates of P(pass stage s | reached s, its factor values, its group) for every stage
whose outcome the round records, and of P(pass every stage), the whole pathway. No
round ever sees its own outcome or a later one.

Every forecast carries its Monte Carlo error (PSIS-weighted with the draws' relative
efficiency; ArviZ's MCSE for a refit) and every score the error propagated from them by
the delta method, over the draws the forecasts share. Differences from the baselines
are paired by round; their standard error, SD / √n over rounds, is sampling
uncertainty over rounds — which rounds history happened to give — not Monte Carlo error.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecast import mcse as mc
from forecast.data import UNKNOWN
from forecast.records import BacktestRow

DRAWS = 40_000
PATHWAY = "pathway"
BASELINES = {"running_base_rate": "p_running_base_rate", "priors_only": "p_priors_only"}
#: Probabilities are clipped to this distance from 0 and 1 for the log score.
CLIP = 1e-6


def known_prefix(data, spec, target_start: dt.date) -> np.ndarray:
    """Per round, how many leading stages had an outcome known strictly before ``target_start``."""
    stages = list(spec.stages.values())
    k = np.zeros(data.n_rounds, dtype=int)
    alive = np.ones(data.n_rounds, dtype=bool)
    for s, st in enumerate(stages):
        if st.column is None:
            break
        known = np.array(
            [
                data.y[i, s] != UNKNOWN
                and data.end[i] + dt.timedelta(days=st.known_after_days) < target_start
                for i in range(data.n_rounds)
            ]
        )
        alive &= known
        k += alive
    return k


def observed_stages(spec) -> list[str]:
    """The stages with an outcome column (they lead: PRODUCT §1), the ones a backtest scores."""
    out = []
    for name, st in spec.stages.items():
        if st.column is None:
            break
        out.append(name)
    return out


def pathway_outcome(y_row: np.ndarray, k: int, n_stages: int) -> int | None:
    """Whether a round passed every stage, from its first ``k`` known outcomes; None if unknown.

    Failing a known stage settles it (0); passing all ``n_stages`` settles it (1);
    passing the known ones with a later outcome still unknown does not.
    """
    if k == 0:
        return None
    if y_row[k - 1] == 0:
        return 0
    return 1 if k == n_stages else None


def loglik_terms(model, y: np.ndarray, n_stages: int):
    """Per-round log-likelihood graphs, each of shape (round,).

    Returns ``prefix`` (log P(the first k stages' outcomes) for k = 1..n_stages),
    ``factors`` (the log-density of the round's recorded factor values, summed over
    factors, or None when the model has no ``factor_values``) and ``reach``
    (log P(pass stages 0..s) for each s). A round's total log-likelihood given its
    first k outcomes is ``prefix[k - 1] + factors``.
    """
    import pymc as pm

    rv = model["outcomes"]
    prefix, reach = [], []
    for k in range(1, n_stages + 1):
        value = y.astype("int64").copy()
        value[:, k:] = UNKNOWN
        prefix.append(pm.logp(rv, value))
    for s in range(n_stages):
        value = np.full(y.shape, UNKNOWN, dtype="int64")
        value[:, : s + 1] = 1
        reach.append(pm.logp(rv, value))
    factors = None
    if "factor_values" in model.named_vars:
        fv = model["factor_values"]
        lp = pm.logp(fv, model.rvs_to_values[fv])
        factors = lp.sum(axis=-1) if lp.ndim == 2 else lp
    return prefix, factors, reach


@dataclass
class RoundTerms:
    """Log-densities per draw (first axis) and round (second axis), from one set of draws."""

    prefix: list[np.ndarray]  # [k]: log P(the first k stages' outcomes), k = 0..stages
    factors: np.ndarray  # log-density of the round's recorded factor values (0 without)
    log_reach: list[np.ndarray]  # [s]: log P(pass stages 0..s)
    chains: int = 1  # the draws are (chain, draw) flattened; 1 for independent draws

    @property
    def n(self) -> int:
        return self.factors.shape[0]

    def forecast_draws(self, t: int, s: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Round ``t``, target ``s`` (a stage index, or len(stages) for the pathway):
        per draw P(pass stages ≤ s) and P(pass stages < s) (None for the first stage)."""
        if s == len(self.log_reach):
            return np.exp(self.log_reach[-1][:, t]), None
        a = np.exp(self.log_reach[s][:, t])
        return a, None if s == 0 else np.exp(self.log_reach[s - 1][:, t])


def _round_terms(model, data, n_stages: int, n: int, seed: int, given=None, chains: int = 1):
    from forecast.fit import vectorised_draws

    prefix, factors, reach = loglik_terms(model, data.y, n_stages)
    extra = prefix + reach + ([] if factors is None else [factors])
    values = vectorised_draws(model, [], n, seed, given=given, extra=extra)
    zero = np.zeros((n, data.n_rounds))
    return RoundTerms(
        prefix=[zero, *values[:n_stages]],
        factors=zero if factors is None else values[2 * n_stages],
        log_reach=values[n_stages : 2 * n_stages],
        chains=chains,
    )


@dataclass
class Estimate:
    """One forecast with its Monte Carlo error.

    ``influence`` (per draw, p̂ − p ≈ Σ influence) is kept for forecasts from draws that
    other forecasts share (``draws`` names them), so that errors of scores over many
    rounds keep the correlation the shared draws give; a refit's own draws have none.
    """

    p: float
    mcse: float
    draws: str | None = None
    influence: np.ndarray | None = None
    chains: int = 1


def estimate(a, b, weights=None, chains: int = 1, draws: str | None = None) -> Estimate:
    """The weighted ratio Σ w·a / Σ w·b (b = 1 when None) and its Monte Carlo error.

    Linearised, p̂ − p ≈ Σ_d w_d z_d with z = (a − p·b) / Σ w·b, so the error is the
    PSIS-weighted MCSE of z (:func:`forecast.mcse.weighted_mcse`, with z's relative
    efficiency when the draws are MCMC chains); with equal weights over MCMC draws (a
    refit) it is ArviZ's MCSE of the mean of z.
    """
    n = len(a)
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights) / np.sum(weights)
    denom = 1.0 if b is None else max(float(w @ b), 1e-300)
    p = float(w @ a) / denom
    z = (a - p * (1.0 if b is None else b)) / denom
    if np.ptp(z) == 0:
        err = 0.0
    elif weights is None and chains > 1 and draws is None:
        import xarray as xr

        err = mc.mcse_mean(xr.DataArray(z.reshape(chains, -1), dims=("chain", "draw")))
    else:
        r_eff = mc.relative_efficiency(z.reshape(chains, -1)) if chains > 1 else 1.0
        err = mc.weighted_mcse(z, w, r_eff)
    return Estimate(p, err, draws, None if draws is None else w * z, chains)


@dataclass
class ScoreError:
    """Delta-method Monte Carlo error of a sum of functions of forecasts.

    ``add(estimate, c)`` adds c·(p̂ − p). Forecasts from the same draws are correlated
    through them, so their influences are summed draw by draw before squaring; a
    refit's draws are its own, so its error adds in quadrature.
    """

    shared: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)
    own: float = 0.0

    def add(self, est: Estimate, coef: float) -> None:
        if est.influence is None:
            self.own += (coef * est.mcse) ** 2
            return
        previous = self.shared.get(est.draws)
        total = coef * est.influence if previous is None else previous[0] + coef * est.influence
        self.shared[est.draws] = (total, est.chains)

    def mcse(self, scale: float = 1.0) -> float:
        var = self.own
        for influence, chains in self.shared.values():
            r_eff = mc.relative_efficiency(influence.reshape(chains, -1)) if chains > 1 else 1.0
            var += float(influence @ influence) / r_eff
        return math.sqrt(var) * scale


def _weights(terms: dict[str, RoundTerms], k, full, started):
    """The proposal to use: (name, weights, Pareto k, ESS, trusted), as in PSIS-LFO.

    From the prior: the likelihood of what was known (outcomes before the start, factor
    values of rounds started by then). From the full posterior: the inverse likelihood
    of what was not yet known. A trusted proposal (PRODUCT §2: k below min(1 − 1/log10 S,
    0.7) and ESS ≥ 400) is preferred, then the smaller k.
    """
    from forecast.psis import psis_weights, trusted

    best = None
    for name, tr in terms.items():
        log_ratio = np.zeros(tr.n)
        for i in range(len(k)):
            if name == "prior":
                if k[i]:
                    log_ratio += tr.prefix[k[i]][:, i]
                if started[i]:
                    log_ratio += tr.factors[:, i]
            else:
                if k[i] != full[i]:
                    log_ratio += tr.prefix[k[i]][:, i] - tr.prefix[full[i]][:, i]
                if not started[i]:
                    log_ratio -= tr.factors[:, i]
        w, pareto_k = psis_weights(log_ratio)
        ess = float(1 / (w**2).sum())
        candidate = (name, w, pareto_k, ess, trusted(pareto_k, ess, tr.n))
        # a k below 0 is no better than equal weights (k = 0): on a tie the first, the
        # prior, stays, so a round forecast from nothing known is the priors' exactly
        if best is None or (candidate[4], -max(pareto_k, 0.0)) > (best[4], -max(best[2], 0.0)):
            best = candidate
    return best


def refit_round(spec, priors, data, t: int, k: np.ndarray, settings) -> dict[str, Estimate]:
    """NUTS on what was known at round ``t``'s start only; its forecasts (ArviZ MCSE).

    Outcomes not known before the start are hidden; so are the factor values of rounds
    not yet started, when the model learns from recorded factor values (their outcomes
    are hidden too, so a hidden value changes nothing else).
    """
    import dataclasses

    from forecast.fit import flat_draws, run_fit
    from forecast.model import build_model

    y = data.y.copy()
    for i in range(data.n_rounds):
        y[i, k[i] :] = UNKNOWN
    masked = dataclasses.replace(data, y=y)
    model = build_model(spec, priors, masked, settings.seed)
    if "factor_values" in model.named_vars:
        x = data.x.copy()
        x[np.array([d > data.date[t] for d in data.date])] = UNKNOWN
        masked = dataclasses.replace(masked, x=x)
        model = build_model(spec, priors, masked, settings.seed)
    fitted = run_fit(
        model, has_data=True, draws=settings.draws, chains=settings.chains, seed=settings.seed
    )
    posterior = fitted.tree["posterior"].to_dataset()
    names = [rv.name for rv in model.free_RVs if rv.name in posterior]
    n_stages = len(observed_stages(spec))
    chains = posterior.sizes["chain"]
    terms = _round_terms(
        model,
        masked,
        n_stages,
        chains * posterior.sizes["draw"],
        settings.seed,
        given=flat_draws(posterior, names),
        chains=chains,
    )
    return {
        target: estimate(*terms.forecast_draws(t, s), chains=chains)
        for s, target in enumerate([*observed_stages(spec), PATHWAY])
    }


def forecasts(
    model, data, spec, seed: int, posterior=None, refit=None, draws: int = DRAWS
) -> dict[str, Any]:
    """Forecast and score every stage each round reached, and its whole pathway.

    Two proposals are tried for each round, as in PSIS leave-future-out: the prior,
    weighted by the likelihood of what was known at its start, and the full posterior,
    weighted by the inverse likelihood of what was not; the one with the smaller Pareto
    k is used, and ``refit(t, k)`` (NUTS on what was known) where both k are too large.
    ``draws`` prior draws are taken. Returns backtest.json's content but for ``schema``
    and ``id``.
    """
    stages = observed_stages(spec)
    targets = [*stages, PATHWAY]
    terms = _proposals(model, data, len(stages), seed, posterior, draws)
    full = np.array(
        [
            sum(1 for s in range(len(stages)) if data.y[i, s] != UNKNOWN)
            for i in range(data.n_rounds)
        ]
    )
    records: dict[str, list[dict]] = {name: [] for name in targets}
    for t in np.argsort(data.date, kind="stable"):
        for target, record in _round_records(t, data, spec, stages, terms, full, refit):
            records[target].append(record)
    return _scores(records, spec, stages, draws)


def _proposals(model, data, n_stages: int, seed: int, posterior, draws: int) -> dict:
    """Each round's log-likelihood terms under the prior draws and the posterior draws."""
    from forecast.fit import flat_draws

    terms = {"prior": _round_terms(model, data, n_stages, draws, seed)}
    if posterior is not None:
        chains = posterior.sizes["chain"]
        names = [rv.name for rv in model.free_RVs if rv.name in posterior]
        terms["posterior"] = _round_terms(
            model,
            data,
            n_stages,
            chains * posterior.sizes["draw"],
            seed,
            given=flat_draws(posterior, names),
            chains=chains,
        )
    return terms


def _round_records(t: int, data, spec, stages: list[str], terms: dict, full, refit):
    """(target, record) for every stage round ``t`` reached and for its settled pathway."""
    n_stages = len(stages)
    outcome = {stages[s]: int(data.y[t, s]) for s in range(n_stages) if data.y[t, s] != UNKNOWN}
    settled = pathway_outcome(data.y[t], full[t], n_stages)
    if settled is not None:
        outcome[PATHWAY] = settled
    if not outcome:
        return []
    start = data.date[t]
    k = known_prefix(data, spec, start)
    k[t] = 0  # never its own outcome (known_prefix already excludes it by date)
    # a round's factor values are known once it has started (the target's own included:
    # the forecast conditions on them)
    started = np.array([d <= start for d in data.date])
    earlier = [i for i in range(data.n_rounds) if k[i]]
    name, w, pareto_k, ess, reliable = _weights(terms, k, full, started)
    refitted = refit(t, k) if not reliable and refit is not None else None
    common = {
        "round_id": data.round_id[t],
        "date": start.isoformat(),
        "group": None if data.group is None else data.group[t],
        "proposal": "refit" if refitted else name,
        "pareto_k": pareto_k,
        "ess": ess,
        "reliable": bool(refitted) or reliable,
        "rounds_known": len(earlier),
        "latest_known": max((data.end[i] for i in earlier), default=None),
    }
    out = []
    for s, target in enumerate([*stages, PATHWAY]):
        if target not in outcome:
            continue
        if refitted:
            scenario = refitted[target]
        else:
            tr = terms[name]
            scenario = estimate(*tr.forecast_draws(t, s), w, tr.chains, draws=name)
        if target == PATHWAY:
            past = [pathway_outcome(data.y[i], k[i], n_stages) for i in earlier]
            past = [o for o in past if o is not None]
        else:
            past = [int(data.y[i, s]) for i in earlier if k[i] > s]
        record = {
            **common,
            "outcome": outcome[target],
            "scenario": scenario,
            "running_base_rate": (sum(past) + 1) / (len(past) + 2),
            "base_rate_rounds": len(past),
            "priors_only": estimate(*terms["prior"].forecast_draws(t, s), draws="prior"),
        }
        out.append((target, record))
    return out


def _scores(records: dict[str, list[dict]], spec, stages: list[str], draws: int) -> dict:
    """Each target's scores against the baselines, the first stage's on top."""
    summaries = {target: summarise(rs) for target, rs in records.items()}
    first = summaries[stages[0]] if stages else summarise([])
    reliable_ids = {r["round_id"]: r["reliable"] for rs in records.values() for r in rs}
    proposals = {r["round_id"]: r["proposal"] for rs in records.values() for r in rs}
    dates = sorted({dt.date.fromisoformat(r["date"]) for rs in records.values() for r in rs})
    return {
        "rounds": first["rounds"],
        **{key: first[key] for key in ("brier", "brier_mcse", "log_score", "log_score_mcse")},
        "baselines": first["baselines"],
        "stages": {name: summaries[name] for name in stages},
        PATHWAY: {"stages": stages, **summaries[PATHWAY]},
        "hindsight": hindsight(spec, dates),
        "refits": [rid for rid, p in proposals.items() if p == "refit"],
        "unreliable_rounds": [rid for rid, ok in reliable_ids.items() if not ok],
        "method": METHOD.format(draws=draws),
        "outcome": f"the first stage, {stages[0]}" if stages else None,
    }


METHOD = (
    "sequential importance sampling (PSIS, as in leave-future-out): for each round, either "
    "{draws:,} prior draws weighted by the likelihood of what was known at its start (the "
    "outcomes known strictly before its start date, and the recorded factor values of the rounds "
    "started by then when these inform a factor's in_reference rate), or the report's posterior "
    "draws weighted by the inverse likelihood of what was not yet known: the one whose weights "
    "are trusted (Pareto k below min(1 − 1/log10 S, 0.7) and ESS ≥ 400; the smaller k if both "
    "are), and a NUTS refit on what was known where neither is. Each stage a round reached is "
    "forecast as P(pass the stage | reached it, the round's factor values, its group) = "
    "E[P(pass stages ≤ s)] / E[P(pass stages < s)] under the weights, the pathway as "
    "E[P(pass every stage)]"
)


def _round_scores(p: np.ndarray, y: np.ndarray):
    """Per round: Brier score, log score, and their derivatives in p (for the delta method)."""
    p = np.clip(p, CLIP, 1 - CLIP)
    brier = (p - y) ** 2
    log = y * np.log(p) + (1 - y) * np.log1p(-p)
    return {"brier": (brier, 2 * (p - y)), "log_score": (log, y / p - (1 - y) / (1 - p))}


def _se_over_rounds(d: np.ndarray) -> float | None:
    """Standard error of a mean over rounds, SD / √n: sampling uncertainty over rounds."""
    return float(np.std(d, ddof=1) / math.sqrt(len(d))) if len(d) > 1 else None


def summarise(records: list[dict]) -> dict[str, Any]:
    """Scores of one target (a stage or the pathway): the scenario's, each baseline's,
    and the paired differences (scenario − baseline) over the rounds, all with errors."""
    n = len(records)
    y = np.array([r["outcome"] for r in records], dtype=float)
    p = {
        "scenario": np.array([r["scenario"].p for r in records]),
        "running_base_rate": np.array([r["running_base_rate"] for r in records]),
        "priors_only": np.array([r["priors_only"].p for r in records]),
    }
    scored = {name: _round_scores(v, y) for name, v in p.items()}

    def error(name: str, score: str, minus: str | None = None) -> float | None:
        if not n:
            return None
        acc = ScoreError()
        for sign, who in ((1.0, name), (-1.0, minus)):
            if who is None or who == "running_base_rate":  # exact: no Monte Carlo error
                continue
            slope = scored[who][score][1]
            for r, c in zip(records, slope, strict=True):
                acc.add(r[who], sign * c)
        return acc.mcse(1 / n)

    def figures(name: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for score in ("brier", "log_score"):
            value = float(scored[name][score][0].mean()) if n else None
            err = error(name, score)
            out[score] = mc.round_to(value, err)
            out[f"{score}_mcse"] = mc.sig(err)
        return out

    differences = {}
    for base in BASELINES:
        diff: dict[str, float | None] = {}
        for score in ("brier", "log_score"):
            d = scored["scenario"][score][0] - scored[base][score][0]
            err = error("scenario", score, minus=base)
            diff[score] = mc.round_to(float(d.mean()), err) if n else None
            diff[f"{score}_se"] = mc.sig(_se_over_rounds(d))
            diff[f"{score}_mcse"] = mc.sig(err)
        differences[base] = diff
    return {
        "n": n,
        **figures("scenario"),
        "baselines": {base: figures(base) for base in BASELINES},
        "differences": differences,
        "rounds": [_row(r) for r in records],
    }


def _row(r: dict) -> dict[str, Any]:
    """A round as backtest.json writes it, each figure rounded to what its error supports."""
    scenario, prior = r["scenario"], r["priors_only"]
    latest = r["latest_known"]
    return BacktestRow(
        round_id=r["round_id"],
        date=r["date"],
        group=r["group"],
        outcome=r["outcome"],
        p=mc.round_to(scenario.p, scenario.mcse),
        p_mcse=mc.sig(scenario.mcse),
        proposal=r["proposal"],
        pareto_k=round(r["pareto_k"], 3),
        ess=round(r["ess"], 1),
        reliable=r["reliable"],
        rounds_known=r["rounds_known"],
        latest_known=None if latest is None else latest.isoformat(),
        p_running_base_rate=round(r["running_base_rate"], 4),
        base_rate_rounds=r["base_rate_rounds"],
        p_priors_only=mc.round_to(prior.p, prior.mcse),
        p_priors_only_mcse=mc.sig(prior.mcse),
    ).as_json()


def hindsight(spec, dates: list[dt.date]) -> str:
    """Whether the priors were written after the rounds they are scored on."""
    written = spec.source.date
    n = len(dates)
    before = [d for d in dates if d < written]
    if not n:
        return "No round was backtested."
    if len(before) == n:
        return (
            f"Hindsight: the priors were written on {written.isoformat()}, after every one of the "
            f"{n} backtested rounds had begun (the last on {max(dates).isoformat()}). The author "
            "could know how these rounds went, so the scores show whether the priors agree with "
            "that history, not that they would have foreseen it, and may flatter the priors."
        )
    if before:
        return (
            f"Partly hindsight: {len(before)} of the {n} backtested rounds began before the priors "
            f"were written ({written.isoformat()}); for those the author could know how they went, "
            f"which may flatter the priors. The other {n - len(before)} are true forecasts."
        )
    return (
        f"No hindsight: every backtested round began after the priors were written "
        f"({written.isoformat()})."
    )
