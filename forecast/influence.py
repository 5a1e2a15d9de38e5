"""Where the update comes from: each reference group's pull on the answer.

The report explains what history did to the author's view from the fit itself, not by
hand: for every group of reference rounds (a ``track``), the posterior without that
group's rounds, by Pareto-smoothed importance sampling of the posterior draws (weights
∝ 1 / the group's likelihood, the leave-group-out analogue of PSIS-LOO). A group's pull
is how far its rounds move P(success) and each learned belief. Where the Pareto k says
the reweighting cannot be trusted (the group carries too much of the update to be taken
out by reweighting), the row says so instead of giving a number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forecast.mcse import paired_mcse, relative_efficiency, round_to, sig
from forecast.psis import pareto_k_threshold, psis_weights


def _stacked(da) -> np.ndarray:
    """(chain, draw, ...) draws as (sample, ...)."""
    values = np.asarray(da)
    return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])


def group_pull(prep, fit, paths: list[str]) -> list[dict[str, Any]] | None:
    """Each group's pull on P(success) and on the beliefs in ``paths`` (PSIS leave-group-out).

    None when there is nothing to take out: no posterior, or the rounds are not grouped.
    """
    data = prep.data
    tree = fit.tree
    if fit.method != "nuts" or data is None or data.group is None:
        return None
    loglik = tree["log_likelihood"]["outcomes"]
    post = tree["posterior"]
    if loglik.sizes["draw"] != post.sizes["draw"]:  # thinned for a large data set
        post = post.isel(draw=slice(None, None, post.sizes["draw"] // loglik.sizes["draw"]))
    ll = _stacked(loglik)  # (sample, round)
    n = ll.shape[0]
    groups = np.asarray(data.group)
    y = np.asarray(data.y)
    p_success = _stacked(post["p_success"])
    r_eff = relative_efficiency(np.asarray(post["p_success"]))
    threshold = pareto_k_threshold(n)
    beliefs = {p: _stacked(post[p]) for p in paths if p in post}
    beliefs = {p: v for p, v in beliefs.items() if np.ptp(v) > 0}
    rows = []
    for g in sorted(set(groups)):
        mine = groups == g
        w, k = psis_weights(-ll[:, mine].sum(axis=1))
        row: dict[str, Any] = {
            "group": str(g),
            "rounds": int(mine.sum()),
            "outcomes": {
                stage: [int((y[mine, s] == 1).sum()), int((y[mine, s] >= 0).sum())]
                for s, stage in enumerate(prep.loaded.spec.stages)
                if (y[mine, s] >= 0).any()
            },
            "pareto_k": round(float(k), 2),
            "trusted": bool(k < threshold),
        }
        if not row["trusted"]:
            row["refit"] = refit_hint(prep, str(g))
        if row["trusted"]:
            row["p_success"] = _shift(p_success, w, r_eff)
            moves = {p: _shift(v, w, r_eff) for p, v in beliefs.items()}
            # largest first, each move measured in its belief's posterior SDs (base rates
            # and odds ratios live on different scales)
            order = sorted(moves, key=lambda p: -abs(moves[p]["delta"] or 0) / beliefs[p].std())
            row["beliefs"] = {p: moves[p] for p in order}
        rows.append(row)
    return rows


def _shift(x: np.ndarray, w: np.ndarray, r_eff: float) -> dict[str, float | None]:
    """How far the group's rounds move the mean of ``x``: with them minus without them."""
    without = float(w @ x)
    error = paired_mcse(x, x, weights_a=w) / np.sqrt(r_eff)
    return {
        "without": round_to(without, error),
        "delta": round_to(float(x.mean()) - without, error),
        "mcse": sig(error),
    }


def refit_hint(prep, group: str) -> str:
    """The ``--set`` that fits the scenario without one group's rounds."""
    ref = prep.loaded.spec.reference
    exclude = dict(ref.exclude)
    have = exclude.get(ref.group)
    values = [] if have is None else (have if isinstance(have, list) else [have])
    exclude[ref.group] = [*values, group] if values else group

    def flow(v):
        return "[" + ", ".join(map(str, v)) + "]" if isinstance(v, list) else str(v)

    inner = ", ".join(f"{k}: {flow(v)}" for k, v in exclude.items())
    hint = f'--set "reference.exclude={{{inner}}}"'
    # without its own rounds the case's group is one the data no longer have: say so,
    # as a scenario must (else the refit is refused, naming the unknown group)
    if getattr(ref, "case_group", None) is not None and str(ref.case_group) == group:
        hint += " --set reference.case_group_is_new=true"
    return hint
