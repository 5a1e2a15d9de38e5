"""forecast explore's page in a real browser: change a belief, the number follows, save, reload.

A real uvicorn server on a free loopback port in a thread, headless Chromium (Debian's
package) driven by Playwright, as tests/test_browser.py does. Skipped, saying why, only
where no Chromium is installed.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from explore_tiny import HOLDS, tiny_session
from test_browser import CHROMIUM, FLAGS

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine (apt-get install -y chromium; .ci/run does this)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base URL, scenario path): the tiny scenario's page served by uvicorn in a thread."""
    from forecast.explore.app import create_app
    from forecast.explore.server import serve_in_thread

    path, session = tiny_session(tmp_path_factory)
    port = free_port()
    srv, thread = serve_in_thread(create_app(session, port), port)
    yield f"http://127.0.0.1:{port}/", path
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-explore")),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield ctx
        ctx.close()


def watched(context):
    """A new page and the lists its requests and console errors are collected into."""
    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, requests, errors


def settled(page) -> str:
    """The P(success) shown once the latest answer has arrived."""
    page.wait_for_selector('body[data-state="done"]', timeout=60_000)
    return page.locator("#p-mean").inner_text()


@pytest.mark.slow
def test_change_save_reload(served, context):
    url, scenario = served
    page, requests, errors = watched(context)
    page.goto(url, wait_until="load")
    before = settled(page)
    assert before.endswith("%")
    row = page.locator(f'article[data-path="{HOLDS}"]')
    row.locator("select").nth(1).select_option("very unlikely")
    page.wait_for_function(
        "before => document.body.dataset.state === 'done' && "
        "document.getElementById('p-mean').textContent !== before",
        arg=before,
        timeout=60_000,
    )
    after = page.locator("#p-mean").inner_text()
    assert after != before
    assert float(after.rstrip("%")) > float(before.rstrip("%"))  # opposition unlikely: higher
    assert page.locator("#set-line").inner_text() == f"--set '{HOLDS}=very unlikely'"
    assert "reweighted" in page.locator("#method").inner_text()

    page.fill("#save-name", "from the browser")
    page.click("#save")
    page.wait_for_function("() => document.body.dataset.saved", timeout=30_000)
    saved = Path(page.evaluate("() => document.body.dataset.saved"))
    assert saved.parent == scenario.parent.resolve() and saved.name.startswith("from-the-browser")
    assert "holds: very unlikely" in saved.read_text()

    page.reload(wait_until="load")  # a reload is the file's beliefs again
    assert settled(page) == before
    assert page.locator("#set-line").inner_text().startswith("(none")
    page.close()
    assert errors == [], errors
    assert requests and all(r.startswith(url) for r in requests), requests


@pytest.mark.slow
def test_reset_and_a_phone_width(served, context):
    url, _ = served
    page, requests, errors = watched(context)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url, wait_until="load")
    before = settled(page)
    row = page.locator(f'article[data-path="{HOLDS}"]')
    row.locator("select").nth(1).select_option("unlikely")
    page.wait_for_function(
        "before => document.body.dataset.state === 'done' && "
        "document.getElementById('p-mean').textContent !== before",
        arg=before,
        timeout=60_000,
    )
    page.click("#reset")
    assert settled(page) == before
    # readable at 390 px: nothing wider than the screen (no sideways scrolling)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.close()
    assert errors == [], errors
    assert all(r.startswith(url) for r in requests), requests
