"""Approve a model directory: the same as `defaultrisk sign-model MODEL_DIR`, kept for existing runbooks.

DEFAULTRISK_MODEL_KEY=... python scripts/sign_model.py MODEL_DIR
"""

from __future__ import annotations

import sys

from defaultrisk.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("sign-model"))
