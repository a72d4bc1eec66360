"""The model file MLflow logs "from code" (no pickle): it names the model class; MLflow runs this file
when it loads a registered version, and `load_context` reads the checked model folder."""

from mlflow.models import set_model

from defaultrisk.registry.pyfunc import PdModel

set_model(PdModel())
