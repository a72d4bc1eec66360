#!/usr/bin/env bash
# The whole product on embedded defaults: generate sample data, train and register a champion and a
# challenger in a local model registry, backfill three snapshot dates with the challenger scored beside
# the champion, show the run log and the drift report, backtest both against the outcomes a year later,
# and promote the challenger only if the comparison supports it.
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
# The local model registry (MLflow with a SQLite file) of this demo, afresh each run.
export DEFAULTRISK_REGISTRY="$(cd "$OUT" && pwd)/registry"
rm -rf "$DEFAULTRISK_REGISTRY"
version() { "$PY" -c 'import json, sys; print(json.loads(sys.stdin.read())["registry"]["version"])'; }

echo "== generating sample data in $OUT/data"
"$PY" scripts/make_sample_data.py --out "$OUT/data" --dates "$(IFS=,; echo "${DATES[*]}")" > "$OUT/make_sample_data.log"

echo "== training on $OUT/data/history.csv, registered as 'pd' in $DEFAULTRISK_REGISTRY"
# The truth file (each generated customer's real default probability) lets the report show the ceiling.
"$PY" jobs/train.py --input "$OUT/data/history.csv" --model-dir "$OUT/model" \
  --truth "$OUT/data/truth/history_true_pd.csv" --register pd 2> "$OUT/train.log" | tail -n 1 | tee "$OUT/train.json"
CHAMPION=$(version < "$OUT/train.json")
"$PY" -m defaultrisk promote pd "$CHAMPION" 2> "$OUT/promote.log" | tail -n 1  # the first champion: no evidence

echo "== training a challenger (shallower trees, no search, another seed), registered as 'pd' too"
cat > "$OUT/challenger.toml" <<'TOML'
[train]
seed = 11
[search]
enabled = false
[xgboost]
n_estimators = 300
max_depth = 3
TOML
"$PY" jobs/train.py --input "$OUT/data/history.csv" --model-dir "$OUT/challenger" \
  --config "$OUT/challenger.toml" --register pd 2> "$OUT/train_challenger.log" | tail -n 1 | tee "$OUT/train_challenger.json"
CHALLENGER=$(version < "$OUT/train_challenger.json")

echo "== scoring snapshots ${DATES[0]} to ${DATES[-1]} with pd@champion, version $CHALLENGER in its shadow"
echo "   (a backfill: each date its own atomic run)"
"$PY" jobs/score.py --input "$OUT/data/snapshots/customers_{snapshot_date}.csv" --model-dir models:/pd@champion \
  --challenger "models:/pd/$CHALLENGER" --output "$OUT/scored" --from "${DATES[0]}" --to "${DATES[-1]}" \
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

echo "== backtest: pd against the defaults observed in the 12 months after each snapshot, champion and challenger"
"$PY" jobs/backtest.py --scored "$OUT/scored" --outcomes "$OUT/data/outcomes.csv" \
  --model-dir models:/pd@champion --model-dir "models:/pd/$CHALLENGER" \
  --migration "${DATES[0]},${DATES[-1]}" 2> "$OUT/backtest.log" | tail -n 1 || true
"$PY" - "$OUT/scored/_backtest" <<'PY'
import sys
import pyarrow.dataset as ds
table = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table().to_pandas()
portfolio = table[table["grade"].isna()].sort_values("snapshot_date")
print(portfolio[["snapshot_date", "customers", "expected_defaults", "observed_defaults", "jeffreys_lower",
                 "jeffreys_upper", "jeffreys_p_value", "roc_auc"]].to_string(index=False))
PY

echo "== the comparison on the same customers ($OUT/scored/_backtest/_report/comparison.json)"
"$PY" - "$OUT/scored/_backtest/_report/comparison.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for c in doc["comparisons"]:
    print(f"champion {c['champion_version']} vs challenger {c['challenger_version']}: "
          f"{c['customers']} customers, {c['defaults']} defaults, {len(c['snapshots'])} snapshots")
    for role in ("champion", "challenger"):
        m = c[role]
        print(f"  {role:10s} AUC {m['roc_auc']:.4f}  log loss {m['log_loss']:.5f}  Brier {m['brier']:.5f}  "
              f"expected/observed {m['expected_defaults']:.1f}/{m['observed_defaults']}  "
              f"Jeffreys p {m['jeffreys_p_value']:.3f}")
    print(f"  difference AUC {c['delta_roc_auc']:+.4f} (DeLong p {c['delong_p_value']:.3f}), "
          f"log loss {c['delta_log_loss']:+.5f}, Brier {c['delta_brier']:+.6f}")
PY

echo "== promotion: the challenger takes @champion only if it ranks no worse and predicts better"
# The rule of docs/promotion.md: AUC not significantly lower (DeLong, 5%), lower log loss.
if "$PY" - "$OUT/scored/_backtest/_report/comparison.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["comparisons"][0]
worse_ranking = c["delta_roc_auc"] < 0 and c["delong_p_value"] < 0.05
sys.exit(0 if not worse_ranking and c["delta_log_loss"] < 0 else 1)
PY
then
  "$PY" -m defaultrisk promote pd "$CHALLENGER" --evidence "$OUT/scored/_backtest" 2> "$OUT/promote.log" | tail -n 1
else
  echo "kept version $CHAMPION as champion: the evidence does not favour version $CHALLENGER"
  echo "(to promote anyway: defaultrisk promote pd $CHALLENGER --evidence $OUT/scored/_backtest)"
fi

cat <<TXT

Wrote:
  model, manifest and metrics   $OUT/model/  (model.json, manifest.json, metrics.json); challenger: $OUT/challenger/
  model registry (MLflow)       $OUT/registry/  (mlflow.db, artifacts/): versions $CHAMPION and $CHALLENGER of 'pd' 
  evaluation report (PNG+JSON)  $OUT/model/report/
  scored table (Parquet)        $OUT/scored/snapshot_date=YYYY-MM-DD/
  rejected rows with reasons    $OUT/scored/_rejects/snapshot_date=YYYY-MM-DD/
  run log (one row per run)     $OUT/scored/_runs/
  drift report per date         $OUT/scored/_drift/snapshot_date=YYYY-MM-DD/  (drift.json, .parquet, .png)
  results.csv per date          $OUT/results/YYYY-MM-DD/results.csv
  outcomes (generated)          $OUT/data/outcomes.csv
  challengers' shadow table     $OUT/scored/_challengers/snapshot_date=YYYY-MM-DD/model_version=.../
  backtest table, plots         $OUT/scored/_backtest/  (snapshot_date=.../, _challengers/, _report/ with
                                comparison.json and PNG plots)
  job logs                      $OUT/*.log
TXT
