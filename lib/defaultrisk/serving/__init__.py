"""The HTTP service: one customer (or a small batch) scored on demand, as the nightly job would score it."""

from defaultrisk.serving.app import create_app
from defaultrisk.serving.server import serve

__all__ = ["create_app", "serve"]
