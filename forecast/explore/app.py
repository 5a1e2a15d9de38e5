"""The explore page and its API (Starlette), over one :class:`~forecast.explore.session.Session`.

- ``GET /`` the page (Jinja2, autoescaped), its script and styles under ``/static``;
- ``GET /api/forecast?set=PATH=VALUE&set=...`` an answer in the shape of PRODUCT §9;
- ``POST /api/save`` (JSON ``{"name", "set"}``) writes the changed scenario beside the
  original and returns its path and the ``--set`` line.

Security (PRODUCT §9): a request whose ``Host`` is not the loopback address or
``localhost`` at this port gets 403 (DNS rebinding); a ``POST`` without the session's
token (generated per process, embedded in the page, sent back in a header) gets 403; the
Content-Security-Policy lets the page load and fetch from itself only.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from forecast.errors import ScenarioError
from forecast.explore.session import Session, assumption_rows

HERE = Path(__file__).parent
TOKEN_HEADER = "x-forecast-token"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


class GuardMiddleware:
    """403 unless the ``Host`` is a loopback name at our port, and for any request that
    may change something (not GET or HEAD) without the session token; security headers
    on every response."""

    def __init__(self, app: ASGIApp, port: int, token: str) -> None:
        self.app, self.token = app, token
        self.allowed = {f"{h}:{port}" for h in LOOPBACK} | set(LOOPBACK)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        given = headers.get(TOKEN_HEADER.encode(), b"")
        refusal = None
        if host not in self.allowed:
            refusal = PlainTextResponse(
                "forbidden: this page answers only at 127.0.0.1 or localhost", status_code=403
            )
        elif scope["method"] not in ("GET", "HEAD") and not secrets.compare_digest(
            given, self.token.encode()
        ):
            refusal = JSONResponse({"error": "forbidden: missing or wrong session token"}, 403)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _problems(e: ScenarioError) -> JSONResponse:
    """400 with the messages ``--set`` gives (as the CLI prints them, one per problem)."""
    messages = [str(p) for p in e.problems]
    return JSONResponse({"error": "; ".join(messages), "problems": messages}, status_code=400)


def create_app(session: Session, port: int, token: str | None = None) -> Starlette:
    """The explore app for ``session``, answering at ``127.0.0.1:port`` / ``localhost:port``."""
    token = token or secrets.token_urlsafe(32)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    rows = assumption_rows(session.prep, session.summary)

    def page(request: Request) -> Response:
        spec = session.prep.loaded.spec
        context: dict[str, Any] = {
            "title": spec.title,
            "question": spec.question.text,
            "scenario": str(session.prep.loaded.path),
            "report": str(session.folder),
            "token": token,
            "default_name": f"{spec.id}-variant",
            "boot": {
                "rows": rows,
                "base": session.summary.get("p_success"),
                "author": _author(session.summary),
            },
        }
        return templates.TemplateResponse(request, "explore.html", context)

    def forecast(request: Request) -> Response:
        sets = request.query_params.getlist("set")
        try:
            answer = session.answer(sets)
        except ScenarioError as e:
            return _problems(e)
        if answer.get("status") == "invalid":
            return JSONResponse(answer, status_code=400)
        if answer.get("status") == "error":
            return JSONResponse(answer, status_code=500)
        return JSONResponse(answer, status_code=202 if answer["status"] == "pending" else 200)

    async def save(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected a JSON body"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        sets, name = body.get("set", []), body.get("name", "")
        if not isinstance(name, str) or not (
            isinstance(sets, list) and all(isinstance(s, str) for s in sets)
        ):
            return JSONResponse({"error": "name: text; set: a list of PATH=VALUE"}, 400)
        from starlette.concurrency import run_in_threadpool

        try:
            saved = await run_in_threadpool(session.save, name, sets)
        except ScenarioError as e:
            return _problems(e)
        return JSONResponse(saved, status_code=201)

    routes = [
        Route("/", page),
        Route("/api/forecast", forecast),
        Route("/api/save", save, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(GuardMiddleware, port=port, token=token)])
    app.state.token = token
    return app


def _author(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The author's own bottom line (reported beside the model, never an input to it)."""
    q = summary.get("question", {})
    return q.get("author_forecast") if isinstance(q, dict) else None
