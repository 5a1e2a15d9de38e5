"""The scenario file format (PRODUCT §1): pydantic models, loading and ``--set``.

This module knows YAML and pydantic, nothing of PyMC. Loading keeps line numbers so
every error names the file, the line and the field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from forecast.beliefs import Belief, parse_belief, scale_ranges
from forecast.errors import Problem, ScenarioError, did_you_mean

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


# ----------------------------------------------------------------------------- loading


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

    def line_of(self, loc: tuple) -> int | None:
        return _line_of(self.lines, loc)


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")  # round-trip: keeps line numbers; builds no Python objects from tags
    y.allow_duplicate_keys = False
    return y


def _plain(node: Any, loc: tuple, lines: dict[tuple, int], file: Path) -> Any:
    """Copy a ruamel tree into plain dicts and lists, recording each path's line."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar

    tag = getattr(node, "tag", None)
    tag_value = getattr(tag, "value", tag) if tag is not None else None
    # any explicit tag is refused: application tags (!x), language tags (!!python/...,
    # which ruamel expands to tag:yaml.org,2002:python/...) and core ones alike
    if isinstance(node, TaggedScalar) or tag_value:
        raise ScenarioError.one(
            f"YAML tag '{str(tag_value).replace('tag:yaml.org,2002:', '!!')}' is not allowed: "
            "write plain values",
            file,
            lines.get(loc),
            ".".join(map(str, loc)) or None,
        )
    if isinstance(node, CommentedMap):
        out = {}
        for key in node:
            line = node.lc.key(key)[0] + 1
            if not isinstance(key, str):
                raise ScenarioError.one(
                    f"keys must be text, got {key!r}", file, line, ".".join(map(str, loc)) or None
                )
            lines[(*loc, key)] = line
            out[key] = _plain(node[key], (*loc, key), lines, file)
        return out
    if isinstance(node, CommentedSeq):
        out_l = []
        for i, item in enumerate(node):
            lines[(*loc, i)] = node.lc.item(i)[0] + 1
            out_l.append(_plain(item, (*loc, i), lines, file))
        return out_l
    if isinstance(node, dt.datetime):
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def parse_yaml(text: str, file: Path, loc: tuple = ()) -> tuple[Any, dict[tuple, int]]:
    """Load YAML safely, returning plain data and a path → line map."""
    from ruamel.yaml.error import MarkedYAMLError

    try:
        node = _yaml().load(io.StringIO(text))
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        what = (e.problem or e.context or "could not be read").strip()
        raise ScenarioError.one(f"YAML syntax error: {what}", file, line) from None
    except RecursionError:
        raise ScenarioError.one("YAML is nested too deeply", file) from None
    except Exception as e:  # ruamel's constructors raise anything on odd tags
        _refuse_tags(text, file, loc)
        raise ScenarioError.one(f"YAML could not be read: {e}", file) from None
    lines: dict[tuple, int] = {}
    try:
        return _plain(node, loc, lines, file), lines
    except RecursionError:
        raise ScenarioError.one("YAML is nested too deeply", file) from None


def _refuse_tags(text: str, file: Path, loc: tuple = ()) -> None:
    """Raise a located error for the first explicit tag in ``text``, if there is one.

    Used where building a tagged value failed (``!!omap`` on a scalar, say) before
    the tree could be walked: the scanner finds the tag's line without building
    anything, the composed node tree the field on that line.
    """
    y = _yaml()
    try:
        tag = next(t for t in y.scan(io.StringIO(text)) if type(t).__name__ == "TagToken")
    except Exception:  # no tag, or text the scanner cannot read either
        return
    line, column = tag.start_mark.line, tag.start_mark.column
    field = None
    try:
        stack = [(y.compose(io.StringIO(text)), loc)]
        while stack and field is None:
            node, path = stack.pop()
            if (node.start_mark.line, node.start_mark.column) == (line, column) and path:
                field = ".".join(map(str, path))
            if type(node).__name__ == "MappingNode":
                stack += [(v, (*path, k.value)) for k, v in node.value]
            elif type(node).__name__ == "SequenceNode":
                stack += [(v, (*path, i)) for i, v in enumerate(node.value)]
    except Exception:  # the line alone still locates it
        pass
    handle, suffix = tag.value
    raise ScenarioError.one(
        f"YAML tag '{handle or ''}{suffix}' is not allowed: write plain values",
        file,
        line + 1,
        field,
    )


def _line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _problems(err: ValidationError, file: Path, lines: dict[tuple, int]) -> list[Problem]:
    out = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if isinstance(p, int) or "[" not in str(p))
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, UnknownKey):
            loc = (*loc, cause.key)
        if loc and loc[-1] == "belief" and loc not in lines and loc[:-1] in lines:
            loc = loc[:-1]  # a bare belief where {belief: ..., why: ...} may be written
        kind = e["type"]
        if kind == "missing":
            msg = f"missing required key '{loc[-1]}'"
        elif kind == "literal_error" and loc == ("schema",):
            msg = f"unsupported schema {e['input']!r}: this version of forecast reads schema 1"
        else:
            msg = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            if kind in (
                "string_type",
                "int_type",
                "float_type",
                "date_type",
                "date_from_datetime_parsing",
                "date_parsing",
            ):
                msg += f", got {e['input']!r}"
        field_path = ".".join(map(str, loc)) or None
        out.append(Problem(msg, file, _line_of(lines, loc), field_path))
    # pydantic reports each failed branch of a union; one message per field is enough
    seen, unique = set(), []
    for p in out:
        if p.field not in seen:
            seen.add(p.field)
            unique.append(p)
    return unique


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError.one("no such file", path) from None
    except IsADirectoryError:
        raise ScenarioError.one("is a folder, not a scenario file", path) from None
    except UnicodeDecodeError:
        raise ScenarioError.one("not UTF-8 text", path) from None
    except OSError as e:
        raise ScenarioError.one(f"cannot be read: {e.strerror}", path) from None


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Loaded:
    """Read, override and validate a scenario file.

    Parameters
    ----------
    path
        The YAML file.
    overrides
        ``PATH=VALUE`` strings, as ``--set`` takes them.

    Raises
    ------
    ScenarioError
        With every problem found, each naming file, line and field.
    """
    path = Path(path)
    text = read_text(path)
    raw, lines = parse_yaml(text, path)
    if not isinstance(raw, dict):
        first = min(lines.values(), default=1)
        raise ScenarioError.one("a scenario must be a YAML mapping (key: value lines)", path, first)
    applied = []
    for item in overrides:
        change = apply_override(raw, lines, item, path)
        if change is not None:  # a value equal to the file's own is no change
            applied.append("{}={}".format(*change))
    try:
        return from_raw(raw, path, lines, hashlib.sha256(text.encode()).hexdigest(), applied)
    except ScenarioError as e:
        set_paths = [a.split("=", 1)[0] for a in applied]
        for i, p in enumerate(e.problems):
            if p.field and any(p.field == k or p.field.startswith(k + ".") for k in set_paths):
                e.problems[i] = Problem(
                    p.message + " (value given with --set)", p.file, p.line, p.field
                )
        raise


def from_raw(
    raw: dict[str, Any],
    path: Path,
    lines: dict[tuple, int] | None = None,
    sha256: str = "",
    overrides: list[str] | None = None,
) -> Loaded:
    """Validate a scenario given as plain data (a file's, or one changed in memory)."""
    lines = lines or {}
    try:
        spec = Scenario.model_validate(raw)
    except ValidationError as e:
        raise ScenarioError(_problems(e, path, lines)) from None
    loaded = Loaded(spec, path, sha256, raw, lines, list(overrides or []))
    problems, warnings = cross_check(loaded)
    if problems:
        raise ScenarioError(problems)
    loaded.warnings = warnings
    return loaded


def cross_check(sc: Loaded) -> tuple[list[Problem], list[Problem]]:
    """Checks that span sections: names used before defined, words, stage order."""
    s, f = sc.spec, sc.path
    problems: list[Problem] = []
    warnings: list[Problem] = []

    def problem(loc: tuple, msg: str) -> None:
        problems.append(Problem(msg, f, sc.line_of(loc), ".".join(map(str, loc))))

    if s.decision is not None:
        for name in s.decision.options:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                problem(
                    ("decision", "options", name),
                    f"'{name}' is not a valid name: use letters, digits and underscores",
                )
    ranges = scale_ranges(s.words.model_dump() if s.words else None)
    from forecast.beliefs import SCALE_OF_ROLE

    claims = list(assumptions(s))
    if s.question.author_forecast is not None:
        af = s.question.author_forecast
        claims.append(
            Assumption(
                "question.author_forecast",
                af.belief,
                af.why,
                None,
                af.note,
                "question.author_forecast",
            )
        )
    unjustified = set()
    for a in claims:
        b = a.belief
        if b.kind == "word":
            scale = ranges[SCALE_OF_ROLE[b.role]]
            if b.word not in scale:
                loc = tuple(a.path.split("."))
                problem(
                    loc,
                    f"unknown word '{b.word}'{did_you_mean(b.word, scale)} "
                    f"(words: {', '.join(scale)}; or add it under words:)",
                )
        if a.basis is None and a.at not in unjustified:
            unjustified.add(a.at)
            loc = tuple(a.at.split("."))
            warnings.append(
                Problem(
                    "neither a `why:` (the author's words) nor a `note:` (your reason) "
                    "for this assumption",
                    f,
                    sc.line_of(loc),
                    a.at,
                )
            )
    q = s.question
    if q.resolves < s.source.date:
        problem(
            ("question", "resolves"),
            f"resolves {q.resolves} comes before the article's date {s.source.date}: "
            "a forecast is about the future",
        )
    else:
        wait = max((st.known_after_days for st in s.stages.values()), default=0)
        known = s.source.date + dt.timedelta(days=wait)
        if wait and q.resolves < known:
            warnings.append(
                Problem(
                    f"resolves {q.resolves} comes before success can be known: the last stage's "
                    f"outcome is known {wait} days after it happens, so no earlier than {known} "
                    "for talks starting on the article's date",
                    f,
                    sc.line_of(("question", "resolves")),
                    "question.resolves",
                )
            )
    seen_without_column = None
    for name, st in s.stages.items():
        for fac in st.effects:
            if fac not in s.factors:
                problem(
                    ("stages", name, "effects", fac),
                    f"unknown factor '{fac}'{did_you_mean(fac, s.factors)} "
                    f"(factors: {', '.join(s.factors) or 'none defined'})",
                )
        if st.column and seen_without_column:
            problem(
                ("stages", name, "column"),
                f"stage '{name}' has a column but follows stage '{seen_without_column}', "
                "which has none: later stages can only be observed after earlier ones",
            )
        if not st.column:
            seen_without_column = seen_without_column or name
    for name, fac in s.factors.items():
        if fac.column is None and "holds_when" in sc.raw.get("factors", {}).get(name, {}):
            problem(("factors", name, "holds_when"), "holds_when needs a column")
    if s.reference is not None:
        if not any(st.column for st in s.stages.values()):
            problem(
                ("reference",), "reference data given, but no stage names a `column` to learn from"
            )
        for name, fac in s.factors.items():
            if fac.column is None and fac.in_reference is None:
                warnings.append(
                    Problem(
                        "no column and no in_reference: the factor is taken as never holding in "
                        "the reference rounds, so its effect may be counted twice",
                        f,
                        sc.line_of(("factors", name)),
                        f"factors.{name}",
                    )
                )
    return problems, warnings


# ----------------------------------------------------------------------------- --set


def apply_override(
    raw: dict, lines: dict[tuple, int], item: str, file: Path
) -> tuple[str, str] | None:
    """Apply one ``PATH=VALUE`` to the raw scenario, in place.

    The value is read as YAML (scenario syntax); the path must exist in the scenario or
    name a key its section allows. Returns ``(path, value)``, or ``None`` when the value
    equals what the file already says.
    """
    if "=" not in item:
        raise ScenarioError.one(f"--set expects PATH=VALUE, got {item!r}", field="--set")
    key, value_text = (s.strip() for s in item.split("=", 1))
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ScenarioError.one(f"--set: {key!r} is not a dotted path", field="--set")
    value, _ = parse_yaml(value_text, Path("--set"))
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            here = ".".join(parts[:i])
            choices = [
                ".".join([*parts[:i], k]) if here else k
                for k in (node if isinstance(node, dict) else {})
            ]
            want = ".".join(parts[: i + 1])
            raise ScenarioError.one(
                f"--set: no '{want}' in the scenario{did_you_mean(want, choices)}",
                file,
                field=key,
            )
        node = node[part]
    last = parts[-1]
    if not isinstance(node, dict):
        raise ScenarioError.one(
            f"--set: '{'.'.join(parts[:-1])}' is not a section", file, field=key
        )
    if last not in node:
        known = _allowed_keys(parts[:-1]) | set(node)
        if last not in known:
            prefix = ".".join(parts[:-1])
            choices = [f"{prefix}.{k}" for k in known]
            raise ScenarioError.one(
                f"--set: no '{key}' in the scenario{did_you_mean(key, choices)}", file, field=key
            )
    if last in node and node[last] == value:
        return None
    node[last] = value
    lines[tuple(parts)] = _line_of(lines, tuple(parts)) or 0
    return key, value_text


def _allowed_keys(parent: list[str]) -> set[str]:
    """Keys the section at ``parent`` may take (so --set can add an optional key)."""
    model: Any = Scenario
    for part in parent:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return set()
        if part in fields:
            ann = fields[part].annotation
        elif part == "schema":
            return set()
        else:  # a name inside a dict section: step to the dict's value type
            ann = model
        args = getattr(ann, "__args__", ())
        nxt = [a for a in args if hasattr(a, "model_fields")]
        if hasattr(ann, "model_fields"):
            model = ann
        elif nxt:
            model = nxt[-1]
        else:
            return set()
    fields = getattr(model, "model_fields", {})
    return {f.alias or n for n, f in fields.items()}
