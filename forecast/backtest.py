"""Backtest: forecast each reference round from the rounds known before it.

One set of prior draws serves every round: for the round starting on day t, each draw
is weighted by the likelihood of the outcomes known strictly before t (PSIS, Pareto k
per round), and the forecast is the weighted mean of P(the round passes its first
stage | its factor values, its group). No round ever sees its own outcome or a later one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from forecast.data import UNKNOWN

DRAWS = 40_000


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


def _round_terms(model, data, n: int, seed: int, given=None) -> tuple[list[np.ndarray], np.ndarray]:
    """Per draw and round: log P(outcomes of the first k stages) for each k, and P(pass stage 1)."""
    import pymc as pm

    from forecast.fit import _vectorised_draws

    rv = model["outcomes"]
    n_stages = data.y.shape[1]
    extra = []
    for s in range(n_stages):
        value = data.y.astype("int64").copy()
        value[:, s + 1 :] = UNKNOWN
        extra.append(pm.logp(rv, value))
    first = np.full_like(data.y, UNKNOWN, dtype="int64")
    first[:, 0] = 1
    extra.append(pm.logp(rv, first))
    values = _vectorised_draws(model, [], n, seed, given=given, extra=extra)
    return [np.zeros_like(values[0]), *values[:n_stages]], np.exp(values[n_stages])


def refit_round(spec, priors, data, t: int, k: np.ndarray, settings) -> float:
    """NUTS on the outcomes known before round ``t`` only; P(round t passes stage 1)."""
    import dataclasses

    from forecast.fit import run_fit, stage_pass_probabilities
    from forecast.model import build_model

    y = data.y.copy()
    for i in range(data.n_rounds):
        y[i, k[i] :] = UNKNOWN
    masked = dataclasses.replace(data, y=y)
    model = build_model(spec, priors, masked, settings.seed)
    fitted = run_fit(
        model, has_data=True, draws=settings.draws, chains=settings.chains, seed=settings.seed
    )
    posterior = fitted.tree["posterior"].to_dataset()
    return float(stage_pass_probabilities(model, posterior)[:, t, 0].mean())


def forecasts(model, data, spec, seed: int, posterior=None, refit=None) -> dict[str, Any]:
    """Forecast of every round with a first-stage outcome, from the rounds known before it.

    Two proposals are tried for each round, as in PSIS leave-future-out: the prior,
    weighted by the likelihood of the earlier rounds, and the full posterior, weighted
    by the inverse likelihood of the later ones; the one with the smaller Pareto k is used.
    """
    from forecast.fit import PARETO_K_MAX, data_dependent, flat_draws, psis_weights

    prefix_prior, p_first_prior = _round_terms(model, data, DRAWS, seed)
    proposals = {"prior": (prefix_prior, p_first_prior)}
    if posterior is not None:
        n = posterior.sizes["chain"] * posterior.sizes["draw"]
        given = flat_draws(posterior, data_dependent(model))
        proposals["posterior"] = _round_terms(model, data, n, seed, given=given)
    full = np.array(
        [
            sum(1 for s in range(data.y.shape[1]) if data.y[i, s] != UNKNOWN)
            for i in range(data.n_rounds)
        ]
    )

    targets = [i for i in np.argsort(data.date, kind="stable") if data.y[i, 0] != UNKNOWN]
    rows = []
    for t in targets:
        start = data.date[t]
        k = known_prefix(data, spec, start)
        k[t] = 0  # never its own outcome (known_prefix already excludes it by date)
        earlier = [i for i in range(data.n_rounds) if k[i]]
        best = None
        for name, (prefix, p_first) in proposals.items():
            if name == "prior":
                log_ratio = sum((prefix[k[i]][:, i] for i in earlier), np.zeros(prefix[0].shape[0]))
            else:  # from the full posterior: remove what was not yet known
                log_ratio = sum(
                    (
                        prefix[k[i]][:, i] - prefix[full[i]][:, i]
                        for i in range(data.n_rounds)
                        if k[i] != full[i]
                    ),
                    np.zeros(prefix[0].shape[0]),
                )
            w, pareto_k = psis_weights(log_ratio)
            if best is None or pareto_k < best[2]:
                best = (name, float(w @ p_first[:, t]), pareto_k)
        if best[2] > PARETO_K_MAX and refit is not None:
            best = ("refit", refit(t, k), best[2])
        passes = sum(int(data.y[i, 0]) for i in earlier if k[i] >= 1)
        rows.append(
            {
                "round_id": data.round_id[t],
                "date": start.isoformat(),
                "group": None if data.group is None else data.group[t],
                "outcome": int(data.y[t, 0]),
                "p": round(best[1], 4),
                "proposal": best[0],
                "pareto_k": round(best[2], 3),
                "reliable": best[0] == "refit" or best[2] <= PARETO_K_MAX,
                "rounds_known": len(earlier),
                "latest_known": max((data.end[i] for i in earlier), default=None),
                "p_running_base_rate": round((passes + 1) / (len(earlier) + 2), 4),
                "p_priors_only": round(float(p_first_prior[:, t].mean()), 4),
            }
        )
    for r in rows:
        r["latest_known"] = None if r["latest_known"] is None else r["latest_known"].isoformat()
    return {"rounds": rows}


def scores(rows: list[dict], key: str) -> dict[str, float]:
    """Brier score (lower is better) and mean log score (higher is better, ≤ 0)."""
    p = np.array([r[key] for r in rows], dtype=float)
    y = np.array([r["outcome"] for r in rows], dtype=float)
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return {
        "brier": round(float(np.mean((p - y) ** 2)), 4),
        "log_score": round(float(np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))), 4),
    }
