"""Each reference group's pull on the answer (forecast/influence.py) against a refit.

The report explains what history did from the fit itself: for each group, the posterior
without its rounds by PSIS. That must agree with fitting the scenario without them, which
is what the report's own refit hint (``--set reference.exclude=...``) does.
"""

from __future__ import annotations

import json

import pytest

CSV = "round_id,track,start_date,agreement\n" + "".join(
    f"{t}{i},{t},2010-01-{1 + i:02d},{int(i < k)}\n"
    for t, n, k in (("alpha", 12, 3), ("beta", 5, 4), ("gamma", 4, 0), ("delta", 8, 3))
    for i in range(n)
)

BODY = """
stages:
  agreement:
    base_rate: {belief: {between: [0.1, 0.7]}, note: test}
    column: agreement
reference: {data: rounds.csv, group: track, case_group: alpha}
"""


@pytest.mark.slow
def test_group_pull_agrees_with_a_refit_without_the_group(cli, write_scenario, tmp_path):
    path = write_scenario(BODY, CSV)
    out = tmp_path / "reports"
    result = cli("run", path, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "test" / "summary.json").read_text())
    groups = {g["group"]: g for g in summary["reference"]["groups"]}
    assert set(groups) == {"alpha", "beta", "gamma", "delta"}
    assert groups["beta"]["outcomes"] == {"agreement": [4, 5]}
    # beta's 7 of 10 pull the forecast for alpha up; gamma's 0 of 3 pull it down a little
    assert groups["beta"]["trusted"] and groups["beta"]["p_success"]["delta"] > 0
    sentence = (out / "test" / "summary.md").read_text()
    assert (
        "## Where the update comes from" in sentence
        and "reference rounds move P(success)" in sentence
    )

    g = groups["beta"]
    hint = g.get("refit") or '--set "reference.exclude={track: beta}"'
    assert g.get("refit") is None or g["refit"] == hint  # trusted rows need no refit
    setting = hint.removeprefix('--set "').removesuffix('"')
    refit_out = tmp_path / "refit"
    result = cli("run", path, "--set", setting, "--out", refit_out)
    assert result.exit_code == 0, result.output
    (folder,) = refit_out.glob("test+*")
    refit = json.loads((folder / "summary.json").read_text())
    assert refit["reference"]["rounds"] == 24
    # PSIS leave-group-out and the refit each carry Monte Carlo error; 3 combined MCSE
    # (both are reported) leaves a false alarm under 0.3% if both are unbiased
    psis, exact = g["p_success"], refit["p_success"]
    tolerance = 3 * (psis["mcse"] ** 2 + exact["mcse"] ** 2) ** 0.5
    assert abs(psis["without"] - exact["mean"]) < tolerance, (psis, exact["mean"], tolerance)


def test_the_refit_hint_names_the_group_and_keeps_existing_exclusions():
    from types import SimpleNamespace

    from forecast.influence import refit_hint

    def prep(exclude, case=None):
        ref = SimpleNamespace(exclude=exclude, group="track", case_group=case)
        return SimpleNamespace(loaded=SimpleNamespace(spec=SimpleNamespace(reference=ref)))

    assert refit_hint(prep({}), "nk") == '--set "reference.exclude={track: nk}"'
    assert (
        refit_hint(prep({"interim": 1, "track": "libya"}), "nk")
        == '--set "reference.exclude={interim: 1, track: [libya, nk]}"'
    )
    # the case's own group: without it, the group is new to the data, as it must say
    assert refit_hint(prep({}, case="iran"), "iran") == (
        '--set "reference.exclude={track: iran}" --set reference.case_group_is_new=true'
    )


def test_the_refit_hint_for_the_case_group_runs(cli, write_scenario, tmp_path):
    """The hint for the case's own group is a command that works (it was refused before)."""
    from forecast import api
    from forecast.influence import refit_hint

    path = write_scenario(BODY, CSV)
    hint = refit_hint(api.prepare(path), "alpha")
    sets = [part.strip().strip('"') for part in hint.split("--set")[1:]]
    r = cli("check", path, *[x for s in sets for x in ("--set", s)])
    assert r.exit_code == 0, r.output
