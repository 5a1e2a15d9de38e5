"""Reference data: the CSV of past rounds, checked and turned into model arrays.

Rules (PRODUCT §1): outcome columns hold 0, 1 or blank, a later stage only for rounds
that passed every earlier one; factor columns hold integers or blank; a blank factor
value is marginalised with the factor's ``in_reference`` rate; an outcome counts only
if it was known strictly before ``reference.before``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forecast.errors import Problem, ScenarioError, did_you_mean
from forecast.scenario import MAX_EXACT_FACTORS, Factor, Loaded, Reference, Scenario

if TYPE_CHECKING:
    import pandas as pd

UNKNOWN = -1
#: Beyond this many rows the file is refused rather than risk the memory target.
MAX_ROWS = 200_000
#: Beyond this many rounds with an outcome (after filters) the model is not fitted: NUTS
#: would take many minutes, and reference classes of negotiations are hundreds at most.
MAX_MODEL_ROUNDS = 10_000


@dataclass
class ReferenceData:
    """Reference rounds as arrays aligned with the scenario's factors and stages.

    ``x[i, f]`` is 1 if factor f held in round i, 0 if not, -1 if unknown;
    ``y[i, s]`` is stage s's outcome (1 passed, 0 failed) or -1 if not observed.
    """

    path: Path
    sha256: str
    round_id: list[str]
    date: list[dt.date]
    group: list[str] | None
    x: np.ndarray
    y: np.ndarray
    n_filtered: int
    n_unknown_outcome: int
    end: list[dt.date] | None = None
    n_in_file: int = 0  # rows in the CSV, before filter and exclude

    def describe(self, spec: Scenario) -> list[str]:
        """The reference class in words: what is kept, per group, and what was dropped."""
        lines = [
            f"reference class: {self.n_rounds} rounds with an outcome known before "
            f"{spec.before} (of {self.n_in_file} in {self.path.name})"
        ]
        dropped = self.n_in_file - self.n_filtered
        if dropped:
            lines.append(f"  dropped by filter/exclude: {dropped}")
        if self.n_unknown_outcome:
            lines.append(
                f"  dropped, no outcome known before {spec.before}: {self.n_unknown_outcome}"
            )
        if self.group is not None:
            counts: dict[str, int] = {}
            for g in self.group:
                counts[g] = counts.get(g, 0) + 1
            case = spec.reference.case_group if spec.reference else None
            for g, n in sorted(counts.items()):
                mark = "  ← the forecast's group" if str(case) == g else ""
                lines.append(f"  {g}: {n}{mark}")
            if case is not None and str(case) not in counts:
                lines.append(f"  {case}: 0 (the forecast's group: no rounds, a fresh draw)")
        for s, (name, st) in enumerate(spec.stages.items()):
            if st.column:
                known = int((self.y[:, s] >= 0).sum())
                lines.append(f"  stage {name}: {known} outcomes known")
        return lines

    @property
    def n_rounds(self) -> int:
        return len(self.round_id)


def inside_tree(sc: Loaded, name: str, loc: tuple, what: str, allow_outside: bool = False) -> Path:
    """A file the scenario names, relative to it, refused if it leaves the folder tree."""
    base = sc.path.resolve().parent
    raw = Path(name)
    target = (base / raw).resolve()
    line, field = sc.line_of(loc), ".".join(loc)
    if not allow_outside and (raw.is_absolute() or not target.is_relative_to(base)):
        raise ScenarioError.one(
            f"'{name}' leaves the scenario's folder tree ({base}); "
            f"keep the {what} beside the scenario or pass --allow-outside",
            sc.path,
            line,
            field,
        )
    if not target.is_file():
        raise ScenarioError.one(
            f"{what} file '{name}' not found (looked for {target})", sc.path, line, field
        )
    return target


def data_path(sc: Loaded, allow_outside: bool = False) -> Path:
    """The reference CSV's path, refused if it leaves the scenario's folder tree."""
    assert sc.spec.reference is not None
    return inside_tree(sc, sc.spec.reference.data, ("reference", "data"), "data", allow_outside)


def load_reference(sc: Loaded, allow_outside: bool = False) -> ReferenceData:
    """Read, filter and check the scenario's reference CSV.

    Raises
    ------
    ScenarioError
        Naming the row and column of every bad value found.
    """
    path = data_path(sc, allow_outside)
    df, blob = read_rows(path)
    check_columns(sc, df, path)
    check_values(sc, df, path)
    rows = Rows(filtered(df, sc.spec.reference), path)
    ids = rows.round_ids()
    start = rows.dates("start_date")
    end = rows.dates("end_date").fillna(start) if "end_date" in rows.df.columns else start
    y = outcomes(sc.spec, rows, end)
    x = factor_values(sc.spec, rows)
    has_outcome = modelled_rounds(sc, rows, x, y)
    return ReferenceData(
        path=path,
        sha256=hashlib.sha256(blob).hexdigest(),
        round_id=ids[has_outcome].tolist(),
        date=[d.date() for d in start[has_outcome]],
        group=groups(sc.spec.reference, rows, has_outcome),
        x=x[has_outcome],
        y=y[has_outcome],
        n_filtered=len(rows.df),
        n_unknown_outcome=int((~has_outcome).sum()),
        end=[d.date() for d in end[has_outcome]],
        n_in_file=len(df),
    )


def read_rows(path: Path) -> tuple[pd.DataFrame, bytes]:
    """The CSV as text cells, with each row's line in the file (``_line``), and its bytes.

    Refused if larger than 200 MB, not CSV, or longer than :data:`MAX_ROWS` rows.
    """
    import pandas as pd

    blob = path.read_bytes()
    if os.path.getsize(path) > 200 * 2**20:
        raise ScenarioError.one("data file is larger than 200 MB", path)
    try:
        df = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_filter=False, nrows=MAX_ROWS + 1
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise ScenarioError.one(f"could not be read as CSV: {e}", path) from None
    if len(df) > MAX_ROWS:
        raise ScenarioError.one(f"more than {MAX_ROWS:,} rows: too many reference rounds", path)
    df.columns = [c.strip() for c in df.columns]
    # line numbers in the file: header is line 1
    df["_line"] = np.arange(2, len(df) + 2)
    return df, blob


def check_columns(sc: Loaded, df: pd.DataFrame, path: Path) -> None:
    """Every column the file needs, and every column the scenario names, is in it.

    Raises one :class:`ScenarioError` listing each missing column: the required ones at
    the CSV's header, the named ones where the scenario names them.
    """
    spec, ref = sc.spec, sc.spec.reference
    assert ref is not None
    problems: list[Problem] = []

    def need(col: str, loc: tuple) -> None:
        if col not in df.columns:
            problems.append(
                Problem(
                    f"column '{col}' is not in {path.name}{did_you_mean(col, df.columns)}",
                    sc.path,
                    sc.line_of(loc),
                    ".".join(map(str, loc)),
                )
            )

    for col in ("round_id", "start_date"):
        if col not in df.columns:
            problems.append(Problem(f"required column '{col}' is missing", path, 1))
    for key in ("filter", "exclude"):
        for col in getattr(ref, key):
            need(col, ("reference", key, col))
    if ref.group:
        need(ref.group, ("reference", "group"))
    for name, st in spec.stages.items():
        if st.column:
            need(st.column, ("stages", name, "column"))
    for name, fac in spec.factors.items():
        if fac.column:
            need(fac.column, ("factors", name, "column"))
    if problems:
        raise ScenarioError(problems)


def check_values(sc: Loaded, df: pd.DataFrame, path: Path) -> None:
    """Every value ``filter`` and ``exclude`` name, and the ``case_group``, must be in the
    data: a typo would silently keep nothing, or forecast a track the data never saw."""
    ref = sc.spec.reference
    problems: list[Problem] = []

    def present(col: str) -> list[str]:
        return sorted(set(df[col].str.strip()) - {""})

    for section in ("filter", "exclude"):
        for col, wanted in getattr(ref, section).items():
            values = present(col)
            for w in wanted if isinstance(wanted, list) else [wanted]:
                if str(w) not in values:
                    problems.append(
                        Problem(
                            f"no row of {path.name} has {col} = {w!r}{did_you_mean(str(w), values)}"
                            f" (values: {', '.join(values[:12])}{', …' if len(values) > 12 else ''})",
                            sc.path,
                            sc.line_of(("reference", section, col)),
                            f"reference.{section}.{col}",
                        )
                    )
    if problems:
        raise ScenarioError(problems)
    if ref.case_group is None or ref.case_group_is_new:
        return
    kept = filtered(df, ref)
    groups_kept = sorted(set(kept[ref.group].str.strip()) - {""})
    # no rounds at all: nothing to have mistyped against (the run warns the forecast is
    # the prior)
    if groups_kept and str(ref.case_group) not in groups_kept:
        raise ScenarioError.one(
            f"case_group {ref.case_group!r} is not a {ref.group} of the reference rounds"
            f"{did_you_mean(str(ref.case_group), groups_kept)} (groups: {', '.join(groups_kept)}); "
            "for a group the data have never seen, say so with case_group_is_new: true",
            sc.path,
            sc.line_of(("reference", "case_group")),
            "reference.case_group",
        )


def filtered(df: pd.DataFrame, ref: Reference | None) -> pd.DataFrame:
    """The rows ``reference.filter`` keeps and ``reference.exclude`` does not drop."""
    import pandas as pd

    assert ref is not None

    def matches(row_values: pd.Series, wanted) -> pd.Series:
        wanted = wanted if isinstance(wanted, list) else [wanted]
        return row_values.str.strip().isin([str(w) for w in wanted])

    keep = pd.Series(True, index=df.index)
    for col, wanted in ref.filter.items():
        keep &= matches(df[col], wanted)
    for col, wanted in ref.exclude.items():
        keep &= ~matches(df[col], wanted)
    return df[keep]


@dataclass
class Rows:
    """The reference rounds kept, and the CSV they came from, to name in errors."""

    df: pd.DataFrame
    path: Path

    def refuse_first(self, bad, message: str, column: str | None = None) -> None:
        """If any row is bad, stop at the first, naming its line and column.

        ``message`` may use ``{value}``, the offending cell as written.
        """
        bad = np.asarray(bad, dtype=bool)
        if not bad.any():
            return
        i = int(np.argmax(bad))
        value = str(self.df[column].iloc[i]) if column else ""
        # replace, not format: names in the message are the author's and may hold braces
        message = message.replace("{value}", value)
        raise ScenarioError.one(message, self.path, int(self.df["_line"].iloc[i]), column)

    def round_ids(self) -> pd.Series:
        """Each round's ``round_id``: never blank, never twice."""
        df = self.df
        ids = df["round_id"].str.strip()
        self.refuse_first(ids == "", "round_id is blank: every round needs an id", "round_id")
        dup = ids[ids.duplicated()]
        if len(dup):
            row = df.loc[dup.index[0]]
            raise ScenarioError.one(
                f"round_id '{dup.iloc[0]}' appears twice", self.path, int(row["_line"]), "round_id"
            )
        return ids

    def dates(self, col: str) -> pd.Series:
        """A column of YYYY-MM-DD dates, blank as NaT (``start_date`` never blank)."""
        import pandas as pd

        text = self.df[col].str.strip()
        if col == "start_date":
            self.refuse_first(
                text == "", "start_date is blank: every round needs the date it started", col
            )
        parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        self.refuse_first(
            parsed.isna() & (text != ""), "'{value}' is not a date (expected YYYY-MM-DD)", col
        )
        return parsed


def outcomes(spec: Scenario, rows: Rows, end: pd.Series) -> np.ndarray:
    """``y[i, s]``: stage s's outcome in round i, if known before ``spec.before``.

    Stages are read in order until one has no column; a stage's outcome counts only if
    the round passed every earlier stage and that was known in time too (censoring).
    """
    import pandas as pd

    df = rows.df
    y = np.full((len(df), len(spec.stages)), UNKNOWN, dtype=np.int8)
    before = pd.Timestamp(spec.before)
    raw_passed = np.ones(len(df), dtype=bool)  # the file says it passed every earlier stage
    obs_passed = np.ones(len(df), dtype=bool)  # ... and that was known before `before`
    for s_idx, st in enumerate(spec.stages.values()):
        if not st.column:
            break
        raw = df[st.column].str.strip()
        rows.refuse_first(
            ~raw.isin(["0", "1", ""]), "outcome must be 0, 1 or blank, got '{value}'", st.column
        )
        value = raw.replace("", "-1").astype(int).to_numpy()
        if s_idx:
            prev = list(spec.stages)[s_idx - 1]
            rows.refuse_first(
                ~raw_passed & (value != UNKNOWN),
                f"outcome given for a round that did not pass stage '{prev}': must be blank",
                st.column,
            )
        known = ((end + pd.to_timedelta(st.known_after_days, unit="D")) < before).to_numpy()
        observed = obs_passed & known & (value != UNKNOWN)
        y[:, s_idx] = np.where(observed, value, UNKNOWN)
        raw_passed &= value == 1
        obs_passed &= observed & (value == 1)
    return y


def factor_values(spec: Scenario, rows: Rows) -> np.ndarray:
    """``x[i, f]``: whether factor f held in round i (1, 0, or -1 for unknown)."""
    x = np.full((len(rows.df), len(spec.factors)), UNKNOWN, dtype=np.int8)
    for f_idx, (name, fac) in enumerate(spec.factors.items()):
        x[:, f_idx] = factor_column(name, fac, rows)
    return x


def factor_column(name: str, fac: Factor, rows: Rows) -> np.ndarray | int:
    """One factor's values: from its column (blank is unknown, which needs an
    ``in_reference`` rate), else unknown if it has that rate and 0 (never held) if not."""
    if fac.column is None:
        return UNKNOWN if fac.in_reference is not None else 0
    raw = rows.df[fac.column].str.strip()
    rows.refuse_first(
        ~(raw.str.fullmatch(r"-?\d+") | (raw == "")),
        "factor value must be an integer or blank, got '{value}'",
        fac.column,
    )
    blank = (raw == "").to_numpy()
    if fac.in_reference is None:
        rows.refuse_first(
            blank,
            f"blank value for factor '{name}' and the factor has no in_reference rate "
            "to marginalise it with",
            fac.column,
        )
    return np.where(
        blank, UNKNOWN, (raw.replace("", "-999").astype(int) == fac.holds_when).astype(int)
    )


def modelled_rounds(sc: Loaded, rows: Rows, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which rounds have an outcome, the ones the model learns from.

    Refused if one of them has more than :data:`MAX_EXACT_FACTORS` unknown factor values,
    or if there are more than :data:`MAX_MODEL_ROUNDS` of them.
    """
    has_outcome = (y != UNKNOWN).any(axis=1)
    too_many = (x == UNKNOWN).sum(axis=1) > MAX_EXACT_FACTORS
    rows.refuse_first(
        too_many & has_outcome,
        f"round has more than {MAX_EXACT_FACTORS} unknown factor values; give columns or "
        "fewer factors without one",
    )
    if has_outcome.sum() > MAX_MODEL_ROUNDS:
        raise ScenarioError.one(
            f"{int(has_outcome.sum()):,} reference rounds have an outcome; forecast fits at most "
            f"{MAX_MODEL_ROUNDS:,}. Narrow the reference class with reference.filter, "
            "reference.exclude or reference.before",
            sc.path,
            sc.line_of(("reference", "data")),
            "reference.data",
        )
    return has_outcome


def groups(ref: Reference | None, rows: Rows, has_outcome: np.ndarray) -> list[str] | None:
    """Each modelled round's ``reference.group`` value, if the scenario groups rounds."""
    if ref is None or not ref.group:
        return None
    return rows.df[ref.group].str.strip()[has_outcome].tolist()
