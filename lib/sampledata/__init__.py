"""The sample-data generator: customer tables in the original format with a known true pd.

Not part of the product package: the tests and the demo use it; nothing in `defaultrisk` imports it.
The marginals, vocabularies and missing-value patterns follow facts measured on real customer rows (see
the data README), so development, tests and demos need no real customer data; the known true pd lets an
evaluation say how close a trained model gets to the best possible one.
"""

from sampledata.corrupt import BAD_KINDS, UNSEEN_CATEGORY
from sampledata.files import TRUE_PD, write_original_csv, write_truth
from sampledata.generator import (
    generate_customers,
    make_history,
    make_snapshot,
    make_snapshots,
    snapshot_seed,
)
from sampledata.risk import DEFAULT_RATE, true_default_probability

__all__ = [
    "BAD_KINDS",
    "DEFAULT_RATE",
    "TRUE_PD",
    "UNSEEN_CATEGORY",
    "generate_customers",
    "make_history",
    "make_snapshot",
    "make_snapshots",
    "snapshot_seed",
    "true_default_probability",
    "write_original_csv",
    "write_truth",
]
