"""The Python API the CLI wraps: ``check``, ``run`` and friends.

Each function takes file paths and plain options and returns plain results; the
CLI only parses arguments, prints and exits. Heavy libraries (PyMC, ArviZ,
matplotlib) are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecast.beliefs import BetaFits, Prior, fit, scale_ranges
from forecast.errors import Problem
from forecast.scenario import Loaded, assumptions, load

DEFAULT_OUT = Path("reports")


@dataclass
class Settings:
    """Sampling settings after the command line has had its say."""

    draws: int
    chains: int
    seed: int
    changed: dict[str, int] = field(default_factory=dict)


@dataclass
class Prepared:
    """A scenario ready to fit: validated, its data read and its beliefs fitted."""

    loaded: Loaded
    data: Any  # ReferenceData | None
    priors: dict[str, Prior]
    settings: Settings

    @property
    def id(self) -> str:
        return self.loaded.spec.id

    @property
    def folder_name(self) -> str:
        """``<id>``, or ``<id>+<hash>`` when an option changed the numbers."""
        changes = list(self.loaded.overrides) + [
            f"--{k}={v}" for k, v in sorted(self.settings.changed.items())
        ]
        if not changes:
            return self.id
        digest = hashlib.sha256("\n".join(changes).encode()).hexdigest()[:8]
        return f"{self.id}+{digest}"

    @property
    def warnings(self) -> list[Problem]:
        return self.loaded.warnings


def settings_for(
    loaded: Loaded, draws: int | None, chains: int | None, seed: int | None
) -> Settings:
    file = loaded.spec.sampling
    s = Settings(file.draws, file.chains, file.seed)
    for name, value in (("draws", draws), ("chains", chains), ("seed", seed)):
        if value is not None and value != getattr(file, name):
            setattr(s, name, value)
            s.changed[name] = value
    return s


def check(path: str | Path, overrides: Sequence[str] = (), allow_outside: bool = False) -> Loaded:
    """Validate a scenario and its reference data; nothing is fitted or written.

    Raises
    ------
    ScenarioError
        If anything is wrong, with file, line and field.
    """
    loaded = load(path, overrides)
    if loaded.spec.reference is not None:
        from forecast.data import load_reference

        load_reference(loaded, allow_outside)
    return loaded


def prepare(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    allow_outside: bool = False,
) -> Prepared:
    """Validate a scenario, read its data and fit its beliefs to distributions."""
    loaded = load(path, overrides)
    data = None
    if loaded.spec.reference is not None:
        from forecast.data import load_reference

        data = load_reference(loaded, allow_outside)
        if data.n_rounds == 0:
            loaded.warnings.append(
                Problem(
                    f"no reference round has an outcome known before {loaded.spec.before}: "
                    "the forecast is the prior",
                    loaded.path,
                    loaded.line_of(("reference",)),
                    "reference",
                )
            )
            data = None
    spec = loaded.spec
    ranges = scale_ranges(spec.words.model_dump() if spec.words else None)
    fits = BetaFits()
    priors = {a.path: fit(a.belief, ranges, fits) for a in assumptions(spec)}
    settings = settings_for(loaded, draws, chains, seed)
    from forecast.errors import UsageError

    if settings.draws < 100 or settings.chains < 1:
        raise UsageError.one(
            "--draws must be at least 100 and --chains at least 1", field="--draws"
        )
    return Prepared(loaded, data, priors, settings)


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
    """Build the PyMC model of a prepared scenario and fit it."""
    from forecast.fit import run_fit
    from forecast.model import build_model

    if progress:
        progress("building the model")
    model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
    result = run_fit(
        model,
        has_data=prep.data is not None,
        draws=prep.settings.draws,
        chains=prep.settings.chains,
        seed=prep.settings.seed,
        progress=progress,
    )
    return model, result


def run(
    prep: Prepared,
    out: str | Path = DEFAULT_OUT,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Fit a prepared scenario and write its report folder atomically.

    Returns
    -------
    RunResult
        The summary (as in ``summary.json``), the folder written and the fit.
    """
    from forecast.report import write_report

    _model, result = fit_prepared(prep, progress)
    if progress:
        progress("writing the report")
    folder = Path(out) / prep.folder_name
    summary = write_report(prep, result, folder)
    return RunResult(summary, folder, result)


def summary_json(summaries: list[dict[str, Any]]) -> str:
    return json.dumps(summaries, indent=2, allow_nan=False)
