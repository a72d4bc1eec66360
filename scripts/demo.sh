#!/usr/bin/env bash
# The whole product on embedded defaults: generate sample data, train once, score three snapshot dates.
# Usage: scripts/demo.sh [OUTPUT_DIR]   (default: demo-output)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
VENV="${DEFAULTRISK_VENV:-.venv}"
PY="$PWD/$VENV/bin/python"
export PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY"

OUT="${1:-demo-output}"
DATES=(2026-11-21 2026-11-22 2026-11-23)
mkdir -p "$OUT"

echo "== generating sample data in $OUT/data"
"$PY" scripts/make_sample_data.py --out "$OUT/data" --dates "$(IFS=,; echo "${DATES[*]}")" > "$OUT/make_sample_data.log"

echo "== training on $OUT/data/history.csv"
# The truth file (each generated customer's real default probability) lets the report show the ceiling.
"$PY" jobs/train.py --input "$OUT/data/history.csv" --model-dir "$OUT/model" \
  --truth "$OUT/data/truth/history_true_pd.csv" 2> "$OUT/train.log" | tail -n 1

for d in "${DATES[@]}"; do
  echo "== scoring snapshot $d"
  "$PY" jobs/score.py --input "$OUT/data/snapshots/customers_$d.csv" --model-dir "$OUT/model" \
    --output "$OUT/scored" --snapshot-date "$d" --results-csv "$OUT/results/$d/results.csv" \
    2> "$OUT/score-$d.log" | tail -n 1
done

cat <<TXT

Wrote:
  model, manifest and metrics   $OUT/model/  (model.json, manifest.json, metrics.json)
  evaluation report (PNG+JSON)  $OUT/model/report/
  scored table (Parquet)        $OUT/scored/snapshot_date=YYYY-MM-DD/
  rejected rows with reasons    $OUT/scored/_rejects/snapshot_date=YYYY-MM-DD/
  results.csv per date          $OUT/results/YYYY-MM-DD/results.csv
  job logs                      $OUT/*.log
TXT
