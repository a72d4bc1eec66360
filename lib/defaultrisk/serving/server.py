"""Running the app under uvicorn, on a socket bound before it starts: one process, or worker processes.

With more than one worker, uvicorn's supervisor starts them (spawned, each loading and checking the
model itself) on the one socket, restarts a worker that dies, and stops them all on SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import socket
import sys
from functools import partial
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from defaultrisk.model import load_checked, model_folder
from defaultrisk.registry.resolve import describe
from defaultrisk.serving.app import create_app
from defaultrisk.serving.options import Options

ONE = Options()  # one worker, reason codes as shipped, the default limits


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


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, options: Options = ONE) -> None:
    """Load and check the model, listen on `host:port`, print `serving http://HOST:PORT`, serve until stopped.

    Scoring is CPU work done inside the request: each worker process scores one group of requests
    at a time and holds its own copy of the model. Access logs are off, as a line per request costs
    more than scoring it. A model that fails its checks fails here, before anything listens.
    """
    source, model_dir = model_dir, model_folder(model_dir)  # a models:/ URI: once, before any worker
    workers = options.workers
    settings = {"reasons": options.reasons, "max_batch": options.max_batch}
    settings["max_body_bytes"] = options.max_body_bytes
    # One process serves the app built here; workers each build theirs from the same arguments.
    app = create_app(model_dir, **settings) if workers == 1 else partial(create_app, model_dir, **settings)
    if workers > 1:
        load_checked(model_dir)  # every check a worker will make, made once before any starts
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    config = uvicorn.Config(
        app,
        factory=workers > 1,
        workers=workers,
        access_log=False,
        log_level=logging.WARNING,
        server_header=False,
        date_header=False,
    )
    print(f"serving http://{shown}:{bound_port}", flush=True)
    print(
        f"serving model from {describe(source)} on http://{shown}:{bound_port} ({workers} worker(s))",
        file=sys.stderr,
        flush=True,
    )
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        Multiprocess(config, sockets=[sock]).run()
