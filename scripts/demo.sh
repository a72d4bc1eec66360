#!/usr/bin/env bash
# The whole product on embedded defaults: generate sample data, train once, backfill three snapshot dates,
# show the run log and the drift report, then backtest the scores against the outcomes a year later.
# Usage: scripts/demo.sh [OUTPUT_DIR]   (default: demo-output)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
VENV="${DEFAULTRISK_VENV:-.venv}"
PY="$PWD/$VENV/bin/python"
export PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY"

OUT="${1:-demo-output}"
# A year back: their 12-month performance windows have closed, so the demo can backtest them.
DATES=(2025-11-21 2025-11-22 2025-11-23)
mkdir -p "$OUT"

echo "== generating sample data in $OUT/data"
"$PY" scripts/make_sample_data.py --out "$OUT/data" --dates "$(IFS=,; echo "${DATES[*]}")" > "$OUT/make_sample_data.log"

echo "== training on $OUT/data/history.csv"
# The truth file (each generated customer's real default probability) lets the report show the ceiling.
"$PY" jobs/train.py --input "$OUT/data/history.csv" --model-dir "$OUT/model" \
  --truth "$OUT/data/truth/history_true_pd.csv" 2> "$OUT/train.log" | tail -n 1

echo "== scoring snapshots ${DATES[0]} to ${DATES[-1]} (a backfill: each date its own atomic run)"
"$PY" jobs/score.py --input "$OUT/data/snapshots/customers_{snapshot_date}.csv" --model-dir "$OUT/model" \
  --output "$OUT/scored" --from "${DATES[0]}" --to "${DATES[-1]}" \
  --results-csv "$OUT/results/{snapshot_date}/results.csv" 2> "$OUT/score.log" | tail -n 1

echo "== run log ($OUT/scored/_runs) and drift (PSI against the training rows)"
"$PY" - "$OUT/scored" <<'PY'
import json, sys
from pathlib import Path
import pyarrow.parquet as pq
root = Path(sys.argv[1])
runs = pq.read_table(root / "_runs").sort_by("started_at").to_pandas()
columns = ["snapshot_date", "status", "model_version", "input_rows", "scored_rows", "rejected_rows",
           "pd_mean", "pd_p99", "high_risk_share", "max_psi"]
print(runs[columns].to_string(index=False))
for report in sorted(root.glob("_drift/snapshot_date=*/drift.json")):
    doc = json.loads(report.read_text())
    top = doc["columns"][0]
    print(f"{doc['snapshot_date']}: bands {doc['bands']}, top mover {top['feature']} PSI {top['psi']:.4f}"
          f" -> {report.parent / 'top_movers.png'}")
PY

echo "== backtest: pd against the defaults observed in the 12 months after each snapshot"
"$PY" jobs/backtest.py --scored "$OUT/scored" --outcomes "$OUT/data/outcomes.csv" --model-dir "$OUT/model" \
  --migration "${DATES[0]},${DATES[-1]}" 2> "$OUT/backtest.log" | tail -n 1 || true
"$PY" - "$OUT/scored/_backtest" <<'PY'
import sys
import pyarrow.dataset as ds
table = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table().to_pandas()
portfolio = table[table["grade"].isna()].sort_values("snapshot_date")
print(portfolio[["snapshot_date", "customers", "expected_defaults", "observed_defaults", "jeffreys_lower",
                 "jeffreys_upper", "jeffreys_p_value", "roc_auc"]].to_string(index=False))
PY

cat <<TXT

Wrote:
  model, manifest and metrics   $OUT/model/  (model.json, manifest.json, metrics.json)
  evaluation report (PNG+JSON)  $OUT/model/report/
  scored table (Parquet)        $OUT/scored/snapshot_date=YYYY-MM-DD/
  rejected rows with reasons    $OUT/scored/_rejects/snapshot_date=YYYY-MM-DD/
  run log (one row per run)     $OUT/scored/_runs/
  drift report per date         $OUT/scored/_drift/snapshot_date=YYYY-MM-DD/  (drift.json, .parquet, .png)
  results.csv per date          $OUT/results/YYYY-MM-DD/results.csv
  outcomes (generated)          $OUT/data/outcomes.csv
  backtest table, plots         $OUT/scored/_backtest/  (snapshot_date=.../, _report/ with PNG plots)
  job logs                      $OUT/*.log
TXT
