"""Errors that reach the user: each names the file, the line and the field.

The CLI turns a :class:`ScenarioError` into exit code 2 and a message, never a
traceback. Everything here is plain Python so that ``forecast --help`` and
``forecast check`` stay fast.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input.

    Parameters
    ----------
    message
        What was found and what was expected.
    file
        The file it is in, if any.
    line
        1-based line number in ``file``, if known.
    field
        Dotted path of the field, e.g. ``factors.regime_needs_enmity.holds``.
    """

    message: str
    file: Path | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        what = f"{self.field}: " if self.field else ""
        return f"{where}{what}{self.message}"


@dataclass
class ScenarioError(Exception):
    """Bad input: a malformed scenario, data file or command-line option (exit 2)."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    @classmethod
    def one(
        cls,
        message: str,
        file: Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> ScenarioError:
        return cls([Problem(message, file, line, field)])

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class UsageError(ScenarioError):
    """A command-line option that cannot be honoured (exit 2)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` — did you mean 'x'?`` for the nearest choice, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""
