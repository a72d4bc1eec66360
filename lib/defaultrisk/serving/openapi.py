"""The request and answer models for `/docs` and `/openapi.json`, generated from the feature schema.

They document the contract (each feature's type, range and known values, from `schema.FEATURES`);
they do not decide what is refused: `checks.check_table` does, with the nightly job's reasons.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from defaultrisk.schema import CATEGORY, CODE, COUNT, FEATURES, FLAG, NUMERIC, UUID, UUID_PATTERN, Feature

_MISSING = "Missing: null or left out."
_KINDS = {
    NUMERIC: (float, "A real number."),
    COUNT: (int, "A whole number (2 and 2.0 alike)."),
    CODE: (int, "An ordered integer code; an unseen code is scored as the number it is."),
    FLAG: (bool, "true or false."),
}


def _range(feature: Feature) -> str:
    parts = []
    if feature.minimum is not None:
        parts.append(f"minimum {feature.minimum:g}")
    if feature.maximum is not None:
        parts.append(f"maximum {feature.maximum:g}")
    return f" Range: {', '.join(parts)}; outside it the customer is refused (422)." if parts else ""


def _field(feature: Feature) -> tuple:
    if feature.kind == CATEGORY:
        known = Literal.__getitem__(tuple(feature.values))
        text = "Text. The known values are listed; any other value is scored as missing, not refused."
        return known | str | None, Field(None, description=f"{text} {_MISSING}")
    kind, text = _KINDS[feature.kind]
    if feature.kind == CODE:
        text += f" Codes seen in the reference data: {', '.join(str(v) for v in feature.values)}."
    description = f"{text}{_range(feature)} {_MISSING}"
    return kind | None, Field(None, ge=feature.minimum, le=feature.maximum, description=description)


def customer_model() -> type[BaseModel]:
    """One customer: `uuid` (optional) and the 41 features by name."""
    fields = {
        UUID: (
            str | None,
            Field(None, pattern=UUID_PATTERN, description="The customer (8-4-4-4-12 hex digits); optional."),
        )
    }
    fields.update({f.name: _field(f) for f in FEATURES})
    return create_model("Customer", __config__=ConfigDict(extra="forbid"), **fields)


class Prediction(BaseModel):
    uuid: str | None = Field(description="The customer's uuid as given (null when none was)")
    pd: float = Field(ge=0.0, le=1.0, description="Calibrated probability of default, as the nightly job's")
    is_high_risk: bool = Field(description="pd >= the model's threshold")
    grade: int | None = Field(description="Rating grade on the model's master scale (1 = lowest pd)")
    reason_codes: list[str] | None = Field(
        description="Features pushing this customer's risk up most; null unless high-risk (by default)"
    )
    model_version: str


class Predictions(BaseModel):
    predictions: list[Prediction]


class Rejected(BaseModel):
    detail: str
    reason: str = Field(description="Each problem as `column: problem`, joined by `; `, as the job's rejects")
    problems: list[str]


class RejectedRow(BaseModel):
    index: int
    uuid: str | None
    reason: str


class BatchRejected(BaseModel):
    detail: str
    rejected: list[RejectedRow]


class Health(BaseModel):
    status: str
    model_version: str
    loaded_at: str
    model_created_at: str | None
    threshold: float
    reason_codes: int
    reason_rows: str
    max_batch: int


class Problem(BaseModel):
    detail: str


def batch_schema(customer_ref: str, max_batch: int) -> dict:
    return {
        "type": "object",
        "required": ["customers"],
        "additionalProperties": False,
        "properties": {
            "customers": {
                "type": "array",
                "items": {"$ref": customer_ref},
                "minItems": 1,
                "maxItems": max_batch,
            }
        },
    }
