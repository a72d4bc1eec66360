"""`defaultrisk promote NAME VERSION --evidence BACKTEST_OUTPUT`: move the champion alias on evidence.

The evidence is the backtest's comparison (`BACKTEST_OUTPUT/_report/comparison.json`) of this version
against the version holding the alias now, on the same customers and snapshots. Evidence about other
versions (an older champion, another challenger) is refused: a promotion stands on a comparison with
the model it replaces. What it stood on is recorded on the version as tags, with who and when. The
first champion (no version holds the alias yet) needs no evidence. No Spark: registry calls only.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from defaultrisk.errors import EXIT_OK, ConfigError, DefaultRiskError, InputError, ModelError, first_line
from defaultrisk.registry.location import connect, locate
from defaultrisk.registry.register import MODEL_VERSION_TAG
from defaultrisk.registry.resolve import ModelRef, model_version
from defaultrisk.schema import BACKTEST_REPORT_DIR, COMPARISON_FILE

CHAMPION = "champion"
COMPARISON_PATH = Path(BACKTEST_REPORT_DIR) / COMPARISON_FILE  # under the backtest's output
# Recorded on the promoted version (tag names), from the comparison file and its chosen comparison.
RUN_FIELDS = {"backtest_run_id": "run_id", "backtested_at": "backtested_at"}
COMPARISON_FIELDS = (
    "snapshots",
    "customers",
    "defaults",
    "delta_roc_auc",
    "delong_p_value",
    "delta_log_loss",
    "delta_brier",
)


def add_promote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the registered model's name")
    parser.add_argument("version", help="the version to promote (a number)")
    parser.add_argument(
        "--evidence",
        metavar="BACKTEST_OUTPUT",
        help="the backtest output comparing this version with the alias's holder "
        "(its _report/comparison.json); not needed for a first champion",
    )
    parser.add_argument("--alias", default=CHAMPION, help="the alias to move (default: champion)")
    parser.add_argument(
        "--registry",
        metavar="DIR_OR_URI",
        help="a local registry folder or a tracking URI "
        "(default: MLFLOW_TRACKING_URI, else DEFAULTRISK_REGISTRY)",
    )


def run_promote(args: argparse.Namespace, spark=None) -> int:
    """Promote; the JSON summary on stdout, or one line on stderr and the error's exit code."""
    try:
        summary = promote(args.name, args.version, args.evidence, args.alias, args.registry)
    except DefaultRiskError as exc:
        print(f"promote: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(summary))
    return EXIT_OK


def promote(name: str, version: str, evidence: str | None, alias: str, registry: str | None) -> dict:
    """Check the evidence against the alias's holder, record it on `version`, move the alias."""
    if not version.isdigit():
        raise ConfigError(f"VERSION is a version number, not {version!r}")
    location = locate(registry)
    client = connect(location)
    try:
        return _promote(client, name, version, evidence, alias)
    except DefaultRiskError:
        raise
    except Exception as exc:  # the registry's own failure (unreachable, refused): its first line
        raise ModelError(f"registry at {location}: {first_line(exc)}") from exc


def _promote(client, name: str, version: str, evidence: str | None, alias: str) -> dict:
    chosen = model_version(client, ModelRef(name, version=version))
    challenger_id = _identity(chosen, name)
    try:
        holder = model_version(client, ModelRef(name, alias=alias))
    except ModelError:
        holder = None  # the first to hold it
    if holder is not None and holder.version == chosen.version:
        raise ConfigError(f"version {version} of {name!r} already holds @{alias}")
    champion_id = _identity(holder, name) if holder is not None else None
    if holder is not None and not evidence:
        raise ConfigError(
            f"version {holder.version} ({champion_id}) holds @{alias}: give --evidence BACKTEST_OUTPUT "
            f"comparing {challenger_id} with it"
        )
    found = read_evidence(Path(evidence), challenger_id, champion_id) if evidence else None
    now = datetime.now(UTC).isoformat(timespec="seconds")
    tags = {
        "promoted_alias": alias,
        "promoted_at": now,
        "promoted_by": getpass.getuser(),
        "previous_champion": holder.version if holder is not None else "",
        "previous_champion_model_version": champion_id or "",
    }
    if found is not None:
        run, comparison = found
        tags.update({tag: str(run.get(key, "")) for tag, key in RUN_FIELDS.items()})
        tags.update({key: _tag_value(comparison.get(key)) for key in COMPARISON_FIELDS})
        tags["evidence"] = str(Path(evidence).resolve() / COMPARISON_PATH)
    for key, value in tags.items():
        client.set_model_version_tag(name, chosen.version, key, value)
    client.set_registered_model_alias(name, alias, chosen.version)
    return {
        "name": name,
        "alias": alias,
        "version": chosen.version,
        "model_version": challenger_id,
        "previous": {"version": holder.version, "model_version": champion_id} if holder is not None else None,
        "evidence": {k: v for k, v in tags.items() if not k.startswith(("promoted_", "previous_"))} or None,
        "promoted_at": tags["promoted_at"],
        "promoted_by": tags["promoted_by"],
    }


def read_evidence(output: Path, challenger_id: str, champion_id: str | None) -> tuple[dict, dict]:
    """The comparison file and its comparison of `challenger_id` against `champion_id` (against any
    model when there is no champion yet); an input error naming what the file compares otherwise."""
    path = output / COMPARISON_PATH
    try:
        run = json.loads(path.read_text())
        comparisons = list(run["comparisons"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"no backtest comparison at {path}: {first_line(exc)}") from exc
    for comparison in comparisons:
        if comparison.get("challenger_version") == challenger_id and champion_id in (
            None,
            comparison.get("champion_version"),
        ):
            return run, comparison
    compared = ", ".join(f"{c.get('challenger_version')} vs {c.get('champion_version')}" for c in comparisons)
    against = f"against the champion {champion_id}" if champion_id else "at all"
    raise InputError(
        f"{path} does not compare {challenger_id} {against}; it compares (challenger vs champion): "
        f"{compared or 'nothing'}"
    )


def _identity(version, name: str) -> str:
    found = version.tags.get(MODEL_VERSION_TAG)
    if not found:
        raise ModelError(
            f"version {version.version} of {name!r} has no {MODEL_VERSION_TAG} tag (not registered by "
            f"`defaultrisk train --register`)"
        )
    return found


def _tag_value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
