"""Approve a model directory: sign its manifest with the key in DEFAULTRISK_MODEL_KEY.

    DEFAULTRISK_MODEL_KEY=... python scripts/sign_model.py MODEL_DIR

The model is checked first (file, sha256, schema, model_version); the manifest then gets a
`signature`, an HMAC-SHA256 of the model's identity under the key. Scoring with the same variable
set refuses (exit 4) any model without that key's signature.
"""

from __future__ import annotations

import argparse
import os
import sys

from defaultrisk.errors import DefaultRiskError
from defaultrisk.model import MODEL_KEY_ENV, sign_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    args = parser.parse_args(argv)
    key = os.environ.get(MODEL_KEY_ENV)
    if not key:
        print(f"sign_model: error: {MODEL_KEY_ENV} is not set", file=sys.stderr)
        return 2
    try:
        version = sign_model(args.model_dir, key)
    except DefaultRiskError as exc:
        print(f"sign_model: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"signed {args.model_dir} ({version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
