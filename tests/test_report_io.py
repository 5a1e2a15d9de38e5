"""Reports are all or nothing; diagnostics decide the exit code."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from forecast import api
from forecast.fit import diagnostics
from forecast.report.atomic import atomic_folder

PRIOR_ONLY = "stages:\n  agreement:\n    base_rate: {belief: unlikely, why: x}\n"


def test_failed_write_leaves_the_previous_report_intact(write_scenario, tmp_path, monkeypatch):
    prep = api.prepare(write_scenario(PRIOR_ONLY))
    out = tmp_path / "reports"
    first = api.run(prep, out=out)
    before = _files(first.folder)

    import forecast.report as report

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    # fail after summary.json and summary.md are written, before report.html
    monkeypatch.setattr(report, "resolved_yaml", broken)
    with pytest.raises(RuntimeError):
        api.run(api.prepare(write_scenario(PRIOR_ONLY), seed=5), out=out)
    assert _files(first.folder) == before
    # no staging folder is left behind either
    assert [p.name for p in out.iterdir() if not p.name.endswith(".lock")] == ["test"]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_atomic_folder_replaces_the_whole_folder(tmp_path):
    final = tmp_path / "r"
    with atomic_folder(final) as tmp:
        (tmp / "a.txt").write_text("1")
        (tmp / "old.txt").write_text("x")
    with atomic_folder(final) as tmp:
        (tmp / "a.txt").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["a.txt"]
    assert (final / "a.txt").read_text() == "2"


def test_prior_run_has_null_mcmc_diagnostics(write_scenario, tmp_path):
    result = api.run(api.prepare(write_scenario(PRIOR_ONLY)), out=tmp_path)
    s = json.loads((result.folder / "summary.json").read_text())
    assert s["diagnostics"] == {
        "r_hat_max": None,
        "ess_bulk_min": None,
        "divergences": None,
        "method": "prior",
        "passed": True,
    }
    assert result.exit_code == 0
    tree = xr.open_datatree(result.folder / "posterior.nc", engine="h5netcdf")
    assert set(tree.children) == {"prior"}


def fake_tree(shift: float, divergent: int = 0):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 500)) + shift * np.arange(4)[:, None]
    div = np.zeros((4, 500), dtype=bool)
    div[0, :divergent] = True
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"theta": (("chain", "draw"), x)}),
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), div)}),
        }
    )


def test_diagnostics_pass_and_fail():
    good = diagnostics(fake_tree(0.0), ["theta"], chains=4)
    assert good["passed"] and good["r_hat_max"] < 1.01 and good["divergences"] == 0
    stuck = diagnostics(fake_tree(1.0), ["theta"], chains=4)  # chains far apart
    assert not stuck["passed"] and stuck["r_hat_max"] > 1.01
    divergent = diagnostics(fake_tree(0.0, divergent=3), ["theta"], chains=4)
    assert not divergent["passed"] and divergent["divergences"] == 3


def test_changed_settings_go_to_their_own_folder(write_scenario):
    path = write_scenario(PRIOR_ONLY + "sampling: {draws: 500, chains: 2, seed: 4}\n")
    assert api.prepare(path).folder_name == "test"
    # an option equal to the file's own value is no change
    assert api.prepare(path, draws=500, seed=4).folder_name == "test"
    changed = api.prepare(path, seed=5).folder_name
    assert changed.startswith("test+") and changed != api.prepare(path, seed=6).folder_name


def test_failing_diagnostics_exit_1_with_the_report_written(
    cli, write_scenario, tmp_path, monkeypatch
):
    import forecast.fit as fit_module

    real = fit_module.run_fit

    def failing(*args, **kwargs):
        result = real(*args, **kwargs)
        result.diagnostics = {**result.diagnostics, "passed": False}
        return result

    monkeypatch.setattr(fit_module, "run_fit", failing)
    out = tmp_path / "reports"
    r = cli("run", write_scenario(PRIOR_ONLY), "--out", out)
    assert r.exit_code == 1
    assert "diagnostics fail" in r.output
    assert (out / "test" / "report.html").is_file()


def _writer(final: str, name: str, start, files: int) -> None:
    """Write ``files`` files naming this writer, slowly, into one atomic folder."""
    import time

    start.wait()
    with atomic_folder(Path(final)) as tmp:
        for i in range(files):
            (tmp / f"f{i}.txt").write_text(name)
            time.sleep(0.002)


def test_two_concurrent_writers_never_mix(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    final = tmp_path / "report"
    for attempt in range(5):
        start = ctx.Event()
        procs = [
            ctx.Process(target=_writer, args=(str(final), f"w{attempt}-{w}", start, 30))
            for w in range(2)
        ]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        contents = {p.read_text() for p in final.iterdir()}
        assert len(contents) == 1, contents  # every file from the same writer
        assert sorted(p.name for p in final.iterdir()) == sorted(f"f{i}.txt" for i in range(30))
    # no staging or set-aside folders are left
    assert sorted(p.name for p in tmp_path.iterdir()) == [".report.lock", "report"]


def test_two_forecast_runs_into_one_folder_at_once(write_scenario, tmp_path):
    """Two real processes, same scenario, same report folder: one whole report wins."""
    import subprocess
    import sys

    path = write_scenario(PRIOR_ONLY)
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "forecast.cli", "run", str(path), "--out", str(out), "--json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "ab"]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    folder = out / "test"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "figures",
            "posterior.nc",
            "report.html",
            "scenario.resolved.yaml",
            "summary.json",
            "summary.md",
        ]
    )
    summary = json.loads((folder / "summary.json").read_text())
    # the folder's files agree with each other: summary.json matches posterior.nc
    tree = xr.open_datatree(folder / "posterior.nc", engine="h5netcdf")
    p = float(tree["prior"]["p_success"].mean())
    assert summary["p_success_prior"]["mean"] == pytest.approx(p, abs=1e-3)
    assert [q.name for q in out.iterdir() if not q.name.endswith(".lock")] == ["test"]


# a label and a reason that are HTML, in a scenario with no source text (so the reason is
# shown as written, not found in the article): the page must show them as text
HOSTILE = """
stages:
  agreement:
    label: "<b>bold</b> & 'quoted'"
    base_rate: {belief: unlikely, why: "<script>alert('x')</script> & \\"so\\""}
"""
TWO_STAGE_CSV = """
round_id,start_date,agreement,implemented
r1,2000-01-01,1,1
r2,2000-03-01,0,
r3,2000-05-01,1,0
r4,2000-07-01,1,
r5,2000-09-01,0,
r6,2001-03-01,1,1
"""
TWO_STAGE = """
stages:
  agreement:
    base_rate: {belief: {between: [0.2, 0.8]}, why: x}
    column: agreement
  implementation:
    base_rate: {belief: {between: [0.3, 0.9]}, why: x}
    column: implemented
    known_after_days: 365
reference: {data: rounds.csv, before: 2030-01-01}
"""
SECTIONS = [
    "The question",
    "P(success)",
    "Stages",
    "Assumptions",
    "Model checks and diagnostics",
    "Sensitivity",
    "Backtest",
    "Provenance",
]


def _prior_backtest(path) -> dict:
    """A backtest.json of forecasts from prior draws alone (no fit: fast)."""
    from forecast import backtest as bt
    from forecast.model import build_model

    prep = api.prepare(path)
    model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
    forecasts = bt.forecasts(model, prep.data, prep.loaded.spec, 1, draws=2000)
    return {"schema": 1, "id": prep.id, **forecasts}


def test_the_page_is_rendered_from_the_folder_each_section_once_in_order(write_scenario, tmp_path):
    """sensitivity and backtest, in either order and again, re-render the whole page."""
    import re

    from forecast.report.backtest import write_backtest
    from forecast.report.html import render_page
    from forecast.report.sensitivity import write_sensitivity

    backtest = _prior_backtest(write_scenario(TWO_STAGE, csv=TWO_STAGE_CSV, name="b.yaml"))
    path = write_scenario(HOSTILE)
    out = tmp_path / "reports"
    folder = api.run(api.prepare(path), out=out).folder
    index = json.loads((folder / "figures" / "index.json").read_text())
    assert index["seconds"] > 0 and (folder / "figures" / "p_success.png").is_file()
    run_page = (folder / "report.html").read_text()
    assert render_page(folder) == run_page  # a pure function of the folder's records
    api.sensitivity(path, out=out)
    sensitivity = json.loads((folder / "sensitivity.json").read_text())
    pages = []
    for steps in ("sb", "bs", "ss", "bb"):
        for step in steps:
            if step == "s":
                write_sensitivity(sensitivity, folder)
            else:
                write_backtest(backtest, folder)
        page = (folder / "report.html").read_text()
        assert re.findall(r"<h2>(.*?)</h2>", page) == SECTIONS, steps
        for marker in ("<!-- sensitivity -->", "<!-- /sensitivity -->", "<!-- backtest -->"):
            assert page.count(marker) == 1, (steps, marker)
        assert page == render_page(folder)
        pages.append(page)
    assert len(set(pages)) == 1  # whatever came last, the same page
    # the run's own part of the page is untouched by the sections added after it, but
    # for the first screen, which names the assumptions that move the answer most
    head = pages[0][pages[0].index("<h2>") : pages[0].index("<!-- sensitivity -->")]
    assert run_page[run_page.index("<h2>") :].startswith(head)
    assert "run <code>forecast sensitivity" in run_page.lower()
    first = pages[0][: pages[0].index("<h2>")]
    assert "forecast sensitivity" not in first and first.count("<li>") == min(
        3, sum(r["swing"] is not None for r in sensitivity["tornado"])
    )
    # autoescaped: the label and the reason appear as text, never as markup
    assert "<script" not in pages[0] and "<b>bold" not in pages[0]
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;so&quot;" in pages[0]
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;quoted&#x27;" in pages[0]


AUTHORED = """
question:
  text: Will it work?
  success: It works.
  resolves: 2013-12-31
  author_forecast: {belief: almost no chance, why: x}
factors:
  leader: {holds: likely, why: q, label: The leader is strong}
stages:
  agreement:
    label: They agree
    base_rate: {belief: unlikely, why: q}
    effects: {leader: {odds_ratio: raises, why: q}}
"""


def _authored(write_scenario) -> Path:
    """A prior-only scenario with an author, a link and the author's own bottom line."""
    path = write_scenario(AUTHORED)
    source = (
        "source: {outlet: Test Weekly, date: 2013-02-26, author: Jane Doe,"
        " url: 'https://example.org/a'}"
    )
    text = re.sub(r"^source:.*$", source, path.read_text(), count=1, flags=re.M)
    path.write_text(text)
    return path


def test_the_first_screen_has_the_question_the_author_the_answer_and_their_view(
    write_scenario, tmp_path
):
    from forecast.report.tables import pct

    folder = api.run(api.prepare(_authored(write_scenario)), out=tmp_path).folder
    summary = json.loads((folder / "summary.json").read_text())
    html = (folder / "report.html").read_text()
    first = html[: html.index("<h2>")]
    p, e = summary["p_success"], summary["p_success"]["mcse"]
    assert "Will it work?" in first
    assert "By Jane Doe" in first and "<a href='https://example.org/a'>Test Weekly</a>" in first
    assert f"<div class='big-number'>{pct(p['mean'], e)}</div>" in first
    lo, hi = p["hdi_90"]
    assert f"90% interval {pct(lo, e)}–{pct(hi, e)}" in first
    assert "The author&#x27;s own bottom line" in first or "The author's own bottom line" in first
    assert "almost no chance" in first
    # no sensitivity run yet: the page says how to get the assumptions that move it
    assert "forecast sensitivity" in first
    # the author's view is not repeated further down
    assert html.count("own bottom line") == 1


def test_no_figure_or_page_speaks_in_variable_names(write_scenario, tmp_path, monkeypatch):
    """Figure titles, axis labels and alt texts use the user's labels, never p_success."""
    import forecast.report.figures as figures

    texts: list[str] = []
    png = figures._png

    def spy(fig):
        if fig._suptitle is not None:
            texts.append(fig._suptitle.get_text())
        for ax in fig.axes:
            texts.extend([ax.get_title(), ax.get_xlabel(), ax.get_ylabel()])
            texts.extend(t.get_text() for t in ax.texts + ax.get_yticklabels())
        return png(fig)

    monkeypatch.setattr(figures, "_png", spy)
    folder = api.run(api.prepare(_authored(write_scenario)), out=tmp_path).folder
    assert texts
    for bad in ("p_success", "p_stage", "stages.", "factors."):
        assert not [t for t in texts if bad in t], (bad, texts)
    assert "Stage: They agree" in texts and "The leader is strong" in texts
    html = re.sub(r"data:image/png;base64,[^\"']*", "", (folder / "report.html").read_text())
    assert "p_success" not in html and "p_stage" not in html
    index = json.loads((folder / "figures" / "index.json").read_text())
    alts = re.findall(r"<img [^>]*alt=[\"']([^\"']*)", html)
    assert len(alts) == len(index["figures"])
    assert not [a for a in alts if "p_success" in a or "p_stage" in a]
