"""Every message the loader can give: exit 2, file, line and field named, nothing written.

Each file in tests/scenarios/invalid/ states in its header comments what the message
must say (``# expect:``), which field (``# field:``), which line (``# line:``) and, for
errors in the data, which file (``# file:``).
"""

import re
from pathlib import Path

import pytest

INVALID = Path(__file__).parent / "scenarios" / "invalid"
CASES = sorted(INVALID.glob("*.yaml"))


def header(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"# (expect|field|line|file): (.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def test_there_is_a_case_for_each_documented_error():
    names = {p.stem for p in CASES}
    for required in (
        "unknown_key",
        "probability_out_of_range",
        "nan",
        "reversed_range",
        "unknown_word",
        "unknown_factor_in_effects",
        "missing_data_file",
        "missing_column",
        "yaml_syntax",
        "wrong_schema",
    ):
        assert required in names


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_invalid_scenario_exits_2_with_a_located_message(path, cli, tmp_path):
    want = header(path)
    assert "expect" in want, f"{path.name} has no '# expect:' header"
    out = tmp_path / "reports"
    for command in (["check", path], ["run", path, "--out", out]):
        result = cli(*command)
        text = result.output
        assert result.exit_code == 2, text
        assert "Traceback" not in text
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        )
        assert want["expect"] in text
        where = str(path.parent / want["file"]) if "file" in want else str(path)
        location = where + (f":{want['line']}" if "line" in want else "")
        assert location in text, f"expected location {location!r} in {text!r}"
        if "field" in want:
            assert f"{want['field']}: " in text
    # nothing written: no report folder, not even an empty one
    assert not out.exists() or not any(out.iterdir())
