"""The ledger's tables and their migrations (PRODUCT §7).

Tables (exactly PRODUCT §7): ``forecasts`` (one row per recorded forecast), ``questions``
(the event and its outcome: ``NULL``, ``'1'``, ``'0'`` or ``'annulled'``), ``resolutions``
(every resolve that changed something: the history of an outcome), and ``ledger_schema``
(the schema version). :data:`MIGRATIONS` is an ordered list of functions; opening a
ledger applies, in one transaction, those after its stored version (an empty file or
database starts at 0). Each migration builds the tables as they were at its version, so
a later change to a table is a new migration, never an edit of an old one.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from forecast.errors import UsageError

_PG_LOCK = 0x466F7265  # pg_advisory_xact_lock key for migrations ("Fore")


# -- tables, as each migration made them ----------------------------------------------


def _json_type() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _schema_table(meta: sa.MetaData) -> sa.Table:
    return sa.Table("ledger_schema", meta, sa.Column("version", sa.Integer, nullable=False))


def _v1_tables(meta: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """``questions`` and ``forecasts`` as schema 1 made them (still current)."""
    questions = sa.Table(
        "questions",
        meta,
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("success", sa.Text),
        sa.Column("resolves", sa.Date),
        sa.Column("outcome", sa.String(8)),  # NULL, '1', '0' or 'annulled'
        sa.Column("resolved_on", sa.Date),
        sa.Column("resolution_source", sa.Text),
    )
    forecasts = sa.Table(
        "forecasts",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("question_id", sa.String(200), sa.ForeignKey("questions.id"), nullable=False),
        sa.Column("scenario_id", sa.String(200), nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("outlet", sa.Text),
        sa.Column("source_date", sa.Date),
        sa.Column("recorded_at", sa.String(32), nullable=False),  # ISO 8601, UTC
        sa.Column("p_mean", sa.Float, nullable=False),
        sa.Column("p_hdi_lo", sa.Float),
        sa.Column("p_hdi_hi", sa.Float),
        sa.Column("p_mcse", sa.Float),
        sa.Column("scenario_sha256", sa.String(64), nullable=False),
        sa.Column("data_sha256", sa.String(64)),
        sa.Column("overrides", _json_type(), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("report", sa.Text),
        sa.Column("version", sa.String(40)),
    )
    c = forecasts.c
    sa.Index("forecasts_question", c.question_id)
    sa.Index(  # the forecast's identity: recording the same report again adds nothing
        "forecasts_identity",
        c.scenario_id,
        c.scenario_sha256,
        sa.func.coalesce(c.data_sha256, ""),
        c.overrides,
        c.seed,
        unique=True,
    )
    return questions, forecasts


def _v2_resolutions(meta: sa.MetaData) -> sa.Table:
    """``resolutions`` as schema 2 made it: one row per resolve that changed something."""
    return sa.Table(
        "resolutions",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("question_id", sa.String(200), sa.ForeignKey("questions.id"), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("resolved_on", sa.Date),
        sa.Column("source", sa.Text),
        sa.Column("previous_outcome", sa.String(8)),
        sa.Column("forced", sa.Boolean, nullable=False, default=False),
        sa.Column("recorded_at", sa.String(32)),  # NULL: carried over from schema 1
    )


META = sa.MetaData()
SCHEMA = _schema_table(META)
QUESTIONS, FORECASTS = _v1_tables(META)
RESOLUTIONS = _v2_resolutions(META)
LEDGER_TABLES = {"ledger_schema", "questions", "forecasts", "resolutions"}


def _m1_core(conn: sa.Connection) -> None:
    """Schema 1: ``questions`` and ``forecasts``, the outcome kept on the question."""
    meta = sa.MetaData()
    _v1_tables(meta)
    meta.create_all(conn)


def _m2_resolutions(conn: sa.Connection) -> None:
    """Schema 2: ``resolutions``, the history of outcomes; each known outcome its first row."""
    meta = sa.MetaData()
    questions, _ = _v1_tables(meta)
    resolutions = _v2_resolutions(meta)
    resolutions.create(conn)
    known = conn.execute(
        sa.select(
            questions.c.id,
            questions.c.outcome,
            questions.c.resolved_on,
            questions.c.resolution_source,
        ).where(questions.c.outcome.is_not(None))
    ).all()
    if known:
        conn.execute(
            resolutions.insert(),
            [
                {"question_id": q, "outcome": o, "resolved_on": on, "source": src, "forced": False}
                for q, o, on, src in known
            ],
        )


#: Applied in order from the stored version: MIGRATIONS[v] takes a ledger from v to v + 1.
MIGRATIONS: list[Callable[[sa.Connection], None]] = [_m1_core, _m2_resolutions]
VERSION = len(MIGRATIONS)


def not_a_ledger(label: str, why: str) -> UsageError:
    """The error for a file or database that is not a ledger (it is left untouched)."""
    return UsageError.one(
        f"{label} is not a forecast ledger ({why}); it was left as it is. Give another "
        "file with --ledger (a new one is created)",
        field="--ledger",
    )


def migrate(conn: sa.Connection, label: str, sqlite_file: bool) -> int:
    """Bring the ledger to :data:`VERSION`; returns the version it was at."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    names = set(sa.inspect(conn).get_table_names())
    if "ledger_schema" not in names:
        if (sqlite_file and names) or names & LEDGER_TABLES:
            raise not_a_ledger(label, f"tables {', '.join(sorted(names))} but no ledger_schema")
        SCHEMA.create(conn)
        conn.execute(SCHEMA.insert().values(version=0))
    versions = conn.execute(sa.select(SCHEMA.c.version)).scalars().all()
    if len(versions) != 1:
        raise not_a_ledger(label, "its ledger_schema table does not hold one version")
    start = versions[0]
    if start > VERSION:
        raise UsageError.one(
            f"{label} is a ledger of schema {start}, made by a newer forecast; this one "
            f"reads schema {VERSION} (upgrade forecast)",
            field="--ledger",
        )
    for version in range(start, VERSION):
        MIGRATIONS[version](conn)
        conn.execute(SCHEMA.update().values(version=version + 1))
    return start
