"""The forecast ledger (PRODUCT §7): record, resolve, scores, migrations, concurrency.

Every test that touches a database runs twice: on an SQLite file and on PostgreSQL
(``$FORECAST_TEST_POSTGRES``, which .ci/run sets after starting the server; each test
gets a schema of its own). The summaries are fakes written here: nothing is fitted.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from forecast import ledger as ledger_mod
from forecast import ledger_schema, scores
from forecast.ledger import Ledger, record_summary

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("FORECAST_TEST_POSTGRES")
needs_pg = pytest.mark.skipif(
    not PG,
    reason="FORECAST_TEST_POSTGRES is not set: no PostgreSQL server to test the ledger "
    "against (.ci/run starts one and sets it)",
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_pg)])
def url(request, tmp_path):
    """A new, empty ledger: an SQLite file's path, or a PostgreSQL URL with its own schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.sqlite")
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG, poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        c.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield f"{PG}{'&' if '?' in PG else '?'}options=-csearch_path%3D{schema}"
    with engine.begin() as c:
        c.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


def summary(
    id="view-a",
    qid="iran-deal-2013",
    text="Will they sign a deal by the end of 2013?",
    p=0.2,
    stated=0.1,
    author="Ann Author",
    outlet="The Outlet",
    overrides=(),
    seed=1,
    scenario_sha="a" * 64,
    data_sha="b" * 64,
):
    """A summary.json as forecast run writes it, with only what the ledger reads."""
    stat = lambda m: {"mean": m, "mcse": 0.0, "median": m, "hdi_90": [m / 2, min(1, 1.5 * m)]}  # noqa: E731
    return {
        "schema": 1,
        "id": id,
        "title": "A view",
        "source": {
            "outlet": outlet,
            "date": "2013-02-26",
            **({"author": author} if author else {}),
        },
        "question": {
            "id": qid,
            "text": text,
            "success": "A signed deal.",
            "resolves": "2013-12-31",
            "rounds": 1,
            "author_forecast": None if stated is None else {"belief": "unlikely", **stat(stated)},
        },
        "p_success": {**stat(p), "mcse": 0.002},
        "provenance": {
            "scenario": f"scenarios/{id}.yaml",
            "scenario_sha256": scenario_sha,
            "data_sha256": data_sha,
            "overrides": list(overrides),
            "seed": seed,
            "draws": 1000,
            "chains": 4,
            "versions": {"scenario-forecast": "0.1.0", "pymc": "6.4.0"},
        },
    }


def report(root: Path, name: str, **kw) -> Path:
    """A report folder holding summary(**kw) as its summary.json."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary(**kw)))
    return folder


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def rows(url) -> list[dict]:
    with Ledger(url) as led:
        return led.forecasts()


# -- record -----------------------------------------------------------------------------


def test_record_is_idempotent_and_keeps_the_authors_own_view(url, tmp_path, cli):
    folder = report(tmp_path, "view-a", overrides=["factors.x.holds=unlikely"], seed=7)
    r = cli("record", folder, "--ledger", url)
    assert r.exit_code == 0, r.output
    assert "recorded view-a, view-a:author" in r.output
    got = {row["scenario_id"]: row for row in rows(url)}
    assert set(got) == {"view-a", "view-a:author"}
    model, stated = got["view-a"], got["view-a:author"]
    assert (model["p_mean"], model["p_hdi_lo"], model["p_hdi_hi"], model["p_mcse"]) == (
        0.2,
        0.1,
        pytest.approx(0.3),
        0.002,
    )
    assert (stated["p_mean"], stated["p_mcse"]) == (0.1, 0.0)
    for row in (model, stated):
        assert row["overrides"] == ["factors.x.holds=unlikely"] and row["seed"] == 7
        assert row["author"] == "Ann Author" and row["outlet"] == "The Outlet"
        assert row["source_date"].isoformat() == "2013-02-26" and row["version"] == "0.1.0"
        assert row["scenario_sha256"] == "a" * 64 and row["report"] == str(folder.absolute())
    # the same report again, and the same forecast from another folder: nothing added
    again = report(tmp_path, "copy", overrides=["factors.x.holds=unlikely"], seed=7)
    r = cli("record", folder, again, "--ledger", url)
    assert r.exit_code == 0 and "0 forecasts added" in r.output
    assert len(rows(url)) == 2
    # another seed, other overrides or other data are other forecasts
    record_summary(url, summary(seed=8, stated=None), tmp_path)
    record_summary(url, summary(seed=7, data_sha=None, stated=None), tmp_path)
    record_summary(url, summary(seed=7, data_sha=None, stated=None), tmp_path)  # idempotent
    assert len(rows(url)) == 4


def test_a_question_keeps_its_first_text_and_a_differing_one_warns(url, tmp_path, cli):
    cli("record", report(tmp_path, "a", id="view-a"), "--ledger", url)
    other = report(tmp_path, "b", id="view-b", text="Will they sign by 2014?", stated=None)
    r = cli("record", other, "--ledger", url)
    assert r.exit_code == 0, r.output
    assert "warning" in r.output and "view-b words it differently" in r.output
    assert "from view-a, its first forecast" in r.output
    assert len(rows(url)) == 3
    with Ledger(url) as led:
        (q,) = led.questions()
    assert q["text"] == "Will they sign a deal by the end of 2013?" and q["forecasts"] == 3


def test_default_ledger_is_forecast_sqlite_or_the_environment(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORECAST_LEDGER", raising=False)
    folder = report(tmp_path, "r")
    assert cli("record", folder).exit_code == 0
    assert len(rows(tmp_path / "forecast.sqlite")) == 2
    monkeypatch.setenv("FORECAST_LEDGER", str(tmp_path / "team.sqlite"))
    assert cli("record", folder).exit_code == 0
    assert len(rows(tmp_path / "team.sqlite")) == 2


# -- resolve ----------------------------------------------------------------------------


def test_resolve_keeps_history_and_a_change_needs_force(url, tmp_path, cli):
    cli("record", report(tmp_path, "r"), "--ledger", url)
    q = "iran-deal-2013"
    r = cli(
        "resolve",
        q,
        "--outcome",
        "yes",
        "--on",
        "2013-11-24",
        "--source",
        "Geneva",
        "--ledger",
        url,
    )
    assert r.exit_code == 0 and "resolved yes" in r.output, r.output
    r = cli("resolve", q, "--outcome", "yes", "--ledger", url)  # the same: nothing new
    assert r.exit_code == 0 and "nothing changed" in r.output
    r = cli("resolve", q, "--outcome", "no", "--ledger", url)
    assert r.exit_code == 2 and "already resolved yes on 2013-11-24" in r.output
    assert "--force" in r.output and "Traceback" not in r.output
    r = cli("resolve", q, "--outcome", "no", "--on", "2014-11-24", "--force", "--ledger", url)
    assert r.exit_code == 0 and "changed from yes to no" in r.output, r.output
    with Ledger(url) as led:
        history = led.history(q)
        (question,) = led.questions()
    assert [(h["outcome"], h["previous_outcome"], h["forced"]) for h in history] == [
        ("yes", None, False),
        ("no", "yes", True),
    ]
    assert (
        history[0]["source"] == "Geneva" and history[1]["resolved_on"].isoformat() == "2014-11-24"
    )
    assert question["outcome"] == "no" and question["resolution_source"] is None


def test_resolve_from_the_bundled_file(url, tmp_path, cli):
    cli(
        "record",
        report(tmp_path, "c", id="commentary-2013", qid="iran-p5p1-deal-2013", author=None),
        report(tmp_path, "d", id="diplomat-2011", qid="iran-p5p1-deal-under-ahmadinejad"),
        "--ledger",
        url,
    )
    path = ROOT / "scenarios" / "resolutions.yaml"
    r = cli("resolve", "--from", path, "--ledger", url)
    assert r.exit_code == 0, r.output
    assert "iran-p5p1-deal-2013: resolved yes" in r.output
    assert "iran-p5p1-deal-under-ahmadinejad: resolved no" in r.output
    r = cli("resolve", "--from", path, "--ledger", url)  # loading it twice changes nothing
    assert r.output.count("nothing changed") == 2
    with Ledger(url) as led:
        qs = {q["id"]: q for q in led.questions()}
        assert len(led.history("iran-p5p1-deal-2013")) == 1
    assert qs["iran-p5p1-deal-2013"]["resolved_on"].isoformat() == "2014-11-24"
    assert "Joint Plan of Action" in qs["iran-p5p1-deal-2013"]["resolution_source"]


def test_a_file_skips_questions_nobody_forecast_but_not_typos(url, tmp_path, cli):
    cli("record", report(tmp_path, "r"), "--ledger", url)
    f = tmp_path / "res.yaml"
    f.write_text(
        "resolutions:\n"
        "  - {question: iran-deal-2013, outcome: 'yes', on: 2013-11-24}\n"
        "  - {question: some-other-event, outcome: 'no'}\n"
    )
    r = cli("resolve", "--from", f, "--ledger", url)
    assert r.exit_code == 0 and "skipped: no question 'some-other-event'" in r.output, r.output
    f.write_text("resolutions:\n  - {question: iran-deal-2031, outcome: annulled}\n")
    r = cli("resolve", "--from", f, "--ledger", url)
    assert r.exit_code == 2 and f"{f}:2" in r.output and "did you mean 'iran-deal-2013'" in r.output
    f.write_text("resolutions:\n  - {question: iran-deal-2013, outcome: maybe}\n")
    r = cli("resolve", "--from", f, "--ledger", url)
    assert r.exit_code == 2 and "resolutions[0].outcome" in r.output and "not 'maybe'" in r.output


# -- scores -----------------------------------------------------------------------------


def test_the_three_scores_by_hand():
    assert scores.brier(0.2, 1) == pytest.approx(0.64)
    assert scores.log_score(0.2, 1) == pytest.approx(math.log(0.2))
    assert scores.baseline_score(0.2, 1) == pytest.approx(100 * math.log2(0.4))
    assert scores.baseline_score(0.5, 0) == 0 and scores.baseline_score(0.3, 0) == pytest.approx(
        100 * math.log2(1.4)
    )
    assert math.isfinite(scores.log_score(0.0, 1))  # clipped, not -inf


def test_scores_group_means_and_standard_errors(url, tmp_path, cli):
    # Ann: two forecasts of q1 (0.2 and 0.6, yes) and one of q2 (0.3, no); Bob one of q1
    for name, kw in {
        "a1": dict(id="a1", p=0.2),
        "a2": dict(id="a2", p=0.6, scenario_sha="c" * 64),
        "a3": dict(id="a3", qid="q2", text="Q2?", p=0.3),
        "b1": dict(id="b1", p=0.9, author="Bob"),
        "x": dict(id="x", qid="q3", text="Q3?", p=0.5),
    }.items():
        cli("record", report(tmp_path, name, stated=None, **kw), "--ledger", url)
    for q, o in (("iran-deal-2013", "yes"), ("q2", "no"), ("q3", "annulled")):
        assert cli("resolve", q, "--outcome", o, "--ledger", url).exit_code == 0
    r = cli("scores", "--json", "--ledger", url, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    ann = next(g for g in result["groups"] if g["group"] == "Ann Author")
    q1 = [
        (0.64 + 0.16) / 2,
        (math.log(0.2) + math.log(0.6)) / 2,
        (100 * math.log2(0.4) + 100 * math.log2(1.2)) / 2,
    ]
    q2 = [0.09, math.log(0.7), 100 * math.log2(1.4)]
    assert (ann["n"], ann["forecasts"], ann["kind"]) == (2, 3, "model")
    for score, a, b in zip(("brier", "log_score", "baseline"), q1, q2, strict=True):
        assert ann[score] == pytest.approx((a + b) / 2, abs=1e-6)
        assert ann[f"{score}_se"] == pytest.approx(abs(a - b) / 2, abs=1e-6)  # sd / √2
    bob = next(g for g in result["groups"] if g["group"] == "Bob")
    assert bob["brier"] == pytest.approx(0.01) and bob["brier_se"] is None
    assert result["counts"] == {
        "resolved": {"questions": 2, "forecasts": 4},
        "annulled": {"questions": 1, "forecasts": 1},
        "unresolved": {"questions": 0, "forecasts": 0},
    }
    by_q = json.loads(
        cli(
            "scores", "--by", "question", "--json", "--ledger", url, "--out", tmp_path / "out"
        ).stdout
    )
    q1_group = next(g for g in by_q["groups"] if g["group"] == "iran-deal-2013")
    assert q1_group["brier"] == pytest.approx((0.64 + 0.16 + 0.01) / 3)
    assert (tmp_path / "out" / "scores" / "report.html").is_file()
    table = cli("scores", "--ledger", url, "--out", tmp_path / "out").output
    assert "Ann Author" in table and "annulled, left out: 1 question(s), 1 forecast(s)" in table


def test_stated_and_model_views_are_scored_apart_and_weigh_a_pool(url, tmp_path, cli):
    cli("record", report(tmp_path, "r", p=0.2, stated=0.5), "--ledger", url)
    cli("resolve", "iran-deal-2013", "--outcome", "no", "--ledger", url)
    result = json.loads(cli("scores", "--json", "--ledger", url, "--out", tmp_path).stdout)
    kinds = {g["kind"]: g["baseline"] for g in result["groups"]}
    assert kinds == {"model": pytest.approx(100 * math.log2(1.6)), "stated": 0}
    w = ledger_mod.author_weights(url, ["Ann Author", "Nobody"])
    assert w == {"Ann Author": pytest.approx(1.6), "Nobody": None}
    assert ledger_mod.author_weights(tmp_path / "none.sqlite", ["A"]) == {"A": None}
    assert not (tmp_path / "none.sqlite").exists()


def test_scores_page_has_a_calibration_plot_and_escapes_names(url, tmp_path, cli):
    evil = '<script>alert("x")</script> & O\'Brien'
    for i in range(6):
        author = evil if i % 2 else "Ann Author"
        cli(
            "record",
            report(
                tmp_path,
                f"r{i}",
                id=f"v{i}",
                qid=f"q{i}",
                text=f"Q{i}?",
                p=0.1 + 0.15 * i,
                author=author,
            ),
            "--ledger",
            url,
        )
        cli("resolve", f"q{i}", "--outcome", "yes" if i % 3 else "no", "--ledger", url)
    r = cli("scores", "--ledger", url, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    page = (tmp_path / "out" / "scores" / "report.html").read_text()
    assert 'alt="Calibration' in page and page.count('src="data:image/png;base64,') == 2
    assert "<script>" not in page and "&lt;script&gt;alert(&#34;x&#34;)" in page
    assert "O&#39;Brien" in page and "&amp; O" in page
    assert "Not enough resolved questions" not in page


def test_calibration_bins_and_their_binomial_band():
    bins = scores.calibration_bins([0.5] * 10 + [0.9], [1] * 6 + [0] * 4 + [1])
    assert [(b["n"], b["observed"]) for b in bins] == [(10, 0.6), (1, 1.0)]
    assert bins[0]["band"] == [0.2, 0.8]  # binom(10, 0.5): 5% and 95% quantiles 2 and 8


def test_few_resolved_questions_say_so(url, tmp_path, cli):
    cli("record", report(tmp_path, "r"), "--ledger", url)
    cli("resolve", "iran-deal-2013", "--outcome", "yes", "--ledger", url)
    assert cli("scores", "--ledger", url, "--out", tmp_path).exit_code == 0
    page = (tmp_path / "scores" / "report.html").read_text()
    assert "Not enough resolved questions for a calibration plot" in page
    assert page.count("data:image/png") == 1  # each author's forecasts, still


# -- migrations -------------------------------------------------------------------------


def _columns(url) -> dict[str, list[str]]:
    with Ledger(url) as led:
        inspector = sa.inspect(led.engine)
        return {
            t: sorted(c["name"] for c in inspector.get_columns(t))
            for t in sorted(inspector.get_table_names())
        }


def _v1_by_hand(url) -> None:
    """A ledger as schema 1 left it, written in SQL (no resolutions table)."""
    pg = "://" in str(url)
    engine = sa.create_engine(str(url) if pg else f"sqlite:///{url}", poolclass=sa.pool.NullPool)
    ddl = f"""
    CREATE TABLE ledger_schema (version INTEGER NOT NULL);
    INSERT INTO ledger_schema VALUES (1);
    CREATE TABLE questions (id VARCHAR(200) NOT NULL PRIMARY KEY, text TEXT NOT NULL,
      success TEXT, resolves DATE, outcome VARCHAR(8), resolved_on DATE, resolution_source TEXT);
    CREATE TABLE forecasts ({"id SERIAL PRIMARY KEY" if pg else "id INTEGER PRIMARY KEY"},
      question_id VARCHAR(200) NOT NULL REFERENCES questions (id),
      scenario_id VARCHAR(200) NOT NULL, author TEXT, outlet TEXT, source_date DATE,
      recorded_at VARCHAR(32) NOT NULL, p_mean FLOAT NOT NULL, p_hdi_lo FLOAT, p_hdi_hi FLOAT,
      p_mcse FLOAT, scenario_sha256 VARCHAR(64) NOT NULL, data_sha256 VARCHAR(64),
      overrides {"JSONB" if pg else "JSON"} NOT NULL, seed BIGINT NOT NULL, report TEXT,
      version VARCHAR(40));
    CREATE INDEX forecasts_question ON forecasts (question_id);
    CREATE UNIQUE INDEX forecasts_identity ON forecasts
      (scenario_id, scenario_sha256, coalesce(data_sha256, ''), overrides, seed);
    INSERT INTO questions VALUES ('old-q', 'An old question?', NULL, '2012-12-31', '0',
      '2013-01-05', 'a newspaper');
    INSERT INTO forecasts (question_id, scenario_id, author, outlet, source_date, recorded_at,
      p_mean, scenario_sha256, data_sha256, overrides, seed)
      VALUES ('old-q', 'old-view', 'Old Author', 'Old Outlet', '2012-01-01',
      '2012-06-01T00:00:00+00:00', 0.3, '{"c" * 64}', NULL, '[]', 7);
    """
    with engine.begin() as conn:
        for statement in filter(str.strip, ddl.split(";")):
            conn.exec_driver_sql(statement)
    engine.dispose()


def test_migrations_from_empty_and_from_the_first_schema(url, tmp_path, cli):
    with Ledger(url) as led:
        assert (led.migrated_from, ledger_schema.VERSION) == (0, 2)
    fresh = _columns(url)
    assert set(fresh) == {"ledger_schema", "questions", "forecasts", "resolutions"}
    if "://" in url:  # PostgreSQL: the same schema, emptied, for the v1 ledger
        with Ledger(url) as led, led.engine.begin() as c:
            c.exec_driver_sql("DROP TABLE resolutions, forecasts, questions, ledger_schema")
        old = url
    else:
        old = str(tmp_path / "v1.sqlite")
    _v1_by_hand(old)
    with Ledger(old) as led:
        assert led.migrated_from == 1
        (history,) = led.history("old-q")  # schema 2 carried the known outcome over
    assert (history["outcome"], history["source"], history["recorded_at"]) == (
        "no",
        "a newspaper",
        None,
    )
    assert _columns(old) == fresh
    with Ledger(old) as led:  # opening it again migrates nothing
        assert led.migrated_from == 2
    cli("record", report(tmp_path, "r"), "--ledger", old)
    assert cli("resolve", "old-q", "--outcome", "yes", "--force", "--ledger", old).exit_code == 0
    groups = json.loads(cli("scores", "--json", "--ledger", old, "--out", tmp_path).stdout)[
        "groups"
    ]
    assert {g["group"] for g in groups} == {"Old Author"}


def test_a_ledger_from_a_newer_forecast_is_refused(tmp_path, cli):
    path = tmp_path / "new.sqlite"
    with Ledger(path) as led, led.engine.begin() as c:
        c.execute(sa.text("UPDATE ledger_schema SET version = 99"))
    before = sha(path)
    r = cli("scores", "--ledger", path, "--out", tmp_path)
    assert r.exit_code == 2 and "schema 99, made by a newer forecast" in r.output
    assert sha(path) == before


# -- concurrency ------------------------------------------------------------------------


def _record_at_once(url: str, folder: str, i: int, barrier) -> None:
    barrier.wait(timeout=60)
    record_summary(url, summary(id=f"w{i}", overrides=[f"x={i}"], seed=i, stated=None), folder)


def test_eight_processes_recording_at_once_lose_nothing(url, tmp_path):
    # forkserver: each writer a fresh process (not a fork of this one, which may run
    # threads), forked from a server that has imported the ledger once
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, "sqlalchemy"])
    barrier = ctx.Barrier(8)
    procs = [
        ctx.Process(target=_record_at_once, args=(url, str(tmp_path / f"r{i}"), i, barrier))
        for i in range(8)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 8
    got = rows(url)
    assert len(got) == 8 and {r["seed"] for r in got} == set(range(8))


def test_opening_waits_while_another_writer_holds_a_new_file(tmp_path):
    # SQLite's busy handler does not cover switching a file to WAL: while another
    # connection holds the write lock of a file still in rollback mode (as when eight
    # processes open one new ledger), the switch fails at once with "database is
    # locked". Opening must wait for that writer instead, as it waits for any other.
    path = tmp_path / "new.sqlite"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        with Ledger(path) as led, led.transaction() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        release.join()
        holder.close()


# -- bad input --------------------------------------------------------------------------


def test_an_unknown_question_suggests_the_nearest(url, tmp_path, cli):
    cli("record", report(tmp_path, "r"), "--ledger", url)
    r = cli("resolve", "iran-deal-2031", "--outcome", "yes", "--ledger", url)
    assert r.exit_code == 2 and "no question 'iran-deal-2031'" in r.output
    assert "did you mean 'iran-deal-2013'?" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("outcome", ["maybe", "1", "true"])
def test_an_outcome_must_be_yes_no_or_annulled(tmp_path, cli, outcome):
    r = cli("resolve", "q", "--outcome", outcome, "--ledger", tmp_path / "l.sqlite")
    assert r.exit_code == 2 and "the outcome is yes, no or annulled" in r.output
    assert not (tmp_path / "l.sqlite").exists()


def test_a_report_folder_without_summary_json_records_nothing(tmp_path, cli):
    ledger = tmp_path / "l.sqlite"
    cli("record", report(tmp_path, "good"), "--ledger", ledger)
    before = sha(ledger)
    (tmp_path / "empty").mkdir()
    r = cli("record", report(tmp_path, "good2", seed=5), tmp_path / "empty", "--ledger", ledger)
    assert r.exit_code == 2 and "has no summary.json" in r.output and "Traceback" not in r.output
    assert sha(ledger) == before and len(rows(ledger)) == 2
    (tmp_path / "empty" / "summary.json").write_text('{"id": "x"}')
    r = cli("record", tmp_path / "empty", "--ledger", ledger)
    assert r.exit_code == 2 and "question.id: missing" in r.output


@pytest.mark.parametrize("kind", ["text", "sqlite", "folder"])
@pytest.mark.parametrize("command", ["record", "resolve", "scores"])
def test_a_file_that_is_not_a_ledger_is_left_untouched(tmp_path, cli, kind, command):
    path = tmp_path / "notes.sqlite"
    if kind == "text":
        path.write_text("my notes, not a ledger\n")
    elif kind == "sqlite":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE recipes (name TEXT)")
        con.commit()
        con.close()
    else:
        path.mkdir()
    before = sha(path) if path.is_file() else None
    args = {
        "record": ["record", report(tmp_path, "r")],
        "resolve": ["resolve", "q", "--outcome", "yes"],
        "scores": ["scores", "--out", tmp_path / "out"],
    }[command]
    r = cli(*args, "--ledger", path)
    assert r.exit_code == 2, r.output
    assert "is not a forecast ledger" in r.output and "Traceback" not in r.output
    if before:
        assert sha(path) == before
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("notes")) == [
            "notes.sqlite"
        ]  # no -wal or -shm beside it
    assert not (tmp_path / "out").exists()


def test_other_bad_options(tmp_path, cli):
    ledger = tmp_path / "l.sqlite"
    r = cli("scores", "--ledger", ledger)
    assert r.exit_code == 2 and "there is no ledger at" in r.output and not ledger.exists()
    cli("record", report(tmp_path, "r"), "--ledger", ledger)
    r = cli("scores", "--by", "authors", "--ledger", ledger)
    assert r.exit_code == 2 and "did you mean 'author'" in r.output
    r = cli(
        "resolve", "iran-deal-2013", "--outcome", "yes", "--on", "24/11/2013", "--ledger", ledger
    )
    assert r.exit_code == 2 and "--on: expected a date (YYYY-MM-DD)" in r.output
    r = cli("resolve", "--ledger", ledger)
    assert r.exit_code == 2 and "give a QUESTION_ID" in r.output
    r = cli("record", report(tmp_path, "r2"), "--ledger", "mysql://u@h/db")
    assert r.exit_code == 2 and "SQLite or PostgreSQL" in r.output
    r = cli("record", report(tmp_path, "r3"), "--ledger", "postgresql://u:p@127.0.0.1:1/db")
    assert r.exit_code == 2 and "cannot use the ledger postgresql+psycopg://u:***@" in r.output


def test_help_stays_fast_and_lists_the_ledger_commands():
    code = (
        "import sys\nfrom forecast.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('sqlalchemy', 'psycopg', 'matplotlib', 'scipy', 'jinja2')"
        " if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
    for command in ("record", "resolve", "scores"):
        assert command in out.stdout
