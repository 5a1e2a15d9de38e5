"""Large inputs run within the memory target (1 GiB peak) or stop with a clear message.

Each case runs the real console entry point in a child process, so that its peak
resident memory (``ru_maxrss`` from ``os.wait4``) is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

GIB = 2**30
HEAD = """\
schema: 1
id: big
title: A large scenario
source: {outlet: Test, date: 2013-02-26}
question: {text: Will it work?, success: It works., resolves: 2013-12-31}
"""


# The child reports its own high-water mark (VmHWM) at exit. Not ru_maxrss from wait4:
# Linux carries the parent's peak over a (v)fork + exec, and the parent here is pytest.
CHILD = """
import atexit, re, sys
def report():
    text = open("/proc/self/status").read()
    kib = int(re.search(r"VmHWM:\\s+(\\d+) kB", text).group(1))
    open(hwm, "w").write(str(kib * 1024))
hwm = sys.argv[1]
atexit.register(report)
from forecast.cli import main
sys.argv = ["forecast", *sys.argv[2:]]
main()
"""


def forecast(*args, cwd) -> tuple[int, int, str]:
    """Run ``forecast`` in a child; (exit code, peak RSS bytes, stdout + stderr)."""
    hwm = cwd / "hwm.txt"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(hwm), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, int(hwm.read_text()), done.stdout + done.stderr


@pytest.mark.slow
def test_fifty_factors_run_by_monte_carlo_within_memory(tmp_path):
    factors = "\n".join(f"  f{i}: {{holds: roughly even chance, why: q}}" for i in range(50))
    effects = "\n".join(f"      f{i}: {{odds_ratio: raises, why: q}}" for i in range(50))
    body = (
        HEAD + f"factors:\n{factors}\nstages:\n  agreement:\n"
        "    base_rate: {belief: unlikely, why: q}\n"
        f"    effects:\n{effects}\n"
    )
    (tmp_path / "big.yaml").write_text(body)
    code, rss, output = forecast("run", "big.yaml", "--json", cwd=tmp_path)
    assert code == 0, output
    assert rss < GIB, f"peak RSS {rss / GIB:.2f} GiB"
    summary = json.loads((tmp_path / "reports" / "big" / "summary.json").read_text())
    # 50 'raises' effects on a factor that holds half the time push P(success) up
    assert summary["p_success"]["mean"] > 0.5
    assert len(summary["assumptions"]) == 1 + 50 + 50


def rounds_csv(path, n: int) -> None:
    rng = np.random.default_rng(0)
    tracks = rng.choice(["a", "b", "c", "d"], size=n)
    leader = rng.integers(0, 2, size=n).astype(str)
    leader[rng.random(n) < 0.1] = ""  # some unknown: marginalised
    days = rng.integers(0, 6000, size=n)
    start = (np.datetime64("1990-01-01") + days).astype(str)
    agreement = (rng.random(n) < 0.3).astype(int)
    lines = ["round_id,track,start_date,agreement,leader_backing,source"]
    lines += [f"r{i},{tracks[i]},{start[i]},{agreement[i]},{leader[i]},synthetic" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


SCENARIO = HEAD + textwrap.dedent(
    """\
    factors:
      leader: {holds: likely, column: leader_backing, in_reference: roughly even chance, why: q}
    stages:
      agreement:
        base_rate: {belief: unlikely, why: q}
        effects: {leader: {odds_ratio: raises, why: q}}
        column: agreement
    """
)


@pytest.mark.slow
def test_a_hundred_thousand_rounds_stop_with_a_clear_message(tmp_path):
    rounds_csv(tmp_path / "rounds.csv", 100_000)
    (tmp_path / "big.yaml").write_text(SCENARIO + "reference: {data: rounds.csv, group: track}\n")
    code, rss, output = forecast("run", "big.yaml", cwd=tmp_path)
    assert code == 2, output
    assert "100,000 reference rounds have an outcome; forecast fits at most 10,000" in output
    assert "reference.filter" in output and "Traceback" not in output
    assert rss < GIB, f"peak RSS {rss / GIB:.2f} GiB"
    assert not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_a_hundred_thousand_rows_filtered_to_a_few_are_fine(tmp_path):
    rounds_csv(tmp_path / "rounds.csv", 100_000)
    ref = "reference: {data: rounds.csv, group: track, before: 1990-01-10}\n"
    (tmp_path / "big.yaml").write_text(SCENARIO + ref)
    code, rss, output = forecast("check", "big.yaml", cwd=tmp_path)
    assert code == 0, output
    assert rss < GIB, f"peak RSS {rss / GIB:.2f} GiB"
