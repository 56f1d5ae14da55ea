"""Ensembles: prediction.EnsemblePredictor, eval.py / inference.py / the export with several
models, on real YouTube-8M records.

Two different tiny models (an AttendFusion and a LogisticModel) are trained for a few steps by
train.py; the ensemble's probabilities must be the weighted mean of theirs, through the Python
API, eval.py's metrics, inference.py's CSV and the exported ensemble SavedModel loaded in a
fresh process.
"""

import csv
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from programs import REPO, run_program
from yt8m_fusion import evaluation
from yt8m_fusion import losses
from yt8m_fusion import prediction
from yt8m_fusion.errors import UserError
from yt8m_fusion.models import ModelConfig

REAL_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "yt8m-2018-video")
REAL_TRAIN = os.path.join(REAL_DATA, "train", "validate000[0-1].tfrecord")
REAL_VALIDATE = os.path.join(REAL_DATA, "validate", "validate0100.tfrecord")
TINY_ATTEND_FUSION = ["--model=AttendFusion", "--attend_hidden_size=64", "--attend_token_size=16",
                      "--attend_num_heads=2", "--attend_key_dim=8", "--attend_frame_hidden_size=16"]
WEIGHTS = (0.75, 0.25)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
  """[train_dir of a tiny AttendFusion, train_dir of a LogisticModel]."""
  if not os.path.isdir(REAL_DATA):
    pytest.skip(f"the real YouTube-8M sample is not at {REAL_DATA}")
  folder = tmp_path_factory.mktemp("ensemble")
  train_dirs = []
  for name, model_flags in (("attend", TINY_ATTEND_FUSION),
                            ("logistic", ["--model=LogisticModel"])):
    train_dir = str(folder / name)
    run_program("train.py", *model_flags, f"--train_dir={train_dir}",
                f"--train_data_pattern={REAL_TRAIN}", f"--eval_data_pattern={REAL_VALIDATE}",
                "--batch_size=64", "--max_steps=4", "--base_learning_rate=0.003")
    train_dirs.append(train_dir)
  return train_dirs


@pytest.fixture(scope="module")
def expected(members):
  """{video id: the weighted mean of the members' probabilities}, and the labels."""
  probabilities, labels = [], {}
  for train_dir in members:
    by_id = {}
    with prediction.load(train_dir) as predictor:
      for batch in predictor.predictions(REAL_VALIDATE, batch_size=100, labels=True):
        by_id.update(zip(batch.video_ids, batch.probabilities))
        labels.update(zip(batch.video_ids, batch.labels))
    probabilities.append(by_id)
  mean = {video_id: WEIGHTS[0] * probabilities[0][video_id]
          + WEIGHTS[1] * probabilities[1][video_id] for video_id in probabilities[0]}
  assert len(mean) > 200
  assert max(float(np.abs(probabilities[0][v] - probabilities[1][v]).max()) for v in mean) > 1e-3
  return mean, labels


def _probabilities_by_id(predictor):
  by_id = {}
  for batch in predictor.predictions(REAL_VALIDATE, batch_size=100):
    assert batch.probabilities.shape == (len(batch), 3862)
    by_id.update(zip(batch.video_ids, batch.probabilities))
  return by_id


def _max_difference(got, expected):
  assert sorted(got) == sorted(expected)
  return max(float(np.abs(got[v] - expected[v]).max()) for v in expected)


def test_the_ensemble_is_the_weighted_mean(members, expected):
  with prediction.ensemble(members, [3, 1]) as ensemble:  # normalized to 0.75, 0.25
    assert isinstance(ensemble, prediction.EnsemblePredictor) and ensemble.reads_once
    assert ensemble.weights == list(WEIGHTS)
    assert ensemble.spec.feature_names == ("mean_rgb", "mean_audio")
    assert _max_difference(_probabilities_by_id(ensemble), expected[0]) <= 1e-6
    batch = next(ensemble.predictions(REAL_VALIDATE, batch_size=50, top_k=5))
  indexes = np.argsort(-batch.probabilities, axis=1, kind="stable")[:, :5]
  np.testing.assert_array_equal(batch.top_indexes, indexes)


def test_eval_py_on_an_ensemble(members, expected, tmp_path):
  output_dir = tmp_path / "ensemble_eval"
  run_program("eval.py", f"--train_dir={','.join(members)}", "--ensemble_weights=0.75,0.25",
              f"--ensemble_output_dir={output_dir}", f"--eval_data_pattern={REAL_VALIDATE}",
              "--run_once", "--batch_size=128")
  record = json.loads((output_dir / "metrics.json").read_text())
  assert [member["train_dir"] for member in record["members"]] == members
  assert [member["weight"] for member in record["members"]] == list(WEIGHTS)
  mean, labels = expected
  video_ids = sorted(mean)
  batch = prediction.PredictionBatch(video_ids=np.asarray(video_ids),
                                     probabilities=np.stack([mean[v] for v in video_ids]),
                                     labels=np.stack([labels[v] for v in video_ids]))
  want = evaluation.compute_metrics([batch], 3862, losses.get_loss("CrossEntropyLoss"))
  assert record["num_examples"] == want["num_examples"] == len(video_ids)
  for key in ("gap", "avg_hit_at_one", "avg_perr", "map"):
    assert record[key] == pytest.approx(want[key], abs=1e-5), key
  assert (output_dir / f"metrics-{record['step']}.json").exists()

  refused = run_program("eval.py", f"--train_dir={','.join(members)}",
                        f"--ensemble_output_dir={output_dir}", check=False)
  assert refused.returncode != 0 and "needs --run_once" in refused.stderr


def _read_csv(path):
  with open(path, encoding="utf-8") as handle:
    rows = list(csv.reader(handle))
  assert rows[0] == ["VideoId", "LabelConfidencePairs"]
  return {row[0]: row[1].split() for row in rows[1:]}


def test_inference_py_writes_the_ensembles_csv(members, expected, tmp_path):
  output = tmp_path / "ensemble.csv"
  run_program("inference.py", f"--train_dir={','.join(members)}", "--ensemble_weights=3,1",
              f"--input_data_pattern={REAL_VALIDATE}", f"--output_file={output}", "--top_k=3")
  rows = _read_csv(output)
  mean = expected[0]
  assert len(rows) == len(mean)
  for video_id, probabilities in list(mean.items())[:20]:
    pairs = rows[video_id.decode()]
    classes = [int(c) for c in pairs[0::2]]
    assert classes == np.argsort(-probabilities, kind="stable")[:3].tolist()
    np.testing.assert_allclose([float(s) for s in pairs[1::2]],
                               np.sort(probabilities)[::-1][:3], atol=1e-5)


def test_the_exported_ensemble_in_a_fresh_process(members, expected, tmp_path):
  export_dir = tmp_path / "export"
  result = run_program("yt8m_fusion.export", f"--train_dir={','.join(members)}",
                       "--ensemble_weights=0.75,0.25", "--format=saved_model",
                       f"--export_dir={export_dir}")
  path = result.stdout.strip().split(": ")[-1]
  assert os.path.isdir(os.path.join(path, "variables"))
  info = json.loads(open(os.path.join(path, "assets.extra", "ensemble.json")).read())
  assert info["weights"] == list(WEIGHTS)
  assert [m["model_flags"]["model"] for m in info["members"]] == ["AttendFusion", "LogisticModel"]
  # TF Serving's view: tf.saved_model.load and serving_default on serialized records.
  script = textwrap.dedent(f"""
      import json, numpy as np, tensorflow as tf
      loaded = tf.saved_model.load({path!r})
      records = [r.numpy() for r in tf.data.TFRecordDataset({REAL_VALIDATE!r})]
      out = loaded.signatures["serving_default"](example_bytes=tf.constant(records))
      print(json.dumps({{"ids": [v.decode() for v in out["video_id"].numpy()],
                        "indexes": out["class_indexes"].numpy().tolist(),
                        "scores": out["predictions"].numpy().tolist()}}))
      """)
  process = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), capture_output=True,
                           text=True, check=False, timeout=300,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert process.returncode == 0, process.stderr[-3000:]
  served = json.loads(process.stdout.strip().splitlines()[-1])
  mean = expected[0]
  assert len(served["ids"]) == len(mean)
  for video_id, indexes, scores in zip(served["ids"], served["indexes"], served["scores"]):
    probabilities = mean[video_id.encode()]
    np.testing.assert_allclose(scores, np.sort(probabilities)[::-1][:20], atol=1e-5)
    np.testing.assert_allclose(probabilities[indexes], scores, atol=1e-5)
  # The export is a predictor like any other (the probabilities signature: the union features).
  with prediction.load(path) as exported:
    assert "ensemble of AttendFusion + LogisticModel" in exported.description
    assert _max_difference(_probabilities_by_id(exported), mean) <= 1e-5


def test_errors_are_one_line(members, tmp_path):
  cases = {
      "has 3 weights for 2 models": lambda: prediction.ensemble(members, [1, 2, 3]),
      "expected non-negative weights": lambda: prediction.ensemble(members, [1, -1]),
  }
  for expected_text, make in cases.items():
    with pytest.raises(UserError, match=re.escape(expected_text)) as error:
      make()
    assert "\n" not in str(error.value)
  video = ModelConfig("LogisticModel", ["mean_rgb", "mean_audio"], [1024, 128]).data_spec()
  other_size = ModelConfig("LogisticModel", ["mean_rgb"], [512]).data_spec()
  with pytest.raises(UserError, match="mean_rgb with different sizes"):
    prediction.union_spec([video, other_size], ["A", "B"])

  result = run_program("inference.py", f"--train_dir={','.join(members)}",
                       "--ensemble_weights=1,2,3", f"--input_data_pattern={REAL_VALIDATE}",
                       f"--output_file={tmp_path / 'x.csv'}", check=False)
  assert result.returncode != 0
  line = [l for l in result.stderr.splitlines() if "ensemble_weights" in l]
  assert line and "has 3 weights for 2 models" in line[-1], result.stderr[-2000:]
  assert not (tmp_path / "x.csv").exists()


def test_an_ensemble_of_litert_files_runs_without_tensorflow(members, expected, tmp_path):
  from yt8m_fusion import export  # pylint: disable=import-outside-toplevel
  paths = []
  for index, train_dir in enumerate(members):
    paths.append(str(tmp_path / f"member{index}.tflite"))
    with prediction.from_train_dir(train_dir) as predictor:
      export.export_litert(predictor.model, predictor.config, paths[-1])
  output = tmp_path / "litert.csv"
  script = textwrap.dedent(f"""
      import sys
      import numpy as np
      from yt8m_fusion import prediction
      with prediction.ensemble({paths!r}, [3, 1]) as ensemble:
        batches = list(ensemble.predictions({REAL_VALIDATE!r}, batch_size=100))
      assert "tensorflow" not in sys.modules and "keras" not in sys.modules
      np.savez({str(tmp_path / 'litert.npz')!r},
               ids=np.concatenate([b.video_ids for b in batches]).astype(bytes),
               probabilities=np.concatenate([b.probabilities for b in batches]))
      """)
  process = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                           text=True, check=False, timeout=300)
  assert process.returncode == 0, process.stderr[-3000:]
  saved = np.load(tmp_path / "litert.npz")
  got = dict(zip(saved["ids"].tolist(), saved["probabilities"]))
  assert _max_difference(got, expected[0]) <= 1e-5
  run_program("inference.py", f"--litert_model={','.join(paths)}", "--ensemble_weights=3,1",
              f"--input_data_pattern={REAL_VALIDATE}", f"--output_file={output}", "--top_k=3")
  assert len(_read_csv(output)) == len(got)


def test_programs_say_what_an_ensemble_needs(tmp_path):
  members = f"--train_dir={tmp_path / 'a'},{tmp_path / 'b'}"
  cases = [
      (("eval.py", members, "--run_once"), "needs --ensemble_output_dir"),
      (("yt8m_fusion.export", members, "--format=litert", f"--output_file={tmp_path / 'x'}"),
       "is exported with --format=saved_model"),
      (("yt8m_fusion.export", members, "--format=saved_model"), "needs --export_dir"),
  ]
  for args, expected_text in cases:
    result = run_program(*args, check=False)
    assert result.returncode != 0, args
    errors = [line for line in result.stderr.splitlines() if expected_text in line]
    assert errors, (args, result.stderr[-2000:])
  assert not os.listdir(tmp_path)
