"""Checks that span a scenario's sections, run once its every section is valid alone.

Each check is one short function; :func:`cross_check` runs them in the order of
:data:`CHECKS`, so problems (the scenario is refused) and warnings come out in that order.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from forecast.beliefs import SCALE_OF_ROLE, scale_ranges
from forecast.errors import Problem, did_you_mean
from forecast.scenario import Assumption, Loaded, Scenario, assumptions


@dataclass
class Findings:
    """What the checks found, each located by its dotted path in the scenario file."""

    sc: Loaded
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def problem(self, loc: tuple, message: str) -> None:
        """An error: the scenario is refused."""
        self.problems.append(self._at(loc, message))

    def warning(self, loc: tuple, message: str) -> None:
        """A warning: the scenario is read, and the warning shown with it."""
        self.warnings.append(self._at(loc, message))

    def _at(self, loc: tuple, message: str) -> Problem:
        return Problem(message, self.sc.path, self.sc.line_of(loc), ".".join(map(str, loc)))


def cross_check(sc: Loaded) -> tuple[list[Problem], list[Problem]]:
    """Checks that span sections: names used before defined, words, stage order.

    Returns ``(problems, warnings)``, from each of :data:`CHECKS` in turn.
    """
    found = Findings(sc)
    for check in CHECKS:
        check(sc, found)
    return found.problems, found.warnings


def _check_option_names(sc: Loaded, found: Findings) -> None:
    """A decision's options are named like factors and stages are."""
    if sc.spec.decision is None:
        return
    for name in sc.spec.decision.options:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            found.problem(
                ("decision", "options", name),
                f"'{name}' is not a valid name: use letters, digits and underscores",
            )


def _claims(s: Scenario) -> list[Assumption]:
    """Every belief of the scenario in file order, then the author's own forecast."""
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
    return claims


def _check_words(sc: Loaded, found: Findings) -> None:
    """Every word belief is a word of its verbal scale (the file's ``words:`` included)."""
    s = sc.spec
    ranges = scale_ranges(s.words.model_dump() if s.words else None)
    for a in _claims(s):
        b = a.belief
        if b.kind == "word":
            scale = ranges[SCALE_OF_ROLE[b.role]]
            if b.word not in scale:
                loc = tuple(a.path.split("."))
                found.problem(loc, _unknown_word(b, scale, ranges))


def _unknown_word(b, scale, ranges) -> str:
    """The message for a word not on its scale, saying so when it is the other scale's."""
    other = "odds_ratio" if SCALE_OF_ROLE[b.role] == "probability" else "probability"
    if b.word in ranges[other]:
        kind = {"probability": "a probability word", "odds_ratio": "an effect word"}
        wanted = {"probability": "probability", "odds_ratio": "effect (odds-ratio)"}
        this = SCALE_OF_ROLE[b.role]
        return (
            f"'{b.word}' is {kind[other]}, but this belief is a {b.role}: "
            f"{wanted[this]} words are {', '.join(scale)}"
        )
    return (
        f"unknown word '{b.word}'{did_you_mean(b.word, scale)} "
        f"(words: {', '.join(scale)}; or add it under words:)"
    )


def _check_reasons(sc: Loaded, found: Findings) -> None:
    """A warning, once per section, for beliefs with neither a ``why:`` nor a ``note:``."""
    unjustified = set()
    for a in _claims(sc.spec):
        if a.basis is None and a.at not in unjustified:
            unjustified.add(a.at)
            found.warning(
                tuple(a.at.split(".")),
                "neither a `why:` (the author's words) nor a `note:` (your reason) "
                "for this assumption",
            )


def _check_resolution(sc: Loaded, found: Findings) -> None:
    """The question resolves after the article, and once the last stage can be known."""
    s = sc.spec
    q = s.question
    if q.resolves < s.source.date:
        found.problem(
            ("question", "resolves"),
            f"resolves {q.resolves} comes before the article's date {s.source.date}: "
            "a forecast is about the future",
        )
        return
    wait = max((st.known_after_days for st in s.stages.values()), default=0)
    known = s.source.date + dt.timedelta(days=wait)
    if wait and q.resolves < known:
        found.warning(
            ("question", "resolves"),
            f"resolves {q.resolves} comes before success can be known: the last stage's "
            f"outcome is known {wait} days after it happens, so no earlier than {known} "
            "for talks starting on the article's date",
        )


def _check_stages(sc: Loaded, found: Findings) -> None:
    """Stage by stage: its effects name defined factors, and it has a column only if
    every earlier stage has one (later stages are observed only after earlier ones)."""
    s = sc.spec
    seen_without_column = None
    for name, st in s.stages.items():
        for fac in st.effects:
            if fac not in s.factors:
                found.problem(
                    ("stages", name, "effects", fac),
                    f"unknown factor '{fac}'{did_you_mean(fac, s.factors)} "
                    f"(factors: {', '.join(s.factors) or 'none defined'})",
                )
        if st.column and seen_without_column:
            found.problem(
                ("stages", name, "column"),
                f"stage '{name}' has a column but follows stage '{seen_without_column}', "
                "which has none: later stages can only be observed after earlier ones",
            )
        if not st.column:
            seen_without_column = seen_without_column or name


def _check_factor_settings(sc: Loaded, found: Findings) -> None:
    """A factor's ``holds_when`` is written only with the ``column`` it reads."""
    for name, fac in sc.spec.factors.items():
        if fac.column is None and "holds_when" in sc.raw.get("factors", {}).get(name, {}):
            found.problem(("factors", name, "holds_when"), "holds_when needs a column")


def _check_reference(sc: Loaded, found: Findings) -> None:
    """With reference data: a stage learns from it, and each factor's rate in it is known."""
    s = sc.spec
    if s.reference is None:
        return
    if not any(st.column for st in s.stages.values()):
        found.problem(
            ("reference",), "reference data given, but no stage names a `column` to learn from"
        )
    for name, fac in s.factors.items():
        if fac.column is None and fac.in_reference is None:
            found.warning(
                ("factors", name),
                "no column and no in_reference: the factor is taken as never holding in "
                "the reference rounds, so its effect may be counted twice",
            )


#: The checks :func:`cross_check` runs, in this order.
CHECKS: tuple[Callable[[Loaded, Findings], None], ...] = (
    _check_option_names,
    _check_words,
    _check_reasons,
    _check_resolution,
    _check_stages,
    _check_factor_settings,
    _check_reference,
)
