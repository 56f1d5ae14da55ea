"""yt8m_fusion.prediction: every predictor of one tiny trained model agrees on real records.

A tiny AttendFusion is trained for a few steps on real YouTube-8M shards by train.py (which
also exports its SavedModel); its LiteRT files and its model .tgz are written from it. The
predictors of the train_dir, the export, the .tgz and the .tflite files must give the same
probabilities on the same records (the int8 file within its quantization error).
"""

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from programs import REPO, run_program
from yt8m_fusion import export
from yt8m_fusion import prediction
from yt8m_fusion import submission
from yt8m_fusion.core import submission_format
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.errors import UserError

REAL_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "yt8m-2018-video")
REAL_TRAIN = os.path.join(REAL_DATA, "train", "validate000[0-1].tfrecord")
REAL_VALIDATE = os.path.join(REAL_DATA, "validate", "validate0100.tfrecord")
TINY_ATTEND_FUSION = ["--model=AttendFusion", "--attend_hidden_size=64", "--attend_token_size=16",
                      "--attend_num_heads=2", "--attend_key_dim=8", "--attend_frame_hidden_size=16"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
  """{kind: path} of one tiny trained model: train_dir, saved_model, model_tgz, litert
  (float32) and litert_int8 (dynamic-range int8)."""
  if not os.path.isdir(REAL_DATA):
    pytest.skip(f"the real YouTube-8M sample is not at {REAL_DATA}")
  folder = tmp_path_factory.mktemp("prediction")
  train_dir = str(folder / "train")
  run_program("train.py", *TINY_ATTEND_FUSION, f"--train_dir={train_dir}",
              f"--train_data_pattern={REAL_TRAIN}", f"--eval_data_pattern={REAL_VALIDATE}",
              "--batch_size=64", "--max_steps=6", "--base_learning_rate=0.003")
  paths = {"train_dir": train_dir, "saved_model": train_dir_lib.latest_export(train_dir),
           "model_tgz": str(folder / "model.tgz")}
  submission.write_model_tgz(paths["model_tgz"], train_dir,
                             train_dir_lib.require_checkpoint(train_dir))
  with prediction.from_train_dir(train_dir) as keras_predictor:
    for kind, quantization in (("litert", "none"), ("litert_int8", "dynamic_int8")):
      paths[kind] = str(folder / f"model-{quantization}.tflite")
      export.export_litert(keras_predictor.model, keras_predictor.config, paths[kind],
                           quantization=quantization)
  return paths


def _probabilities_by_id(predictor, pattern=REAL_VALIDATE):
  by_id = {}
  for batch in predictor.predictions(pattern, batch_size=100):
    assert batch.probabilities.dtype == np.float32
    assert batch.probabilities.shape == (len(batch), predictor.num_classes)
    by_id.update(zip(batch.video_ids, batch.probabilities))
  return by_id


def test_every_predictor_gives_the_same_probabilities(sources, tmp_path):
  with prediction.from_train_dir(sources["train_dir"]) as reference:
    expected = _probabilities_by_id(reference)
  assert len(expected) > 200
  tolerances = {"saved_model": 1e-6, "model_tgz": 0.0, "litert": 1e-5, "litert_int8": 0.05}
  for kind, atol in tolerances.items():
    if kind == "model_tgz":
      predictor = prediction.from_model_tgz(sources[kind], str(tmp_path / "untar"))
    elif kind == "saved_model":
      predictor = prediction.from_saved_model(sources[kind])
    else:
      predictor = prediction.from_litert(sources[kind])
    with predictor:
      got = _probabilities_by_id(predictor)
    assert sorted(got) == sorted(expected), kind
    difference = max(float(np.abs(got[v] - expected[v]).max()) for v in expected)
    assert difference <= atol, (kind, difference)


def test_load_recognises_each_kind(sources, tmp_path):
  kinds = {"train_dir": prediction.KerasPredictor, "saved_model": prediction.SavedModelPredictor,
           "model_tgz": prediction.KerasPredictor, "litert": prediction.LiteRTPredictor}
  for kind, predictor_type in kinds.items():
    with prediction.load(sources[kind], untar_dir=str(tmp_path / "untar")) as predictor:
      assert type(predictor) is predictor_type, kind  # pylint: disable=unidiomatic-typecheck
      assert predictor.num_classes == 3862
      assert predictor.spec.feature_names == ("mean_rgb", "mean_audio")
      assert (predictor.config is None) == (kind == "litert")
  with prediction.load(sources["model_tgz"], untar_dir=str(tmp_path / "untar")) as predictor:
    assert predictor.train_dir == str(tmp_path / "untar")
    assert os.path.basename(predictor.checkpoint).startswith("model.ckpt-")

  export_folder = os.path.dirname(sources["saved_model"])
  text_file = tmp_path / "notes.txt"
  text_file.write_text("not a model\n")
  cases = {export_folder: "holds the exports", str(tmp_path / "missing"): "does not exist",
           str(text_file): "neither a .tflite file nor a model .tgz",
           str(tmp_path): "without model_flags.json or saved_model.pb"}
  for path, expected in cases.items():
    with pytest.raises(UserError, match=re.escape(expected)) as error:
      prediction.load(path)
    assert "\n" not in str(error.value)


def test_top_k_and_labels(sources):
  with prediction.load(sources["train_dir"]) as predictor:
    batch = next(predictor.predictions(REAL_VALIDATE, batch_size=64, top_k=5, labels=True))
  assert batch.labels.shape == batch.probabilities.shape and batch.labels.max() == 1.0
  indexes, scores = submission_format.top_k_numpy(batch.probabilities, 5)
  np.testing.assert_array_equal(batch.top_indexes, indexes)
  np.testing.assert_allclose(batch.top_scores, scores)
  top3 = batch.top_k(3)
  np.testing.assert_array_equal(top3[0], indexes[:, :3])
  rated = [int(indexes[0, 4]), 7]  # only these classes rank, the others score 0 there
  with prediction.load(sources["train_dir"]) as predictor:
    masked = next(predictor.predictions(REAL_VALIDATE, batch_size=64, top_k=2,
                                        top_k_classes=rated))
  assert sorted(masked.top_indexes[0].tolist()) == sorted(rated)


def test_a_damaged_file_is_one_line_through_every_predictor(sources, tmp_path):
  content = open(REAL_VALIDATE, "rb").read()
  cut = tmp_path / "cut.tfrecord"
  cut.write_bytes(content[:len(content) // 2])
  for kind in ("train_dir", "saved_model", "litert"):
    with prediction.load(sources[kind]) as predictor:
      with pytest.raises(UserError) as error:
        for _ in predictor.predictions(str(cut), batch_size=32, data_flag="--my_pattern"):
          pass
    message = str(error.value)
    assert str(cut) in message and "truncated" in message and "\n" not in message, message
    if kind != "litert":  # the LiteRT reader names the file only
      assert message.startswith("--my_pattern"), message


def test_litert_predictor_runs_without_tensorflow(sources):
  script = textwrap.dedent(f"""
      import sys
      from yt8m_fusion import prediction
      with prediction.load({sources['litert']!r}) as predictor:
        count = sum(len(batch) for batch in predictor.predictions({REAL_VALIDATE!r}, top_k=3))
      assert "tensorflow" not in sys.modules and "keras" not in sys.modules
      print(count)
      """)
  result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert int(result.stdout.split()[-1]) > 200


def test_the_documented_example_runs(sources):
  design = open(os.path.join(REPO, "docs", "DESIGN.md"), encoding="utf-8").read()
  section = design[design.index("### Prediction"):]
  example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  assert len(example.strip().splitlines()) == 5
  example = example.replace("/tmp/attend_fusion", sources["train_dir"]).replace(
      "/data/validate*.tfrecord", REAL_VALIDATE)
  result = subprocess.run([sys.executable, "-c", example], cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip(), "the example prints the predictions"
