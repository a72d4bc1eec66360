"""The customer table's schema: the one place that names columns, their types and their rules.

Every other module takes column names, types, vocabularies and ranges from here. The model's manifest
pins `feature_spec()` at training time and scoring refuses a model whose spec differs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T

UUID = "uuid"
DEFAULT = "default"
SNAPSHOT_DATE = "snapshot_date"
REASON = "reason"
RAW_LINE = "raw_line"  # the whole input line of a CSV row with the wrong number of fields

PD = "pd"
IS_HIGH_RISK = "is_high_risk"
REASON_CODES = "reason_codes"
GRADE = "grade"  # rating grade on the model's master scale (1 = lowest pd)
MODEL_VERSION = "model_version"
SCORED_AT = "scored_at"

# Canonical textual UUID (8-4-4-4-12 hex digits); anything else is a malformed key.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

# Kinds of feature. Each kind fixes the Spark type, the parsing rule and how the model sees it.
NUMERIC = "numeric"  # real number, double
COUNT = "count"  # whole number, long (a value written `2.0` is 2; `2.5` is malformed)
CODE = "code"  # ordered integer code, long; the model reads it as a number, so unseen codes score
CATEGORY = "category"  # text with a known vocabulary; an unseen value is "missing" for the model
FLAG = "flag"  # True/False

SPARK_TYPES = {
    NUMERIC: T.DoubleType(),
    COUNT: T.LongType(),
    CODE: T.LongType(),
    CATEGORY: T.StringType(),
    FLAG: T.BooleanType(),
}


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    values: tuple = ()  # vocabulary (CATEGORY) or the codes seen in the reference data (CODE)

    @property
    def spark_type(self) -> T.DataType:
        return SPARK_TYPES[self.kind]

    def to_dict(self) -> dict:
        spec = {"name": self.name, "kind": self.kind, "spark_type": self.spark_type.simpleString()}
        if self.minimum is not None:
            spec["minimum"] = self.minimum
        if self.maximum is not None:
            spec["maximum"] = self.maximum
        if self.values:
            spec["values"] = list(self.values)
        return spec


MERCHANT_GROUPS = {
    "Automotive Products": ("Automotive Parts & Accessories", "Wheels & Tires"),
    "Children Products": (
        "Diversified children products",
        "Children Clothes & Nurturing products",
        "Children toys",
    ),
    "Clothing & Shoes": (
        "Youthful Shoes & Clothing",
        "General Shoes & Clothing",
        "Adult Shoes & Clothing",
        "Underwear",
    ),
    "Electronics": (
        "Diversified electronics",
        "Electronic equipment & Related accessories",
        "Household electronics (whitegoods/appliances)",
        "Car electronics",
        "Office machines & Related accessories (excl. computers)",
    ),
    "Entertainment": (
        "Diversified entertainment",
        "Books & Magazines",
        "Video Games & Related accessories",
        "Music & Movies",
    ),
    "Erotic Materials": (
        "Diversified erotic material",
        "Erotic Clothing & Accessories",
        "Sex toys",
    ),
    "Food & Beverage": ("Food & Beverage", "Tobacco"),
    "Health & Beauty": (
        "Dietary supplements",
        "Prescription optics",
        "Body & Hair Care",
        "Diversified Health & Beauty products",
        "Cosmetics",
        "Personal care & Body improvement",
        "Fragrances",
        "Pharmaceutical products",
    ),
    "Home & Garden": (
        "Pet supplies",
        "Decoration & Art",
        "Diversified Home & Garden products",
        "Tools & Home improvement",
        "Furniture",
        "Kitchenware",
        "Safety products",
        "Plants & Flowers",
        "Cleaning & Sanitary",
    ),
    "Intangible products": ("Dating services", "Digital services", "Travel services", "Event tickets"),
    "Jewelry & Accessories": (
        "Jewelry & Watches",
        "Non",
        "Diversified Jewelry & Accessories",
        "Bags & Wallets",
    ),
    "Leisure, Sport & Hobby": (
        "Concept stores & Miscellaneous",
        "Sports gear & Outdoor",
        "Prints & Photos",
        "Hobby articles",
        "Collectibles",
        "Costumes & Party supplies",
        "Musical Instruments & Equipment",
    ),
}
MERCHANT_CATEGORIES = tuple(sorted(c for cats in MERCHANT_GROUPS.values() for c in cats))
NAME_IN_EMAIL = ("F", "F+L", "F1+L", "Initials", "L", "L1+F", "Nick", "no_match")

_STATUS_CODES = (0, 1, 2, 3, 5)
_ACCOUNT_CODES = (1, 2, 3, 4)


def _num(name, maximum=None):
    return Feature(name, NUMERIC, minimum=0.0, maximum=maximum)


def _count(name, minimum=0.0, maximum=None):
    return Feature(name, COUNT, minimum=minimum, maximum=maximum)


def _code(name, values):
    return Feature(name, CODE, minimum=0.0, values=values)


# The 41 features, in the column order of the original file.
FEATURES: tuple[Feature, ...] = (
    _count("account_amount_added_12_24m"),
    _num("account_days_in_dc_12_24m"),
    _num("account_days_in_rem_12_24m"),
    _num("account_days_in_term_12_24m"),
    _num("account_incoming_debt_vs_paid_0_24m"),
    _code("account_status", _ACCOUNT_CODES),
    _code("account_worst_status_0_3m", _ACCOUNT_CODES),
    _code("account_worst_status_12_24m", _ACCOUNT_CODES),
    _code("account_worst_status_3_6m", _ACCOUNT_CODES),
    _code("account_worst_status_6_12m", _ACCOUNT_CODES),
    _count("age", minimum=18.0, maximum=120.0),
    _num("avg_payment_span_0_12m"),
    _num("avg_payment_span_0_3m"),
    Feature("merchant_category", CATEGORY, values=MERCHANT_CATEGORIES),
    Feature("merchant_group", CATEGORY, values=tuple(sorted(MERCHANT_GROUPS))),
    Feature("has_paid", FLAG),
    _num("max_paid_inv_0_12m"),
    _num("max_paid_inv_0_24m"),
    Feature("name_in_email", CATEGORY, values=NAME_IN_EMAIL),
    _num("num_active_div_by_paid_inv_0_12m"),
    _count("num_active_inv"),
    _count("num_arch_dc_0_12m"),
    _count("num_arch_dc_12_24m"),
    _count("num_arch_ok_0_12m"),
    _count("num_arch_ok_12_24m"),
    _count("num_arch_rem_0_12m"),
    _num("num_arch_written_off_0_12m"),
    _num("num_arch_written_off_12_24m"),
    _count("num_unpaid_bills"),
    _code("status_last_archived_0_24m", _STATUS_CODES),
    _code("status_2nd_last_archived_0_24m", _STATUS_CODES),
    _code("status_3rd_last_archived_0_24m", _STATUS_CODES),
    _code("status_max_archived_0_6_months", _STATUS_CODES),
    _code("status_max_archived_0_12_months", _STATUS_CODES),
    _code("status_max_archived_0_24_months", _STATUS_CODES),
    _count("recovery_debt"),
    _count("sum_capital_paid_account_0_12m"),
    _count("sum_capital_paid_account_12_24m"),
    _count("sum_paid_inv_0_12m"),
    _num("time_hours", maximum=24.0),
    _code("worst_status_active_inv", (1, 2, 3)),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
REQUIRED_COLUMNS: tuple[str, ...] = (UUID, *FEATURE_NAMES)
# The original file's column order: uuid, default, then the features.
INPUT_COLUMNS: tuple[str, ...] = (UUID, DEFAULT, *FEATURE_NAMES)


def feature_spec() -> list[dict]:
    """The features as plain data, as pinned in a model's manifest."""
    return [f.to_dict() for f in FEATURES]


SCORED_SCHEMA = T.StructType(
    [
        T.StructField(UUID, T.StringType(), False),
        T.StructField(PD, T.DoubleType(), False),
        T.StructField(IS_HIGH_RISK, T.BooleanType(), False),
        T.StructField(REASON_CODES, T.ArrayType(T.StringType(), True), True),
        T.StructField(GRADE, T.IntegerType(), True),
        T.StructField(MODEL_VERSION, T.StringType(), False),
        T.StructField(SCORED_AT, T.TimestampType(), False),
        T.StructField(SNAPSHOT_DATE, T.DateType(), False),
    ]
)

# The shadow table: challengers scored beside the live model, one row per scored customer and challenger,
# at <output root>/_challengers/snapshot_date=YYYY-MM-DD/model_version=<challenger's version>/part-*.parquet.
# The rows are exactly the main table's rows of that run (same uuids); `champion_version` is the live model's.
CHALLENGERS_DIR = "_challengers"
# The backtest's report folder under its output, and in it the comparison of the champion with its
# challengers: written by the backtest, read by `defaultrisk promote` as the evidence of a promotion.
BACKTEST_REPORT_DIR = "_report"
COMPARISON_FILE = "comparison.json"
CHAMPION_VERSION = "champion_version"
SHADOW_SCHEMA = T.StructType(
    [
        T.StructField(UUID, T.StringType(), False),
        T.StructField(PD, T.DoubleType(), False),
        T.StructField(GRADE, T.IntegerType(), True),
        T.StructField(CHAMPION_VERSION, T.StringType(), False),
        T.StructField(SCORED_AT, T.TimestampType(), False),
        T.StructField(SNAPSHOT_DATE, T.DateType(), False),
        T.StructField(MODEL_VERSION, T.StringType(), False),
    ]
)
