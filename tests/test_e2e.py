"""Both bundled scenarios end to end, and the contract of what a run writes."""

import json
import re

import pytest
from conftest import BUNDLED

from forecast.mcse import decimals
from forecast.scenario import assumptions

SUMMARY_KEYS = {
    "schema",
    "id",
    "question",
    "p_success",
    "p_success_prior",
    "stages",
    "assumptions",
    "diagnostics",
    "provenance",
}
INTERVAL_KEYS = {"mean", "mcse", "median", "hdi_90"}
PROVENANCE_KEYS = {"scenario_sha256", "data_sha256", "overrides", "seed", "versions", "created"}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_scenarios_are_faithful_to_their_articles(path):
    """PRODUCT §1: every quote verbatim in the article, every assumption the author's or
    the analyst's, and `check` (data, prior strength, resolution) without a warning."""
    from forecast.api import check
    from forecast.quotes import check_quotes

    loaded = check(path)  # raises if a quote is not in the article
    assert loaded.warnings == []
    assert loaded.spec.source.text is not None and loaded.spec.reference is not None
    quoted = check_quotes(loaded)
    for a in assumptions(loaded.spec):
        assert a.basis in ("author", "analyst"), a.path
        if a.why:
            assert a.at in quoted, a.path  # found in the article, in its sentence
        else:
            assert len(a.note) > 20, a.path  # an analyst's number says why
    af = loaded.spec.question.author_forecast
    assert af is not None and af.why and "question.author_forecast" in quoted


@pytest.mark.slow
def test_bundled_scenarios_fit_cleanly(bundled_run):
    result, _ = bundled_run
    assert result.exit_code == 0, result.output
    summaries = json.loads(result.stdout)
    assert [s["id"] for s in summaries] == ["commentary-2013", "diplomat-2011"]
    for s in summaries:
        d = s["diagnostics"]
        assert d["method"] == "nuts"
        assert d["r_hat_max"] <= 1.01 and d["divergences"] == 0
        assert d["ess_bulk_min"] >= 400
        assert 0 < s["p_success"]["mean"] < 0.5  # both authors think a deal unlikely


@pytest.mark.slow
@pytest.mark.parametrize("name", ["commentary-2013", "diplomat-2011"])
def test_report_contract(bundled_run, name):
    _, out = bundled_run
    folder = out / name
    assert sorted(p.name for p in folder.iterdir()) == [
        "figures",  # the run's figures as PNG, so report.html can be rendered again
        "posterior.nc",
        "report.html",
        "scenario.resolved.yaml",
        "summary.json",
        "summary.md",
    ]
    text = (folder / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    s = json.loads(text)
    assert set(s) >= SUMMARY_KEYS
    assert {"text", "success", "resolves", "rounds"} <= set(s["question"])
    assert set(s["p_success"]) >= INTERVAL_KEYS and set(s["p_success_prior"]) >= INTERVAL_KEYS
    lo, hi = s["p_success"]["hdi_90"]
    assert 0 <= lo <= s["p_success"]["median"] <= hi <= 1
    for stage in s["stages"].values():
        assert {"mean", "mcse", "hdi_90"} <= set(stage)
    for row in s["assumptions"]:
        assert {"path", "prior", "posterior", "why", "note", "basis", "strength"} <= set(row)
        # every assumption is the author's (quoted, and shown in its sentence) or the
        # analyst's (noted); the bundled scenarios leave none without a reason
        assert row["basis"] == ("author" if row["why"] else "analyst"), row["path"]
        assert row["why"] or row["note"], row["path"]
        assert (row["quote"] is not None) == bool(row["why"]), row["path"]
        assert row["posterior"]["mcse"] is not None
    # Monte Carlo error beside every mean, and no more digits than it supports
    p = s["p_success"]
    assert 0 < p["mcse"] < 0.005
    assert p["mean"] == round(p["mean"], decimals(p["mcse"]))
    if "decision" in s:
        d = s["decision"]
        assert d["evpi_mcse"] is not None and set(d["evppi_se"]) == set(d["evppi"])
        for option in d["options"].values():
            assert option["mcse"] is not None and option["p_best_mcse"] is not None
    assert {"r_hat_max", "ess_bulk_min", "divergences", "method"} <= set(s["diagnostics"])
    assert set(s["provenance"]) >= PROVENANCE_KEYS

    import xarray as xr

    tree = xr.open_datatree(folder / "posterior.nc", engine="h5netcdf")
    assert {
        "posterior",
        "prior",
        "observed_data",
        "log_likelihood",
        "log_prior",
        "sample_stats",
    } <= set(tree.children)
    assert {"stage", "factor", "round"} <= set(tree["posterior"].dims) | set(
        tree["observed_data"].dims
    )
    assert (
        json.loads(tree.attrs["provenance"])["scenario_sha256"]
        == s["provenance"]["scenario_sha256"]
    )

    html = (folder / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?https?://""", html), "report must be self-contained"
    assert "MCSE" in html and "Monte Carlo error" in html
    assert "MCSE" in (folder / "summary.md").read_text()
    assert html.count("data:image/png;base64,") >= 4
    for row in s["assumptions"]:
        assert row["path"] in html

    resolved = (folder / "scenario.resolved.yaml").read_text()
    from forecast.scenario import Scenario, parse_yaml

    raw, _ = parse_yaml(resolved, folder / "scenario.resolved.yaml")
    again = Scenario.model_validate(raw)  # still a valid scenario
    kinds = {a.belief.kind for a in assumptions(again)}
    assert kinds <= {"beta", "lognormal", "normal", "constant"}, kinds


@pytest.mark.slow
def test_same_scenario_and_seed_give_the_same_summary(bundled_run, tmp_path):
    """A second run, in a fresh process, reproduces summary.json but for its creation time."""
    import subprocess
    import sys

    _, out = bundled_run
    path = BUNDLED[0]
    cmd = [sys.executable, "-m", "forecast.cli", "run", str(path), "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    first = json.loads((out / path.stem / "summary.json").read_text())
    second = json.loads((tmp_path / path.stem / "summary.json").read_text())
    first["provenance"].pop("created"), second["provenance"].pop("created")
    assert first == second
