"""Reliability, part 1: every bad input ends with one clear line, or is skipped and counted.

Each case runs a real program's `main` (train.py, eval.py, inference.py) in this process
through `programs.run_main`: the same flag parser and `exit_on_user_error` as on the
command line, without the start-up cost of a new Python. Each asserts exit code 2,
exactly one `ERROR:` line naming the input at fault and what was expected, no traceback,
and no output left behind (no checkpoint, CSV, evaluation or temporary file).
`test_one_case_per_program_in_a_subprocess` repeats a case per program through
`python <program>.py`. The data API's own messages are tested in test_data_errors.py.
See docs/RELIABILITY.md for the table of cases.
"""

import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from programs import REPO, run_main
from yt8m_fusion import data as yt8m_data
from yt8m_fusion.data import records

NUM_CLASSES = 10
MODEL = ["--model=LogisticModel", f"--num_classes={NUM_CLASSES}"]


def _video(index, labels=None, rgb=None, audio=None):
  features = {"mean_rgb": np.full(1024, 0.1) if rgb is None else rgb,
              "mean_audio": np.zeros(128) if audio is None else audio}
  features = {name: value for name, value in features.items() if value is not False}
  return records.make_video_example(f"v{index}", [index % NUM_CLASSES] if labels is None
                                    else labels, features)


def _frames(index, count):
  return records.make_frame_example(f"f{index}", [1], {
      "rgb": np.full((count, 1024), 9, np.uint8), "audio": np.full((count, 128), 7, np.uint8)})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  """A tiny dataset, one file per kind of bad input, and a trained train_dir."""
  root = tmp_path_factory.mktemp("reliability")
  dataset = yt8m_data.generate_dataset(str(root / "data"), num_videos=32,
                                       num_classes=NUM_CLASSES, seed=5, both_formats=True,
                                       num_shards=2, min_frames=2, max_frames=4)
  bad = root / "bad"
  bad.mkdir()
  content = open(sorted(tf.io.gfile.glob(dataset["video"]["train"]))[0], "rb").read()

  def write(name, recs):
    records.write_tfrecord(bad / name, recs)
    return str(bad / name)

  corrupted = bytearray(content)
  corrupted[len(content) // 2] ^= 0xFF
  nan, inf = np.zeros(1024), np.zeros(128)
  nan[5], inf[1] = np.nan, np.inf
  (bad / "empty.tfrecord").write_bytes(b"")
  (bad / "truncated.tfrecord").write_bytes(content[:-100])
  (bad / "checksum.tfrecord").write_bytes(bytes(corrupted))
  (bad / "random.tfrecord").write_bytes(np.random.default_rng(0).bytes(4000))
  (root / "a_file").write_text("not a folder\n")
  paths = {
      "root": str(root), "data": dataset, "bad": str(bad), "a_file": str(root / "a_file"),
      "train": dataset["video"]["train"], "validate": dataset["video"]["validate"],
      "test": dataset["video"]["test"], "frame_train": dataset["frame"]["train"],
      "missing_key": write("missing_key.tfrecord", [_video(0, audio=False)]),
      "wrong_size": write("wrong_size.tfrecord", [_video(0, rgb=np.zeros(1000))]),
      "label": write("label.tfrecord", [_video(0), _video(1, labels=[3, 12])]),
      "nan": write("nan.tfrecord", [_video(0), _video(1, rgb=nan)]),
      "inf": write("inf.tfrecord", [_video(0, audio=inf)]),
      "zero_frames": write("zero_frames.tfrecord", [_frames(0, 3), _frames(1, 0)]),
      "duplicates": write("duplicates.tfrecord", [_video(0), _video(1), _video(0)]),
      "garbage": write("garbage.tfrecord", [_video(0), _video(1), b"\xff\xfe\x00garbage\x88",
                                            _video(3)]),
  }
  for name in ("empty", "truncated", "checksum", "random"):
    paths[name] = str(bad / f"{name}.tfrecord")

  trained = str(root / "trained")
  result = run_main("train", *MODEL, f"--train_dir={trained}", f"--train_data_pattern={paths['train']}",
                    "--batch_size=8", "--max_steps=2")
  assert result.returncode == 0, result.stderr
  paths["trained"] = trained
  paths["export"] = os.path.join(trained, "export", "2")
  # model_flags.json from another model beside these checkpoints.
  other = str(root / "other_model")
  shutil.copytree(trained, other)
  flags = json.load(open(os.path.join(other, "model_flags.json")))
  flags["model"] = "MoeModel"
  json.dump(flags, open(os.path.join(other, "model_flags.json"), "w"))
  paths["other_model"] = other
  no_checkpoint = root / "no_checkpoint"
  no_checkpoint.mkdir()
  shutil.copy(os.path.join(trained, "model_flags.json"), no_checkpoint)
  paths["no_checkpoint"] = str(no_checkpoint)
  return paths


def _train(p, out, pattern_key, *extra):
  return ("train", [*MODEL, f"--train_dir={out}/train", "--batch_size=2", "--max_steps=2",
                    f"--train_data_pattern={p[pattern_key]}", *extra])


def _eval(p, out, train_dir_key, *extra, pattern_key="validate"):
  return ("eval", [f"--train_dir={p[train_dir_key]}", "--run_once",
                   f"--eval_data_pattern={p[pattern_key]}", *extra])


def _inference(p, out, *extra, pattern_key="test", source=None):
  source = source or [f"--train_dir={p['trained']}"]
  return ("inference", [*source, f"--output_file={out}/predictions.csv",
                        f"--input_data_pattern={p[pattern_key]}", *extra])


# name: (p, out) -> (program, args), then the substrings the ERROR line must hold.
CASES = {
    "pattern_matches_nothing": (
        lambda p, out: ("train", [*MODEL, f"--train_dir={out}/train",
                                  f"--train_data_pattern={p['bad']}/nothing-*.tfrecord"]),
        ["no files match", "nothing-*.tfrecord", "expected a glob"]),
    "empty_file": (lambda p, out: _train(p, out, "empty"),
                   ["empty.tfrecord", "the file is empty (0 bytes)", "expected a TFRecord"]),
    "truncated_file": (lambda p, out: _eval(p, out, "trained", pattern_key="truncated"),
                       ["--eval_data_pattern", "truncated.tfrecord", "is truncated",
                        "expected an intact TFRecord"]),
    "corrupted_checksum": (lambda p, out: _inference(p, out, pattern_key="checksum"),
                           ["--input_data_pattern", "checksum.tfrecord", "checksum mismatch",
                            "expected an intact TFRecord"]),
    "random_bytes": (lambda p, out: _train(p, out, "random"),
                     ["random.tfrecord", "is not a TFRecord file", "expected an intact"]),
    "garbage_record": (lambda p, out: _train(p, out, "garbage"),
                       ["garbage.tfrecord: record 2", "is not a serialized tf.train.Example"]),
    "video_level_read_as_frame_level": (
        lambda p, out: _train(p, out, "train", "--frame_features"),
        ["train-00000-of-00002.tfrecord", "holds video-level records", "drop --frame_features"]),
    "frame_level_read_as_video_level": (
        lambda p, out: _train(p, out, "frame_train"),
        ["frame/train-00000-of-00002.tfrecord", "holds frame-level records",
         "add --frame_features"]),
    "missing_feature_key": (
        lambda p, out: _train(p, out, "missing_key", "--feature_names=mean_rgb,mean_audio"),
        ["missing_key.tfrecord", "feature 'mean_audio' is missing", "expected 128 floats"]),
    "feature_of_wrong_size": (
        lambda p, out: _train(p, out, "wrong_size"),
        ["wrong_size.tfrecord", "'mean_rgb' has 1000 values; expected 1024"]),
    "feature_names_and_sizes_differ_in_length": (
        lambda p, out: _train(p, out, "train", "--feature_names=mean_rgb,mean_audio",
                              "--feature_sizes=1024"),
        ["--feature_names has 2 names", "--feature_sizes has 1 sizes",
         "one size per feature name"]),
    "non_numeric_flag": (lambda p, out: _train(p, out, "train", "--base_learning_rate=fast"),
                         ["--base_learning_rate=fast: expected a number >= 0.0"]),
    "non_numeric_flag_eval": (lambda p, out: _eval(p, out, "trained", "--top_k=many"),
                              ["--top_k=many: expected an integer >= 1"]),
    "out_of_range_flag": (lambda p, out: _inference(p, out, "--batch_size=0"),
                          ["--batch_size=0: expected an integer in [1, 1048576]"]),
    "out_of_range_flag_eval": (lambda p, out: _eval(p, out, "trained", "--f1_threshold=2"),
                               ["--f1_threshold=2: expected a number in [0.0, 1.0]"]),
    "unknown_flag": (lambda p, out: _train(p, out, "train", "--learning_rate=0.1"),
                     ["Unknown command line flag 'learning_rate'", "--helpfull"]),
    "label_id_not_below_num_classes": (
        lambda p, out: _train(p, out, "label"),
        ["label.tfrecord: record 1", "class id 12", "expected 0 <= id < num_classes=10"]),
    "nan_feature_value": (lambda p, out: _eval(p, out, "trained", pattern_key="nan"),
                          ["nan.tfrecord: record 1", "'mean_rgb' has a nan value at index 5",
                           "expected finite floats"]),
    "inf_feature_value": (
        lambda p, out: _train(p, out, "inf", "--feature_names=mean_rgb,mean_audio"),
        ["inf.tfrecord: record 0", "'mean_audio'", "inf value", "expected finite floats"]),
    "video_with_zero_frames": (
        lambda p, out: _train(p, out, "zero_frames", "--frame_features",
                              "--model=FrameLevelLogisticModel", "--feature_names=rgb,audio"),
        ["zero_frames.tfrecord: record 1", "'rgb' has zero frames",
         "expected a video with at least one frame"]),
    "train_dir_of_another_model": (
        lambda p, out: ("train", ["--model=MoeModel", f"--train_dir={p['trained']}",
                                  f"--train_data_pattern={p['train']}"]),
        ["model_flags.json does not match the command line",
         "--model: saved 'LogisticModel', given 'MoeModel'", "--start_new_model"]),
    "model_flags_json_of_another_model_eval": (
        lambda p, out: _eval(p, out, "other_model"),
        ["other_model/model.ckpt-2 does not hold the weights of the model described in",
         "must come from the same training run"]),
    "model_flags_json_of_another_model_inference": (
        lambda p, out: _inference(p, out, source=[f"--train_dir={p['other_model']}"]),
        ["does not hold the weights of the model described in"]),
    "eval_without_checkpoint": (lambda p, out: _eval(p, out, "no_checkpoint"),
                                ["no checkpoint in", "no_checkpoint", "train a model there"]),
    "inference_without_checkpoint": (
        lambda p, out: _inference(p, out, source=[f"--train_dir={p['no_checkpoint']}"]),
        ["no checkpoint in", "no_checkpoint"]),
    "inference_without_train_dir": (
        lambda p, out: _inference(p, out, source=[f"--train_dir={out}/never_trained"]),
        ["--train_dir=", "never_trained does not exist", "folder written by train.py"]),
    "inference_without_export": (
        lambda p, out: _inference(p, out, source=["--train_dir=",
                                                  f"--saved_model_dir={out}/export/7"]),
        ["--saved_model_dir=", "export/7 does not exist", "train_dir/export/<step>"]),
    "unwritable_output_file": (
        lambda p, out: ("inference", [f"--train_dir={p['trained']}",
                                      f"--output_file={p['a_file']}/predictions.csv",
                                      f"--input_data_pattern={p['test']}"]),
        ["--output_file=", "a_file/predictions.csv cannot be written"]),
    "unwritable_train_dir": (
        lambda p, out: ("train", [*MODEL, f"--train_dir={p['a_file']}/train",
                                  f"--train_data_pattern={p['train']}"]),
        ["--train_dir=", "a_file/train cannot be written", "expected a writable folder"]),
    "duplicate_video_ids": (lambda p, out: _inference(p, out, pattern_key="duplicates"),
                            ["video id 'v0' appears twice", "duplicates.tfrecord",
                             "each video must appear once"]),
    "duplicate_video_ids_saved_model": (
        lambda p, out: _inference(p, out, pattern_key="duplicates",
                                  source=["--train_dir=", f"--saved_model_dir={p['export']}"]),
        ["video id 'v0' appears twice"]),
}


def _assert_one_error_line(result, expected):
  assert result.returncode == 2, result.stderr
  assert "Traceback" not in result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
  assert len(errors) == 1, result.stderr
  for text in expected:
    assert text in errors[0], f"{text!r} not in {errors[0]!r}"
  return errors[0]


def _assert_nothing_written(out):
  """No checkpoint, CSV, evaluation or temporary file under `out`."""
  left = []
  for folder, _, names in os.walk(out):
    for name in names:
      if (name == "checkpoint" or name.startswith("model.ckpt") or name.endswith(".csv")
          or name.startswith("metrics") or ".tmp-" in name):
        left.append(os.path.join(folder, name))
  assert not left, left


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_clear_error(case, inputs, tmp_path):
  make_command, expected = CASES[case]
  program, args = make_command(inputs, str(tmp_path))
  before = sorted(os.listdir(inputs["trained"]))
  result = run_main(program, *args)
  _assert_one_error_line(result, expected)
  _assert_nothing_written(str(tmp_path))
  assert sorted(os.listdir(inputs["trained"])) == before  # nothing added to the train_dir


@pytest.mark.parametrize("program", ["train", "eval", "inference", "inference_saved_model"])
def test_skip_corrupt_records_skips_and_counts(program, inputs, tmp_path, caplog):
  caplog.set_level(logging.INFO)
  out = str(tmp_path)
  if program == "train":
    _, args = _train(inputs, out, "garbage", "--skip_corrupt_records", "--export=false")
  elif program == "eval":
    train_dir = str(tmp_path / "trained")
    shutil.copytree(inputs["trained"], train_dir)
    args = [f"--train_dir={train_dir}", "--run_once", "--skip_corrupt_records",
            f"--eval_data_pattern={inputs['garbage']}"]
  else:
    source = None if program == "inference" else [
        "--train_dir=", f"--saved_model_dir={inputs['export']}"]
    _, args = _inference(inputs, out, "--skip_corrupt_records", pattern_key="garbage",
                         source=source)
  result = run_main(program.split("_")[0], *args)
  assert result.returncode == 0, result.stderr
  skipped = [r.getMessage() for r in caplog.records if "--skip_corrupt_records" in r.getMessage()]
  assert any("skipped 1 invalid record(s)" in line for line in skipped), skipped
  if program.startswith("inference"):
    rows = open(os.path.join(out, "predictions.csv")).read().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["v0", "v1", "v3"]


def _start(script, *args):
  return subprocess.Popen(
      [sys.executable, script, *args], cwd=REPO, stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1"))


def test_one_case_per_program_in_a_subprocess(inputs, tmp_path):
  """The same one-line errors from `python <program>.py` (three at once, to save time)."""
  out = str(tmp_path)
  runs = {
      "truncated_file": _start("train.py", *_train(inputs, out, "truncated")[1]),
      "eval_without_checkpoint": _start("eval.py", *_eval(inputs, out, "no_checkpoint")[1]),
      "duplicate_video_ids": _start(
          "inference.py", *_inference(inputs, out, pattern_key="duplicates")[1]),
  }
  expected = dict(CASES, truncated_file=(None, ["--train_data_pattern", "truncated.tfrecord",
                                               "is truncated"]))
  for case, process in runs.items():
    _, stderr = process.communicate(timeout=300)
    line = _assert_one_error_line(_Completed(process.returncode, stderr), expected[case][1])
    assert stderr.rstrip().endswith(line), "the ERROR line is the last line"
  _assert_nothing_written(out)


class _Completed:

  def __init__(self, returncode, stderr):
    self.returncode = returncode
    self.stderr = stderr


def test_out_of_memory_in_training_is_not_reported_as_bad_data(inputs, tmp_path, monkeypatch):
  """A TensorFlow OOM during fit says to lower --batch_size (no scan of the data files)."""
  from yt8m_fusion.training import loop  # pylint: disable=import-outside-toplevel

  def out_of_memory(*args, **kwargs):
    raise tf.errors.ResourceExhaustedError(
        None, None, "OOM when allocating tensor with shape[2,7000000] and type float")

  monkeypatch.setattr(loop, "fit", out_of_memory)  # what training.run calls
  program, args = _train(inputs, str(tmp_path), "train")
  result = run_main(program, *args)
  line = _assert_one_error_line(result, ["out of memory at --batch_size=2",
                                         "OOM when allocating tensor", "lower --batch_size"])
  assert "--train_data_pattern" not in line


def test_an_error_marked_exit_immediately_ends_without_interpreter_shutdown():
  """WorkerLost's way out: the ERROR line and buffered output come out, then the process
  ends at once (no atexit, no finalizers: a broken collective group leaves TensorFlow
  thread pools whose __del__ prints tracebacks at shutdown)."""
  script = "\n".join([
      "import atexit",
      "from yt8m_fusion.distribute import WorkerLost",
      "from yt8m_fusion.errors import exit_on_user_error",
      "atexit.register(lambda: print('atexit ran', flush=True))",
      "print('buffered before the error')",
      "def main(argv):",
      "  raise WorkerLost('worker 1 stopped')",
      "exit_on_user_error(main)([])",
  ])
  completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert completed.returncode == 1, completed.stderr
  assert completed.stderr.rstrip().endswith("ERROR: worker 1 stopped")
  assert "Traceback" not in completed.stderr
  assert completed.stdout == "buffered before the error\n"
