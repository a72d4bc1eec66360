"""The service's command line (`defaultrisk serve`, `python -m defaultrisk.serving`): arguments, run.

Importable without the `serve` extra: FastAPI and uvicorn are imported only when the service starts.
"""

from __future__ import annotations

import argparse
import sys

from defaultrisk.errors import EXIT_OK, EXIT_USAGE, DefaultRiskError
from defaultrisk.schema import FEATURES
from defaultrisk.serving.options import MAX_BATCH, MAX_BODY_BYTES, REASON_CODES, REASON_ROWS, Options, Reasons


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-dir",
        required=True,
        help="a model directory written by the training job, or models:/NAME@ALIAS or models:/NAME/VERSION",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 takes a free one (default 8000)")
    parser.add_argument(
        "--reason-codes", type=int, default=REASON_CODES, help="reasons named per customer; 0: off"
    )
    parser.add_argument(
        "--reason-rows",
        choices=REASON_ROWS,
        default="high_risk",
        help="who gets reason codes: high_risk (as the nightly job, default) or all",
    )
    parser.add_argument(
        "--max-batch", type=int, default=MAX_BATCH, help="customers per /predict/batch request"
    )
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES, help="largest request body")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes, each with its own copy of the model (default 1: one process groups "
        "concurrent requests, which measured as fast as two on 2 cores shared with the clients)",
    )


def check_serve_arguments(args: argparse.Namespace) -> str | None:
    if not 0 <= args.reason_codes <= len(FEATURES):
        return f"--reason-codes must be 0..{len(FEATURES)}"
    if args.max_batch < 1 or args.max_body_bytes < 1:
        return "--max-batch and --max-body-bytes must be at least 1"
    if not 1 <= args.workers <= 64:
        return "--workers must be 1..64"
    return None


def run_serve(args: argparse.Namespace, spark=None) -> int:
    """Serve until stopped; a model that fails its checks exits 4 with one line, like the jobs."""
    problem = check_serve_arguments(args)
    if problem:
        print(f"serve: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    from defaultrisk.serving.server import serve

    try:
        reasons = Reasons(args.reason_codes, args.reason_rows)
        options = Options(reasons, args.max_batch, args.max_body_bytes, args.workers)
        serve(args.model_dir, args.host, args.port, options)
    except DefaultRiskError as exc:  # a model that fails its checks (4); a models:/ URI without MLflow (2)
        print(f"serve: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return EXIT_OK
