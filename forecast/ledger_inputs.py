"""What the ledger reads (PRODUCT §7): a report's ``summary.json`` as rows of the
``questions`` and ``forecasts`` tables, and resolutions files (the format of
``scenarios/resolutions.yaml``). Plain Python, no database: every problem is a
:class:`~forecast.errors.UsageError` naming the file and the field (exit 2).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.errors import ScenarioError, UsageError, did_you_mean
from forecast.scores import AUTHOR_SUFFIX

#: outcome as the user writes it → as ``questions.outcome`` stores it (PRODUCT §7)
OUTCOMES = {"yes": "1", "no": "0", "annulled": "annulled"}
OUTCOME_WORDS = {v: k for k, v in OUTCOMES.items()}


@dataclass(frozen=True)
class Resolution:
    """One resolve: a question's outcome (yes/no/annulled), the day known, the source."""

    question_id: str
    outcome: str
    on: dt.date | None = None
    source: str | None = None
    file: Path | None = None  # where it was written (resolve --from), for messages
    line: int | None = None
    optional: bool = False  # from a file: a question not in the ledger is skipped


def now_utc() -> str:
    """Now, in UTC, ISO 8601 to the second (``recorded_at``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# -- summary.json → rows ---------------------------------------------------------------


def read_summary(folder: str | os.PathLike) -> dict[str, Any]:
    """A report folder's ``summary.json``; a folder without one is bad input."""
    folder = Path(folder)
    path = folder / "summary.json"
    if not folder.is_dir():
        raise UsageError.one(f"{folder} is not a report folder (no such folder)")
    if not path.is_file():
        raise UsageError.one(
            f"{folder} has no summary.json: give a folder written by forecast run (reports/<id>/)",
            file=path,
        )
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError.one(f"cannot read it as JSON: {e}", file=path) from None
    if not isinstance(summary, dict):
        raise UsageError.one("expected a JSON object (a forecast run's summary)", file=path)
    forecast_rows(summary, folder, path)  # every field the ledger needs is there
    return summary


def _field(summary: dict, dotted: str, file: Path | None, required: bool = True) -> Any:
    value: Any = summary
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if required and value in (None, ""):
        raise UsageError.one("missing; is this a forecast run's summary.json?", file, field=dotted)
    return value


def _date(value: Any, dotted: str, file: Path | None) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise UsageError.one(
            f"expected a date (YYYY-MM-DD), got {value!r}", file, field=dotted
        ) from None


def _probability(value: Any, dotted: str, file: Path | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise UsageError.one(f"expected a probability in [0, 1], got {value!r}", file, field=dotted)
    return float(value)


def forecast_rows(
    summary: dict[str, Any], report: str | os.PathLike | None, file: Path | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``questions`` row and the ``forecasts`` rows of one summary.json: the model's
    forecast, and the author's own bottom line (``question.author_forecast``) as a
    forecast of its own, scenario id ``<id>:author``."""
    g = lambda dotted, required=True: _field(summary, dotted, file, required)  # noqa: E731
    qid = g("question.id")
    question = {
        "id": str(qid),
        "text": str(g("question.text")),
        "success": g("question.success", False),
        "resolves": _date(g("question.resolves", False), "question.resolves", file),
    }
    overrides = g("provenance.overrides", False) or []
    seed = g("provenance.seed")
    if not isinstance(overrides, list) or isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError.one(
            "expected overrides as a list and seed as an integer", file, field="provenance"
        )
    common = {
        "question_id": question["id"],
        "author": g("source.author", False),
        "outlet": g("source.outlet", False),
        "source_date": _date(g("source.date", False), "source.date", file),
        "recorded_at": now_utc(),
        "scenario_sha256": str(g("provenance.scenario_sha256")),
        "data_sha256": g("provenance.data_sha256", False),
        "overrides": [str(o) for o in overrides],
        "seed": seed,
        "report": str(Path(report).absolute()) if report else None,
        "version": (g("provenance.versions", False) or {}).get("scenario-forecast"),
    }
    rows = [{"scenario_id": str(g("id")), **common, **_p_fields(g, "p_success", file)}]
    if isinstance(g("question.author_forecast", False), dict):
        stated = _p_fields(g, "question.author_forecast", file)
        rows.append({"scenario_id": f"{rows[0]['scenario_id']}{AUTHOR_SUFFIX}", **common, **stated})
    return question, rows


def _p_fields(g, key: str, file: Path | None) -> dict[str, float | None]:
    hdi = g(f"{key}.hdi_90", False) or [None, None]
    if not isinstance(hdi, list) or len(hdi) != 2:
        raise UsageError.one(f"expected [lo, hi], got {hdi!r}", file, field=f"{key}.hdi_90")
    return {
        "p_mean": _probability(g(f"{key}.mean"), f"{key}.mean", file),
        "p_hdi_lo": _probability(hdi[0], f"{key}.hdi_90", file),
        "p_hdi_hi": _probability(hdi[1], f"{key}.hdi_90", file),
        "p_mcse": g(f"{key}.mcse", False),
    }


# -- resolutions files (scenarios/resolutions.yaml) ------------------------------------

RESOLUTION_KEYS = ("question", "outcome", "on", "source")


def outcome_word(
    value: Any, file: Path | None = None, line: int | None = None, where: str = "--outcome"
) -> str:
    """``yes``, ``no`` or ``annulled`` (any case); anything else is bad input."""
    if isinstance(value, bool):  # YAML 1.1's unquoted yes/no
        return "yes" if value else "no"
    word = str(value).strip().lower()
    if word not in OUTCOMES:
        raise UsageError.one(
            f"the outcome is yes, no or annulled, not {value!r}{did_you_mean(word, OUTCOMES)}",
            file,
            line,
            where,
        )
    return word


def parse_date(
    value: Any, file: Path | None = None, line: int | None = None, where: str = "--on"
) -> dt.date | None:
    """A date from the command line or a YAML file (YYYY-MM-DD)."""
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise UsageError.one(
            f"expected a date (YYYY-MM-DD), got {value!r}", file, line, where
        ) from None


def read_resolutions(path: str | os.PathLike) -> list[Resolution]:
    """The entries of a resolutions file (format: scenarios/resolutions.yaml):
    ``resolutions: [{question, outcome, on, source}, ...]``."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = Path(path)
    try:
        doc = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError.one(f"cannot read it: {e.strerror}", path, field="--from") from None
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise UsageError.one(f"not valid YAML: {getattr(e, 'problem', e)}", path, line) from None
    items = doc.get("resolutions") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise UsageError.one(
            "expected `resolutions:`, a list of {question, outcome, on, source}", path, 1
        )
    entries, problems = [], []
    for i, item in enumerate(items):
        try:
            entries.append(_resolution_entry(item, i, path, _line(items, i)))
        except ScenarioError as e:
            problems += e.problems
    if problems:
        raise UsageError(problems)
    return entries


def _line(seq: Any, i: int) -> int | None:
    try:
        return seq.lc.item(i)[0] + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


def _resolution_entry(item: Any, i: int, path: Path, line: int | None) -> Resolution:
    where = f"resolutions[{i}]"
    if not isinstance(item, dict):
        raise UsageError.one("expected {question, outcome, on, source}", path, line, where)
    for key in item:
        if key not in RESOLUTION_KEYS:
            raise UsageError.one(
                f"unknown key '{key}'{did_you_mean(str(key), RESOLUTION_KEYS)} (expected "
                f"{', '.join(RESOLUTION_KEYS)})",
                path,
                line,
                f"{where}.{key}",
            )
    if not item.get("question") or "outcome" not in item:
        raise UsageError.one("needs a question (its id) and an outcome", path, line, where)
    source = item.get("source")
    return Resolution(
        question_id=str(item["question"]),
        outcome=outcome_word(item["outcome"], path, line, f"{where}.outcome"),
        on=parse_date(item.get("on"), path, line, f"{where}.on"),
        source=None if source is None else " ".join(str(source).split()),
        file=path,
        line=line,
        optional=True,
    )
