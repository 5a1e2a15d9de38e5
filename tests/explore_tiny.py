"""The tiny scenario the explore tests share, fitted once per test session.

Both tests/test_explore.py (the API) and tests/test_explore_browser.py (the page) call
:func:`tiny_session`; the fit (NUTS, 300 draws × 2 chains) and its report are made once.
"""

from __future__ import annotations

import textwrap
from functools import cache

SCENARIO = """
schema: 1
id: tiny
title: A tiny scenario to explore
source: {outlet: Test, date: 2013-02-26}
question: {text: Will it work?, success: It works., resolves: 2013-12-31, rounds: 2}
factors:
  leader_opposes:
    holds: likely
    why: the leader opposes it
stages:
  agreement:
    base_rate: {belief: {between: [0.1, 0.6]}, note: the analyst's wide range}
    effects:
      leader_opposes: {odds_ratio: lowers, why: it lowers the odds}
    column: agreement
decision:
  question: Talk or not?
  value_scale: 0 = nothing changes, 100 = it works
  value_of_success: 100
  options:
    talk: {label: Talk, p_success: model}
    stop: {label: Stop, p_success: 0}
reference: {data: rounds.csv}
sampling: {draws: 300, chains: 2, seed: 5}
"""
CSV = "round_id,start_date,agreement\n" + "\n".join(
    f"r{i},2010-01-{i + 1:02d},{int(i % 3 == 0)}" for i in range(24)
)
HOLDS = "factors.leader_opposes.holds"


def tiny_session(tmp_path_factory):
    """(scenario path, Session): the tiny scenario, its report fitted once per session."""
    return _fitted(tmp_path_factory.getbasetemp())


@cache
def _fitted(base):
    """Fitted without the figures and model checks of a full report (they cost most of
    a run, and explore reads only summary.json and posterior.nc); opened as a report
    folder, the way ``forecast explore REPORT`` opens one."""
    import json

    from forecast import api
    from forecast.explore.session import Session, open_source
    from forecast.report import build_summary
    from forecast.report.tables import finite_or_none

    folder = base / "explore-tiny"
    folder.mkdir(exist_ok=True)
    path = folder / "tiny.yaml"
    path.write_text(textwrap.dedent(SCENARIO).lstrip())
    (folder / "rounds.csv").write_text(CSV + "\n")
    prep = api.prepare(path)
    _, fit = api.fit_prepared(prep)
    report = folder / "reports" / prep.folder_name
    report.mkdir(parents=True)
    summary = finite_or_none(build_summary(prep, fit))
    (report / "summary.json").write_text(json.dumps(summary))
    fit.tree.to_netcdf(report / "posterior.nc", engine="h5netcdf")
    prep, summary, report = open_source(report, out=folder / "reports")
    # a generous wait: the API tests want finished answers (the refit test asks with 0)
    return path, Session(prep, summary, report, wait=60)
