"""Time a 100-variant ``forecast sweep`` on 1 and 2 local workers and on a two-worker
Dask cluster, as whole ``forecast sweep`` processes, and print the ratios.

    uv run python benchmarks/sweep.py             # one run of each (~5 min on 2 cores)
    uv run python benchmarks/sweep.py --repeat 3  # medians of three

The grid is 10 × 10 values of the two factors of ``scenarios/commentary-2013.yaml``
(how likely each of Khamenei's motives holds), each variant reweighted from the
scenario's fit, which is made once before anything is timed. Each sweep is a fresh
process timed from start to exit; the progress lines it writes to stderr (one per tenth
of the grid) are timestamped as they arrive, which splits the time into the fixed part
(start-up: imports, the base fit loaded and shipped, worker processes started and their
first variant) and the part that grows with the grid (the rest). The cluster is a
``distributed.LocalCluster`` on 127.0.0.1 (two worker processes, one thread each),
timed twice: first with freshly started workers, then again with the same workers warm
(a standing cluster). All three sweeps must write the same sweep.csv.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "commentary-2013.yaml"
VALUES = "[" + ", ".join(f"{v / 100:g}" for v in range(5, 100, 10)) + "]"
VARY = [
    f"factors.supreme_leader_opposes.holds={VALUES}",
    f"factors.bomb_guarantees_survival.holds={VALUES}",
]


def forecast(*args: str) -> list[str]:
    """The console script (``python -m forecast.cli`` would register no sub-module's command)."""
    return [str(Path(sys.executable).parent / "forecast"), *args]


def timed_sweep(out: Path, extra: list[str]) -> dict:
    """One ``forecast sweep`` process: wall time, when the first tenth and the last row
    landed, and the CSV it wrote."""
    varies = [arg for v in VARY for arg in ("--vary", v)]
    cmd = forecast("sweep", str(SCENARIO), *varies, *extra)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*cmd, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    marks = {}
    for line in proc.stderr:
        if line.startswith("variants "):
            done = int(line.split()[1].split("/")[0])
            marks.setdefault(done, time.perf_counter() - start)
    stdout = proc.stdout.read()
    code = proc.wait()
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"sweep failed ({code}): {' '.join(cmd)}\n{stdout}")
    (folder,) = out.glob("sweep-*")
    first, last = min(marks.items()), max(marks.items())
    return {
        "seconds": seconds,
        "to_first_tenth": first[1],
        "rows_after_first_tenth": (last[1] - first[1]) / max(last[0] - first[0], 1),
        "after_last_row": seconds - last[1],
        "csv": (folder / "sweep.csv").read_text(),
    }


def base_report(out: Path) -> None:
    """The scenario's fit, made once and copied into each timed sweep's folder."""
    bundled = ROOT / "reports" / "commentary-2013"
    if (bundled / "figures" / "index.json").is_file():
        shutil.copytree(bundled, out / "commentary-2013")
        return
    subprocess.run(forecast("run", str(SCENARIO), "--out", str(out)), check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("PYTENSOR_FLAGS", "cxx=")  # as the console script sets it
    from distributed import LocalCluster

    work = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    base = work / "base"
    base_report(base)
    results: dict[str, list[dict]] = {}

    def run(name: str, extra: list[str], times: int = args.repeat) -> None:
        for _ in range(times):
            out = work / f"{name.replace(' ', '_')}-{len(results.get(name, []))}"
            shutil.copytree(base, out)
            results.setdefault(name, []).append(timed_sweep(out, extra))
            print(f"{name}: {results[name][-1]['seconds']:.1f} s", flush=True)

    run("local, 1 worker", ["--workers", "1"])
    run("local, 2 workers", ["--workers", "2"])
    for _ in range(args.repeat):
        with LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster:
            run("cluster, 2 fresh workers", ["--scheduler", cluster.scheduler_address], 1)
            run("cluster, 2 warm workers", ["--scheduler", cluster.scheduler_address], 1)
    table(results)
    shutil.rmtree(work, ignore_errors=True)


def table(results: dict[str, list[dict]]) -> None:
    csvs = {r["csv"] for rs in results.values() for r in rs}
    one = statistics.median(r["seconds"] for r in results["local, 1 worker"])
    print()
    print(
        f"`{platform.node()}`: {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"100 variants of commentary-2013; same sweep.csv from every run: {len(csvs) == 1}"
    )
    print()
    print("| sweep | median s | n | vs 1 local worker | start-up to first 10 rows s "
          "| s per row after | after the last row s |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, rs in results.items():
        med = statistics.median(r["seconds"] for r in rs)
        first = statistics.median(r["to_first_tenth"] for r in rs)
        per = statistics.median(r["rows_after_first_tenth"] for r in rs)
        tail = statistics.median(r["after_last_row"] for r in rs)
        print(
            f"| {name} | {med:.1f} | {len(rs)} | {one / med:.2f}× | {first:.1f} | {per:.3f} "
            f"| {tail:.1f} |"
        )


if __name__ == "__main__":
    main()
