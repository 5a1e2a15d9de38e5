"""Fuzzing: mutated scenarios and data never make ``forecast`` crash.

Each example takes a valid scenario, breaks it (drops, renames, retypes or perturbs a
field, pours in unicode, huge numbers, NaN or deep nesting, or garbles the YAML text or
a CSV cell) and runs the command in-process. The contract: exit 0, 1 or 2; no
exception escapes (an escaped exception is what a user would see as a traceback, or
as "internal error" from the console script); and a run that fails leaves no report
folder behind.
"""

from __future__ import annotations

import io
import math
import shutil
from pathlib import Path

import pytest
from conftest import BUNDLED, SCENARIOS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

CSV = SCENARIOS / "data" / "negotiation_rounds.csv"
SMALL = """\
schema: 1
id: fuzz
title: A small scenario
source: {outlet: Test, date: 2013-02-26}
question: {text: Will it work?, success: It works., resolves: 2013-12-31, rounds: 2}
factors:
  leader: {holds: likely, why: a quote}
stages:
  agreement:
    base_rate: {belief: {between: [0.1, 0.4]}, why: a quote}
    effects: {leader: {odds_ratio: raises, why: a quote}}
evidence:
  signal: {likelihood_ratio: {between: [0.5, 2]}, why: a quote}
sampling: {draws: 100, chains: 2, seed: 1}
"""

yaml = YAML(typ="safe", pure=True)

# values that have broken parsers before: wrong types, extremes, NaN, unicode, nesting
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, -1e-320, 10**30, "nan", "inf", "", " ", "very", "likely!"]),
    st.text(max_size=30),
    st.lists(st.integers(-5, 5), max_size=4),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
    st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=2), max_leaves=40),
    st.recursive(
        st.text(max_size=3), lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
)


def paths(node, prefix=()):
    """Every (path to a value) in a nested dict/list document."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def parent_of(doc, path):
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def mutated_yaml(draw, base_text: str) -> str:
    """A scenario text with one to three mutations applied."""
    doc = yaml.load(base_text)
    for _ in range(draw(st.integers(1, 3))):
        candidates = [p for p in paths(doc) if p]
        path = draw(st.sampled_from(candidates))
        parent, key = parent_of(doc, path), path[-1]
        op = draw(st.sampled_from(["drop", "rename", "retype", "perturb", "unicode", "nest"]))
        if op == "drop":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(key)
        elif op == "perturb" and isinstance(parent[key], int | float):
            factor = draw(st.sampled_from([-1, 0, 0.5, 2, 1e6, 1e300, math.nan, math.inf]))
            parent[key] = parent[key] * factor
        elif op == "unicode" and isinstance(parent[key], str):
            parent[key] = parent[key] + draw(st.text(min_size=1, max_size=20))
        elif op == "nest":
            value = parent[key]
            for _ in range(draw(st.integers(1, 60))):
                value = [value] if draw(st.booleans()) else {"x": value}
            parent[key] = value
        else:
            parent[key] = draw(ODD_VALUES)
    buf = io.StringIO()
    yaml.dump(doc, buf)
    text = buf.getvalue()
    if draw(st.integers(0, 9)) == 0:  # now and then garble the text itself
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.text(max_size=5)) + text[i + draw(st.integers(0, 5)) :]
    if draw(st.integers(0, 5)) == 0:  # or tag a value: on a scalar, a sequence or a mapping
        lines = text.splitlines()
        i = draw(st.sampled_from([n for n, line in enumerate(lines) if ": " in line]))
        key, _, value = lines[i].partition(": ")
        lines[i] = f"{key}: {draw(st.sampled_from(TAGS))} {value}"
        text = "\n".join(lines) + "\n"
    return text


# explicit tags, the unsafe ones first: each must be a located error, never a crash
TAGS = [
    "!!python/object/apply:os.system",
    "!!python/name:os.system",
    "!!python/object:builtins.dict",
    "!!binary",
    "!!set",
    "!!omap",
    "!!str",
    "!!float",
    "!custom",
    "!<tag:example.org,2000:x>",
]


def assert_clean_exit(result) -> None:
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A scenario folder with the bundled reference data and article texts beside it."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "data").mkdir()
    shutil.copy(CSV, root / "data" / CSV.name)
    shutil.copytree(SCENARIOS / "sources", root / "sources")
    return root


def test_the_unmutated_bases_pass_check(folder, cli):
    """Mutants start from valid files: else every mutant fails for the same dull reason."""
    for base in BUNDLED:
        shutil.copy(base, folder / base.name)
        result = cli("check", folder / base.name)
        assert result.exit_code == 0 and "warning" not in result.output, result.output


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.mark.parametrize("base", BUNDLED, ids=lambda p: p.stem)
@fuzz(80)
@given(data=st.data())
def test_check_never_crashes(base, data, folder, cli):
    text = data.draw(mutated_yaml(base.read_text()))
    path = folder / "mutant.yaml"
    path.write_text(text, encoding="utf-8")
    assert_clean_exit(cli("check", path))


@fuzz(80)
@given(data=st.data())
def test_check_never_crashes_on_a_garbled_csv(data, folder, cli):
    """One cell of the reference CSV replaced by an odd value."""
    import csv

    rows = list(csv.reader(CSV.read_text().splitlines()))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(rows) - 1))
        j = data.draw(st.integers(0, len(rows[i]) - 1))
        rows[i][j] = data.draw(
            st.one_of(
                st.sampled_from(["", "2", "yes", "-1", "1.0", "2011-13-01", "NaN", "0x1"]),
                st.text(max_size=8),
            )
        )
    sub = folder / "garbled"
    (sub / "data").mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    (sub / "data" / CSV.name).write_text(buf.getvalue(), encoding="utf-8")
    shutil.copytree(SCENARIOS / "sources", sub / "sources", dirs_exist_ok=True)
    shutil.copy(BUNDLED[0], sub / "s.yaml")
    assert_clean_exit(cli("check", sub / "s.yaml"))


@fuzz(40)
@given(data=st.data())
def test_run_never_crashes_and_a_failed_run_writes_nothing(data, tmp_path_factory, cli):
    text = data.draw(mutated_yaml(SMALL))
    root = tmp_path_factory.mktemp("run")
    path = root / "mutant.yaml"
    path.write_text(text, encoding="utf-8")
    out = root / "reports"
    result = cli("run", path, "--out", out)
    assert_clean_exit(result)
    written = [p for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else []
    if result.exit_code == 2:
        assert written == [], result.output
        # no staging folder either
        assert not out.exists() or all(p.name.endswith(".lock") for p in out.iterdir())
    else:
        assert len(written) == 1 and (written[0] / "report.html").is_file()


TEXT_FIELDS = [
    ("title",),
    ("question", "text"),
    ("factors", "leader", "why"),
    ("evidence", "signal", "why"),
]


@fuzz(6)
@given(
    field=st.sampled_from(TEXT_FIELDS),
    text=st.text(min_size=1, max_size=200).filter(lambda t: t.strip()),
)
def test_any_text_in_free_text_fields_runs_and_is_escaped(field, text, tmp_path_factory, cli):
    """Quotes and titles are the author's words: any unicode must run and stay text."""
    doc = yaml.load(SMALL)
    payload = f"<script>alert(1)</script>{text}"
    parent_of(doc, field)[field[-1]] = payload
    root = tmp_path_factory.mktemp("text")
    buf = io.StringIO()
    yaml.dump(doc, buf)
    (root / "s.yaml").write_text(buf.getvalue(), encoding="utf-8")
    result = cli("run", root / "s.yaml", "--out", root / "reports")
    assert result.exit_code == 0, result.output
    html = (root / "reports" / "fuzz" / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


@fuzz(80)
@given(data=st.data())
def test_set_never_crashes(data, folder, cli):
    """`--set PATH=VALUE` with any path of the scenario (or a near miss) and any value."""
    base = BUNDLED[1]
    doc = yaml.load(base.read_text())
    path = ".".join(map(str, data.draw(st.sampled_from([p for p in paths(doc) if p]))))
    if data.draw(st.booleans()):
        path += data.draw(st.sampled_from([".x", "s", ".0", ".belief", ""]))
    buf = io.StringIO()
    yaml.dump(data.draw(ODD_VALUES), buf)
    value = buf.getvalue().strip().removesuffix("...").strip().replace("\n", " ")
    value = data.draw(st.one_of(st.just(value), st.sampled_from(["0", "1", "!!python/none ''"])))
    shutil.copy(base, folder / "set.yaml")
    assert_clean_exit(cli("check", folder / "set.yaml", "--set", f"{path}={value}"))
