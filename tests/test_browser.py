"""The HTML reports in a real browser: every figure drawn, nothing fetched, no errors.

Headless Chromium (Debian's package; ``.ci/run`` installs it) driven by Playwright.
Skipped, saying why, only where no Chromium is installed.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from forecast import api

CHROMIUM = os.environ.get("FORECAST_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine (apt-get install -y chromium; .ci/run does this)",
)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        profile = tmp_path_factory.mktemp("chromium-profile")
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


def inspect(context, html: Path) -> tuple[list[str], list[str], list[np.ndarray]]:
    """Open a report; (URLs requested, console errors, each figure's screenshot in grey)."""
    from PIL import Image

    page = context.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(html.as_uri(), wait_until="load")
    shots = []
    images = page.locator("img")
    for i in range(images.count()):
        img = images.nth(i)
        img.scroll_into_view_if_needed()
        assert img.evaluate("e => e.complete && e.naturalWidth > 0"), f"figure {i} not decoded"
        box = img.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50, f"figure {i} has no size"
        grey = Image.open(io.BytesIO(img.screenshot())).convert("L")
        shots.append(np.asarray(grey, dtype=float))
    page.close()
    return requests, errors, shots


def assert_renders(context, html: Path, min_figures: int) -> None:
    requests, errors, shots = inspect(context, html)
    # only the page itself: data: URIs are not requests to anything, and nothing else is
    fetched = [u for u in requests if not u.startswith("data:")]
    assert fetched == [html.as_uri()], fetched
    assert errors == []
    assert len(shots) >= min_figures
    for i, grey in enumerate(shots):
        # a drawn figure has ink: some dark pixels (axes, text, lines) on a light page, and
        # far more variation than a blank or single-colour box (std of a blank one is 0)
        assert (grey < 128).mean() > 0.002, f"figure {i} is blank"
        assert grey.std() > 10, f"figure {i} is a flat colour"


@pytest.mark.slow
# P(success), prior vs posterior, stages, assumptions, rank plots, predictive check; and
# the Diplomat's decision (its EVPI is 0, so no EVPPI figure)
# (and the prior, shown once, of the beliefs the data do not inform)
@pytest.mark.parametrize("name, figures", [("commentary-2013", 7), ("diplomat-2011", 8)])
def test_run_report_renders(browser, bundled_run, name, figures):
    _, out = bundled_run
    assert_renders(browser, out / name / "report.html", min_figures=figures)


PRIOR = """
factors:
  leader: {holds: likely, why: q}
stages:
  agreement:
    base_rate: {belief: unlikely, why: q}
    effects: {leader: {odds_ratio: raises, why: q}}
"""


@pytest.mark.slow
def test_compare_and_sensitivity_reports_render(browser, write_scenario, tmp_path):
    a = write_scenario(PRIOR, id="a", name="a.yaml")
    b = write_scenario(PRIOR.replace("holds: likely", "holds: unlikely"), id="b", name="b.yaml")
    out = tmp_path / "reports"
    _, compare_folder = api.compare([a, b], out=out)
    _, sens_folder = api.sensitivity(a, out=out)
    assert_renders(browser, compare_folder / "report.html", min_figures=2)
    assert_renders(browser, sens_folder / "report.html", min_figures=3)


def test_the_checks_catch_a_blank_figure_a_fetch_and_a_script_error(browser, tmp_path):
    """The checker itself: each fault it looks for, planted in a page, is caught."""
    import base64

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buf, format="PNG")
    blank = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    page = tmp_path / "bad.html"
    page.write_text(f'<img src="{blank}">')
    with pytest.raises(AssertionError, match="blank"):
        assert_renders(browser, page, min_figures=1)
    page.write_text('<link rel="stylesheet" href="http://127.0.0.1:9/x.css"><p>x</p>')
    requests, _, _ = inspect(browser, page)
    assert "http://127.0.0.1:9/x.css" in requests
    page.write_text("<script>undefinedFunction()</script>")
    _, errors, _ = inspect(browser, page)
    assert any("undefinedFunction" in e for e in errors)


#: Elements whose right edge passes the window's, other than inside a scrolling wrapper
#: (``overflow-x:auto``, as wide tables are): the page itself must never scroll sideways.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth, out = [];
  for (const e of document.body.querySelectorAll('*')) {
    let p = e.parentElement, inside = false;
    for (; p && p !== document.body; p = p.parentElement)
      if (getComputedStyle(p).overflowX === 'auto') { inside = true; break; }
    if (!inside && e.getBoundingClientRect().right > width + 1)
      out.push(e.tagName + ': ' + (e.textContent || '').slice(0, 60));
  }
  return [document.documentElement.scrollWidth - width, out];
}"""


def overflowing(context, html: Path, width: int) -> tuple[int, list[str]]:
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(html.as_uri(), wait_until="load")
    extra, elements = page.evaluate(OVERFLOW)
    page.close()
    return extra, elements


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("name", ["commentary-2013", "diplomat-2011"])
def test_nothing_is_cut_at_desktop_and_phone_width(browser, bundled_run, name, width):
    _, out = bundled_run
    assert overflowing(browser, out / name / "report.html", width) == (0, [])


def test_the_overflow_check_catches_a_wide_table(browser, tmp_path):
    page = tmp_path / "wide.html"
    row = "<td>" + "x" * 400 + "</td>"
    page.write_text(f"<table><tr>{row}</tr></table>")
    extra, elements = overflowing(browser, page, 390)
    assert extra > 0 and elements
    page.write_text(f"<div style='overflow-x:auto'><table><tr>{row}</tr></table></div>")
    assert overflowing(browser, page, 390) == (0, [])
