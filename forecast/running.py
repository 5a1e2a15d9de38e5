"""Fitting a prepared scenario and writing its report: ``run`` and what it returns.

The one path from a :class:`~forecast.prepared.Prepared` scenario to a report folder,
used by the ``run`` command and by every command that needs a fit it does not have yet.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.prepared import Prepared

DEFAULT_OUT = Path("reports")


@dataclass
class RunResult:
    """What ``run`` produced for one scenario."""

    summary: dict[str, Any]
    folder: Path
    fit: Any  # forecast.fit.Fit

    @property
    def exit_code(self) -> int:
        return 0 if self.fit.passed else 1


def fit_prepared(prep: Prepared, progress: Callable[[str], None] | None = None):
    """Build the PyMC model of a prepared scenario and fit it.

    The model is the engine's tunable program for the scenario's shape (set to its
    beliefs), so the NUTS program compiled for it serves every scenario of the same shape:
    a `run --set` of new numbers, and the refits of what-ifs (:mod:`forecast.nuts`).
    """
    from forecast.engine import program_for
    from forecast.fit import run_fit

    if progress:
        progress("building the model")
    program = program_for(prep)
    with program.lock:
        program.set(prep)
        has_data = prep.data is not None
        result = run_fit(
            program.model,
            has_data=has_data,
            draws=prep.settings.draws,
            chains=prep.settings.chains,
            seed=prep.settings.seed,
            progress=progress,
            # the beliefs the data inform (a subset of the free variables) are NUTS's
            nuts=program.nuts() if has_data and program.learned else None,
        )
    return program.model, result


def run(
    prep: Prepared,
    out: str | Path = DEFAULT_OUT,
    progress: Callable[[str], None] | None = None,
    folder_name: str | None = None,
) -> RunResult:
    """Fit a prepared scenario and write its report folder atomically.

    The folder is ``out / prep.folder_name`` unless ``folder_name`` says otherwise.

    Returns
    -------
    RunResult
        The summary (as in ``summary.json``), the folder written and the fit.
    """
    from forecast.report import write_report

    model, result = fit_prepared(prep, progress)
    if result.method == "nuts":
        if progress:
            progress("model checks (posterior predictive, LOO)")
        result.checks = model_checks(prep, model, result)
    if progress:
        progress("writing the report")
    folder = Path(out) / (folder_name or prep.folder_name)
    summary = write_report(prep, result, folder)
    return RunResult(summary, folder, result)


def model_checks(prep: Prepared, model, result) -> dict[str, Any]:
    """Posterior predictive rates per stage and group, LOO, and the plain-language notes."""
    from forecast.checks import loo_summary, ppc_rates
    from forecast.fit import data_dependent

    p_pass = result.p_pass  # computed by the fit with the log-likelihood, in one pass
    stages = list(prep.loaded.spec.stages)
    rows, arrays = ppc_rates(p_pass, prep.data, stages, prep.settings.seed)
    return {
        "ppc": rows,
        "ppc_arrays": arrays,
        "loo": loo_summary(result.tree),
        "learned": data_dependent(model),
    }


def summary_json(summaries: list[dict[str, Any]]) -> str:
    return json.dumps(summaries, indent=2, allow_nan=False)
