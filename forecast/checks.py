"""Model checks of a fit with reference data: posterior predictive rates, LOO, and
plain-language notes on what the data did to each assumption."""

from __future__ import annotations

from typing import Any

import numpy as np

from forecast.data import UNKNOWN


def ppc_rates(p_pass: np.ndarray, data, stages: list[str], seed: int) -> tuple[list[dict], dict]:
    """Observed vs replicated pass rates per stage and group.

    ``p_pass`` is (draw, round, stage) from :func:`forecast.fit.stage_pass_probabilities`;
    each draw replicates the outcome of every round observed at that stage.
    Returns the table rows and ``{name: (replicated (draw, obs), observed (obs,))}``.
    """
    rng = np.random.default_rng(seed)
    groups = data.group if data.group is not None else ["all"] * data.n_rounds
    rows, arrays = [], {}
    for s, stage in enumerate(stages):
        observed = data.y[:, s] != UNKNOWN
        for g in sorted(set(np.asarray(groups)[observed])):
            idx = np.flatnonzero(observed & (np.asarray(groups) == g))
            obs = data.y[idx, s].astype(float)
            rep = (rng.random((p_pass.shape[0], len(idx))) < p_pass[:, idx, s]).astype(float)
            rate = rep.mean(axis=1)
            lo, hi = np.quantile(rate, [0.05, 0.95])
            rows.append(
                {
                    "stage": stage,
                    "group": str(g),
                    "rounds": len(idx),
                    "observed_rate": round(float(obs.mean()), 4),
                    "replicated_mean": round(float(rate.mean()), 4),
                    "replicated_90": [round(float(lo), 4), round(float(hi), 4)],
                    # two-sided: how surprising the observed rate is under the model
                    "p_value": round(
                        float(
                            min(
                                1.0,
                                2 * min((rate >= obs.mean()).mean(), (rate <= obs.mean()).mean()),
                            )
                        ),
                        4,
                    ),
                }
            )
            arrays[f"{stage} · {g}"] = (rep, obs)
    return rows, arrays


def loo_summary(tree) -> dict[str, Any] | None:
    """PSIS-LOO over reference rounds (ArviZ)."""
    import warnings

    import arviz_stats as azs

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loo = azs.loo(tree, pointwise=True)
    except (ValueError, KeyError, TypeError):
        return None
    k = np.asarray(loo.pareto_k).ravel()
    return {
        "elpd_loo": round(float(loo.elpd), 3),
        "se": round(float(loo.se), 3),
        "p_loo": round(float(loo.p), 3),
        "pareto_k_max": round(float(k.max()), 3),
        "pareto_k_above_0_7": int((k > 0.7).sum()),
        "rounds": int(k.size),
    }


def assumption_notes(rows: list[dict], learned: set[str]) -> list[str]:
    """Plain-language lines: where priors and data disagree, where data say nothing."""
    notes = []
    for a in rows:
        prior, post = a["prior"], a["posterior"]
        if a["path"] not in learned or prior["hdi_90"][0] == prior["hdi_90"][1]:
            continue
        width = prior["hdi_90"][1] - prior["hdi_90"][0]
        post_width = post["hdi_90"][1] - post["hdi_90"][0]
        lo, hi = prior["hdi_90"]
        if not lo <= post["mean"] <= hi:
            notes.append(
                f"Prior-data conflict: the reference rounds move {a['path']} to {post['mean']:.3g}, "
                f"outside the author's 90% range [{lo:.3g}, {hi:.3g}]."
            )
        elif abs(post["mean"] - prior["mean"]) < 0.1 * width and post_width > 0.9 * width:
            notes.append(
                f"The data say almost nothing about {a['path']}: its posterior is its prior."
            )
        elif abs(post["mean"] - prior["mean"]) > 0.25 * width:
            direction = "up" if post["mean"] > prior["mean"] else "down"
            notes.append(
                f"The reference rounds pull {a['path']} {direction}, from {prior['mean']:.3g} to {post['mean']:.3g} "
                "(within the author's range)."
            )
    return notes
