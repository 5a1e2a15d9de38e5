"""The scenario file format (PRODUCT §1): pydantic models and the assumptions they hold.

This module knows pydantic, nothing of PyMC. The rest of the format is split out, each
part importable from here as before: reading YAML with its line numbers
(:mod:`forecast.yamlfile`), loading a file (:mod:`forecast.loading`: :func:`load`,
:func:`from_raw`), the checks across sections (:mod:`forecast.crosscheck`) and ``--set``
(:mod:`forecast.overrides`). Loading keeps line numbers so every error names the file,
the line and the field.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from forecast.beliefs import Belief, parse_belief, scale_ranges
from forecast.errors import Problem, did_you_mean
from forecast.yamlfile import _line_of as _line_of
from forecast.yamlfile import _plain as _plain
from forecast.yamlfile import _refuse_tags as _refuse_tags
from forecast.yamlfile import _yaml as _yaml
from forecast.yamlfile import parse_yaml as parse_yaml
from forecast.yamlfile import read_text as read_text

SCHEMA_VERSION = 1
#: Beyond this many factors the case is integrated by Monte Carlo over factor states.
MAX_EXACT_FACTORS = 12
SLUG = r"^[a-z0-9][a-z0-9_-]*$"


class UnknownKey(ValueError):
    """Raised for a key a model does not have; the loader adds it to the field path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class Strict(BaseModel):
    """Base of every section: unknown keys are errors that suggest the nearest key."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    section: ClassVar[str] = "this section"

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"expected a mapping for {cls.section}, got {_show(data)}")
        allowed = {f.alias or name for name, f in cls.model_fields.items()}
        for key in data:
            if key not in allowed:
                raise UnknownKey(
                    str(key),
                    f"unknown key '{key}'{did_you_mean(str(key), allowed)} "
                    f"(allowed: {', '.join(sorted(allowed))})",
                )
        return data


def _show(x: Any) -> str:
    return f"a list {x!r}" if isinstance(x, list) else repr(x)


def _belief(role: str):
    def parse(raw: Any) -> Belief:
        if isinstance(raw, Belief):
            return raw
        return parse_belief(raw, role)  # type: ignore[arg-type]

    return BeforeValidator(parse)


def _belief_schema(role: str) -> dict[str, Any]:
    pair = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    forms: list[dict[str, Any]] = [
        {"type": "number", "description": "a fixed value"},
        {
            "type": "object",
            "properties": {
                "between": pair,
                "mass": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            },
            "required": ["between"],
            "additionalProperties": False,
        },
    ]
    names = {
        "probability": ["beta"],
        "ratio": ["lognormal"],
        "value": ["normal", "lognormal", "beta"],
    }[role]
    forms += [
        {"type": "object", "properties": {n: pair}, "required": [n], "additionalProperties": False}
        for n in names
    ]
    if role != "value":
        forms.append(
            {
                "type": "object",
                "description": "a word of the verbal scale with that much mass in its range",
                "properties": {
                    "word": {"type": "string"},
                    "mass": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                },
                "required": ["word", "mass"],
                "additionalProperties": False,
            }
        )
        from forecast.beliefs import SCALE_OF_ROLE

        words = list(scale_ranges()[SCALE_OF_ROLE[role]])
        forms.insert(
            0, {"type": "string", "description": "a word of the verbal scale", "examples": words}
        )
    return {"anyOf": forms, "description": f"a {role} belief"}


ProbabilityBelief = Annotated[
    Belief, _belief("probability"), WithJsonSchema(_belief_schema("probability"))
]
RatioBelief = Annotated[Belief, _belief("ratio"), WithJsonSchema(_belief_schema("ratio"))]
ValueBelief = Annotated[Belief, _belief("value"), WithJsonSchema(_belief_schema("value"))]
Text = Annotated[str, Field(min_length=1)]
#: The author's words an assumption rests on (checked against ``source.text``).
Why = Annotated[str | None, Field(None, min_length=1)]
#: The analyst's own reason, for what the article does not say.
Note = Annotated[str | None, Field(None, min_length=1)]
Slug = Annotated[str, Field(pattern=SLUG, max_length=80)]
Scalar = str | StrictInt


class Source(Strict):
    section = "source"
    outlet: Text
    date: dt.date
    author: Text | None = None
    url: Text | None = None
    text: Text | None = None  # the article as plain text, for quote checks


def _claim(raw: Any) -> Any:
    """A bare belief is a claim with no reason given: ``likely`` = ``{belief: likely}``."""
    return raw if isinstance(raw, dict) and "belief" in raw else {"belief": raw}


class Claim(Strict):
    """A probability belief with its reason: ``{belief: ..., why: ..., note: ...}``."""

    section = "a belief with its reason"
    belief: ProbabilityBelief
    why: Why
    note: Note


ClaimField = Annotated[
    Claim,
    BeforeValidator(_claim),
    WithJsonSchema(
        {
            "anyOf": [
                _belief_schema("probability"),
                {
                    "type": "object",
                    "description": "a belief with its reason",
                    "properties": {
                        "belief": _belief_schema("probability"),
                        "why": {"type": "string", "description": "the author's words"},
                        "note": {"type": "string", "description": "the analyst's reason"},
                    },
                    "required": ["belief"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


class Question(Strict):
    section = "question"
    id: Slug | None = None  # the event's identity; default the scenario id
    text: Text
    success: Text
    resolves: dt.date
    rounds: StrictInt = Field(1, ge=1, le=1000)
    author_forecast: ClaimField | None = None  # the author's own bottom line


class Factor(Strict):
    section = "a factor"
    label: Text | None = None
    holds: ProbabilityBelief
    why: Why
    note: Note
    column: Text | None = None
    holds_when: StrictInt = 1
    reference_rate: ClaimField | None = Field(None, alias="in_reference")

    @property
    def in_reference(self) -> Belief | None:
        """How often the factor held in the reference rounds (its belief, if given)."""
        return None if self.reference_rate is None else self.reference_rate.belief


class BaseRate(Strict):
    section = "base_rate"
    belief: ProbabilityBelief
    why: Why
    note: Note

    @field_validator("belief")
    @classmethod
    def _inside(cls, b: Belief) -> Belief:
        if b.kind == "constant" and not 0 < b.value < 1:  # type: ignore[operator]
            raise ValueError(
                f"a constant base_rate must lie strictly inside (0, 1), got {b.value:g}"
            )
        return b


class Effect(Strict):
    section = "an effect"
    odds_ratio: RatioBelief
    why: Why
    note: Note


class Stage(Strict):
    section = "a stage"
    label: Text | None = None
    base_rate: BaseRate
    effects: dict[str, Effect] = Field(default_factory=dict)
    column: Text | None = None
    known_after_days: StrictInt = Field(0, ge=0)


class Evidence(Strict):
    section = "an evidence item"
    label: Text | None = None
    likelihood_ratio: RatioBelief
    why: Why
    note: Note


class Reference(Strict):
    section = "reference"
    data: Text
    filter: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    exclude: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    group: Text | None = None
    case_group: Scalar | None = None
    case_group_is_new: bool = False  # a group the reference data have no rounds of
    pooling_scale: float = Field(0.5, gt=0, allow_inf_nan=False)
    before: dt.date | None = None

    @model_validator(mode="after")
    def _case_group_needs_group(self) -> Reference:
        if self.case_group is not None and self.group is None:
            raise ValueError("case_group needs group: name the column that groups the rounds")
        return self


class Sampling(Strict):
    section = "sampling"
    draws: StrictInt = Field(1000, ge=100, le=100_000)
    chains: StrictInt = Field(4, ge=1, le=16)
    seed: StrictInt = Field(2013, ge=0, lt=2**32)


class Words(Strict):
    section = "words"
    probability: dict[str, tuple[float, float]] = Field(default_factory=dict)
    odds_ratio: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @field_validator("probability", "odds_ratio")
    @classmethod
    def _ranges(cls, words: dict[str, tuple[float, float]], info) -> dict:
        for word, (lo, hi) in words.items():
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"word '{word}': a range needs finite lo < hi, got [{lo}, {hi}]")
            if info.field_name == "probability" and not (lo >= 0 and hi <= 1):
                raise ValueError(f"word '{word}': a probability range must lie in [0, 1]")
            if info.field_name == "odds_ratio" and lo <= 0:
                raise ValueError(f"word '{word}': an odds-ratio range must be positive")
        return words


class Consequence(Strict):
    section = "a consequence"
    label: Text | None = None
    probability: ProbabilityBelief
    value: ValueBelief
    when: Literal["always", "success", "failure"] = "always"
    why: Why
    note: Note


def _option_p_success(raw: Any) -> Any:
    if raw == "model" or isinstance(raw, Belief):
        return raw
    return parse_belief(raw, "probability")


class Option(Strict):
    section = "an option"
    label: Text | None = None
    p_success: Annotated[
        Literal["model"] | Belief,
        BeforeValidator(_option_p_success),
        WithJsonSchema({"anyOf": [{"const": "model"}, _belief_schema("probability")]}),
    ]
    why: Why
    note: Note
    consequences: dict[str, Consequence] = Field(default_factory=dict)


class Decision(Strict):
    section = "decision"
    question: Text
    value_scale: Text
    value_of_success: ValueBelief
    why: Why
    note: Note
    options: dict[str, Option] = Field(min_length=2)


class Scenario(Strict):
    """A validated scenario (PRODUCT §1)."""

    section = "the scenario"
    schema_: Literal[1] = Field(alias="schema")
    id: Slug
    title: Text
    source: Source
    question: Question
    factors: dict[str, Factor] = Field(default_factory=dict)
    stages: dict[str, Stage] = Field(min_length=1)
    evidence: dict[str, Evidence] = Field(default_factory=dict)
    reference: Reference | None = None
    sampling: Sampling = Field(default_factory=Sampling)
    words: Words | None = None
    decision: Decision | None = None

    @field_validator("factors", "stages", "evidence")
    @classmethod
    def _names(cls, items: dict[str, Any]) -> dict[str, Any]:
        for name in items:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(
                    f"'{name}' is not a valid name: use letters, digits and underscores"
                )
        return items

    @property
    def question_id(self) -> str:
        """The event forecast: ``question.id``, else the scenario id."""
        return self.question.id or self.id

    @property
    def before(self) -> dt.date:
        """Only outcomes known strictly before this date update the priors."""
        if self.reference and self.reference.before:
            return self.reference.before
        return self.source.date


# ----------------------------------------------------------------------------- assumptions


Basis = Literal["author", "analyst"]


@dataclass(frozen=True)
class Assumption:
    """One belief of a scenario, addressed by the dotted path ``--set`` takes.

    ``at`` is the section whose ``why:`` / ``note:`` justify it (a consequence's
    probability and value share one); ``basis`` says whose number it is: the author's
    (quoted) or the analyst's (noted only).
    """

    path: str
    belief: Belief
    why: str | None
    label: str | None
    note: str | None = None
    at: str = ""

    @property
    def basis(self) -> Basis | None:
        if self.why:
            return "author"
        return "analyst" if self.note else None


def _reasons(s: Scenario) -> Iterator[tuple[str, Any]]:
    """Every section that carries a ``why:`` / ``note:``, with its dotted location."""
    if s.question.author_forecast is not None:
        yield "question.author_forecast", s.question.author_forecast
    for name, f in s.factors.items():
        yield f"factors.{name}", f
        if f.reference_rate is not None:
            yield f"factors.{name}.in_reference", f.reference_rate
    for name, st in s.stages.items():
        yield f"stages.{name}.base_rate", st.base_rate
        for fac, eff in st.effects.items():
            yield f"stages.{name}.effects.{fac}", eff
    for name, ev in s.evidence.items():
        yield f"evidence.{name}", ev
    if s.decision is not None:
        yield "decision", s.decision
        for name, opt in s.decision.options.items():
            yield f"decision.options.{name}", opt
            for cname, c in opt.consequences.items():
                yield f"decision.options.{name}.consequences.{cname}", c


def justified(s: Scenario) -> list[tuple[str, str | None]]:
    """``(location, why)`` of every section that may carry a quote."""
    return [(at, part.why) for at, part in _reasons(s)]


def assumptions(s: Scenario) -> list[Assumption]:
    """Every belief of the scenario in file order, with its path, quote and note."""
    out: list[Assumption] = []

    def add(path: str, belief: Belief, part: Any, at: str, label: str | None) -> None:
        out.append(Assumption(path, belief, part.why, label, part.note, at))

    for name, f in s.factors.items():
        add(f"factors.{name}.holds", f.holds, f, f"factors.{name}", f.label or name)
        if f.reference_rate is not None:
            at = f"factors.{name}.in_reference"
            add(
                at,
                f.reference_rate.belief,
                f.reference_rate,
                at,
                f"{f.label or name}: in reference rounds",
            )
    for name, st in s.stages.items():
        add(
            f"stages.{name}.base_rate.belief",
            st.base_rate.belief,
            st.base_rate,
            f"stages.{name}.base_rate",
            f"{st.label or name}: base rate",
        )
        for fac, eff in st.effects.items():
            at = f"stages.{name}.effects.{fac}"
            add(f"{at}.odds_ratio", eff.odds_ratio, eff, at, f"{st.label or name}: effect of {fac}")
    for name, ev in s.evidence.items():
        add(
            f"evidence.{name}.likelihood_ratio",
            ev.likelihood_ratio,
            ev,
            f"evidence.{name}",
            ev.label or name,
        )
    if s.decision is not None:
        d = s.decision
        add("decision.value_of_success", d.value_of_success, d, "decision", "value of success")
        for name, opt in d.options.items():
            at = f"decision.options.{name}"
            if opt.p_success != "model":
                add(f"{at}.p_success", opt.p_success, opt, at, f"{opt.label or name}: P(success)")
            for cname, c in opt.consequences.items():
                base = f"{at}.consequences.{cname}"
                label = f"{opt.label or name}: {c.label or cname}"
                add(f"{base}.probability", c.probability, c, base, f"{label} (probability)")
                add(f"{base}.value", c.value, c, base, f"{label} (value)")
    return out


# ----------------------------------------------------------------------------- a loaded file


@dataclass
class Loaded:
    """A scenario file, validated, with what is needed to report on it."""

    spec: Scenario
    path: Path
    sha256: str
    raw: dict[str, Any]
    lines: dict[tuple, int]
    overrides: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    data: Any = None  # the reference data ``check`` read (forecast.data.ReferenceData)

    def line_of(self, loc: tuple) -> int | None:
        return _line_of(self.lines, loc)


# ----------------------------------------------------------------------------- moved names

#: Names once defined here, now in modules that import this one (they need its models):
#: imported on first use (PEP 562), so ``from forecast.scenario import load`` keeps
#: working and importing either module first makes no import cycle.
_MOVED = {
    "load": "forecast.loading",
    "from_raw": "forecast.loading",
    "_problems": "forecast.loading",
    "cross_check": "forecast.crosscheck",
    "apply_override": "forecast.overrides",
    "_allowed_keys": "forecast.overrides",
}

if TYPE_CHECKING:  # for type checkers and the import graph; at run time, __getattr__
    from forecast.crosscheck import cross_check as cross_check
    from forecast.loading import _problems as _problems
    from forecast.loading import from_raw as from_raw
    from forecast.loading import load as load
    from forecast.overrides import _allowed_keys as _allowed_keys
    from forecast.overrides import apply_override as apply_override


def __getattr__(name: str) -> Any:
    """A name of :data:`_MOVED`, from the module that defines it now."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MOVED[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_MOVED})
