"""Reports are all or nothing; diagnostics decide the exit code."""

import json
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
    before = {p.name: p.read_bytes() for p in first.folder.iterdir()}

    import forecast.report as report

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    # fail after summary.json and summary.md are written, before report.html
    monkeypatch.setattr(report, "resolved_yaml", broken)
    with pytest.raises(RuntimeError):
        api.run(api.prepare(write_scenario(PRIOR_ONLY), seed=5), out=out)
    assert {p.name: p.read_bytes() for p in first.folder.iterdir()} == before
    # no staging folder is left behind either
    assert [p.name for p in out.iterdir() if not p.name.endswith(".lock")] == ["test"]


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
        ["posterior.nc", "report.html", "scenario.resolved.yaml", "summary.json", "summary.md"]
    )
    summary = json.loads((folder / "summary.json").read_text())
    # the folder's files agree with each other: summary.json matches posterior.nc
    tree = xr.open_datatree(folder / "posterior.nc", engine="h5netcdf")
    p = float(tree["prior"]["p_success"].mean())
    assert summary["p_success_prior"]["mean"] == pytest.approx(p, abs=1e-3)
    assert [q.name for q in out.iterdir() if not q.name.endswith(".lock")] == ["test"]
