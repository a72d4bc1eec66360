"""Training keeps its rejected rows in the model folder, written whole and swapped in."""

import pyarrow.parquet as pq
from sampledata import make_history, write_original_csv

from defaultrisk.training.pipeline import run_train

from conftest import small_train_config


def test_rejected_training_rows_land_in_the_model_folder_whole(spark, tmp_path):
    frame, _ = make_history(3_000, seed=21)
    frame.loc[0, "age"] = 7  # below the minimum age: rejected, with its reason
    path = tmp_path / "history.csv"
    write_original_csv(frame, path)
    model_dir = tmp_path / "model"
    (model_dir / "rejects").mkdir(parents=True)
    (model_dir / "rejects" / "stale.txt").write_text("left by an earlier run")
    summary = run_train(spark, small_train_config(path, model_dir))
    assert summary["rejected_rows"] == 1
    rejects = pq.read_table(model_dir / "rejects").to_pylist()
    assert [r["reason"] for r in rejects] == ["age: below minimum 18"]
    assert sorted(p.name for p in model_dir.iterdir() if "staging" in p.name) == []
    assert not (model_dir / "rejects" / "stale.txt").exists()
