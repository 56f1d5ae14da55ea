"""The whole workflow end to end, through the real programs, on a tiny synthetic dataset:
train, resume, eval, export, load the SavedModel without yt8m_fusion, inference CSV."""

import json
import os
import textwrap

import numpy as np
import pytest

from programs import run_program
from yt8m_fusion import data as yt8m_data

NUM_CLASSES = 20
TINY_ATTEND_FUSION = ["--model=AttendFusion", f"--num_classes={NUM_CLASSES}",
                      "--attend_hidden_size=64", "--attend_token_size=16",
                      "--attend_num_heads=2", "--attend_key_dim=8"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  folder = tmp_path_factory.mktemp("data")
  return yt8m_data.generate_dataset(str(folder), num_videos=96, num_classes=NUM_CLASSES,
                                    seed=3, num_shards=2)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
  """Trains 3 steps, then resumes to 5: the state the other tests inspect."""
  train_dir = str(tmp_path_factory.mktemp("train"))
  common = [*TINY_ATTEND_FUSION, f"--train_dir={train_dir}",
            f"--train_data_pattern={dataset['video']['train']}",
            f"--eval_data_pattern={dataset['video']['validate']}", "--batch_size=16",
            "--export_model_steps=2", "--log_every_n_steps=1", "--num_epochs=100"]
  first = run_program("train.py", *common, "--max_steps=3")
  second = run_program("train.py", *common, "--max_steps=5")
  return {"dir": train_dir, "first": first, "second": second, "data": dataset}


def test_training_writes_checkpoints_flags_eval_and_export(trained):
  names = set(os.listdir(trained["dir"]))
  assert {"model_flags.json", "checkpoint", "train_log.csv", "eval", "export"} <= names
  assert "model.ckpt-5.index" in names
  flags = json.loads(open(os.path.join(trained["dir"], "model_flags.json")).read())
  assert flags["model"] == "AttendFusion" and flags["model_params"]["attend_hidden_size"] == 64
  assert any(name.startswith("events.out.tfevents") for name in names)
  assert sorted(os.listdir(os.path.join(trained["dir"], "export"))) == ["3", "5"]
  log = trained["first"].stderr
  assert "training step 2 | Loss:" in log and "Examples/sec:" in log and "GAP:" in log
  assert "SavedModel for TF Serving:" in log


def test_rerunning_resumes_and_the_step_count_continues(trained):
  assert "Resuming from" in trained["second"].stderr
  assert "model.ckpt-3" in trained["second"].stderr
  rows = open(os.path.join(trained["dir"], "train_log.csv")).read().splitlines()
  steps = [int(row.split(",")[0]) for row in rows[1:]]
  assert steps == sorted(steps) and steps[-1] == 5 and 4 in steps


def test_eval_json_has_every_metric(trained):
  metrics = json.loads(open(os.path.join(trained["dir"], "eval", "metrics.json")).read())
  assert metrics["step"] == 5
  for key in ("gap", "avg_hit_at_one", "avg_perr", "map", "f1", "avg_loss", "num_examples"):
    assert np.isfinite(metrics[key]), key
  assert metrics["num_examples"] == trained["data"]["num_videos"]["validate"]
  assert os.path.exists(os.path.join(trained["dir"], "eval", "metrics-5.json"))


def test_flags_that_contradict_model_flags_json_are_refused(trained):
  result = run_program("train.py", f"--train_dir={trained['dir']}", "--model=FCModel",
                       f"--train_data_pattern={trained['data']['video']['train']}",
                       check=False)
  assert result.returncode != 0
  assert "--model: saved 'AttendFusion', given 'FCModel'" in result.stderr
  assert "Traceback" not in result.stderr


def test_eval_run_once(trained):
  result = run_program("eval.py", f"--train_dir={trained['dir']}", "--run_once",
                       f"--eval_data_pattern={trained['data']['video']['validate']}")
  assert "GAP:" in result.stderr and "epoch/eval number 5" in result.stderr


def test_saved_model_serves_without_yt8m_fusion_and_matches_the_csv(trained, tmp_path):
  export_dir = os.path.join(trained["dir"], "export", "5")
  outputs = str(tmp_path / "served.json")
  script = textwrap.dedent(f"""
      import json, sys
      import tensorflow as tf
      files = sorted(tf.io.gfile.glob({trained['data']['video']['test']!r}))
      records = [r.numpy() for f in files for r in tf.data.TFRecordDataset(f)]
      serve = tf.saved_model.load({export_dir!r}).signatures["serving_default"]
      out = serve(example_bytes=tf.constant(records))
      assert "yt8m_fusion" not in sys.modules
      json.dump({{"ids": [v.decode() for v in out["video_id"].numpy()],
                  "classes": out["class_indexes"].numpy().tolist(),
                  "scores": out["predictions"].numpy().tolist()}}, open({outputs!r}, "w"))
      """)
  _run_python(script)
  served = json.load(open(outputs))
  assert np.array(served["classes"]).shape == (len(served["ids"]), 20)
  assert all(np.diff(row).max() <= 0 for row in served["scores"]), "sorted by score"

  csv_path = str(tmp_path / "predictions.csv")
  run_program("inference.py", f"--train_dir={trained['dir']}", f"--output_file={csv_path}",
              f"--input_data_pattern={trained['data']['video']['test']}")
  assert open(csv_path).readline() == "VideoId,LabelConfidencePairs\n"
  by_id = read_csv(csv_path)
  assert sorted(by_id) == sorted(served["ids"])
  for video_id, classes, scores in zip(served["ids"], served["classes"], served["scores"]):
    assert by_id[video_id][0] == classes
    np.testing.assert_allclose(by_id[video_id][1], scores, rtol=1e-5, atol=1e-7)

  # The same CSV through the SavedModel.
  csv_from_export = str(tmp_path / "from_export.csv")
  run_program("inference.py", f"--saved_model_dir={export_dir}",
              f"--output_file={csv_from_export}",
              f"--input_data_pattern={trained['data']['video']['test']}")
  from_export = read_csv(csv_from_export)
  assert sorted(from_export) == sorted(by_id)
  for video_id, (classes, scores) in from_export.items():
    assert classes == by_id[video_id][0]
    np.testing.assert_allclose(scores, by_id[video_id][1], rtol=1e-5, atol=1e-7)


def test_saved_model_cli_reads_the_signatures(trained):
  import subprocess  # pylint: disable=import-outside-toplevel
  export_dir = os.path.join(trained["dir"], "export", "5")
  shown = subprocess.run(["saved_model_cli", "show", "--all", "--dir", export_dir],
                         capture_output=True, text=True, check=True).stdout
  assert "signature_def['serving_default']" in shown
  assert "inputs['example_bytes']" in shown and "outputs['class_indexes']" in shown
  assert "signature_def['probabilities']" in shown


def test_model_tgz_round_trip_gives_the_same_csv(trained, tmp_path):
  first, second = str(tmp_path / "a.csv"), str(tmp_path / "b.csv")
  tgz = str(tmp_path / "model.tgz")
  pattern = trained["data"]["video"]["test"]
  run_program("inference.py", f"--train_dir={trained['dir']}", f"--output_file={first}",
              f"--input_data_pattern={pattern}", f"--output_model_tgz={tgz}")
  run_program("inference.py", f"--input_model_tgz={tgz}", f"--output_file={second}",
              f"--untar_model_dir={tmp_path / 'untar'}", f"--input_data_pattern={pattern}")
  assert open(first).read() == open(second).read()


def read_csv(path):
  """{video_id: ([classes], [scores])} from a video-level submission."""
  rows = {}
  for line in open(path).read().splitlines()[1:]:
    video_id, pairs = line.split(",")
    values = pairs.split()
    rows[video_id] = ([int(c) for c in values[0::2]], [float(s) for s in values[1::2]])
  return rows


def _run_python(script):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), check=False)
  assert result.returncode == 0, result.stderr[-4000:]
