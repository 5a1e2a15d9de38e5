"""The forecast ledger (PRODUCT §7): recorded forecasts, their questions' outcomes, scores.

One SQLite file by default (``forecast.sqlite`` in the working directory, or
``$FORECAST_LEDGER``); any ``--ledger`` that contains ``://`` is a SQLAlchemy URL, such
as ``postgresql+psycopg://user:password@host/db`` for a team's shared ledger. Both go
through SQLAlchemy Core and the same code.

Tables and migrations: :mod:`forecast.ledger_schema`.

Writers never lose a row: SQLite runs in WAL mode with a busy timeout and every
transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time, the others wait);
PostgreSQL serialises migrations with an advisory lock. A report is recorded in one
transaction, with ``INSERT … ON CONFLICT DO NOTHING`` against a unique index on the
forecast's identity (scenario id, scenario hash, data hash, overrides, seed), so
recording it again adds nothing, even from two processes at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from forecast.errors import Problem, ScenarioError, UsageError, did_you_mean
from forecast.ledger_inputs import (
    OUTCOME_WORDS,
    OUTCOMES,
    Resolution,
    forecast_rows,
    now_utc,
    read_summary,
)
from forecast.ledger_schema import (
    FORECASTS,
    QUESTIONS,
    RESOLUTIONS,
    migrate,
    not_a_ledger,
)
from forecast.scores import BY

DEFAULT_FILE = "forecast.sqlite"
ENV = "FORECAST_LEDGER"
BUSY_SECONDS = 60  # how long a writer waits for another's transaction (SQLite)
SQLITE_MAGIC = b"SQLite format 3\x00"


# -- opening a ledger ------------------------------------------------------------------


def ledger_url(ledger: str | os.PathLike | None = None) -> tuple[sa.URL, Path | None]:
    """The SQLAlchemy URL of ``--ledger`` (a path or URL; default ``$FORECAST_LEDGER`` or
    ``forecast.sqlite``) and, for an SQLite file, its path."""
    raw = str(ledger) if ledger else os.environ.get(ENV) or DEFAULT_FILE
    if "://" not in raw:
        path = Path(raw).expanduser().absolute()
        return sa.URL.create("sqlite+pysqlite", database=str(path)), path
    try:
        url = sa.make_url(raw)
    except sa.exc.ArgumentError:
        raise UsageError.one(f"'{raw}' is not a database URL", field="--ledger") from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise UsageError.one(
            f"the ledger is SQLite or PostgreSQL, not {backend} ({raw})", field="--ledger"
        )
    if url.drivername == "postgresql":  # psycopg (3) is the driver installed with forecast
        url = url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            return url, None
        return url, Path(url.database).expanduser().absolute()
    return url, None


def _check_sqlite_file(path: Path, create: bool) -> None:
    """Refuse, before SQLite writes a byte, a file that is not a ledger; or, for a reader,
    a ledger that does not exist."""
    if path.is_dir():
        raise not_a_ledger(str(path), "it is a folder")
    if not path.exists():
        if not create:
            raise UsageError.one(
                f"there is no ledger at {path}: record forecasts first "
                "(forecast record REPORT...), or give --ledger",
                field="--ledger",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if path.stat().st_size == 0:
        return  # an empty file: a new ledger
    with open(path, "rb") as fh:
        if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise not_a_ledger(str(path), "not an SQLite database")
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS)
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise not_a_ledger(str(path), f"SQLite cannot read it: {e}") from None
    if names and "ledger_schema" not in names:
        shown = ", ".join(sorted(names)[:5])
        raise not_a_ledger(str(path), f"an SQLite database with other tables: {shown}")


def _use_wal(con: sqlite3.Connection) -> None:
    """Put the file in WAL mode (persistent: once per file), waiting for other writers.

    SQLite's busy handler does not cover the switch itself: while another connection is
    converting the same new file, ``PRAGMA journal_mode = WAL`` fails at once with
    "database is locked" (seen with eight processes opening one new ledger on a loaded
    machine). So the switch is retried, with jitter, for up to :data:`BUSY_SECONDS`.
    """
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                con.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def _engine(url: sa.URL) -> sa.Engine:
    """An engine; for SQLite, WAL mode, a busy timeout and ``BEGIN IMMEDIATE``."""
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(
            url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 10}
        )
    engine = sa.create_engine(
        url, poolclass=sa.pool.NullPool, connect_args={"timeout": BUSY_SECONDS}
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # BEGIN is ours (below), not sqlite3's
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_SECONDS * 1000}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()
        _use_wal(dbapi_connection)

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # take the write lock at once: a deferred transaction that reads and then writes
        # cannot wait for another writer (SQLITE_BUSY), an immediate one can
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Ledger:
    """An open ledger: ``with Ledger(path_or_url) as led: led.record(summary, folder)``.

    Parameters
    ----------
    ledger
        A path or SQLAlchemy URL; ``None`` for ``$FORECAST_LEDGER`` or ``forecast.sqlite``.
    create
        Create the ledger if it does not exist (readers pass ``False``: a missing SQLite
        file is an error, and nothing is created).
    """

    def __init__(self, ledger: str | os.PathLike | None = None, *, create: bool = True) -> None:
        self.url, self.path = ledger_url(ledger)
        raw = str(ledger) if ledger else os.environ.get(ENV) or DEFAULT_FILE
        if self.path is None:
            self.label = self.url.render_as_string(hide_password=True)
        else:  # as the user wrote it
            self.label = raw if "://" not in raw else str(self.path)
        if self.path is not None:
            _check_sqlite_file(self.path, create)
        with self._errors():
            self.engine = _engine(self.url)
            try:
                with self.engine.begin() as conn:
                    self.migrated_from = migrate(conn, self.label, self.path is not None)
            except BaseException:
                self.engine.dispose()
                raise

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the connections."""
        if hasattr(self, "engine"):
            self.engine.dispose()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """A database that cannot be reached or read is bad input (exit 2), not a bug."""
        try:
            yield
        except ScenarioError:
            raise
        except (sa.exc.OperationalError, sa.exc.DatabaseError, sa.exc.NoSuchModuleError) as e:
            why = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            raise UsageError.one(
                f"cannot use the ledger {self.label}: {why}", field="--ledger"
            ) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One transaction (``BEGIN IMMEDIATE`` on SQLite); committed unless it raises."""
        with self._errors(), self.engine.begin() as conn:
            yield conn

    def _insert(self, table: sa.Table):
        dialect = postgresql if self.url.get_backend_name() == "postgresql" else sqlite
        return dialect.insert(table)

    def question_ids(self, conn: sa.Connection) -> list[str]:
        """Every question id in the ledger, sorted."""
        return list(conn.execute(sa.select(QUESTIONS.c.id).order_by(QUESTIONS.c.id)).scalars())

    def unknown_question(self, conn: sa.Connection, qid: str) -> tuple[Problem, bool]:
        """The problem of a question id the ledger does not hold, naming the nearest id;
        and whether there is a near one (a likely typo)."""
        ids = self.question_ids(conn)
        known = f" (it holds {len(ids)} question{'s' * (len(ids) != 1)})" if ids else ""
        near = did_you_mean(qid, ids)
        message = f"no question '{qid}' in the ledger {self.label}{known}{near}"
        return Problem(message, field="QUESTION_ID"), bool(near)

    # -- recording ----------------------------------------------------------------------

    def record(self, summary: dict[str, Any], report: str | os.PathLike | None) -> Recorded:
        """Record a report's forecasts (the model's, and the author's own) in one transaction."""
        question, rows = forecast_rows(summary, report)
        done = Recorded(str(report) if report else "", question["id"])
        with self.transaction() as conn:
            conn.execute(self._insert(QUESTIONS).values(**question).on_conflict_do_nothing())
            stored = conn.execute(
                sa.select(QUESTIONS.c.text).where(QUESTIONS.c.id == question["id"])
            ).scalar_one()
            if stored != question["text"]:
                done.warnings.append(_text_differs(conn, question, rows[0]["scenario_id"], stored))
            for row in rows:
                insert = self._insert(FORECASTS).values(**row).on_conflict_do_nothing()
                added = conn.execute(insert.returning(FORECASTS.c.id)).first() is not None
                (done.added if added else done.unchanged).append(row["scenario_id"])
        return done

    # -- resolving ----------------------------------------------------------------------

    def resolve(self, entries: Sequence[Resolution], force: bool = False) -> list[Resolved]:
        """Apply resolutions in one transaction: all of them, or (on a problem) none.

        A question already resolved differently needs ``force``; the history keeps both.
        An entry with :attr:`Resolution.optional` whose question the ledger does not hold
        (no close id either) is skipped and said so.
        """
        done: list[Resolved] = []
        problems: list[Problem] = []
        with self.transaction() as conn:
            for entry in entries:
                try:
                    done.append(self._resolve_one(conn, entry, force))
                except ScenarioError as e:
                    problems += [_at(p, entry) for p in e.problems]
            if problems:
                raise UsageError(problems)  # rolls the transaction back
        return done

    def _resolve_one(self, conn: sa.Connection, e: Resolution, force: bool) -> Resolved:
        q = QUESTIONS.c
        row = conn.execute(
            sa.select(q.outcome, q.resolved_on, q.resolution_source)
            .where(q.id == e.question_id)
            .with_for_update()
        ).first()
        if row is None:
            problem, near = self.unknown_question(conn, e.question_id)
            if e.optional and not near:  # from a file: a question nobody forecast (yet)
                return Resolved(e.question_id, "skipped", None, e.outcome, problem.message)
            raise UsageError([problem])
        code, previous = OUTCOMES[e.outcome], row.outcome
        changed = previous is not None and previous != code
        if changed and not force:
            raise UsageError.one(
                f"'{e.question_id}' is already resolved {OUTCOME_WORDS[previous]}"
                f"{_on(row.resolved_on)}; give --force to change it to {e.outcome} "
                "(the history keeps both)",
                field="--outcome",
            )
        same = previous == code
        on = e.on or (row.resolved_on if same else None) or dt.date.today()
        source = e.source if e.source is not None else (row.resolution_source if same else None)
        if same and (row.resolved_on, row.resolution_source) == (on, source):
            return Resolved(e.question_id, "unchanged", previous, e.outcome)
        conn.execute(
            QUESTIONS.update()
            .where(q.id == e.question_id)
            .values(outcome=code, resolved_on=on, resolution_source=source)
        )
        conn.execute(
            RESOLUTIONS.insert().values(
                question_id=e.question_id,
                outcome=code,
                resolved_on=on,
                source=source,
                previous_outcome=previous,
                forced=changed,
                recorded_at=now_utc(),
            )
        )
        status = "changed" if changed else "updated" if same else "resolved"
        return Resolved(e.question_id, status, previous, e.outcome)

    def history(self, question_id: str) -> list[dict[str, Any]]:
        """Every resolution of a question, oldest first (outcomes as yes/no/annulled)."""
        r = RESOLUTIONS.c
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(RESOLUTIONS).where(r.question_id == question_id).order_by(r.id)
            ).mappings()
            return [
                {
                    **row,
                    "outcome": OUTCOME_WORDS[row["outcome"]],
                    "previous_outcome": OUTCOME_WORDS.get(row["previous_outcome"]),
                }
                for row in rows
            ]

    # -- reading ------------------------------------------------------------------------

    def forecasts(self) -> list[dict[str, Any]]:
        """Every forecast with its question's text and outcome (yes/no/annulled or None)."""
        f, q = FORECASTS.c, QUESTIONS.c
        query = (
            sa.select(FORECASTS, q.text, q.outcome, q.resolved_on, q.resolution_source)
            .join(QUESTIONS, f.question_id == q.id)
            .order_by(f.question_id, f.id)
        )
        with self.transaction() as conn:
            return [
                {**row, "outcome": OUTCOME_WORDS.get(row["outcome"])}
                for row in conn.execute(query).mappings()
            ]

    def questions(self) -> list[dict[str, Any]]:
        """Every question with its outcome (yes/no/annulled or None) and forecast count."""
        q, f = QUESTIONS.c, FORECASTS.c
        count = sa.select(sa.func.count()).where(f.question_id == q.id).scalar_subquery()
        with self.transaction() as conn:
            return [
                {**row, "outcome": OUTCOME_WORDS.get(row["outcome"])}
                for row in conn.execute(
                    sa.select(QUESTIONS, count.label("forecasts")).order_by(q.id)
                ).mappings()
            ]


# -- records of what was done ----------------------------------------------------------


@dataclass
class Recorded:
    """What recording one report did: the scenario ids added and those already there."""

    report: str
    question_id: str
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Resolved:
    """What one resolve did: resolved, changed (--force), updated (date or source),
    unchanged or skipped."""

    question_id: str
    status: str
    previous: str | None  # stored code before, or None
    outcome: str
    note: str | None = None


def _at(p: Problem, e: Resolution) -> Problem:
    """A problem of a resolution, placed at its line in a resolutions file."""
    if e.file is None:
        return p
    return Problem(p.message, e.file, e.line)


def _on(day: dt.date | None) -> str:
    return f" on {day.isoformat()}" if day else ""


def _text_differs(conn: sa.Connection, question: dict, scenario_id: str, stored: str) -> str:
    f = FORECASTS.c
    first = conn.execute(
        sa.select(f.scenario_id).where(f.question_id == question["id"]).order_by(f.id).limit(1)
    ).scalar()
    origin = f" (from {first}, its first forecast)" if first else ""
    return (
        f"question '{question['id']}': {scenario_id} words it differently from the ledger"
        f"{origin}; recorded, and scored against the ledger's text: {stored!r} "
        f"(this report: {question['text']!r})"
    )


# -- the functions other modules call --------------------------------------------------


def record_summary(
    url: str | os.PathLike | None, summary: dict[str, Any], report_folder: str | os.PathLike
) -> Recorded:
    """Record one run's summary (``forecast run --record``): open, record, close.

    ``url`` is the ``--ledger`` value (``None`` for the default). Raises
    :class:`~forecast.errors.UsageError` for a ledger that cannot be used or a summary
    without the fields the ledger needs; returns what was added and any warnings.
    """
    with Ledger(url) as led:
        return led.record(summary, report_folder)


def record_reports(url: str | os.PathLike | None, folders: Sequence[str | os.PathLike]):
    """Record report folders (``forecast record``): every folder is read and checked
    first, so a bad one records nothing; then one transaction per report."""
    summaries, problems = [], []
    for folder in folders:
        try:
            summaries.append((read_summary(folder), folder))
        except ScenarioError as e:
            problems += e.problems
    if problems:
        raise UsageError(problems)
    with Ledger(url) as led:
        return [led.record(s, folder) for s, folder in summaries], led.label


def resolve(
    url: str | os.PathLike | None, entries: Sequence[Resolution], force: bool = False
) -> tuple[list[Resolved], str]:
    """``forecast resolve``: apply resolutions (all or none); returns them and the ledger."""
    with Ledger(url, create=False) as led:
        return led.resolve(entries, force), led.label


def score(url: str | os.PathLike | None, by: str = "author") -> tuple[dict[str, Any], str]:
    """``forecast scores``: the score table (as ``--json`` prints it) and the HTML page."""
    from forecast.scores import render_page, score_table, scored

    if by not in BY:
        raise UsageError.one(
            f"--by is one of {', '.join(BY)}, not {by!r}{did_you_mean(by, BY)}", field="--by"
        )
    with Ledger(url, create=False) as led:
        forecasts, questions = led.forecasts(), led.questions()
        result = score_table(forecasts, by, led.label)
    return result, render_page(result, scored(forecasts)[0], questions)


def author_weights(
    url: str | os.PathLike | None, authors: Sequence[str]
) -> dict[str, float | None]:
    """Each author's pooling weight from the ledger (PRODUCT §8), ``None`` without a record.

    The weight is 2^(b / 100), b the author's mean baseline score on resolved questions
    (the model's forecasts of their views, which are what a pool combines): normalised
    by their sum this is a softmax of the scores at temperature 100 / ln 2, and 2^(b/100)
    is the geometric mean of 2·p(outcome), the views' likelihood ratio against a coin flip.
    A ledger that does not exist yet is no record for anyone.
    """
    from forecast.scores import author_records

    path = ledger_url(url)[1]
    if path is not None and not path.exists():
        return dict.fromkeys(authors)
    with Ledger(url, create=False) as led:
        records = author_records(led.forecasts())
    return {a: (2 ** (records[a] / 100) if records.get(a) is not None else None) for a in authors}
