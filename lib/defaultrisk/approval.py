"""Approving a model for signed scoring: `defaultrisk sign-model MODEL_DIR`.

The model is checked first (file, sha256, schema, model_version); the manifest then gets a `signature`,
an HMAC-SHA256 of the model's identity under the key in DEFAULTRISK_MODEL_KEY. Scoring with the same
variable set refuses (exit 4) any model without that key's signature.
"""

from __future__ import annotations

import argparse
import os
import sys

from defaultrisk.errors import EXIT_OK, EXIT_USAGE, DefaultRiskError
from defaultrisk.model import MODEL_KEY_ENV, sign_model


def add_sign_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help=f"the model directory to approve (key: {MODEL_KEY_ENV})")


def run_sign_model(args: argparse.Namespace, spark=None) -> int:
    """Sign the model's manifest; one line on stdout, or one on stderr and the error's exit code."""
    key = os.environ.get(MODEL_KEY_ENV)
    if not key:
        print(f"sign-model: error: {MODEL_KEY_ENV} is not set", file=sys.stderr)
        return EXIT_USAGE
    try:
        version = sign_model(args.model_dir, key)
    except DefaultRiskError as exc:
        print(f"sign-model: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"signed {args.model_dir} ({version})")
    return EXIT_OK
