"""What differs between two scenarios, and one scenario with one of another's assumptions.

Plain data only (no PyMC): differences are found on the validated scenarios and swaps
are made on their raw dictionaries, so the result can be validated like a file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from forecast.beliefs import Prior
from forecast.scenario import Loaded, assumptions

#: Settings that change what the model learns, compared besides the beliefs.
FACTOR_SETTINGS = ("column", "holds_when")
STAGE_SETTINGS = ("column", "known_after_days")
REFERENCE_SETTINGS = ("data", "filter", "exclude", "group", "case_group", "pooling_scale", "before")
ABSENT = "(absent)"


@dataclass(frozen=True)
class Difference:
    """One belief or setting whose value differs between scenario A and B."""

    path: str
    kind: str  # "belief" | "setting"
    a: Any  # display value, ABSENT when A does not have it
    b: Any
    why_a: str | None = None
    why_b: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "a": self.a,
            "b": self.b,
            "why_a": self.why_a,
            "why_b": self.why_b,
        }


def _beliefs(loaded: Loaded, priors: dict[str, Prior]) -> dict[str, tuple[Any, str, str | None]]:
    """path → (comparable value, display, why) for every belief."""
    out = {}
    for a in assumptions(loaded.spec):
        prior = priors[a.path]
        key = (prior.family, tuple(round(p, 6) for p in prior.params))
        out[a.path] = (
            key,
            f"{a.belief} → {prior}" if str(a.belief) != str(prior) else str(prior),
            a.why,
        )
    return out


def _settings(loaded: Loaded) -> dict[str, Any]:
    """path → value for every setting that changes what the model learns."""
    s = loaded.spec
    # the question's rounds and deadline change the forecast (PRODUCT §4); its text does not
    out: dict[str, Any] = {
        "question.rounds": s.question.rounds,
        "question.resolves": s.question.resolves.isoformat(),
    }
    for name, f in s.factors.items():
        for key in FACTOR_SETTINGS:
            if key in loaded.raw["factors"][name]:
                out[f"factors.{name}.{key}"] = getattr(f, key)
    for name, st in s.stages.items():
        for key in STAGE_SETTINGS:
            if key in loaded.raw["stages"][name]:
                out[f"stages.{name}.{key}"] = getattr(st, key)
    if s.reference is not None:
        for key in REFERENCE_SETTINGS:
            value = s.before.isoformat() if key == "before" else getattr(s.reference, key)
            if value not in (None, {}, []):
                out[f"reference.{key}"] = value
    return out


def differences(
    a: Loaded, a_priors: dict[str, Prior], b: Loaded, b_priors: dict[str, Prior]
) -> list[Difference]:
    """Every belief and setting that differs, in A's then B's file order.

    A belief in one scenario only is a difference (absent means no effect); labels,
    quotes, ids, titles, sources, question texts and sampling settings are not.
    """
    out: list[Difference] = []
    ba, bb = _beliefs(a, a_priors), _beliefs(b, b_priors)
    for path in list(ba) + [p for p in bb if p not in ba]:
        va, vb = ba.get(path), bb.get(path)
        if va is None or vb is None or va[0] != vb[0]:
            out.append(
                Difference(
                    path,
                    "belief",
                    va[1] if va else ABSENT,
                    vb[1] if vb else ABSENT,
                    va[2] if va else None,
                    vb[2] if vb else None,
                )
            )
    sa, sb = _settings(a), _settings(b)
    for path in list(sa) + [p for p in sb if p not in sa]:
        if sa.get(path, ABSENT) != sb.get(path, ABSENT):
            out.append(
                Difference(
                    path, "setting", _show(sa.get(path, ABSENT)), _show(sb.get(path, ABSENT))
                )
            )
    return out


def _show(v: Any) -> Any:
    return v if isinstance(v, str | int | float) else str(v)


# ----------------------------------------------------------------------------- swapping


def swap(a: Loaded | dict[str, Any], b: Loaded, path: str) -> dict[str, Any]:
    """A's raw scenario (a Loaded, or raw data) with B's version of ``path`` (B's absence =
    no effect).

    Parents that A lacks come from B (a factor, a stage without its effects, an
    evidence item, the reference section); removing a factor removes its effects. A
    decision that only one scenario has is swapped whole. Swaps compose: the result of
    one is a valid ``a`` for the next (``compare``'s cumulative path).
    """
    new = copy.deepcopy(a if isinstance(a, dict) else a.raw)
    braw = b.raw
    parts = path.split(".")
    if path == "reference.before":
        new.setdefault("reference", copy.deepcopy(braw.get("reference", {})))
        new["reference"]["before"] = b.spec.before
        return new
    if parts[0] == "decision" and ("decision" not in new or "decision" not in braw):
        # a decision in one scenario only: its beliefs come and go with the whole decision
        # (one option, or a decision without its value of success, is no decision)
        new.pop("decision", None)
        if "decision" in braw:
            new["decision"] = copy.deepcopy(braw["decision"])
        return new
    value = _get(braw, parts)
    if value is _MISSING:
        _remove(new, parts)
    else:
        _ensure_parents(new, braw, parts)
        _set(new, parts, copy.deepcopy(value))
    return new


_MISSING = object()


def _get(node: Any, parts: list[str]) -> Any:
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            return _MISSING
        node = node[p]
    return node


def _set(node: dict, parts: list[str], value: Any) -> None:
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def _remove(raw: dict, parts: list[str]) -> None:
    section = parts[0]
    if section == "factors" and parts[2] == "holds":  # B has no such factor
        name = parts[1]
        raw.get("factors", {}).pop(name, None)
        for stage in raw.get("stages", {}).values():
            stage.get("effects", {}).pop(name, None)
        return
    if section == "stages" and parts[2:] == ["base_rate", "belief"]:
        raw["stages"].pop(parts[1], None)
        return
    if section == "evidence":
        raw.get("evidence", {}).pop(parts[1], None)
        return
    if section == "reference" and parts[1] == "data":
        raw.pop("reference", None)
        return
    if section == "decision":
        if parts[1] == "value_of_success":  # B has no decision at all
            raw.pop("decision", None)
            return
        options = raw.get("decision", {}).get("options", {})
        if len(parts) == 4 and parts[3] == "p_success":  # B has no such option
            options.pop(parts[2], None)
            return
        if len(parts) >= 5 and parts[3] == "consequences":
            options.get(parts[2], {}).get("consequences", {}).pop(parts[4], None)
            return
    if section == "factors" and parts[2] == "column":  # holds_when means nothing without it
        for key in ("column", "holds_when"):
            raw["factors"][parts[1]].pop(key, None)
        return
    if section == "stages" and parts[2] == "effects":  # B's stage has no such effect
        effects = raw["stages"][parts[1]].get("effects", {})
        effects.pop(parts[3], None)
        if not effects:
            raw["stages"][parts[1]].pop("effects", None)
        return
    node = raw
    for p in parts[:-1]:
        node = node.get(p, {})
    node.pop(parts[-1], None)


def _ensure_parents(new: dict, braw: dict, parts: list[str]) -> None:
    section = parts[0]
    if section == "factors" and parts[1] not in new.get("factors", {}):
        new.setdefault("factors", {})[parts[1]] = copy.deepcopy(braw["factors"][parts[1]])
    elif section == "evidence" and parts[1] not in new.get("evidence", {}):
        new.setdefault("evidence", {})[parts[1]] = copy.deepcopy(braw["evidence"][parts[1]])
    elif section == "reference" and "reference" not in new:
        new["reference"] = copy.deepcopy(braw["reference"])
    elif section == "decision":
        if "decision" not in new:
            new["decision"] = copy.deepcopy(braw["decision"])
        elif len(parts) > 2 and parts[2] not in new["decision"]["options"]:
            option = copy.deepcopy(braw["decision"]["options"][parts[2]])
            option.pop("consequences", None)  # each consequence is a difference of its own
            new["decision"]["options"][parts[2]] = option
        if len(parts) > 4 and parts[3] == "consequences":
            # a consequence comes whole: its probability and value are one claim
            option = new["decision"]["options"][parts[2]]
            if parts[4] not in option.get("consequences", {}):
                bcons = braw["decision"]["options"][parts[2]]["consequences"][parts[4]]
                option.setdefault("consequences", {})[parts[4]] = copy.deepcopy(bcons)
    elif section == "stages":
        stage = parts[1]
        if stage not in new["stages"]:
            fresh = {
                k: copy.deepcopy(v) for k, v in braw["stages"][stage].items() if k != "effects"
            }
            order = list(braw["stages"])
            stages = dict(new["stages"])
            stages[stage] = fresh
            # keep B's order for the stages B has; A's other stages keep their places
            new["stages"] = dict(
                sorted(
                    stages.items(),
                    key=lambda kv: (
                        order.index(kv[0])
                        if kv[0] in order
                        else list(new["stages"]).index(kv[0])
                        if kv[0] in new["stages"]
                        else len(order)
                    ),
                )
            )
        if len(parts) > 3 and parts[2] == "effects":
            factor = parts[3]
            if factor not in new.get("factors", {}):
                new.setdefault("factors", {})[factor] = copy.deepcopy(braw["factors"][factor])
