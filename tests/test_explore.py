"""forecast explore's API (PRODUCT §9): answers, the --set messages, saving, security.

One small scenario with reference data is fitted once for the module (NUTS, 300 draws × 2
chains); every request goes through Starlette's TestClient, as a browser's would.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from explore_tiny import HOLDS, SCENARIO, tiny_session

from forecast import api

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

PORT = 8765
BASE_URL = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="session")
def explored(tmp_path_factory):
    """(scenario path, Session): the tiny scenario fitted once for the whole session."""
    return tiny_session(tmp_path_factory)


@pytest.fixture
def client(explored):
    from starlette.testclient import TestClient

    from forecast.explore.app import create_app

    app = create_app(explored[1], PORT)
    with TestClient(app, base_url=BASE_URL) as c:
        c.token = app.state.token
        yield c


def forecast(client, *sets: str):
    return client.get("/api/forecast", params=[("set", s) for s in sets])


@pytest.mark.slow
def test_a_changed_belief_moves_the_number(client):
    base = forecast(client).json()
    assert base["status"] == "done" and base["method"] == "reweighted"
    assert set(base) >= {"p_success", "method", "pareto_k", "decision"}
    assert set(base["p_success"]) == {"mean", "hdi_90", "mcse"}
    lo, hi = base["p_success"]["hdi_90"]
    assert lo < base["p_success"]["mean"] < hi
    changed = forecast(client, f"{HOLDS}=very unlikely").json()
    assert changed["method"] == "reweighted" and changed["set_line"] == (
        f"--set '{HOLDS}=very unlikely'"
    )
    # the leader's opposition lowers the odds: believing it unlikely raises P(success),
    # by far more than four combined MCSE (each under half a point here)
    e = (base["p_success"]["mcse"] ** 2 + changed["p_success"]["mcse"] ** 2) ** 0.5
    assert changed["p_success"]["mean"] - base["p_success"]["mean"] > 4 * e
    # the decision follows: options named, the recommended one among them
    d = changed["decision"]
    assert [o["name"] for o in d["options"]] == ["talk", "stop"] and d["recommended"] == "talk"
    # each option's value under the change: talking is worth 100 · P(success) (no
    # consequences), stopping exactly 0; both rounded to their own MCSE (≤ 0.5 here)
    talk, stop = d["options"]
    assert talk["mean"] == pytest.approx(100 * changed["p_success"]["mean"], abs=0.6)
    assert stop["mean"] == 0 and talk["mean"] > base["decision"]["options"][0]["mean"]


@pytest.mark.slow
def test_same_numbers_as_the_engine_and_run_set(explored, client):
    """The page's answer is the engine's what-if (as compare and sensitivity compute it)
    and, within Monte Carlo error, what `forecast run --set` fits."""
    from forecast.mcse import mcse_mean

    path, session = explored
    item = f"{HOLDS}=unlikely"
    prep = api.prepare(path, [item])
    v = api.evaluate(prep, base=api.BaseFit.from_report(prep, session.folder))
    got = forecast(client, item).json()["p_success"]
    # the same computation: equal up to the rounding to the digits the MCSE supports
    assert abs(got["mean"] - v.p_success) <= got["mcse"]
    _, fit = api.fit_prepared(prep)  # what `run --set` fits before writing its report
    draws = fit.tree["posterior"]["p_success"]
    run_mean, run_mcse = float(draws.mean()), mcse_mean(draws)
    # two Monte Carlo estimates of one posterior mean: within four combined MCSE
    assert abs(got["mean"] - run_mean) < 4 * (got["mcse"] ** 2 + run_mcse**2) ** 0.5, (
        got,
        run_mean,
        run_mcse,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("factors.leadr_opposes.holds=likely", "did you mean 'factors.leader_opposes'"),
        (f"{HOLDS}=maybe", "unknown word 'maybe'"),
        (f"{HOLDS}=1.5", "(value given with --set)"),
        ("nonsense", "PATH=VALUE"),
    ],
)
def test_bad_set_is_400_with_the_set_message(explored, client, cli, item, message):
    r = forecast(client, item)
    assert r.status_code == 400
    error = r.json()["error"]
    assert message in error
    # exactly what `forecast check --set` prints after "error: "
    printed = cli("check", explored[0], "--set", item).output
    assert f"error: {error}" in " ".join(printed.split())


@pytest.mark.slow
def test_foreign_host_is_403(client):
    for host in ("evil.example", f"evil.example:{PORT}", "127.0.0.1:1", "localhost.evil:8765"):
        r = client.get("/api/forecast", headers={"host": host})
        assert r.status_code == 403, host
        assert client.get("/", headers={"host": host}).status_code == 403
    for host in (f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}"):
        assert client.get("/", headers={"host": host}).status_code == 200, host


@pytest.mark.slow
def test_page_carries_the_token_and_a_csp(client):
    r = client.get("/")
    assert r.status_code == 200 and client.token in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "http" not in r.text.split("<body>")[0].replace(BASE_URL, "")  # nothing fetched
    assert "tiny" in r.text and "leader_opposes" in r.text
    assert client.get("/static/explore.js").status_code == 200


@pytest.mark.slow
def test_post_needs_the_token(explored, client):
    body = {"name": "should-not-exist", "set": [f"{HOLDS}=unlikely"]}
    assert client.post("/api/save", json=body).status_code == 403
    bad = client.post("/api/save", json=body, headers={"x-forecast-token": "wrong"})
    assert bad.status_code == 403
    assert not list(explored[0].parent.glob("should-not-exist*"))


@pytest.mark.slow
def test_save_never_overwrites_stays_in_the_folder_and_passes_check(explored, client, cli):
    folder = explored[0].parent
    headers = {"x-forecast-token": client.token}
    body = {"name": "../../Evil Name!", "set": [f"{HOLDS}=unlikely"]}
    first = client.post("/api/save", json=body, headers=headers)
    assert first.status_code == 201, first.text
    second = client.post("/api/save", json=body, headers=headers).json()
    a, b = Path(first.json()["path"]), Path(second["path"])
    assert a.name == "evil-name.yaml" and b.name == "evil-name-2.yaml"
    assert a.parent == b.parent == folder.resolve()
    assert second["set_line"] == f"--set {HOLDS}=unlikely"
    text = a.read_text()
    assert "holds: unlikely" in text and "id: evil-name" in text
    assert "Saved by forecast explore from tiny.yaml" in text.splitlines()[0]
    assert explored[0].read_text() == textwrap.dedent(SCENARIO).lstrip()  # original kept
    r = cli("check", a)
    assert r.exit_code == 0, r.output
    # the saved file is the same scenario as the original with the --set line
    saved = api.prepare(a)
    same = api.prepare(explored[0], [f"{HOLDS}=unlikely"])
    assert saved.priors == same.priors and saved.loaded.spec.question.id == "tiny"
    bad = client.post("/api/save", json={"name": "x", "set": ["nonsense"]}, headers=headers)
    assert bad.status_code == 400 and "PATH=VALUE" in bad.json()["error"]


@pytest.mark.slow
def test_a_refit_is_pending_then_answers(explored, monkeypatch):
    """A change the fit cannot be reweighted to is refitted in the background."""
    import threading
    import time

    from forecast import engine

    # a refit of a compiled shape can take under a second: held until the test has seen
    # the page told so, and the page answer another change meanwhile
    go, refit = threading.Event(), engine.Program.refit

    def held(self, prep, seed):
        assert go.wait(60)
        return refit(self, prep, seed)

    monkeypatch.setattr(engine.Program, "refit", held)
    session = explored[1]
    item = "stages.agreement.base_rate.belief={between: [0.9, 0.99]}"
    assert session.answer([item], wait=0.0)["status"] == "pending"
    deadline, seen = time.monotonic() + 60, []
    answer = {"status": "pending", "method": None}
    while answer["status"] == "pending" and answer["method"] != "refit":
        assert time.monotonic() < deadline, seen
        answer = session.answer([item], wait=0.1)
        seen.append((answer["status"], answer["method"]))
    # while it ran, the page was told it is a refit, with the time so far
    assert ("pending", "refit") in seen, seen
    assert "refitting with NUTS" in answer["progress"]["message"]
    # the page stays usable meanwhile: a reweighted what-if answers on the other worker
    other = session.answer([f"{HOLDS}=roughly even chance"], wait=30)
    assert (other["status"], other["method"]) == ("done", "reweighted")
    go.set()
    while answer["status"] == "pending":
        assert time.monotonic() < deadline, seen
        answer = session.answer([item], wait=0.5)
    assert answer["status"] == "done" and answer["method"] == "refit", answer
    # a refit has its own NUTS draws: an interval around its mean
    lo, hi = answer["p_success"]["hdi_90"]
    assert lo < answer["p_success"]["mean"] < hi
    assert answer["pareto_k"] > 0.7 or "ESS" in answer["note"]
    # a base rate near 0.95 against 8 agreements in 24 rounds: far above the file's
    assert answer["p_success"]["mean"] > session.answer([])["p_success"]["mean"]


def test_explore_without_a_scenario_exits_2(cli, tmp_path):
    r = cli("explore", tmp_path / "nope.yaml", "--no-open", "--port", "8791")
    assert r.exit_code == 2 and "no such file" in r.output and "Traceback" not in r.output


def test_explore_on_a_port_in_use_exits_2_before_fitting(cli, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = cli("explore", tmp_path / "nope.yaml", "--no-open", "--port", str(port))
    assert r.exit_code == 2 and f"port {port}" in r.output and "in use" in r.output


@pytest.mark.slow
@pytest.mark.parametrize("no_open", [True, False])
def test_the_command_serves_a_report_folder(explored, cli, monkeypatch, no_open):
    """`forecast explore REPORT [--no-open] --port P`: the URL printed once serving, the
    browser opened unless --no-open, the app it serves answering (uvicorn stubbed out:
    the real server is the browser test's)."""
    import webbrowser

    from starlette.testclient import TestClient

    from forecast.explore import server

    opened, answers = [], []

    def serve(app, port, on_ready=None):
        with TestClient(app, base_url=f"http://127.0.0.1:{port}") as c:
            on_ready()
            for _ in range(60):  # a pending answer is asked again, as the page does
                answer = c.get("/api/forecast", params={"set": f"{HOLDS}=unlikely"}).json()
                if answer["status"] != "pending":
                    break
            answers.append(answer)

    monkeypatch.setattr(server, "serve", serve)
    monkeypatch.setattr(webbrowser, "open", opened.append)
    args = ["explore", explored[1].folder, "--port", "8793"] + ["--no-open"] * no_open
    r = cli(*args)
    assert r.exit_code == 0, r.output
    assert "forecast explore: http://127.0.0.1:8793/" in r.stdout
    assert opened == ([] if no_open else ["http://127.0.0.1:8793/"])
    (answer,) = answers
    assert answer["method"] == "reweighted" and 0 < answer["p_success"]["mean"] < 1


@pytest.mark.slow
def test_without_reference_data_the_answer_is_exact(write_scenario, tmp_path):
    """No data: exact forward sampling (PRODUCT §9 calls it "exact"), with its HDI."""
    from forecast.explore.session import Session

    path = write_scenario(
        """
        factors:
          leader_opposes: {holds: likely, why: a}
        stages:
          agreement:
            base_rate: {belief: unlikely, why: b}
            effects: {leader_opposes: {odds_ratio: strongly lowers, why: c}}
        """
    )
    session = Session(api.prepare(path), {}, tmp_path, wait=60)
    base = session.answer([])
    changed = session.answer([f"{HOLDS}=almost no chance"])
    for a in (base, changed):
        assert (a["method"], a["interval"], a["pareto_k"]) == ("exact", "hdi", None)
        lo, hi = a["p_success"]["hdi_90"]
        assert 0 <= lo < a["p_success"]["mean"] < hi <= 1
    # without the opposition (OR 0.1-0.5) the chance rises: far beyond the MCSEs (< 0.002)
    assert changed["p_success"]["mean"] - base["p_success"]["mean"] > 0.03


def test_interval_slug_and_set_line_helpers():
    import numpy as np

    from forecast.engine import Variant
    from forecast.explore.session import _finite, hdi_90, set_line, slug

    rng = np.random.default_rng(1)
    draws = rng.beta(2, 8, 4000)
    equal = Variant(float(draws.mean()), "reweighted", draws=draws, weights=np.full(4000, 1 / 4000))
    (lo, hi), kind = hdi_90(equal)
    assert kind == "hdi" and lo < draws.mean() < hi
    # weights that drop the upper half: the interval moves down, and says it is weighted
    w = (draws < np.median(draws)).astype(float)
    (wlo, whi), wkind = hdi_90(Variant(None, "reweighted", draws=draws, weights=w / w.sum()))
    assert wkind.startswith("weighted") and wlo < whi <= np.median(draws) < hi
    assert hdi_90(Variant(0.1, "refit")) == (None, None)  # a refit keeps no draws
    assert _finite(float("inf"), 3) is None and _finite(0.12345, 3) == 0.123
    assert slug("../../Evil Name!") == "evil-name" and slug("///") == ""
    assert (
        set_line(["a.b=likely", "c.d=very unlikely"])
        == "--set a.b=likely --set 'c.d=very unlikely'"
    )
