"""Shared fixtures: paths, a CLI runner, and a small scenario writer."""

from __future__ import annotations

import json
import os
import re
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from forecast.cli import no_c_compilation

no_c_compilation()  # as the console script does, before anything imports PyTensor

# CI replays the same examples every run (a red build is reproducible); locally each run
# explores new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
BUNDLED = [SCENARIOS / "commentary-2013.yaml", SCENARIOS / "diplomat-2011.yaml"]


@pytest.fixture
def cli():
    """Invoke the Typer app in-process; returns click's Result."""
    from typer.testing import CliRunner

    from forecast.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=True)

    return invoke


MINIMAL = """
schema: 1
id: {id}
title: A test scenario
source: {{outlet: Test, date: 2013-02-26}}
question: {{text: Will it work?, success: It works., resolves: 2013-12-31}}
"""


@pytest.fixture
def write_scenario(tmp_path):
    """Write a scenario (and optional CSV) into tmp_path; returns the YAML path."""

    def write(body: str, csv: str | None = None, id: str = "test", name: str = "s.yaml") -> Path:
        head = MINIMAL.format(id=id)
        if re.search(r"^question:", body, re.M):  # the body brings its own question
            head = "\n".join(line for line in head.splitlines() if not line.startswith("question:"))
            head += "\n"
        text = head + textwrap.dedent(body)
        path = tmp_path / name
        path.write_text(text)
        if csv is not None:
            (tmp_path / "rounds.csv").write_text(textwrap.dedent(csv).lstrip())
        return path

    return write


@dataclass(frozen=True)
class Ran:
    """What a command printed, as click's Result holds it (and a file can keep)."""

    exit_code: int
    stdout: str
    output: str


def shared_folder(tmp_path_factory) -> Path:
    """A folder every xdist worker of this test session sees (the session's own when
    the tests run in one process)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def bundled_run(tmp_path_factory):
    """Both bundled scenarios run once for the session, whichever xdist worker asks
    first (the others wait on the lock and read its record): (Ran, reports folder)."""
    from filelock import FileLock
    from typer.testing import CliRunner

    from forecast.cli import app

    shared = shared_folder(tmp_path_factory)
    out, record = shared / "bundled-reports", shared / "bundled-run.json"
    with FileLock(shared / "bundled-run.lock"):
        if not record.exists():
            result = CliRunner().invoke(
                app, ["run", *map(str, BUNDLED), "--out", str(out), "--json"]
            )
            ran = Ran(result.exit_code, result.stdout, result.output)
            record.write_text(json.dumps(asdict(ran)))
    return Ran(**json.loads(record.read_text())), out
