"""The model registry (MLflow): where it is, `models:/` URIs, registering a trained folder, promotion.

MLflow is an optional extra. Nothing here imports it when the package is imported: `require_mlflow`
does, when a command first needs the registry, so the jobs without the extra run as before and a
`models:/` URI without it ends with one line naming the extra (exit 2).
"""

from __future__ import annotations

from defaultrisk.errors import ConfigError

MODELS_SCHEME = "models:/"
EXTRA = "pip install 'defaultrisk[mlflow]'"


def is_registry_uri(model_dir) -> bool:
    """A `models:/NAME@ALIAS` or `models:/NAME/VERSION` URI, where a model folder is accepted."""
    return isinstance(model_dir, str) and model_dir.startswith(MODELS_SCHEME)


def require_mlflow(what: str = "the model registry"):
    """The `mlflow` module, or a usage error (exit 2) saying which extra brings it."""
    try:
        import mlflow
    except ImportError as exc:
        raise ConfigError(f"{what} needs the mlflow extra: {EXTRA}") from exc
    return mlflow
