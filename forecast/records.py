"""Typed records of what the tool computes, and their one serialisation.

A :class:`Forecast` is one fitted scenario (``summary.json`` is its ``as_json()``); a
:class:`Stat` is a mean with its Monte Carlo error, median and 90% HDI; an
:class:`AssumptionRecord` one belief's prior and posterior with its basis; a
:class:`Provenance` what produced the numbers; a :class:`BacktestRow` one backtested
round. The statistics layer builds records (:mod:`forecast.summary`, :mod:`forecast.engine`,
:mod:`forecast.backtest`); the report layer renders their JSON and never builds them.
``SCHEMA`` is the version of every JSON file the tool writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The version of summary.json, compare.json, sensitivity.json and backtest.json.
SCHEMA = 1


@dataclass(frozen=True)
class Stat:
    """A mean with its MCSE, the median and the 90% HDI, rounded to what the MCSE supports."""

    mean: float | None
    mcse: float | None
    median: float | None
    hdi_90: tuple[float | None, float | None]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Stat:
        return cls(d["mean"], d.get("mcse"), d.get("median"), tuple(d["hdi_90"]))

    def as_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "mcse": self.mcse,
            "median": self.median,
            "hdi_90": list(self.hdi_90),
        }


@dataclass(frozen=True)
class AssumptionRecord:
    """One belief of the scenario: as written, as fitted, and whose number it is."""

    path: str
    label: str | None
    belief: Any  # as written, in scenario syntax
    distribution: str
    prior: Stat
    posterior: Stat
    why: str | None
    note: str | None
    basis: str | None  # "author" | "analyst" | None
    strength: float | None  # a + b of a Beta belief
    quote: dict[str, str] | None  # {before, quote, after}: the quote in its sentence

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "label": self.label,
            "belief": self.belief,
            "distribution": self.distribution,
            "prior": self.prior.as_json(),
            "posterior": self.posterior.as_json(),
            "why": self.why,
            "note": self.note,
            "basis": self.basis,
            "strength": self.strength,
            "quote": self.quote,
        }


@dataclass(frozen=True)
class Provenance:
    """What produced the numbers: the inputs' hashes, the options and the versions."""

    scenario: str
    scenario_sha256: str
    data_sha256: str | None
    overrides: list[str]
    seed: int
    draws: int
    chains: int
    sampler: str
    versions: dict[str, str]
    created: str

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "scenario_sha256": self.scenario_sha256,
            "data_sha256": self.data_sha256,
            "overrides": list(self.overrides),
            "seed": self.seed,
            "draws": self.draws,
            "chains": self.chains,
            "sampler": self.sampler,
            "versions": dict(self.versions),
            "created": self.created,
        }


@dataclass
class Forecast:
    """One fitted scenario: ``summary.json`` (PRODUCT §4) is :meth:`as_json`."""

    id: str
    title: str
    source: dict[str, Any]
    question: dict[str, Any]
    p_success: Stat
    p_success_prior: Stat
    p_round: Stat
    stages: dict[str, tuple[str | None, Stat]]  # name → (label, P(pass | reached))
    assumptions: list[AssumptionRecord]
    diagnostics: dict[str, Any]
    checks: dict[str, Any] | None
    case_states: str  # "exact" | "monte carlo"
    reference: dict[str, Any] | None
    warnings: list[str]
    provenance: Provenance
    decision: dict[str, Any] | None = None
    schema: int = field(default=SCHEMA)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": self.schema,
            "id": self.id,
            "title": self.title,
            "source": self.source,
            "question": self.question,
            "p_success": self.p_success.as_json(),
            "p_success_prior": self.p_success_prior.as_json(),
            "p_round": self.p_round.as_json(),
            "stages": {
                name: {"label": label, **stat.as_json()}
                for name, (label, stat) in self.stages.items()
            },
            "assumptions": [a.as_json() for a in self.assumptions],
            "diagnostics": dict(self.diagnostics),
        }
        if self.decision is not None:
            out["decision"] = self.decision
        out |= {
            "checks": self.checks,
            "case_states": self.case_states,
            "reference": self.reference,
            "warnings": list(self.warnings),
            "provenance": self.provenance.as_json(),
        }
        return out


@dataclass(frozen=True)
class BacktestRow:
    """One backtested round: the forecasts made before it, and what happened."""

    round_id: str
    date: str
    group: str | None
    outcome: int
    p: float | None  # the scenario's forecast (priors and the rounds known before it)
    p_mcse: float | None
    proposal: str
    pareto_k: float
    ess: float
    reliable: bool
    rounds_known: int
    latest_known: str | None
    p_running_base_rate: float
    base_rate_rounds: int
    p_priors_only: float | None
    p_priors_only_mcse: float | None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)  # field order is backtest.json's
