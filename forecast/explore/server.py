"""Serving the explore app with uvicorn, on the loopback address only (PRODUCT §9)."""

from __future__ import annotations

import socket
import threading
from typing import Any

HOST = "127.0.0.1"


def port_free(port: int) -> bool:
    """Whether ``port`` can be bound on the loopback address now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def server(app: Any, port: int, log_level: str = "warning"):
    """A uvicorn server for ``app`` bound to 127.0.0.1:``port`` (never another address)."""
    import uvicorn

    config = uvicorn.Config(
        app, host=HOST, port=port, log_level=log_level, access_log=False, lifespan="off"
    )
    return uvicorn.Server(config)


def serve(app: Any, port: int, on_ready=None) -> None:
    """Serve until interrupted; ``on_ready()`` runs once the socket is listening."""
    srv = server(app, port)
    if on_ready is not None:

        def wait_then_call() -> None:
            while not srv.started and not srv.should_exit:
                threading.Event().wait(0.05)
            if srv.started:
                on_ready()

        threading.Thread(target=wait_then_call, daemon=True).start()
    srv.run()


def serve_in_thread(app: Any, port: int):
    """Start serving in a daemon thread (tests); returns the server (``should_exit`` stops it)."""
    srv = server(app, port)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        if not thread.is_alive():
            raise RuntimeError(f"the explore server did not start on {HOST}:{port}")
        threading.Event().wait(0.05)
    return srv, thread
