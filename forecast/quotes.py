"""Quotes checked against the article (PRODUCT §1, Quotes).

With ``source.text`` a scenario names a plain-text copy of the article; every ``why:``
must then be the article's own words. Whitespace, typographic quotes and dashes are
normalised, and ``...`` (or ``…``) skips text, the parts found in order. A quote that is
not found is an error naming the assumption and the first words that do not match. Each
quote found is returned with the sentence around it, for the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import Problem, ScenarioError

_QUOTES = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        "`": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "″": '"',
        "\u00a0": " ",
    }
)
_DASHES = re.compile(r"\s*[-‐‑‒–—―−]+\s*")
_SKIP = re.compile(r"\s*(?:\.\.\.|…)\s*")
#: How many words of a quote that is not found the error shows.
SHOWN_WORDS = 8


def normalise(text: str) -> str:
    """The form quotes are compared in: plain quotes, one hyphen for any dash, single spaces."""
    text = text.translate(_QUOTES).replace("…", "...")
    text = _DASHES.sub("-", text)
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class Found:
    """A quote located in the article: the sentence(s) around it, split at the quote.

    ``quote`` is the article's text of each part, joined by " … " where the quote skips.
    """

    before: str
    quote: str
    after: str

    def as_json(self) -> dict[str, str]:
        return {"before": self.before, "quote": self.quote, "after": self.after}


@dataclass(frozen=True)
class Missing:
    """A quote (or one of its ``...`` parts) not in the article."""

    words: str  # the first words that do not match
    matched: int  # how many words of that part did match, in order


_END = re.compile(r"""[.!?]['")\]]*(?=\s|$)""")


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The start of the sentence holding ``start`` and the end of the one holding ``end``."""
    begin = 0
    for m in _END.finditer(text, 0, start):
        begin = m.end()
    m = _END.search(text, max(end - 1, 0))
    return begin, (m.end() if m else len(text))


def locate(quote: str, article: str) -> Found | Missing:
    """Find ``quote`` in the normalised ``article``; ``...`` skips text between parts."""
    parts = [p for p in _SKIP.split(normalise(quote)) if p]
    if not parts:
        return Missing("(an empty quote)", 0)
    pos, first, spans = 0, None, []
    for part in parts:
        at = article.find(part, pos)
        if at < 0:
            words = part.split(" ")
            k = max(
                (n for n in range(len(words), 0, -1) if " ".join(words[:n]) in article[pos:]),
                default=0,
            )
            return Missing(" ".join(words[k : k + SHOWN_WORDS]), k)
        first = at if first is None else first
        pos = at + len(part)
        spans.append(article[at:pos])
    begin, stop = _sentence_bounds(article, first, pos)
    # the text a `...` skipped is left out of the display too
    quote = " … ".join(spans)
    return Found(article[begin:first].strip(), quote, article[pos:stop].strip())


def source_path(sc, allow_outside: bool = False) -> Path | None:
    """``source.text`` resolved against the scenario, kept inside its folder tree."""
    from forecast.data import inside_tree

    text = sc.spec.source.text
    if text is None:
        return None
    return inside_tree(sc, text, ("source", "text"), "article text", allow_outside)


def read_article(path: Path, sc) -> str:
    line = sc.line_of(("source", "text"))
    try:
        return normalise(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ScenarioError.one(
            f"'{path.name}' is not UTF-8 text", sc.path, line, "source.text"
        ) from None
    except OSError as e:
        raise ScenarioError.one(
            f"'{path.name}' cannot be read: {e.strerror}", sc.path, line, "source.text"
        ) from None


def check_quotes(sc, allow_outside: bool = False) -> dict[str, Found]:
    """Every ``why:`` of the scenario located in ``source.text``: ``{path: Found}``.

    Empty when the scenario names no text. Raises a :class:`ScenarioError` with one
    problem per quote not found.
    """
    from forecast.scenario import justified

    path = source_path(sc, allow_outside)
    if path is None:
        return {}
    article = read_article(path, sc)
    found: dict[str, Found] = {}
    problems: list[Problem] = []
    for where, why in justified(sc.spec):
        if why is None:
            continue
        hit = locate(why, article)
        if isinstance(hit, Found):
            found[where] = hit
            continue
        loc = (*where.split("."), "why")
        after = f" after the first {hit.matched} words" if hit.matched else ""
        problems.append(
            Problem(
                f"the quote is not in {path.name}: “{hit.words}…” not found{after} "
                "(a `why:` must be the article's own words; `...` skips text; "
                "put your own reasons under `note:`)",
                sc.path,
                sc.line_of(loc),
                ".".join(loc),
            )
        )
    if problems:
        raise ScenarioError(problems)
    return found
