"""A scenario ready to fit: validated, its reference data read, its beliefs fitted.

``prepare`` is the one way a scenario file becomes a :class:`Prepared` (the CLI's ``run``,
``compare``, ``sensitivity``, ``backtest``); ``prepare_raw`` makes a changed copy for a
what-if, reusing the reference data already read when the change leaves them alone.
Nothing here imports PyMC.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecast.beliefs import BetaFits, Prior, fit, scale_ranges
from forecast.errors import Problem
from forecast.scenario import Loaded, assumptions, load


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
    quotes: dict[str, Any] = field(default_factory=dict)  # section → quotes.Found
    #: reference data read for this scenario or its variants, by what decides them
    data_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

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
    from forecast.quotes import check_quotes

    loaded = load(path, overrides)
    check_quotes(loaded, allow_outside)
    data = None
    if loaded.spec.reference is not None:
        from forecast.data import load_reference

        data = load_reference(loaded, allow_outside)
    loaded.warnings += strength_warnings(loaded, data, fitted_priors(loaded))
    loaded.data = data
    return loaded


def fitted_priors(loaded: Loaded) -> dict[str, Prior]:
    """Every assumption's belief as the distribution it becomes (PRODUCT §1)."""
    spec = loaded.spec
    ranges = scale_ranges(spec.words.model_dump() if spec.words else None)
    fits = BetaFits()
    return {a.path: fit(a.belief, ranges, fits) for a in assumptions(spec)}


def strength_warnings(loaded: Loaded, data, priors: dict[str, Prior]) -> list[Problem]:
    """A stage whose base rate outweighs the rounds observed for it: the prior decides."""
    if data is None:
        return []
    from forecast.data import UNKNOWN

    out = []
    for s, (name, st) in enumerate(loaded.spec.stages.items()):
        path = f"stages.{name}.base_rate.belief"
        weight = priors[path].strength
        if st.column is None or weight is None:
            continue
        seen = int((data.y[:, s] != UNKNOWN).sum())
        if weight > seen:
            out.append(
                Problem(
                    f"the base rate {priors[path]} weighs as much as {weight:.0f} reference rounds, "
                    f"more than the {seen} observed for this stage: the prior, not the history, "
                    "sets it (widen it, e.g. {word: W, mass: 0.5}, if the author is less sure)",
                    loaded.path,
                    loaded.line_of(("stages", name, "base_rate")),
                    path,
                )
            )
    return out


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
    from forecast.quotes import check_quotes

    loaded = load(path, overrides)
    quotes = check_quotes(loaded, allow_outside)
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
    priors = fitted_priors(loaded)
    loaded.warnings += strength_warnings(loaded, data, priors)
    settings = settings_for(loaded, draws, chains, seed)
    from forecast.errors import UsageError

    if settings.draws < 100 or settings.chains < 1:
        raise UsageError.one(
            "--draws must be at least 100 and --chains at least 1", field="--draws"
        )
    return Prepared(loaded, data, priors, settings, quotes)


def data_key(loaded: Loaded) -> str:
    """What decides the reference data a scenario reads: the reference section and the
    columns its factors and stages name (a changed belief leaves the data as they were)."""
    s = loaded.spec
    return json.dumps(
        [
            None if s.reference is None else s.reference.model_dump(mode="json"),
            s.before.isoformat(),
            [(n, f.column, f.holds_when, f.in_reference is None) for n, f in s.factors.items()],
            [(n, st.column, st.known_after_days) for n, st in s.stages.items()],
        ]
    )


def prepare_raw(raw: dict[str, Any], like: Prepared, allow_outside: bool = False) -> Prepared:
    """A changed copy of a prepared scenario (its paths stay relative to the same file).

    The reference data are read once per distinct :func:`data_key` and shared through
    ``like.data_cache``: a sensitivity run of 20 belief changes reads the CSV once.
    """
    from forecast.scenario import from_raw

    loaded = from_raw(raw, like.loaded.path)
    data = None
    if loaded.spec.reference is not None:
        key = data_key(loaded)
        if key not in like.data_cache:
            from forecast.data import load_reference

            read = load_reference(loaded, allow_outside)
            like.data_cache[key] = read if read.n_rounds else None
        data = like.data_cache[key]
    return Prepared(
        loaded, data, fitted_priors(loaded), like.settings, like.quotes, like.data_cache
    )
