"""report.html: one self-contained page (figures embedded, no network), from templates.

The page is a pure function of the report folder's records (:func:`render_page`):
``summary.json``, the run's figures (``figures/index.json`` and its PNGs), and, where
they exist, ``sensitivity.json`` and ``backtest.json`` with their figures. Every command
that adds to a report re-renders the whole page from them; none edits HTML.

Templates live in ``forecast/report/templates`` (one per section) and are autoescaped:
every value is escaped as :func:`html.escape` does (quotes too), unless a template or
macro made it HTML.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    pass_eval_context,
    select_autoescape,
)
from markupsafe import Markup

from forecast.mcse import decimals, num, se
from forecast.report.backtest import BASELINE_LABELS, FORECASTERS, targets
from forecast.report.tables import (
    answer_sentence,
    belief_moves,
    decision_sentence,
    first_quoted,
    fmt_interval,
    fmt_mcse,
    hidden_note,
    outcomes_text,
    pct,
    pct_row,
    posterior_text,
    sign_points,
    trimmed_quotes,
    update_sentence,
    with_effect,
    written,
)

FIGURES = "figures"  # the run's figures, as PNG files, and their index.json
SENSITIVITY_FIGURE = "sensitivity_tornado.png"
BACKTEST_FIGURES = {
    "calibration": "backtest_calibration.png",
    "cumulative": "backtest_cumulative.png",
}


@pass_eval_context
def _escaped(eval_ctx, value: Any) -> Any:
    """Escape every value as :func:`html.escape` does (``&#x27;``, ``&quot;``).

    Jinja's own escaping writes quotes as ``&#39;`` and ``&#34;``; the pages keep the
    bytes they always had. HTML made by a template or macro (``Markup``) passes as it is.
    """
    if not eval_ctx.autoescape or isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value)))


_MARKDOWN = None


def inline_markdown(text: str | None) -> Markup:
    """A line written in Markdown (``**bold**``, `` `code` ``) as HTML, by markdown-it.

    Raw HTML in the text is not passed through: it is escaped like any other text.
    """
    global _MARKDOWN
    if _MARKDOWN is None:
        from markdown_it import MarkdownIt

        _MARKDOWN = MarkdownIt("commonmark", {"html": False})
    return Markup(_MARKDOWN.renderInline(text or ""))


def anchor(path: str) -> str:
    """The id of an assumption's row in the page, so other rows can point at it."""
    return "a-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in path)


def quotes_by_path(assumptions: list[dict[str, Any]]) -> dict[str, str | None]:
    """Each assumption's quoted reason, by its path."""
    return {a["path"]: a["why"] for a in assumptions}


def evppi_shown(decision: dict[str, Any]) -> list[tuple[str, float]]:
    """The beliefs worth a row in the EVPPI table: some value, or a flip."""
    return [
        (path, value)
        for path, value in decision["evppi"].items()
        if value > 0 or decision["flips"][path]["flips"]
    ]


ENV = Environment(
    loader=PackageLoader("forecast.report", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
    finalize=_escaped,
)
ENV.filters.update(
    pct=pct,
    num=num,
    se=se,
    decimals=decimals,
    fmt=format,
    fmt_interval=fmt_interval,
    fmt_mcse=fmt_mcse,
    written=written,
    sign_points=sign_points,
    belief_moves=belief_moves,
    anchor=anchor,
    md=inline_markdown,
    outcomes_text=outcomes_text,
)
ENV.globals.update(
    answer_sentence=answer_sentence,
    decision_sentence=decision_sentence,
    update_sentence=update_sentence,
    pct_row=pct_row,
    trimmed_quotes=trimmed_quotes,
    with_effect=with_effect,
    hidden_note=hidden_note,
    first_quoted=first_quoted,
    posterior_text=posterior_text,
    quotes_by_path=quotes_by_path,
    evppi_shown=evppi_shown,
    backtest_targets=targets,
    forecasters=FORECASTERS,
    baselines=BASELINE_LABELS,
)


def data_uri(path: Path) -> str:
    """A PNG file as a ``data:`` URI, so the page needs no side files."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def png_bytes(uri: str) -> bytes:
    """The PNG inside a ``data:`` URI."""
    return base64.b64decode(uri.split(",", 1)[1])


def write_figures(folder: Path, figures: dict[str, str], seconds: float | None) -> None:
    """The run's figures as ``figures/<name>.png``, and ``figures/index.json``: their
    names in order and the fit's run time (neither is in ``summary.json``)."""
    (folder / FIGURES).mkdir(exist_ok=True)
    files = {}
    for name, uri in figures.items():
        files[name] = f"{name}.png"
        (folder / FIGURES / files[name]).write_bytes(png_bytes(uri))
    index = {"seconds": seconds, "figures": files}
    (folder / FIGURES / "index.json").write_text(json.dumps(index, indent=2) + "\n")


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def page_records(folder: Path) -> dict[str, Any]:
    """Everything the page shows, read from the report folder."""
    folder = Path(folder)
    index = _json(folder / FIGURES / "index.json") or {"seconds": None, "figures": {}}
    records: dict[str, Any] = {
        "summary": _json(folder / "summary.json"),
        "figures": {n: data_uri(folder / FIGURES / f) for n, f in index["figures"].items()},
        "seconds": index["seconds"],
        "sensitivity": None,
        "backtest": None,
    }
    sensitivity = _json(folder / "sensitivity.json")
    if sensitivity is not None:
        figure = data_uri(folder / SENSITIVITY_FIGURE)
        records["sensitivity"] = {"result": sensitivity, "figure": figure}
    backtest = _json(folder / "backtest.json")
    if backtest is not None:
        uris = {k: data_uri(folder / f) for k, f in BACKTEST_FIGURES.items()}
        records["backtest"] = {"result": backtest, **uris}
    return records


def render(
    summary: dict[str, Any],
    figures: dict[str, str],
    seconds: float | None = None,
    sensitivity: dict[str, Any] | None = None,
    backtest: dict[str, Any] | None = None,
) -> str:
    """The whole page. ``figures`` are data URIs by name; ``seconds`` is the fit's run
    time; ``sensitivity`` and ``backtest`` are ``{"result": ..., <figure>: uri}``."""
    return ENV.get_template("report.html").render(
        summary=summary,
        figures=figures,
        seconds=seconds,
        sensitivity=sensitivity,
        backtest=backtest,
    )


def render_page(folder: Path) -> str:
    """report.html of a report folder, from its records alone."""
    return render(**page_records(folder))


def write_page(folder: Path) -> None:
    """(Re)write ``report.html`` from the folder's records (inside its atomic write)."""
    (Path(folder) / "report.html").write_text(render_page(folder))
