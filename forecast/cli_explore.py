"""``forecast explore``: the local what-if page (PRODUCT §9).

Registered on :data:`forecast.cli.app` when :mod:`forecast.cli` imports this module.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import (
    ChainsOpt,
    DrawsOpt,
    OutOpt,
    OutsideOpt,
    SeedOpt,
    _console,
    _with_status,
    app,
)


@app.command()
def explore(
    source: Annotated[
        Path, typer.Argument(help="Scenario file (YAML) or report folder.", show_default=False)
    ],
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")
    ] = 8765,
    no_open: Annotated[
        bool, typer.Option("--no-open", help="Do not open the page in a browser.")
    ] = False,
    draws: DrawsOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
    out: OutOpt = Path("reports"),
    allow_outside: OutsideOpt = False,
) -> None:
    """Change the beliefs on a local page and watch P(success) follow (fits once)."""
    from forecast.explore.server import port_free

    err = _console()
    if not port_free(port):  # before fitting: say so now, not after a minute of NUTS
        err.print(f"[bold red]error[/]: port {port} on 127.0.0.1 is in use; try --port")
        raise typer.Exit(2)

    def start(progress):
        from forecast.explore.app import create_app
        from forecast.explore.session import Session, open_source

        prep, summary, folder = open_source(
            source,
            out=out,
            draws=draws,
            chains=chains,
            seed=seed,
            allow_outside=allow_outside,
            progress=progress,
        )
        progress("loading the fit")
        session = Session(prep, summary, folder, allow_outside=allow_outside)
        progress("first answer (the file's beliefs)")
        session.answer([])  # warm: the page's first request is then instant
        return session, create_app(session, port)

    session, web = _with_status("explore", start)
    url = f"http://127.0.0.1:{port}/"

    def ready() -> None:
        _console(stderr=False).print(f"forecast explore: {url}  (Ctrl-C to stop)")
        if not no_open:
            import webbrowser

            webbrowser.open(url)

    from forecast.explore.server import serve

    try:
        serve(web, port, on_ready=ready)  # uvicorn re-raises Ctrl-C once it has stopped
    except KeyboardInterrupt:
        pass
    finally:
        if session.close():  # a refit in a worker thread cannot be stopped: do not wait
            err.print("stopped; the what-if still computing is dropped")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    err.print("stopped")
