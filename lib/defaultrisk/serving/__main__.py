"""`python -m defaultrisk.serving --model-dir DIR [--host 127.0.0.1] [--port 8000]`."""

from __future__ import annotations

import sys

from defaultrisk.cli import parse_args, run_command


def main(argv: list[str] | None = None) -> int:
    parse_args("serve", argv, prog="defaultrisk serve")  # a usage error exits 2 here
    return run_command("serve", argv)


if __name__ == "__main__":
    sys.exit(main())
