"""The command line: fast start, starter files, schema, words, exit codes."""

import json
import subprocess
import sys

from forecast.scenario import load


def test_help_does_not_import_the_heavy_libraries():
    code = (
        "import sys\n"
        "from forecast.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz_base', 'arviz_stats', 'arviz_plots', 'matplotlib', 'jax', 'preliz', 'pandas') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "HEAVY []" in out


def test_console_script_help_runs():
    out = subprocess.run(
        [sys.executable, "-m", "forecast.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    for command in ("run", "check", "schema", "words", "new"):
        assert command in out.stdout


def test_new_writes_a_valid_starter_and_never_overwrites(cli, tmp_path):
    r = cli("new", "my-view", "--out", tmp_path)
    assert r.exit_code == 0, r.output
    path = tmp_path / "my-view.yaml"
    spec = load(path).spec
    assert spec.id == "my-view" and "hardliners_in_charge" in spec.factors
    before = path.read_text()
    r = cli("new", "my-view", "--out", tmp_path)
    assert r.exit_code == 2 and "already exists" in r.output
    assert path.read_text() == before
    assert cli("new", "Bad Name", "--out", tmp_path).exit_code == 2


def test_schema_is_json_schema_of_the_format(cli):
    r = cli("schema")
    doc = json.loads(r.output)
    assert doc["$schema"].startswith("https://json-schema.org/")
    assert {"schema", "id", "factors", "stages", "reference"} <= set(doc["properties"])
    assert "stages" in doc["required"]
    defs = doc["$defs"]
    assert {"why", "note"} <= set(defs["BaseRate"]["properties"])
    assert {"id", "author_forecast"} <= set(defs["Question"]["properties"])
    assert "text" in defs["Source"]["properties"]
    # a word may be widened: {word: unlikely, mass: 0.5}
    forms = defs["Factor"]["properties"]["holds"]["anyOf"]
    assert any(set(f.get("properties", {})) == {"word", "mass"} for f in forms)
    # in_reference: a bare belief, or {belief, why, note}
    in_ref = defs["Factor"]["properties"]["in_reference"]["anyOf"]
    assert any("$ref" in f or f.get("properties", {}).get("belief") for f in in_ref)


def test_words_lists_both_scales(cli):
    r = cli("words", "--json")
    scales = json.loads(r.output)
    assert scales["probability"]["unlikely"]["range"] == [0.2, 0.45]
    assert "strongly lowers" in scales["odds_ratio"]
    text = cli("words").output
    assert "almost certain" in text and "Beta(" in text and "LogNormal(" in text


def test_check_warns_where_a_quote_is_missing(cli, write_scenario):
    path = write_scenario("stages:\n  agreement:\n    base_rate: {belief: unlikely}\n")
    r = cli("check", path)
    assert r.exit_code == 0
    assert "neither a `why:`" in r.output and "stages.agreement.base_rate" in r.output
    # a note (the analyst's reason) answers the warning as a quote does
    path.write_text(path.read_text().replace("{belief: unlikely}", "{belief: unlikely, note: x}"))
    assert "neither a `why:`" not in cli("check", path).output


def test_check_several_files_exit_code_is_the_worst(cli, write_scenario, tmp_path):
    good = write_scenario("stages:\n  agreement:\n    base_rate: {belief: unlikely, why: x}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: 1\n")
    r = cli("check", good, bad)
    assert r.exit_code == 2
    assert f"{good}: ok" in r.output and "missing required key" in r.output


def test_run_validates_every_file_before_fitting_any(cli, write_scenario, tmp_path):
    good = write_scenario("stages:\n  agreement:\n    base_rate: {belief: unlikely, why: x}\n")
    out = tmp_path / "reports"
    r = cli("run", tmp_path / "missing.yaml", good, "--out", out, "--json")
    assert r.exit_code == 2
    assert "no such file" in r.output
    assert (out / "test" / "summary.json").is_file()


def test_bad_option_is_a_usage_error(cli, write_scenario):
    good = write_scenario("stages:\n  agreement:\n    base_rate: {belief: unlikely}\n")
    r = cli("run", good, "--draws", "10")
    assert r.exit_code == 2


def test_the_terminal_output_fits_in_80_columns_and_logs_progress(cli, write_scenario, tmp_path):
    """Captured (not a terminal): tables fit 80 columns, the report path is on its own
    line, and each phase is a line of progress on stderr (a spinner needs a terminal)."""
    from rich.cells import cell_len

    path = write_scenario(
        "factors:\n  leader: {holds: likely, note: x}\nstages:\n  agreement:\n"
        "    base_rate: {belief: unlikely, note: y}\n"
        "    effects: {leader: {odds_ratio: lowers, note: z}}\n"
    )
    result = cli("run", path, "--out", tmp_path / "reports")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    report = tmp_path / "reports" / "test" / "report.html"
    assert f"test report: {report}" in lines  # whole, to copy: the one line that may be long
    too_wide = [line for line in lines if cell_len(line) > 80 and str(report) not in line]
    assert not too_wide, too_wide
    assert "drawing from the prior" in result.stderr  # a phase, logged as a line
    assert "report:" not in result.stderr and "P(success)" in result.stdout


def test_run_record_adds_the_forecast_and_the_authors_own_to_the_ledger(
    cli, write_scenario, tmp_path
):
    """`run --record` records as it writes (PRODUCT §7): the model's forecast and, where the
    scenario states one, the author's own bottom line; running again adds nothing."""
    from forecast.ledger import Ledger

    path = write_scenario(
        "question:\n  id: deal\n  text: Will it work?\n  success: It works.\n"
        "  resolves: 2013-12-31\n  author_forecast: {belief: unlikely, note: the op-ed says so}\n"
        "stages:\n  agreement: {base_rate: {belief: 0.3, note: fixed}}\n"
    )
    ledger = tmp_path / "ledger.sqlite"
    args = ("run", path, "--out", tmp_path / "reports", "--record", "--ledger", ledger)
    first = cli(*args)
    assert first.exit_code == 0, first.output
    assert "recorded in the ledger" in first.stderr
    with Ledger(str(ledger), create=False) as led:
        rows = led.forecasts()
    assert len(rows) == 2 and {r["question_id"] for r in rows} == {"deal"}
    # the model's forecast, 0.3 exactly, and the author's "unlikely": Beta(12.0, 24.8)
    assert sorted(round(r["p_mean"], 3) for r in rows) == [0.3, 0.326]
    again = cli(*args)
    assert again.exit_code == 0 and "nothing new" in again.stderr
    with Ledger(str(ledger), create=False) as led:
        assert len(led.forecasts()) == 2  # idempotent
