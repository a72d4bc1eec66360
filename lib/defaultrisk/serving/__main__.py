"""`python -m defaultrisk.serving --model-dir DIR [--host 127.0.0.1] [--port 8000]`."""

from __future__ import annotations

import argparse
import sys

from defaultrisk.errors import EXIT_MODEL, EXIT_OK, EXIT_USAGE, ModelError
from defaultrisk.schema import FEATURES
from defaultrisk.serving.app import MAX_BATCH, MAX_BODY_BYTES, REASON_CODES
from defaultrisk.serving.server import serve


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="defaultrisk serve", description="Score customers on demand over HTTP."
    )
    parser.add_argument("--model-dir", required=True, help="a model directory written by the training job")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 takes a free one (default 8000)")
    parser.add_argument(
        "--reason-codes", type=int, default=REASON_CODES, help="reasons named per customer; 0: off"
    )
    parser.add_argument(
        "--max-batch", type=int, default=MAX_BATCH, help="customers per /predict/batch request"
    )
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES, help="largest request body")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not 0 <= args.reason_codes <= len(FEATURES) or args.max_batch < 1 or args.max_body_bytes < 1:
        print(
            "serve: error: --reason-codes must be 0..{len(FEATURES)}, --max-batch and --max-body-bytes >= 1",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        serve(args.model_dir, args.host, args.port, args.reason_codes, args.max_batch, args.max_body_bytes)
    except ModelError as exc:
        print(f"serve: error: {exc}", file=sys.stderr)
        return EXIT_MODEL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
