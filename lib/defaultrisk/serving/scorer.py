"""The model as loaded once by the service, and one batch of customers through checks and scoring."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from defaultrisk.checks import check_table, present
from defaultrisk.features import checked_matrix
from defaultrisk.grades import MasterScale, grade_of, scale_from_manifest
from defaultrisk.model import ScoringModel, load_checked
from defaultrisk.schema import (
    GRADE,
    IS_HIGH_RISK,
    MODEL_VERSION,
    PD,
    REASON_CODES,
    UUID,
)
from defaultrisk.schema_rules import REASON_SEPARATOR
from defaultrisk.scoring.core import score_matrix
from defaultrisk.serving.options import Reasons


@dataclass(frozen=True)
class Outcome:
    """Either every customer's answer, or every rejected customer's position, uuid and reason."""

    predictions: list[dict] | None = None
    rejected: list[dict] | None = None


@dataclass(frozen=True)
class Scorer:
    model: ScoringModel
    manifest: dict
    scale: MasterScale
    reasons: Reasons
    loaded_at: str

    @classmethod
    def load(cls, model_dir: str | Path, reasons: Reasons) -> Scorer:
        """The model directory read and checked exactly as the scoring job reads it.

        One XGBoost thread: a request holds a row or a few, and the service must not fight its
        neighbours for cores; a tree's output for a row does not depend on the thread count.
        """
        # XGBoost's OpenMP pool (TreeSHAP, DMatrix) would otherwise wake every core for one row.
        threadpool_limits(1, user_api="openmp")
        checked = load_checked(model_dir)  # every check the scoring job makes, on the same loader
        model = ScoringModel.from_payload(checked.payload, nthread=1)
        if reasons.codes:
            _ = model.explainer  # the TreeSHAP tables built now, not on the first request
        loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(model, checked.manifest, scale_from_manifest(checked.manifest), reasons, loaded_at)

    def score(self, table: pa.Table) -> Outcome:
        """Check a raw table of customers as the job does; score them all, or say who is refused why.

        A uuid is optional here, but two customers of one request with the same uuid are refused,
        as the job refuses duplicates within a snapshot.
        """
        answers = self.answers(table)
        uuids = present(table.column(UUID).combine_chunks()).to_pylist()  # as the checks read them
        refused = [
            {"index": i, UUID: uuids[i], "reason": answer}
            for i, answer in enumerate(answers)
            if isinstance(answer, str)
        ]
        return Outcome(rejected=refused) if refused else Outcome(predictions=answers)

    def answers(self, table: pa.Table, copies: np.ndarray | None = None) -> list[dict | str]:
        """Per customer, its prediction, or the reason it is refused for (`column: problem; ...`).

        Each row's answer is its own: the checks and the model are row by row, except duplicates,
        counted within `table` unless `copies` gives each row's count (customers of separate requests
        scored together are never each other's duplicates).
        """
        checked = check_table(table, uuid_required=False, copies=copies)
        refused = checked.reason.to_pylist()
        rows = np.asarray([i for i, reason in enumerate(refused) if reason is None], dtype=np.int64)
        answers: list[dict | str] = list(refused)
        if len(rows) == 0:
            return answers
        matrix = checked_matrix(checked)[rows]
        pds, high, reasons = score_matrix(matrix, self.model, self.reasons.codes, self.reasons.rows)
        grades = grade_of(pds, self.scale)  # as the scoring job's `grade` column
        uuids = checked.uuid.take(pa.array(rows)).to_pylist()
        for k, row in enumerate(rows):
            answers[row] = {
                UUID: uuids[k],
                PD: float(pds[k]),
                IS_HIGH_RISK: bool(high[k]),
                GRADE: int(grades[k]) or None,
                REASON_CODES: reasons[k] if reasons is not None else None,
                MODEL_VERSION: self.model.version,
            }
        return answers


def problems(reason: str) -> list[str]:
    return reason.split(REASON_SEPARATOR)
