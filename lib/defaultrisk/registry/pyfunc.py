"""The registered model as MLflow users load it: `mlflow.pyfunc.load_model("models:/NAME/1")`.

`predict` takes a pandas frame of raw customer rows (as a snapshot holds them) and answers, row by
row, `pd` (first, so `mlflow.pyfunc.spark_udf(..., result_type="double")` gives pd), `grade`,
`is_high_risk` and `reason`: the nightly job's reject reason for a row it would not score (pd, grade
and is_high_risk null there). Every row goes through the job's own `check_and_score_batch` on the
checked model folder, so a row's pd is the nightly job's, bit for bit.

The model is logged from code (`pyfunc_model.py`, no pickle); this module imports MLflow and is only
imported by that file, when MLflow loads the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.models.signature import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import ColSpec, Schema

from defaultrisk.checks import duplicate_keys, present
from defaultrisk.grades import grade_of, scale_from_manifest
from defaultrisk.model import load_checked
from defaultrisk.registry.resolve import MODEL_DIR_ARTIFACT
from defaultrisk.schema import (
    CATEGORY,
    DEFAULT,
    FEATURES,
    FLAG,
    GRADE,
    IS_HIGH_RISK,
    PD,
    RAW_LINE,
    REASON,
    UUID,
)
from defaultrisk.scoring.core import check_and_score_batch
from defaultrisk.serving.request import customers_table

# The signature's type of each kind of feature. Counts and codes are whole numbers, but declared
# double: pandas holds a whole-number column with a missing value as float64, which MLflow refuses
# for a `long` column, and the job scores such rows. A value that is not whole (2.5) then passes
# MLflow and gets the job's own reason. Categories are strings and flags booleans: MLflow passes an
# object column of either through as it is, so an unknown category or a flag written `maybe` gets the
# job's reason too. Text in a number column (`"abc"`) is refused by MLflow before `predict` runs.
SIGNATURE_TYPES = {CATEGORY: "string", FLAG: "boolean"}
OUTPUT = (PD, GRADE, IS_HIGH_RISK, REASON)


def signature() -> ModelSignature:
    """Inputs: `uuid` (optional) and the 41 features; outputs: pd, grade, is_high_risk, reason."""
    inputs = [ColSpec("string", UUID, required=False)]
    inputs += [ColSpec(SIGNATURE_TYPES.get(f.kind, "double"), f.name) for f in FEATURES]
    outputs = [ColSpec("double", PD), ColSpec("long", GRADE), ColSpec("boolean", IS_HIGH_RISK)]
    outputs.append(ColSpec("string", REASON))
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


class PdModel(PythonModel):
    """The checked model folder (the `model_dir` artifact), scored by the job's code path."""

    def load_context(self, context) -> None:
        self.checked = load_checked(context.artifacts[MODEL_DIR_ARTIFACT])
        self.scale = scale_from_manifest(self.checked.manifest)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        batch = raw_batch(model_input)
        outcome = check_and_score_batch(batch, self.checked.model, frame_duplicates(batch.column(UUID)))
        pds = outcome.column(PD).to_numpy(zero_copy_only=False)  # NaN where not scored
        scored = ~np.isnan(pds)
        grades = pd.array(grade_of(pds, self.scale), dtype="Int64")
        grades[~scored] = pd.NA
        high = pd.array(outcome.column(IS_HIGH_RISK).to_pylist(), dtype="boolean")
        reason = outcome.column(REASON).to_pylist()
        return pd.DataFrame(
            {PD: pds, GRADE: grades, IS_HIGH_RISK: high, REASON: reason}, index=model_input.index
        )


def raw_batch(frame: pd.DataFrame) -> pa.RecordBatch:
    """The frame's rows as a raw batch of the scoring pass: typed where a column holds its feature's
    type, text otherwise (the service's rule, `customers_table`), NaN read as missing (pandas' own
    meaning), no label. Without a `uuid` column each row is its own customer (a key by position)."""
    values = frame.astype(object).where(frame.notna(), None)
    records = values.to_dict("records")
    if UUID not in frame.columns:
        for i, record in enumerate(records):
            record[UUID] = f"00000000-0000-0000-0000-{i:012x}"
    table = customers_table(records)
    nulls = pa.nulls(len(records), pa.string())
    table = table.append_column(DEFAULT, nulls).append_column(RAW_LINE, nulls)
    return pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns], names=table.column_names)


def frame_duplicates(uuid: pa.Array) -> dict[str, int]:
    """The uuid keys held by more than one row of the frame, with their number of rows (the job
    counts them over the whole snapshot; here the frame is the whole input)."""
    counts = pc.value_counts(duplicate_keys(present(uuid)).drop_null())
    return {
        str(key): int(n)
        for key, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
        if n > 1
    }
