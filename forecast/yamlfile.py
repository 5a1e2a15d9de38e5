"""Reading a scenario file's YAML: plain data, and the line of every key and item.

Knows YAML (ruamel, round-trip so lines are kept), nothing of the scenario's models:
every error names the file, the line and, where it can, the field.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

from forecast.errors import ScenarioError


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
        lines = text.splitlines()
        if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line]:
            what += " (indent with spaces, not tabs)"
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
    """The line of ``loc``, else of its nearest enclosing section that has one."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def read_text(path: Path) -> str:
    """A scenario file's text, or a one-line error saying why it cannot be read."""
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
