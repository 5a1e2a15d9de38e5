"""Loading a scenario file: read it, apply ``--set``, validate it, check across sections.

Every problem names the file, the line and the field: pydantic's errors are located
with the line map :func:`forecast.yamlfile.parse_yaml` keeps.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from forecast.crosscheck import cross_check
from forecast.errors import Problem, ScenarioError
from forecast.overrides import apply_override
from forecast.scenario import Loaded, Scenario, UnknownKey
from forecast.yamlfile import _line_of, parse_yaml, read_text


def _problems(err: ValidationError, file: Path, lines: dict[tuple, int]) -> list[Problem]:
    """pydantic's errors as problems, each with its line and field, one per field."""
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
            if kind.startswith("date"):
                msg += " (use YYYY-MM-DD, e.g. 2013-02-26)"
        field_path = ".".join(map(str, loc)) or None
        out.append(Problem(msg, file, _line_of(lines, loc), field_path))
    # pydantic reports each failed branch of a union; one message per field is enough
    seen, unique = set(), []
    for p in out:
        if p.field not in seen:
            seen.add(p.field)
            unique.append(p)
    return unique


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
