"""Prior and likelihood power-scaling sensitivity (ArviZ ``psense``), per belief.

Read from a report's ``posterior.nc`` (its log prior and log likelihood groups); used
by ``forecast sensitivity`` beside the tornado.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def power_scaling(
    posterior_nc: Path, var_names: list[str], learned: Sequence[str]
) -> list[dict[str, Any]]:
    """ArviZ power-scaling sensitivity, per belief, of the belief itself and of P(success).

    For each belief the data bear on, only that belief's prior is power-scaled
    (``prior_var_names``), so the row says how much this one prior moves its own
    posterior and P(success); the likelihood is scaled as a whole. A last row scales
    every prior at once. Beliefs the data never touch are listed as such: their
    posterior is their prior, so a prior-sensitivity figure would say nothing new.
    """
    import contextlib
    import io
    import logging
    import warnings

    import arviz_stats as azs
    import xarray as xr

    tree = xr.open_datatree(posterior_nc, engine="h5netcdf")
    log = logging.getLogger("arviz_stats")
    level = log.level
    log.setLevel(logging.ERROR)  # its "potential issues" note: our report explains the diagnosis

    def table(names: list[str], prior_vars: list[str] | None):
        return azs.psense_summary(tree, var_names=names, prior_var_names=prior_vars, round_to=6)

    rows = []
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            for name in var_names:
                if name not in learned or name not in tree["posterior"].data_vars:
                    rows.append(
                        {
                            "variable": name,
                            "prior": None,
                            "likelihood": None,
                            "p_success_prior": None,
                            "touched_by_data": False,
                            "diagnosis": "not touched by the data: its posterior is its prior",
                        }
                    )
                    continue
                t = table([name, "p_success"], [name])
                rows.append(
                    {
                        "variable": name,
                        "prior": float(t.loc[name, "prior"]),
                        "likelihood": float(t.loc[name, "likelihood"]),
                        "p_success_prior": float(t.loc["p_success", "prior"]),
                        "touched_by_data": True,
                        "diagnosis": str(t.loc[name, "diagnosis"]),
                    }
                )
            priors = [n for n in learned if n in tree["log_prior"].data_vars]
            t = table(["p_success"], priors or None)
            rows.append(
                {
                    "variable": "p_success",
                    "prior": float(t.loc["p_success", "prior"]),
                    "likelihood": float(t.loc["p_success", "likelihood"]),
                    "p_success_prior": float(t.loc["p_success", "prior"]),
                    "touched_by_data": True,
                    "diagnosis": str(t.loc["p_success", "diagnosis"])
                    + " (every prior the data bear on scaled at once)",
                }
            )
    finally:
        log.setLevel(level)
    return [
        {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()} for row in rows
    ]
