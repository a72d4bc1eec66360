"""Running the app under uvicorn: one process, one worker, on a socket bound before it starts."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import uvicorn

from defaultrisk.serving.app import create_app
from defaultrisk.serving.command import MAX_BATCH, MAX_BODY_BYTES, SHIPPED_REASONS, Reasons


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 takes a free one (the announced URL says which)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Declared TCP, so asyncio turns Nagle's algorithm off on each accepted connection (it checks the
    # protocol number); with it on, a response's body waits for the client's delayed ACK of its head
    # (about 40 ms on every keep-alive request). The listening socket gets TCP_NODELAY too.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def serve(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    reasons: Reasons = SHIPPED_REASONS,
    max_batch: int = MAX_BATCH,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> None:
    """Load and check the model, listen on `host:port`, print `serving http://HOST:PORT`, serve until stopped.

    A single worker: scoring is CPU work done inside the request, and one process keeps one model
    in memory; access logs are off, as a line per request costs more than scoring it.
    """
    app = create_app(model_dir, reasons=reasons, max_batch=max_batch, max_body_bytes=max_body_bytes)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    config = uvicorn.Config(
        app, workers=1, access_log=False, log_level=logging.WARNING, server_header=False, date_header=False
    )
    print(f"serving http://{shown}:{bound_port}", flush=True)
    print(f"serving model from {model_dir} on http://{shown}:{bound_port}", file=sys.stderr, flush=True)
    uvicorn.Server(config).run(sockets=[sock])
