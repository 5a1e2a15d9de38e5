"""``--set PATH=VALUE``: one change to a scenario's plain data before it is validated.

The value is read as YAML (scenario syntax); the path must exist in the scenario or name
a key its section allows, which the scenario's models say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forecast.errors import ScenarioError, did_you_mean
from forecast.scenario import Scenario
from forecast.yamlfile import _line_of, parse_yaml


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
