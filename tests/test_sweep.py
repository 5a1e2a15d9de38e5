"""forecast sweep (PRODUCT §10): the grid on a local process pool and on a real Dask
cluster started here (two worker processes on 127.0.0.1), a worker killed mid-sweep,
and bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import threading
import time

import pytest
from conftest import BUNDLED

from forecast.report.sweep import COLUMNS

#: a prior-only scenario (no reference data): its variants are forward-sampled exactly
PRIOR_ONLY = """
factors:
  leader: {holds: likely, label: The leader backs a deal, why: a}
stages:
  agreement:
    base_rate: {belief: unlikely, why: b}
    effects:
      leader: {odds_ratio: lowers, why: c}
sampling: {draws: 1000, chains: 2, seed: 11}
"""
LEADER = "factors.supreme_leader_opposes.holds"
BOMB = "factors.bomb_guarantees_survival.holds"
HOLDS = f"{LEADER}=[almost certain, likely, unlikely]"
BOMB_HOLDS = f"{BOMB}=[almost certain, likely]"
SCENARIO = BUNDLED[0]  # commentary-2013: reference data, fitted once for the session


@pytest.fixture(scope="module")
def reports(bundled_run, tmp_path_factory):
    """A reports folder holding the session's fit of commentary-2013 (its base report)."""
    _, out = bundled_run
    reports = tmp_path_factory.mktemp("sweep") / "reports"
    shutil.copytree(out / "commentary-2013", reports / "commentary-2013")
    return reports


@pytest.fixture(scope="module")
def cluster():
    """A real Dask cluster: a scheduler and two worker processes (one thread each)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as c:
        yield c


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.slow
def test_cluster_rows_equal_the_local_pool(reports, cluster, cli):
    out = reports
    local = cli("sweep", SCENARIO, "--vary", HOLDS, "--vary", BOMB_HOLDS, "--workers", 2,
                "--out", out)  # fmt: skip
    assert local.exit_code == 0, local.output
    (folder,) = out.glob("sweep-commentary-2013-*")
    assert {p.name for p in folder.iterdir()} == {"sweep.csv", "sweep.json", "report.html"}
    local_csv = (folder / "sweep.csv").read_text()
    rows = _rows(local_csv)
    assert list(rows[0]) == [LEADER, BOMB, *COLUMNS]
    grid = [
        (a, b)
        for a in ("almost certain", "likely", "unlikely")
        for b in ("almost certain", "likely")
    ]
    assert [(r[LEADER], r[BOMB]) for r in rows] == grid
    assert {r["method"] for r in rows} == {"reweighted"}
    # each motive strongly lowers the odds of a deal: less likely, higher P(success)
    p = {(r[LEADER], r[BOMB]): float(r["p_success_mean"]) for r in rows}
    for b in ("almost certain", "likely"):
        assert p["almost certain", b] < p["likely", b] < p["unlikely", b]
    on_cluster = cli(
        "sweep", SCENARIO, "--vary", HOLDS, "--vary", BOMB_HOLDS,
        "--scheduler", cluster.scheduler_address, "--out", out, "--json",
    )  # fmt: skip
    assert on_cluster.exit_code == 0, on_cluster.output
    # the same seeds (from the scenario seed and each variant's index): the same bytes
    assert (folder / "sweep.csv").read_text() == local_csv
    result = json.loads(on_cluster.stdout)
    assert result["executor"] == {
        "kind": "dask",
        "workers": 2,
        "scheduler": cluster.scheduler_address,
    }
    assert result["retried"] == [] and result["n_variants"] == 6
    page = (folder / "report.html").read_text()
    # a figure per varied belief and the heat map of the two, embedded
    assert page.count("src='data:image/png;base64,") == 3
    assert "how likely it holds: The Supreme Leader needs enmity" in page
    # the scenario's own values (the first row) are `run` itself, fitted for the session:
    # the row reweights the same posterior draws with fresh draws of everything the data do
    # not bear on, so the two estimates are close to independent at worst; within 3
    # combined MCSE but for a 0.3% chance (rounding to the digits each MCSE supports moves
    # each by at most half a unit of its last digit, hence the 0.0005)
    summary = json.loads((out / "commentary-2013" / "summary.json").read_text())["p_success"]
    first = result["rows"][0]
    combined = (first["p_success_mcse"] ** 2 + summary["mcse"] ** 2) ** 0.5
    assert abs(first["p_success_mean"] - summary["mean"]) <= 3 * combined + 0.0005


@pytest.mark.slow
def test_a_row_equals_run_set_within_mcse(write_scenario, tmp_path, cluster, cli):
    """A changed variant of a prior-only scenario against ``run --set`` of it."""
    path = write_scenario(PRIOR_ONLY)
    vary = "factors.leader.holds=[likely, very unlikely]"
    address = cluster.scheduler_address  # its workers are up already: no start-up to wait for
    r = cli("sweep", path, "--vary", vary, "--scheduler", address, "--out", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)["rows"][1]
    assert row["values"] == {"factors.leader.holds": "very unlikely"}
    run = cli("run", path, "--set", "factors.leader.holds=very unlikely", "--out", tmp_path,
              "--json")  # fmt: skip
    assert run.exit_code == 0, run.output
    (summary,) = json.loads(run.stdout)
    fit = summary["p_success"]
    # both are exact forward draws of the same model with different seeds: independent
    # Monte Carlo estimates, so within 3 combined MCSE but for a 0.3% chance (+ rounding)
    assert row["method"] == "forward"
    combined = (row["p_success_mcse"] ** 2 + fit["mcse"] ** 2) ** 0.5
    assert abs(row["p_success_mean"] - fit["mean"]) <= 3 * combined + 0.0005
    # the 90% intervals of the same distribution, from 20,000 and 2,000 draws
    assert row["hdi_lo"] < fit["mean"] < row["hdi_hi"]
    assert abs((row["hdi_hi"] - row["hdi_lo"]) - (fit["hdi_90"][1] - fit["hdi_90"][0])) < 0.05


def _kill_a_busy_worker(address: str, killed: list, stop: threading.Event) -> None:
    """Once the sweep's jobs are out, SIGKILL a worker that is running one of them and
    note its address."""
    from distributed import Client

    with Client(address, set_as_default=False) as watcher:
        pids = watcher.run(os.getpid)
        while not stop.is_set() and not killed:
            for worker, keys in watcher.processing().items():
                if worker in pids and any(str(k).startswith("forecast-job") for k in keys):
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append(worker)
                    break
            time.sleep(0.05)


def _where_jobs_ran(scheduler):
    """A scheduler plugin noting every worker each key was given to. The scheduler goes
    on giving jobs to a killed worker until it learns of the death, so what the worker
    held is known from the scheduler's side only, not from a look before the kill."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class WhereJobsRan(SchedulerPlugin):
        name = "forecast-test-where-jobs-ran"

        def __init__(self) -> None:
            self.on: dict[str, set[str]] = {}

        def transition(self, key, start, finish, *args, **kwargs) -> None:
            ts = scheduler.tasks.get(key)
            if finish == "processing" and ts is not None and ts.processing_on is not None:
                self.on.setdefault(str(key), set()).add(ts.processing_on.address)

    plugin = WhereJobsRan()
    scheduler.add_plugin(plugin)
    return plugin


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_is_survived(reports, cluster, cli):
    many = f"{LEADER}=[0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]"
    # 32 variants: a variant takes ~0.05 s, so the sweep is out long enough to be caught
    bombs = f"{BOMB}=[almost certain, likely, unlikely, 0.5]"
    killed, stop = [], threading.Event()
    where = _where_jobs_ran(cluster.scheduler)  # this LocalCluster's scheduler is in-process
    watcher = threading.Thread(
        target=_kill_a_busy_worker, args=(cluster.scheduler_address, killed, stop)
    )
    watcher.start()
    try:
        r = cli(
            "sweep", SCENARIO, "--vary", many, "--vary", bombs,
            "--scheduler", cluster.scheduler_address,
            "--out", reports, "--json",
        )  # fmt: skip
    finally:
        stop.set()
        watcher.join()
        cluster.scheduler.remove_plugin(name=where.name)
    assert killed, "the watcher killed no worker"
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["n_variants"] == 32
    assert all(row["method"] == "reweighted" for row in result["rows"])
    # the jobs reported as run again: some of those the killed worker was given, no others
    # (not, say, jobs of an earlier sweep on this cluster with the same indices)
    held = {
        int(key.rsplit("-", 1)[1])
        for key, workers in where.on.items()
        if key.startswith("forecast-job") and killed[0] in workers
    }
    retried = {r["index"] for r in result["retried"]}
    assert retried and retried <= held, (retried, held)
    assert "ran again on another worker after a worker died" in r.stderr
    first = result["retried"][0]
    assert f"#{first['index']} ({LEADER}=" in r.stderr
    # a retried job gives the row it would have given anyway (its seed is its index's)
    from forecast import sweep
    from forecast.engine import BaseFit

    plan = sweep.plan(SCENARIO, [many, bombs])
    base = BaseFit.from_report(plan.prep, reports / "commentary-2013")
    again = sweep.variant_job(sweep.Shared(plan.prep, base, False), plan.jobs[first["index"]])
    row = result["rows"][first["index"]]
    assert (again["p_success_mean"], again["hdi_lo"]) == (row["p_success_mean"], row["hdi_lo"])


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        ("factors.leadr.holds=[likely, unlikely]", "did you mean 'factors.leader'"),
        ("factors.leader.holds=likely", "expected a list"),
        ("factors.leader.holds=[likely, 1.5]", "(value given with --set)"),
        ("factors.leader.holds", "PATH=[V1, V2, ...]"),
        ("factors.leader.holds=[likely, likely]", "given twice"),
    ],
)
def test_bad_vary_exits_2_and_writes_nothing(write_scenario, tmp_path, cli, vary, message):
    path = write_scenario(PRIOR_ONLY)
    r = cli("sweep", path, "--vary", vary, "--out", tmp_path / "out")
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_more_than_10000_variants_need_yes(write_scenario, tmp_path, cli):
    path = write_scenario(PRIOR_ONLY)
    holds = "[" + ", ".join(f"{i / 1000:g}" for i in range(1, 102)) + "]"
    rates = "[" + ", ".join(f"{{beta: [{a}, 10]}}" for a in range(1, 101)) + "]"
    r = cli(
        "sweep", path, "--vary", f"factors.leader.holds={holds}",
        "--vary", f"stages.agreement.base_rate.belief={rates}", "--out", tmp_path / "out",
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "10,100 variants" in r.output and "--yes" in r.output
    assert not (tmp_path / "out").exists()


def test_an_unreachable_scheduler_exits_2(write_scenario, tmp_path, cli, monkeypatch):
    import socket

    from forecast import executor

    monkeypatch.setattr(executor, "CONNECT_TIMEOUT", 1)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = write_scenario(PRIOR_ONLY)
    r = cli(
        "sweep", path, "--vary", "factors.leader.holds=[likely, unlikely]",
        "--scheduler", f"tcp://127.0.0.1:{port}",
        "--out", tmp_path / "out",
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "cannot reach the Dask scheduler" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["foo", "http://127.0.0.1:8786", "tcp://127.0.0.1"])
def test_a_scheduler_address_that_is_not_one_exits_2(write_scenario, tmp_path, cli, address):
    path = write_scenario(PRIOR_ONLY)
    r = cli("sweep", path, "--vary", "factors.leader.holds=[likely, unlikely]",
            "--scheduler", address, "--out", tmp_path / "out")  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "is not a scheduler address such as tcp://127.0.0.1:8786" in r.output
    assert not (tmp_path / "out").exists()


def test_seeds_come_from_the_scenario_seed_and_the_index():
    import numpy as np

    from forecast.sweep import variant_seed

    children = np.random.SeedSequence(11).spawn(3)
    assert [variant_seed(11, i) for i in range(3)] == [
        int(c.generate_state(1)[0]) for c in children
    ]
    assert variant_seed(11, 0) != variant_seed(12, 0)


# ---------------------------------------------------------- compare, sensitivity, backtest

#: a small scenario with reference data: fitted in seconds, its what-ifs reweighted
SMALL = PRIOR_ONLY.replace("    effects:", "    column: agreement\n    effects:").replace(
    "draws: 1000", "draws: 1000"
) + ("reference: {data: rounds.csv}\n")
SMALL_CSV = "round_id,start_date,agreement\n" + "".join(
    f"r{i},2010-01-{1 + i:02d},{int(i % 3 == 0)}\n" for i in range(12)
)


def _same_rows(local: list[dict], remote: list[dict], mcse_keys: dict[str, str]) -> None:
    """Rows from the cluster equal those computed here: exactly where a what-if was
    reweighted or sampled forward (the same draws, weights and seed wherever it runs);
    a NUTS refit within 4 combined MCSE (chains in parallel or in lock-step differ)."""
    assert len(local) == len(remote)
    for a, b in zip(local, remote, strict=True):
        if "refit" not in json.dumps(a):
            assert a == b
            continue
        for key, err in mcse_keys.items():
            tol = 4 * ((a[err] or 0) ** 2 + (b[err] or 0) ** 2) ** 0.5
            assert abs(a[key] - b[key]) <= tol, (key, a, b)


@pytest.mark.slow
def test_compare_sensitivity_and_backtest_run_on_the_cluster(cluster, write_scenario, tmp_path):
    """`--scheduler` sends compare's swaps, sensitivity's ends and backtest's refits to the
    cluster through the sweep's executor, with the answers computed here."""
    from forecast import api

    a = write_scenario(SMALL, SMALL_CSV, name="a.yaml")
    b = write_scenario(SMALL.replace("holds: likely", "holds: unlikely"), name="b.yaml")
    address = cluster.scheduler_address
    here, there = tmp_path / "here", tmp_path / "there"
    sens = [
        api.sensitivity(a, out=out, scheduler=s)[0] for out, s in ((here, None), (there, address))
    ]
    _same_rows(
        sens[0]["tornado"],
        sens[1]["tornado"],
        {"p_success_low": "p_success_low_mcse", "p_success_high": "p_success_high_mcse"},
    )
    cmp = [
        api.compare([a, b], out=out, scheduler=s)[0] for out, s in ((here, None), (there, address))
    ]
    _same_rows(cmp[0]["attribution"], cmp[1]["attribution"], {"delta": "delta_mcse"})
    _same_rows(cmp[0]["path"], cmp[1]["path"], {"p_success": "p_success_mcse"})
    bt = [api.backtest(a, out=out, scheduler=s)[0] for out, s in ((here, None), (there, address))]
    _same_rows(bt[0]["rounds"], bt[1]["rounds"], {"p": "p_mcse"})


def test_compare_with_an_unreachable_scheduler_exits_2(cli, write_scenario, tmp_path):
    a = write_scenario(PRIOR_ONLY, name="a.yaml")
    b = write_scenario(PRIOR_ONLY.replace("holds: likely", "holds: unlikely"), name="b.yaml")
    r = cli("compare", a, b, "--scheduler", "tcp://127.0.0.1:9", "--out", tmp_path / "out")
    assert r.exit_code == 2, r.output
    assert "cannot reach the Dask scheduler" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()  # said before anything was fitted
