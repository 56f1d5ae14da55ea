"""LiteRT export and the TensorFlow-free runtime (docs/ON_DEVICE.md).

Tiny models trained for a few steps on real YouTube-8M records (video level) and on synthetic
frame-level records, exported with every quantization; the files are inspected (no Flex op,
metadata) and run through the ai_edge_litert interpreter, in this process and as
`inference.py --litert_model` in a fresh one (which must not load TensorFlow).
"""

import itertools
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from programs import REPO, run_main, run_program
from yt8m_fusion import data as yt8m_data
from yt8m_fusion import export
from yt8m_fusion.cli import flags as yt8m_flags
from yt8m_fusion import inputs as model_inputs
from yt8m_fusion import models
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.litert import LiteRTModel
from yt8m_fusion.litert import model_file
from yt8m_fusion.litert import records as litert_records

REAL_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "yt8m-2018-video")
REAL_TRAIN = os.path.join(REAL_DATA, "train", "validate000[0-1].tfrecord")
REAL_VALIDATE = os.path.join(REAL_DATA, "validate", "validate0100.tfrecord")
REAL_VOCABULARY = os.path.join(REAL_DATA, "segment_vocabulary_2019.csv")
TINY_ATTEND_FUSION = ["--model=AttendFusion", "--attend_hidden_size=64", "--attend_token_size=16",
                      "--attend_num_heads=2", "--attend_key_dim=8", "--attend_frame_hidden_size=16"]
FRAME_CLASSES = 20
MAX_FRAMES = 30
# Every model, tiny: the registry test exports each of them (random initial weights).
TINY_PARAMS = dict(attend_hidden_size=32, attend_token_size=16, attend_num_heads=2,
                   attend_key_dim=8, attend_frame_hidden_size=16, fc_hidden_size=16,
                   fc_num_layers=2, moe_num_mixtures=2, iterations=5, dbof_cluster_size=16,
                   dbof_hidden_size=8, lstm_cells=8, lstm_layers=1)


def _require_real_data():
  if not os.path.isdir(REAL_DATA):
    pytest.skip(f"the real YouTube-8M sample is not at {REAL_DATA}")


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
  """Tiny AttendFusion trained 8 steps on two real shards (train.py also exports it)."""
  _require_real_data()
  train_dir = str(tmp_path_factory.mktemp("video_run"))
  run_program("train.py", *TINY_ATTEND_FUSION, f"--train_dir={train_dir}",
              f"--train_data_pattern={REAL_TRAIN}", f"--eval_data_pattern={REAL_VALIDATE}",
              "--batch_size=64", "--max_steps=8", "--base_learning_rate=0.003")
  return _load_run(train_dir, REAL_VALIDATE, REAL_TRAIN)


@pytest.fixture(scope="module")
def frame_run(tmp_path_factory):
  """Tiny frame-level AttendFusion trained 8 steps on synthetic SequenceExamples."""
  folder = str(tmp_path_factory.mktemp("frame_data"))
  dataset = yt8m_data.generate_dataset(folder, num_videos=160, frame_features=True,
                                       num_classes=FRAME_CLASSES, seed=5, num_shards=2,
                                       min_frames=3, max_frames=MAX_FRAMES + 10)
  train_dir = str(tmp_path_factory.mktemp("frame_run"))
  run_program("train.py", *TINY_ATTEND_FUSION, "--frame_features",
              f"--num_classes={FRAME_CLASSES}", f"--train_dir={train_dir}",
              f"--train_data_pattern={dataset['frame']['train']}",
              f"--eval_data_pattern={dataset['frame']['validate']}", f"--max_frames={MAX_FRAMES}",
              "--batch_size=16", "--max_steps=8", "--base_learning_rate=0.003")
  test = f"{dataset['frame']['validate']},{dataset['frame']['test']}"  # 40 videos
  return _load_run(train_dir, test, dataset["frame"]["train"])


def _load_run(train_dir, test_pattern, train_pattern):
  config = train_dir_lib.load_config(train_dir)
  model = models.build_model(config)
  train_dir_lib.restore_weights(model, train_dir_lib.latest_checkpoint(train_dir))
  spec = config.data_spec(max_frames=MAX_FRAMES)
  batches = model_inputs.load_batches(test_pattern, spec, batch_size=1000,
                                      num_readers=1).dataset
  batch = next(iter(batches))
  features = {name: value.numpy() for name, value in
              model_inputs.select_model_inputs(batch, spec).items()}
  calibration = [{name: value.numpy() for name, value in
                  model_inputs.select_model_inputs(example, spec).items()}
                 for example in itertools.islice(model_inputs.load_batches(
                     train_pattern, spec, batch_size=1, num_readers=1).dataset, 64)]
  return {"dir": train_dir, "config": config, "model": model, "test": test_pattern,
          "ids": batch["video_ids"].numpy(), "features": features,
          "keras": model(features, training=False).numpy(), "calibration": calibration}


def _export(run, path, quantization, **kwargs):
  return export.export_litert(run["model"], run["config"], str(path), quantization=quantization,
                              max_frames=MAX_FRAMES, calibration_examples=run["calibration"],
                              **kwargs)


# ----------------------------------------------------------------------------------------
# The record reader without TensorFlow
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", ["video", "frame"])
def test_records_read_without_tensorflow_equal_the_tf_data_reader(level, request):
  run = request.getfixturevalue(f"{level}_run")
  config = run["config"]
  spec = config.data_spec(max_frames=MAX_FRAMES)
  batches = list(litert_records.read_batches(run["test"], spec, batch_size=100))
  assert [len(b["video_ids"]) for b in batches[:-1]] == [100] * (len(batches) - 1)
  ids = [video_id for batch in batches for video_id in batch["video_ids"]]
  assert ids == list(run["ids"])
  for name, value in run["features"].items():
    np.testing.assert_array_equal(np.concatenate([b[name] for b in batches]), value, name)


# ----------------------------------------------------------------------------------------
# Export: values, quantizations, operators, metadata
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", ["video", "frame"])
def test_float32_file_equals_the_keras_model(level, request, tmp_path):
  run = request.getfixturevalue(f"{level}_run")
  _export(run, tmp_path / "model.tflite", "none")
  predicted = LiteRTModel(str(tmp_path / "model.tflite")).predict(run["features"])
  assert predicted.shape == run["keras"].shape and len(predicted) >= 40
  np.testing.assert_allclose(predicted, run["keras"], atol=1e-4, rtol=0)


# Quantized outputs against the Keras model's on the same videos: the largest and the mean
# absolute difference, and the largest "regret" of the top class (the Keras model's best score
# minus its score for the class the file ranks first; 0 when they agree, small for near-ties).
QUANTIZED_TOLERANCES = {"float16": (1e-3, 2e-4, 1e-3), "dynamic_int8": (0.02, 2e-3, 0.02),
                        "int8": (0.1, 0.01, 0.05)}


@pytest.mark.parametrize("quantization", export.QUANTIZATIONS)
@pytest.mark.parametrize("level", ["video", "frame"])
def test_every_quantization_builds_runs_and_holds_builtin_ops_only(level, quantization, request,
                                                                    tmp_path, caplog):
  run = request.getfixturevalue(f"{level}_run")
  path = tmp_path / "model.tflite"
  info = _export(run, path, quantization)
  # Full-integer masked attention: the masked softmax stays float32, and the log says so.
  masked_softmax_kept = level == "frame" and quantization == "int8"
  assert ("keeps its masked softmax (SELECT_V2, SOFTMAX) in float32" in caplog.text) == \
      masked_softmax_kept
  assert ("SOFTMAX" in info["float_ops"]) == masked_softmax_kept
  content = path.read_bytes()
  operators = model_file.operator_names(content)
  assert "FULLY_CONNECTED" in operators
  assert not [op for op in operators if op.startswith("CUSTOM") or "Flex" in op], operators
  assert info["bytes"] == len(content)
  if quantization == "int8":
    assert "QUANTIZE" in operators and "DEQUANTIZE" in operators
  assert bool(info["float_ops"]) == (quantization == "int8")

  model = LiteRTModel(str(path))
  assert model.quantization == quantization
  predicted = model.predict(run["features"])
  assert predicted.dtype == np.float32 and np.all(np.isfinite(predicted))
  assert predicted.min() >= 0 and predicted.max() <= 1
  if quantization == "none":
    return
  largest, mean, regret = QUANTIZED_TOLERANCES[quantization]
  keras = run["keras"]
  difference = np.abs(predicted - keras)
  top_regret = keras.max(1) - keras[np.arange(len(keras)), predicted.argmax(1)]
  assert difference.max() <= largest and difference.mean() <= mean
  assert top_regret.max() <= regret


def test_sizes_shrink_with_quantization(video_run, tmp_path):
  sizes = {q: _export(video_run, tmp_path / f"{q}.tflite", q)["bytes"]
           for q in ("none", "float16", "dynamic_int8")}
  assert sizes["float16"] < 0.6 * sizes["none"]
  assert sizes["dynamic_int8"] < 0.35 * sizes["none"]


def test_the_file_carries_the_model_flags_vocabulary_and_inputs(video_run, tmp_path):
  vocabulary = yt8m_data.read_vocabulary(REAL_VOCABULARY)
  _export(video_run, tmp_path / "model.tflite", "dynamic_int8", vocabulary=vocabulary,
          checkpoint="model.ckpt-8", step=8)
  model = LiteRTModel(str(tmp_path / "model.tflite"))
  assert model.vocabulary == vocabulary and len(vocabulary) == 1000
  assert model.info["model_flags"] == video_run["config"].to_json_dict()
  assert model.info["step"] == 8 and model.batch_size is None
  assert model.info["inputs"] == [{"name": "mean_rgb", "dtype": "float32", "shape": [-1, 1024]},
                                  {"name": "mean_audio", "dtype": "float32", "shape": [-1, 128]}]


def _tiny_config(name, frame_features):
  names = models.default_feature_names(name, frame_features)
  return models.ModelConfig(model=name, feature_names=names,
                            feature_sizes=[yt8m_flags.KNOWN_FEATURE_SIZES[n] for n in names],
                            frame_features=frame_features, num_classes=12,
                            params=dict(TINY_PARAMS))


def _random_inputs(config, count, seed=0):
  rng = np.random.default_rng(seed)
  if config.frame_features:
    features = {name: rng.integers(0, 256, (count, MAX_FRAMES, size), dtype=np.uint8)
                for name, size in zip(config.feature_names, config.feature_sizes)}
    features["num_frames"] = rng.integers(1, MAX_FRAMES + 1, count).astype(np.int32)
    return features
  return {name: rng.normal(size=(count, size)).astype(np.float32)
          for name, size in zip(config.feature_names, config.feature_sizes)}


@pytest.mark.parametrize("name,frame_features", [
    (name, frame) for name in models.list_models() for frame in (False, True)
    if frame or not models.is_frame_only(name)])
def test_every_registered_model_exports_and_matches_keras(name, frame_features, tmp_path):
  config = _tiny_config(name, frame_features)
  model = models.build_model(config)
  features = _random_inputs(config, 5)
  path = str(tmp_path / "model.tflite")
  export.export_litert(model, config, path, max_frames=MAX_FRAMES)
  assert not [op for op in model_file.operator_names(open(path, "rb").read())
              if op.startswith("CUSTOM")]
  np.testing.assert_allclose(LiteRTModel(path).predict(features),
                             model(features, training=False).numpy(), atol=1e-4, rtol=0)


def test_a_recurrent_model_gets_a_fixed_batch_and_no_full_integer_export(tmp_path):
  config = _tiny_config("LstmModel", True)
  model = models.build_model(config)
  path = str(tmp_path / "lstm.tflite")
  export.export_litert(model, config, path, quantization="dynamic_int8", max_frames=MAX_FRAMES)
  litert_model = LiteRTModel(path)
  assert litert_model.batch_size == 1
  features = _random_inputs(config, 3)  # cut into batches of 1 by predict
  np.testing.assert_allclose(litert_model.predict(features),
                             model(features, training=False).numpy(), atol=0.05)
  with pytest.raises(Exception, match="int8 is not available for LstmModel"):
    export.export_litert(model, config, str(tmp_path / "int8.tflite"), quantization="int8",
                         max_frames=MAX_FRAMES, calibration_examples=[features])
  assert not os.path.exists(tmp_path / "int8.tflite")


# ----------------------------------------------------------------------------------------
# The programs: python -m yt8m_fusion.export, inference.py --litert_model
# ----------------------------------------------------------------------------------------

_NO_TENSORFLOW_RUNNER = textwrap.dedent("""
    import runpy, sys
    sys.argv = ["inference.py"] + sys.argv[1:]
    code = 0
    try:
      runpy.run_path("inference.py", run_name="__main__")
    except SystemExit as exit_:
      code = exit_.code or 0
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    print("LOADED:" + ",".join(loaded), file=sys.stderr)
    sys.exit(code)
    """)


def run_litert_inference(*args, check=True):
  """inference.py <args> in a fresh process; fails if it loaded TensorFlow or Keras."""
  result = subprocess.run([sys.executable, "-c", _NO_TENSORFLOW_RUNNER, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))
  if check and result.returncode != 0:
    raise AssertionError(f"inference.py {' '.join(args)} exited {result.returncode}\n"
                         f"{result.stderr[-4000:]}")
  loaded = [line for line in result.stderr.splitlines() if line.startswith("LOADED:")]
  assert loaded == ["LOADED:"], loaded
  return result


def read_csv(path):
  rows = {}
  with open(path) as handle:
    assert handle.readline() == "VideoId,LabelConfidencePairs\n"
    for line in handle:
      video_id, pairs = line.rstrip("\n").split(",", 1)
      values = pairs.split()
      rows[video_id] = ([int(v) for v in values[0::2]], [float(v) for v in values[1::2]])
  return rows


def test_export_program_and_litert_csv_match_the_saved_model_csv(video_run, tmp_path):
  """The user's path: export with the program, predict in a process without TensorFlow, and
  compare with the SavedModel train.py wrote, on the same real records."""
  tflite = str(tmp_path / "attend_fusion.tflite")
  result = run_program("yt8m_fusion.export", f"--train_dir={video_run['dir']}",
                       "--format=litert", "--quantization=none", f"--output_file={tflite}",
                       f"--vocabulary_file={REAL_VOCABULARY}")
  assert "Run it: python inference.py --litert_model=" in result.stdout
  litert_csv, saved_csv = str(tmp_path / "litert.csv"), str(tmp_path / "saved.csv")
  run_litert_inference(f"--litert_model={tflite}", f"--input_data_pattern={REAL_VALIDATE}",
                       f"--output_file={litert_csv}", "--batch_size=100")
  run_program("inference.py", f"--saved_model_dir={train_dir_lib.latest_export(video_run['dir'])}",
              f"--input_data_pattern={REAL_VALIDATE}", f"--output_file={saved_csv}")
  from_litert, from_saved = read_csv(litert_csv), read_csv(saved_csv)
  assert sorted(from_litert) == sorted(from_saved) and len(from_litert) > 250
  # float32: the same top 20 (ties aside) and the same scores to 1e-4.
  for video_id, (classes, scores) in from_saved.items():
    litert_classes, litert_scores = from_litert[video_id]
    assert litert_classes[0] == classes[0]
    np.testing.assert_allclose(litert_scores, scores, atol=1e-4, rtol=0)


def test_quantized_litert_csv_keeps_the_top_class(frame_run, tmp_path):
  tflite = str(tmp_path / "frame.tflite")
  _export(frame_run, tflite, "dynamic_int8")
  litert_csv, keras_csv = str(tmp_path / "litert.csv"), str(tmp_path / "keras.csv")
  run_litert_inference(f"--litert_model={tflite}", f"--input_data_pattern={frame_run['test']}",
                       f"--output_file={litert_csv}")
  run_program("inference.py", f"--train_dir={frame_run['dir']}", f"--max_frames={MAX_FRAMES}",
              f"--input_data_pattern={frame_run['test']}", f"--output_file={keras_csv}")
  from_litert, from_keras = read_csv(litert_csv), read_csv(keras_csv)
  assert sorted(from_litert) == sorted(from_keras)
  same_top = np.mean([from_litert[v][0][0] == from_keras[v][0][0] for v in from_keras])
  assert same_top >= 0.9, same_top


def test_saved_model_format_re_exports_the_train_py_savedmodel(video_run, tmp_path):
  result = run_export_main(f"--train_dir={video_run['dir']}", "--format=saved_model",
                           f"--export_dir={tmp_path}")
  assert result.returncode == 0, result.stderr
  assert os.listdir(tmp_path) == ["8"]
  assert export.read_export_config(str(tmp_path / "8")) == video_run["config"]
  served = tf.saved_model.load(str(tmp_path / "8")).signatures["probabilities"]
  probabilities = served(**{k: tf.constant(v) for k, v in video_run["features"].items()})
  np.testing.assert_allclose(probabilities["probabilities"].numpy(), video_run["keras"],
                             atol=1e-5)


# ----------------------------------------------------------------------------------------
# Bad input: one line each, nothing half-written
# ----------------------------------------------------------------------------------------

def run_export_main(*args):
  """python -m yt8m_fusion.export <args>, in this process (no start-up cost)."""
  defaults = ["--format=litert", "--quantization=none", "--output_file=", "--export_dir=",
              "--calibration_data_pattern=", "--vocabulary_file=", "--max_frames=300"]
  return run_main("export", *defaults, *args)


def _error_line(result):
  lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
  assert result.returncode == 2, result.stderr[-2000:]
  assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
  return lines[0]


def test_export_errors_are_one_line_and_write_nothing(video_run, tmp_path):
  output = tmp_path / "out" / "model.tflite"
  empty_dir = tmp_path / "empty"
  empty_dir.mkdir()
  (empty_dir / "model_flags.json").write_text(
      open(os.path.join(video_run["dir"], "model_flags.json")).read())
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  cases = {
      "no checkpoint": ([f"--train_dir={empty_dir}", f"--output_file={output}"],
                        f"no checkpoint in {empty_dir}"),
      "int8 without calibration": ([f"--train_dir={video_run['dir']}", "--quantization=int8",
                                    f"--output_file={output}"],
                                   "--quantization=int8 needs --calibration_data_pattern"),
      "unknown quantization": ([f"--train_dir={video_run['dir']}", "--quantization=int4",
                                f"--output_file={output}"],
                               "--quantization=int4: expected one of none, float16, "
                               "dynamic_int8, int8"),
      "unwritable output": ([f"--train_dir={video_run['dir']}",
                             f"--output_file={blocker}/model.tflite"],
                            f"--output_file={blocker}/model.tflite cannot be written"),
      "bad calibration data": ([f"--train_dir={video_run['dir']}", "--quantization=int8",
                                f"--output_file={output}",
                                f"--calibration_data_pattern={tmp_path}/none*.tfrecord"],
                               "--calibration_data_pattern: no files match"),
  }
  for name, (args, expected) in cases.items():
    result = run_export_main(*args)
    assert expected in _error_line(result), name
    assert not output.exists(), name
  assert not output.parent.exists() or os.listdir(output.parent) == []


@pytest.fixture(scope="module")
def dynamic_file(video_run, tmp_path_factory):
  path = tmp_path_factory.mktemp("files") / "model.tflite"
  _export(video_run, path, "dynamic_int8")
  return path


def _foreign_tflite(path):
  """A valid LiteRT model that yt8m-fusion did not write."""
  function = tf.function(lambda x: {"y": x * 2.0},
                         input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [function.get_concrete_function()], None)
  path.write_bytes(converter.convert())


@pytest.mark.parametrize("damage,expected", [
    ("foreign", "is a LiteRT model but not one exported by yt8m-fusion"),
    ("truncated", "is damaged"),
    ("bit flip", "is damaged: its checksum does not match"),
    ("text", "is not a LiteRT model"),
    ("missing", "does not exist"),
])
def test_inference_refuses_foreign_or_damaged_files(damage, expected, dynamic_file, tmp_path):
  path = tmp_path / "given.tflite"
  content = dynamic_file.read_bytes()
  if damage == "foreign":
    _foreign_tflite(path)
  elif damage == "truncated":
    path.write_bytes(content[:len(content) // 2])
  elif damage == "bit flip":
    flipped = bytearray(content)
    flipped[len(content) // 2] ^= 0x10
    path.write_bytes(bytes(flipped))
  elif damage == "text":
    path.write_text("VideoId,LabelConfidencePairs\nabcd,1 0.5\n")
  output = tmp_path / "predictions.csv"
  result = run_litert_inference(f"--litert_model={path}", f"--output_file={output}",
                                f"--input_data_pattern={REAL_VALIDATE}", check=False)
  assert expected in _error_line(result) and str(path) in _error_line(result)
  assert os.listdir(tmp_path) == (["given.tflite"] if damage != "missing" else [])


def test_inference_refuses_model_flags_and_other_sources_with_litert(dynamic_file, tmp_path):
  output = tmp_path / "predictions.csv"
  result = run_litert_inference(f"--litert_model={dynamic_file}", "--model=FCModel",
                                f"--output_file={output}", check=False)
  assert "--model is not used with --litert_model" in _error_line(result)
  result = run_litert_inference(f"--litert_model={dynamic_file}", "--train_dir=/tmp",
                                f"--output_file={output}", check=False)
  assert "give exactly one of" in _error_line(result)
  assert not output.exists()


def test_a_record_the_model_cannot_read_is_named_or_skipped(dynamic_file, tmp_path):
  frame_data = yt8m_data.generate_dataset(str(tmp_path / "frames"), num_videos=8,
                                          frame_features=True, num_classes=20, num_shards=1,
                                          min_frames=2, max_frames=4)
  good = sorted(tf.io.gfile.glob(REAL_VALIDATE))[0]
  mixed = tmp_path / "mixed.tfrecord"
  with tf.io.TFRecordWriter(str(mixed)) as writer:
    for index, record in enumerate(tf.data.TFRecordDataset(good).take(5)):
      writer.write(record.numpy())
      if index == 2:
        writer.write(next(iter(tf.data.TFRecordDataset(
            tf.io.gfile.glob(frame_data["frame"]["train"])))).numpy())
  output = tmp_path / "predictions.csv"
  result = run_litert_inference(f"--litert_model={dynamic_file}", f"--output_file={output}",
                                f"--input_data_pattern={mixed}", check=False)
  assert re.search(rf"{re.escape(str(mixed))}: record 3 \(id '[^']+'\): holds frame-level "
                   "records", _error_line(result))
  assert not output.exists()
  result = run_litert_inference(f"--litert_model={dynamic_file}", f"--output_file={output}",
                                f"--input_data_pattern={mixed}", "--skip_corrupt_records")
  assert "skipped 1 invalid record(s)" in result.stderr
  assert len(read_csv(output)) == 5

  truncated = tmp_path / "truncated.tfrecord"
  truncated.write_bytes(open(good, "rb").read()[:5000])
  result = run_litert_inference(f"--litert_model={dynamic_file}", f"--output_file={output}",
                                f"--input_data_pattern={truncated}", check=False)
  assert "is truncated" in _error_line(result)


def test_the_benchmark_reports_every_variant(video_run, tmp_path):
  sys.path.insert(0, os.path.join(REPO, "benchmarks"))
  import litert_bench  # pylint: disable=import-outside-toplevel
  for quantization in ("none", "dynamic_int8"):  # as the export program names them
    _export(video_run, tmp_path / f"AttendFusion-{quantization}.tflite", quantization)
  report = litert_bench.main([
      f"--train_dirs={video_run['dir']}", f"--data_pattern={REAL_VALIDATE}",
      f"--calibration_pattern={REAL_TRAIN}", f"--litert_dir={tmp_path}",
      "--quantizations=none,dynamic_int8", "--latency_rounds=1", "--latency_calls=2",
      f"--json={tmp_path / 'report.json'}"])
  rows = {row["variant"]: row for row in report["models"][0]["variants"]}
  assert list(rows) == ["keras", "saved_model", "litert none", "litert dynamic_int8"]
  assert all(row["size_mb"] > 0 and row["latency_batch1_ms"] > 0 and row["latency_samples"] >= 2
             and row["throughput_batch256_videos_per_s"] > 0 for row in rows.values())
  assert rows["litert none"]["gap"] == pytest.approx(rows["keras"]["gap"], abs=1e-4)
  assert rows["litert none"]["max_abs_difference_to_keras"] < 1e-4
  assert rows["litert dynamic_int8"]["size_mb"] < 0.35 * rows["litert none"]["size_mb"]
  assert json.load(open(tmp_path / "report.json"))["models"][0]["model"] == "AttendFusion"
