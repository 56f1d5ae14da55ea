"""Reliability, part 3: the mistakes real users make with real YouTube-8M files.

Copies of real 2018 video-level shards (../shared/data/yt8m-2018-video, beside the
repository; skipped when absent) are damaged, mixed, compressed and stripped of their
labels in a temporary folder, and the programs are run on them as a user would: each bad
case must end with exit code 2, exactly one `ERROR:` line naming the file, folder or flag
at fault and what was expected, no traceback, and nothing written. The categories:

1. records without labels (the Kaggle test split): train.py and eval.py refuse them,
   inference.py takes them;
2. a damaged or inconsistent train_dir (model_flags.json, the `checkpoint` index, export
   folders given for train_dirs and the reverse);
3. files in the wrong container or place (GZIP/ZLIB shards are read; folders, text files
   and video-/frame-level files mixed in one pattern are named);
4. flag values that cannot mean anything, for every program;
5. a shard cut short among good ones (named; --skip_corrupt_records reads the rest);
and a soak of the whole workflow (train, SIGKILL, resume, eval, inference, export) that
must lose no checkpoint and leave no temporary file. See docs/RELIABILITY.md.
"""

import gzip
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest
import tensorflow as tf

from programs import REPO, run_main
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.data import records

SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "yt8m-2018-video")
pytestmark = pytest.mark.skipif(
    not os.path.isdir(os.path.join(SHARED_DATA, "train")),
    reason=f"the real YouTube-8M shards are not at {SHARED_DATA} (../shared beside the repo)")

# A tiny Attend-Fusion (the hyper-parameter flags) trains and restores in seconds.
TINY_MODEL = ["--model=AttendFusion", "--attend_hidden_size=64", "--attend_token_size=16",
              "--attend_num_heads=2", "--attend_key_dim=8"]
TEST_SPLIT_RECORDS = 64
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")


def _copy_shard(name, folder, split="train"):
  os.makedirs(folder, exist_ok=True)
  target = os.path.join(folder, name)
  shutil.copyfile(os.path.join(SHARED_DATA, split, name), target)  # writable copy
  return target


def _write_test_split(source, target, count):
  """The first `count` records of a real shard without their labels, as in the test split."""
  unlabelled = []
  for raw in records.iterate_records(source):
    example = tf.train.Example.FromString(raw)
    del example.features.feature["labels"]
    unlabelled.append(example)
    if len(unlabelled) == count:
      break
  records.write_tfrecord(target, unlabelled)


def _readable_records(path):
  return sum(1 for _ in tf.data.TFRecordDataset(path).ignore_errors())


@pytest.fixture(scope="module")
def real(tmp_path_factory):
  """Real shards in every arrangement the cases need, and a train_dir trained on them."""
  root = str(tmp_path_factory.mktemp("real"))
  p = {"root": root}
  train = os.path.join(root, "train")
  for name in ("validate0000.tfrecord", "validate0001.tfrecord"):
    _copy_shard(name, train)
  p["train"] = os.path.join(train, "*.tfrecord")
  p["validate"] = _copy_shard("validate0100.tfrecord", os.path.join(root, "validate"),
                              split="validate")
  os.makedirs(os.path.join(root, "test"))
  p["test"] = os.path.join(root, "test", "test0000.tfrecord")
  _write_test_split(os.path.join(SHARED_DATA, "train", "validate0002.tfrecord"), p["test"],
                    TEST_SPLIT_RECORDS)

  # Compressed copies of one shard: gzip'ed by hand (.gz) and written by TensorFlow (ZLIB).
  plain = os.path.join(SHARED_DATA, "train", "validate0000.tfrecord")
  os.makedirs(os.path.join(root, "compressed"))
  p["gzip"] = os.path.join(root, "compressed", "validate0000.tfrecord.gz")
  with open(plain, "rb") as source, gzip.open(p["gzip"], "wb") as target:
    shutil.copyfileobj(source, target)
  p["zlib"] = os.path.join(root, "compressed", "validate0000-zlib.tfrecord")
  with tf.io.TFRecordWriter(p["zlib"], options="ZLIB") as writer:
    for raw in records.iterate_records(plain):
      writer.write(raw)
  p["plain"] = plain

  # An interrupted download: the middle shard of three cut short inside a record.
  cut = os.path.join(root, "cut")
  for name in ("validate0000.tfrecord", "validate0001.tfrecord", "validate0002.tfrecord"):
    _copy_shard(name, cut)
  p["cut_file"] = os.path.join(cut, "validate0001.tfrecord")
  content = open(p["cut_file"], "rb").read()
  open(p["cut_file"], "wb").write(content[:len(content) // 2 + 17])
  p["cut"] = os.path.join(cut, "*.tfrecord")
  p["cut_records"] = sum(_readable_records(f) for f in tf.io.gfile.glob(p["cut"]))
  cut_gzip = os.path.join(root, "cut_gzip")
  os.makedirs(cut_gzip)
  compressed = open(p["gzip"], "rb").read()
  p["cut_gzip"] = os.path.join(cut_gzip, "validate0000.tfrecord.gz")
  open(p["cut_gzip"], "wb").write(compressed[:len(compressed) // 2])

  # The dataset's own folder given whole: a glob that also matches its text files.
  junk = os.path.join(root, "with_manifest")
  _copy_shard("validate0000.tfrecord", junk)
  shutil.copyfile(os.path.join(SHARED_DATA, "MANIFEST.tsv"), os.path.join(junk, "MANIFEST.tsv"))
  p["with_manifest"] = os.path.join(junk, "*")
  gz_text = os.path.join(root, "gz_text")
  _copy_shard("validate0000.tfrecord", gz_text)
  with gzip.open(os.path.join(gz_text, "MANIFEST.tsv.gz"), "wb") as handle:
    handle.write(open(os.path.join(SHARED_DATA, "MANIFEST.tsv"), "rb").read())
  p["gz_text"] = os.path.join(gz_text, "*")
  with_folder = os.path.join(root, "with_folder")
  _copy_shard("validate0000.tfrecord", with_folder)
  os.makedirs(os.path.join(with_folder, "more_shards"))
  p["with_folder"] = os.path.join(with_folder, "*")
  broken_link = os.path.join(root, "broken_link")
  _copy_shard("validate0000.tfrecord", broken_link)
  os.symlink(os.path.join(root, "gone.tfrecord"), os.path.join(broken_link,
                                                               "validate0001.tfrecord"))
  p["broken_link"] = os.path.join(broken_link, "*.tfrecord")

  # Video-level shards with a frame-level file among them.
  mixed = os.path.join(root, "mixed")
  for name in ("validate0000.tfrecord", "validate0001.tfrecord"):
    _copy_shard(name, mixed)
  records.write_tfrecord(os.path.join(mixed, "frames0000.tfrecord"), [
      records.make_frame_example(f"f{i}", [1], {"rgb": np.full((3, 1024), 9, np.uint8),
                                                "audio": np.full((3, 128), 7, np.uint8)})
      for i in range(4)])
  p["mixed"] = os.path.join(mixed, "*.tfrecord")
  open(os.path.join(root, "a_file"), "w").write("not a folder\n")
  p["a_file"] = os.path.join(root, "a_file")

  trained = os.path.join(root, "trained")
  result = run_main("train", *TINY_MODEL, f"--train_dir={trained}",
                    f"--train_data_pattern={p['train']}", f"--eval_data_pattern={p['validate']}",
                    "--batch_size=32", "--max_steps=2", "--export_model_steps=1", "--noshuffle")
  assert result.returncode == 0, result.stderr
  p["trained"] = trained
  p["export"] = os.path.join(trained, "export", "2")
  # A model archive (inference.py --output_model_tgz's layout) cut short by a download.
  archive = io.BytesIO()
  with tarfile.open(fileobj=archive, mode="w:gz") as tar:
    for name in ("model_flags.json", "checkpoint", "model.ckpt-2.index",
                 "model.ckpt-2.data-00000-of-00001"):
      tar.add(os.path.join(trained, name), arcname=name)
  p["cut_tgz"] = os.path.join(root, "cut_model.tgz")
  open(p["cut_tgz"], "wb").write(archive.getvalue()[:len(archive.getvalue()) // 2])
  return p


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------

def _assert_one_error_line(result, expected):
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
  assert len(errors) == 1, result.stderr[-3000:]
  for text in expected:
    assert text in errors[0], f"{text!r} not in {errors[0]!r}"
  return errors[0]


def _files_under(folder):
  return sorted(os.path.relpath(os.path.join(base, name), folder)
                for base, _, names in os.walk(folder) for name in names)


def _train(p, out, pattern, *extra):
  return ("train", [*TINY_MODEL, f"--train_dir={out}/train", f"--train_data_pattern={pattern}",
                    "--batch_size=32", "--max_steps=1", "--export=false", *extra])


def _eval(train_dir, pattern, *extra):
  return ("eval", [f"--train_dir={train_dir}", "--run_once", f"--eval_data_pattern={pattern}",
                   "--batch_size=64", *extra])


def _inference(out, pattern, *extra, source):
  return ("inference", [*source, f"--output_file={out}/predictions.csv",
                        f"--input_data_pattern={pattern}", "--batch_size=64", *extra])


def _run(command):
  program, args = command
  return run_main(program, *args)


def _csv_rows(path):
  return open(path).read().splitlines()[1:]


# ----------------------------------------------------------------------------------------
# Bad data (categories 1, 3, 4, 5): one line naming the file or flag
# ----------------------------------------------------------------------------------------

# name: (p, out) -> (program, args), then the substrings the ERROR line must hold.
DATA_CASES = {
    # 1. Records without labels.
    "train_on_the_test_split": (
        lambda p, out: _train(p, out, p["test"]),
        ["test0000.tfrecord: holds no labels", "'labels'", "like the test split",
         "expected labelled records", "inference.py"]),
    "eval_on_the_test_split": (
        lambda p, out: _eval(p["trained"], p["test"]),
        ["test0000.tfrecord: holds no labels", "expected labelled records"]),
    "train_pattern_that_also_matches_the_test_split": (
        lambda p, out: _train(p, out, f"{p['train']},{p['test']}"),
        ["test0000.tfrecord: holds no labels", "remove it from the data pattern",
         "1 of its 3 files"]),
    "train_with_the_test_split_as_eval_data": (  # refused before training, not after
        lambda p, out: _train(p, out, p["train"], f"--eval_data_pattern={p['test']}"),
        ["test0000.tfrecord: holds no labels"]),
    # 3. Files in the wrong place.
    "a_folder_for_a_glob": (
        lambda p, out: _train(p, out, os.path.dirname(p["train"])),
        ["train' is a directory", "expected a file glob"]),
    "a_glob_matching_the_manifest": (
        lambda p, out: _train(p, out, p["with_manifest"]),
        ["MANIFEST.tsv: is a text file, not a TFRecord file", "narrow it",
         "with_manifest/*.tfrecord"]),
    "a_glob_matching_folders": (
        lambda p, out: _inference(out, p["with_folder"], source=[f"--train_dir={p['trained']}"]),
        ["with_folder/more_shards: is a folder, not a TFRecord file",
         "expected only TFRecord files"]),
    "a_broken_link_in_the_pattern": (
        lambda p, out: _train(p, out, p["broken_link"], "--skip_corrupt_records"),
        ["validate0001.tfrecord: does not exist (a broken link?)"]),
    "a_gzipped_text_file": (
        lambda p, out: _train(p, out, p["gz_text"]),
        ["MANIFEST.tsv.gz: is GZIP-compressed data that holds no TFRecords"]),
    "video_and_frame_level_files_mixed": (
        lambda p, out: _train(p, out, p["mixed"]),
        ["frames0000.tfrecord: holds frame-level records", "unlike the other 2 file(s)",
         "video-level records, as requested", "remove it from the pattern"]),
    "video_and_frame_level_files_mixed_inference": (
        lambda p, out: _inference(out, p["mixed"], source=[f"--train_dir={p['trained']}"]),
        ["frames0000.tfrecord: holds frame-level records"]),
    # 4. Flag values that cannot mean anything.
    "feature_the_records_lack": (
        lambda p, out: _train(p, out, p["train"], "--feature_names=mean_rgb,mean_inc3",
                              "--feature_sizes=1024,1024"),
        ["validate0000.tfrecord: record 0", "feature 'mean_inc3' is missing",
         "(the record has: mean_audio, mean_rgb)"]),
    "frame_feature_names_on_video_level_records": (
        lambda p, out: _train(p, out, p["train"], "--feature_names=rgb,audio"),
        ["feature 'rgb' is missing", "(the record has: mean_audio, mean_rgb)"]),
    "duplicated_feature_names": (
        lambda p, out: _train(p, out, p["train"], "--feature_names=mean_rgb,mean_rgb"),
        ["--feature_names=mean_rgb,mean_rgb names a feature twice"]),
    "label_id_not_below_num_classes": (
        lambda p, out: _train(p, out, p["train"], "--num_classes=100"),
        [".tfrecord: record 0", "'labels' holds the class id",
         "expected 0 <= id < num_classes=100"]),
    # 5. An interrupted download.
    "a_shard_cut_short_train": (
        lambda p, out: _train(p, out, p["cut"], "--max_steps=100", "--batch_size=256",
                              "--noshuffle"),
        ["--train_data_pattern", "cut/validate0001.tfrecord: the file is truncated at byte",
         "good record(s)", "--skip_corrupt_records"]),
    "a_shard_cut_short_eval": (
        lambda p, out: _eval(p["trained"], p["cut"]),
        ["--eval_data_pattern", "cut/validate0001.tfrecord: the file is truncated",
         "--skip_corrupt_records"]),
    "a_gzip_shard_cut_short_eval": (
        lambda p, out: _eval(p["trained"], p["cut_gzip"]),
        ["cut_gzip/validate0000.tfrecord.gz: the GZIP-compressed file is cut short or corrupt",
         "expected an intact compressed TFRecord file", "--skip_corrupt_records"]),
    "a_shard_cut_short_inference": (
        lambda p, out: _inference(out, p["cut"], source=["--train_dir=",
                                                         f"--saved_model_dir={p['export']}"]),
        ["--input_data_pattern", "cut/validate0001.tfrecord: the file is truncated"]),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_data_gives_one_clear_error(case, real, tmp_path):
  make_command, expected = DATA_CASES[case]
  program, args = make_command(real, str(tmp_path))
  before = _files_under(real["trained"])
  result = run_main(program, *args)
  _assert_one_error_line(result, expected)
  left = [name for name in _files_under(str(tmp_path))
          if name.startswith("train/model.ckpt") or name.endswith(".csv") or ".tmp" in name]
  assert not left, left
  assert _files_under(real["trained"]) == before


def test_inference_takes_records_without_labels(real, tmp_path):
  ids = [tf.train.Example.FromString(raw).features.feature["id"].bytes_list.value[0].decode()
         for raw in records.iterate_records(real["test"])]
  for source in ([f"--train_dir={real['trained']}"],
                 ["--train_dir=", f"--saved_model_dir={real['export']}"]):
    result = _run(_inference(str(tmp_path), real["test"], source=source))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _csv_rows(tmp_path / "predictions.csv")
    assert [row.split(",")[0] for row in rows] == ids and len(ids) == TEST_SPLIT_RECORDS


def test_compressed_shards_are_read_like_plain_ones(real, tmp_path):
  """GZIP (a gzip'ed .tfrecord.gz) and ZLIB shards: the same predictions as the plain
  shard, through the checkpoint and the SavedModel, and training reads them too."""
  def predict(pattern, source, name):
    output = tmp_path / name
    result = run_main("inference", *source, f"--output_file={output}",
                      f"--input_data_pattern={pattern}", "--batch_size=128")
    assert result.returncode == 0, result.stderr[-3000:]
    return output.read_text()

  for source in ([f"--train_dir={real['trained']}"],
                 ["--train_dir=", f"--saved_model_dir={real['export']}"]):
    plain = predict(real["plain"], source, "plain.csv")
    assert len(plain.splitlines()) == 1 + _readable_records(real["plain"])
    assert predict(real["gzip"], source, "gzip.csv") == plain
    assert predict(real["zlib"], source, "zlib.csv") == plain
  result = _run(_train(real, str(tmp_path), f"{real['gzip']},{real['zlib']}",
                            f"--eval_data_pattern={real['gzip']}"))
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.load(open(tmp_path / "train" / "eval" / "metrics.json"))
  assert metrics["num_examples"] == _readable_records(real["plain"])


@pytest.mark.parametrize("program", ["train", "eval", "inference"])
def test_skip_corrupt_records_reads_the_rest_of_a_cut_shard(program, real, tmp_path, caplog):
  caplog.set_level(logging.INFO)
  out = str(tmp_path)
  if program == "train":
    _, args = _train(real, out, real["cut"], "--skip_corrupt_records", "--max_steps=100",
                     "--batch_size=256", "--num_epochs=1")
  elif program == "eval":
    train_dir = str(tmp_path / "trained")
    shutil.copytree(real["trained"], train_dir)
    _, args = _eval(train_dir, real["cut"], "--skip_corrupt_records")
  else:
    _, args = _inference(out, real["cut"], "--skip_corrupt_records",
                         source=[f"--train_dir={real['trained']}"])
  result = run_main(program, *args)
  assert result.returncode == 0, result.stderr[-3000:]
  cut_bytes = os.path.getsize(real["cut_file"]) - sum(
      len(raw) + 16 for raw in tf.data.TFRecordDataset(real["cut_file"]).ignore_errors()
      .as_numpy_iterator())
  skipped = [r.getMessage() for r in caplog.records if "--skip_corrupt_records" in r.getMessage()]
  assert any(f"skipped 0 invalid record(s) and the unreadable rest of 1 file(s) ({cut_bytes} "
             "bytes)" in line for line in skipped), skipped
  if program == "train":
    assert train_dir_lib.latest_checkpoint(f"{out}/train") is not None
  elif program == "eval":
    metrics = json.load(open(os.path.join(out, "trained", "eval", "metrics.json")))
    assert metrics["num_examples"] == real["cut_records"]
  else:
    assert len(_csv_rows(tmp_path / "predictions.csv")) == real["cut_records"]


# ----------------------------------------------------------------------------------------
# A damaged or inconsistent train_dir (category 2)
# ----------------------------------------------------------------------------------------

def _edit_flags(train_dir, **changes):
  path = os.path.join(train_dir, "model_flags.json")
  data = json.load(open(path))
  for key, value in changes.items():
    if value is None:
      del data[key]
    else:
      data[key] = value
  json.dump(data, open(path, "w"))


def _write(path, text, mode="w"):
  with open(path, mode) as handle:
    handle.write(text)


def _remove(train_dir, *names):
  for name in names:
    for path in tf.io.gfile.glob(os.path.join(train_dir, name)):
      os.remove(path)


def _flags_is_a_folder(train_dir):
  os.remove(os.path.join(train_dir, "model_flags.json"))
  os.mkdir(os.path.join(train_dir, "model_flags.json"))


def _truncate_data(train_dir):
  data = os.path.join(train_dir, "model.ckpt-2.data-00000-of-00001")
  with open(data, "r+b") as handle:
    handle.truncate(os.path.getsize(data) // 3)


def _point_outside(train_dir, original):
  """A `checkpoint` index naming another train_dir's checkpoints by absolute path."""
  _write(os.path.join(train_dir, "checkpoint"),
         f'model_checkpoint_path: "{original}/model.ckpt-2"\n'
         f'all_model_checkpoint_paths: "{original}/model.ckpt-1"\n'
         f'all_model_checkpoint_paths: "{original}/model.ckpt-2"\n')


# name: (program, damage(train_dir, original), extra args, substrings of the ERROR line).
TRAIN_DIR_CASES = {
    "model_flags_not_json": (
        "eval", lambda d, o: _write(os.path.join(d, "model_flags.json"), '{"model": "Attend'),
        [], ["model_flags.json is not valid JSON"]),
    "model_flags_not_an_object": (
        "inference", lambda d, o: _write(os.path.join(d, "model_flags.json"), "[1, 2]"),
        [], ["model_flags.json holds a JSON list, not an object"]),
    "model_flags_lacks_keys": (
        "eval", lambda d, o: _edit_flags(d, feature_sizes=None), [],
        ["model_flags.json lacks the keys feature_sizes"]),
    "model_flags_names_an_unknown_model": (
        "inference", lambda d, o: _edit_flags(d, model="AttendFusionV9"), [],
        ["model_flags.json: 'model' is 'AttendFusionV9', not a known model", "AttendFusion,"]),
    "model_flags_value_of_the_wrong_type": (
        "train", lambda d, o: _edit_flags(d, feature_sizes="1024,abc"), [],
        ["model_flags.json: 'feature_sizes' is '1024,abc'",
         "expected comma-separated positive sizes"]),
    "model_flags_invalid_hyper_parameter": (
        "eval", lambda d, o: _edit_flags(d, model_params={"attend_num_heads": -2}), [],
        ["model_flags.json: 'model_params': --attend_num_heads=-2"]),
    "model_flags_unreadable": (
        "eval", lambda d, o: _flags_is_a_folder(d), [], ["model_flags.json cannot be read"]),
    "model_flags_binary": (
        "inference", lambda d, o: _write(os.path.join(d, "model_flags.json"), b"\x8d\x00\xff",
                                         "wb"),
        [], ["model_flags.json is not a text file"]),
    "checkpoint_names_weights_that_are_gone": (
        "eval", lambda d, o: _remove(d, "model.ckpt-2.*"), [],
        ["checkpoint names model.ckpt-2", "model.ckpt-2.index is missing",
         "edit it to name an intact one (model.ckpt-1)"]),
    "checkpoint_data_file_gone_resume": (
        "train", lambda d, o: _remove(d, "model.ckpt-2.data-*"), [],
        ["checkpoint names model.ckpt-2", "model.ckpt-2.data-00000-of-00001 is missing"]),
    "checkpoint_names_files_outside": (
        "train", _point_outside, [],
        ["checkpoint names", "/trained/model.ckpt-2, outside", "expected checkpoints of this "
         'train_dir', 'model_checkpoint_path: "model.ckpt-2"']),
    "checkpoint_names_files_outside_eval": (
        "eval", _point_outside, [], ["outside"]),
    "checkpoint_index_is_garbage": (
        "inference", lambda d, o: _write(os.path.join(d, "checkpoint"), "ckpt 2, saved\n"), [],
        ["checkpoint line 1 is not part of a checkpoint index"]),
    "checkpoint_index_is_empty_resume": (
        "train", lambda d, o: _write(os.path.join(d, "checkpoint"), ""), [],
        ["checkpoint names no checkpoint"]),
    "checkpoint_index_missing": (
        "eval", lambda d, o: _remove(d, "checkpoint"), [],
        ["holds model.ckpt-1, model.ckpt-2 but no 'checkpoint' file",
         'model_checkpoint_path: "model.ckpt-2"']),
    "checkpoint_cut_short": (
        "eval", lambda d, o: _truncate_data(d), [],
        ["cannot read the checkpoint", "model.ckpt-2", "expected a complete checkpoint"]),
    "checkpoint_cut_short_resume": (
        "train", lambda d, o: _truncate_data(d), [],
        ["cannot read the checkpoint", "model.ckpt-2"]),
    "no_checkpoint_at_all": (
        "eval", lambda d, o: _remove(d, "checkpoint", "model.ckpt-*"), [],
        ["no checkpoint in", "train a model there first"]),
}


def _run_on_train_dir(program, train_dir, pattern, out, extra=()):
  if program == "train":
    return run_main("train", f"--train_dir={train_dir}", f"--train_data_pattern={pattern}",
                    "--batch_size=32", "--max_steps=3", "--export=false", *extra)
  if program == "eval":
    return _run(_eval(train_dir, pattern, *extra))
  return _run(_inference(out, pattern, *extra, source=[f"--train_dir={train_dir}"]))


@pytest.mark.parametrize("case", sorted(TRAIN_DIR_CASES))
def test_damaged_train_dir_gives_one_clear_error(case, real, tmp_path):
  program, damage, extra, expected = TRAIN_DIR_CASES[case]
  train_dir = str(tmp_path / "train_dir")
  shutil.copytree(real["trained"], train_dir)
  damage(train_dir, real["trained"])
  before, original = _files_under(train_dir), _files_under(real["trained"])
  pattern = real["test"] if program == "inference" else real["validate"]
  result = _run_on_train_dir(program, train_dir, pattern, str(tmp_path), extra)
  _assert_one_error_line(result, expected)
  assert _files_under(train_dir) == before  # nothing written, nothing removed
  assert _files_under(real["trained"]) == original  # nor in the train_dir named outside
  assert not os.path.exists(tmp_path / "predictions.csv")


# The wrong kind of folder: (program, args from p, substrings of the ERROR line).
FOLDER_CASES = {
    "export_as_train_dir_eval": (
        "eval", lambda p: [f"--train_dir={p['export']}", "--run_once",
                           f"--eval_data_pattern={p['validate']}"],
        ["--train_dir=", "export/2 is an exported SavedModel", "not a train_dir",
         "/trained)", "--saved_model_dir="]),
    "export_as_train_dir_inference": (
        "inference", lambda p: [f"--train_dir={p['export']}", f"--input_data_pattern={p['test']}",
                                f"--output_file={p['root']}/never.csv"],
        ["export/2 is an exported SavedModel", "inference.py --saved_model_dir="]),
    "export_as_train_dir_train": (
        "train", lambda p: [f"--train_dir={p['export']}", f"--train_data_pattern={p['train']}",
                            "--max_steps=1"],
        ["export/2 is an exported SavedModel", "not a train_dir"]),
    "export_folder_as_train_dir": (
        "eval", lambda p: [f"--train_dir={p['trained']}/export", "--run_once",
                           f"--eval_data_pattern={p['validate']}"],
        ["trained/export is a train_dir's export folder (SavedModels 2)"]),
    "train_dir_as_saved_model_dir": (
        "inference", lambda p: ["--train_dir=", f"--saved_model_dir={p['trained']}",
                                f"--input_data_pattern={p['test']}",
                                f"--output_file={p['root']}/never.csv"],
        ["--saved_model_dir=", "trained is a train_dir, not an export",
         "export/2", f"--train_dir="]),
    "export_folder_as_saved_model_dir": (
        "inference", lambda p: ["--train_dir=", f"--saved_model_dir={p['trained']}/export",
                                f"--input_data_pattern={p['test']}",
                                f"--output_file={p['root']}/never.csv"],
        ["holds the exports 2", "give one", "export/2"]),
    "train_dir_is_its_eval_folder": (
        "eval", lambda p: [f"--train_dir={p['trained']}/eval", "--run_once",
                           f"--eval_data_pattern={p['validate']}"],
        ["trained/eval is a folder inside the train_dir", "expected the train_dir itself"]),
    "train_dir_is_a_file_eval": (
        "eval", lambda p: [f"--train_dir={p['a_file']}", "--run_once",
                           f"--eval_data_pattern={p['validate']}"],
        ["--train_dir=", "a_file is a file; expected a folder written by train.py"]),
    "train_dir_is_a_file_inference": (
        "inference", lambda p: [f"--train_dir={p['a_file']}", f"--input_data_pattern={p['test']}",
                                f"--output_file={p['root']}/never.csv"],
        ["a_file is a file; expected a folder written by train.py"]),
    "train_dir_is_a_file_train": (
        "train", lambda p: [f"--train_dir={p['a_file']}", f"--train_data_pattern={p['train']}"],
        ["--train_dir=", "a_file cannot be written", "expected a writable folder"]),
    "train_dir_with_an_unexpanded_tilde": (
        "train", lambda p: ["--train_dir=~/yt8m-fusion-never", f"--train_data_pattern={p['train']}"],
        ["--train_dir=~/yt8m-fusion-never starts with '~'", "expected the full path",
         os.path.expanduser("~/yt8m-fusion-never")]),
    "data_pattern_with_an_unexpanded_tilde": (
        "inference", lambda p: [f"--train_dir={p['trained']}", "--input_data_pattern=~/yt8m/*.tfr",
                                f"--output_file={p['root']}/never.csv"],
        ["no files match '~/yt8m/*.tfr'", "starts with '~'", os.path.expanduser("~/yt8m/")]),
    "input_model_tgz_cut_short": (
        "inference", lambda p: ["--train_dir=", f"--input_model_tgz={p['cut_tgz']}",
                                f"--untar_model_dir={p['root']}/untar",
                                f"--input_data_pattern={p['test']}",
                                f"--output_file={p['root']}/never.csv"],
        ["--input_model_tgz=", "cut_model.tgz is cut short or corrupt", "expected a complete "
         "archive"]),
    "input_model_tgz_is_a_folder": (
        "inference", lambda p: ["--train_dir=", f"--input_model_tgz={p['trained']}",
                                f"--input_data_pattern={p['test']}",
                                f"--output_file={p['root']}/never.csv"],
        ["--input_model_tgz=", "trained is a folder", "--train_dir"]),
    "saved_model_dir_is_a_file": (
        "inference", lambda p: ["--train_dir=", f"--saved_model_dir={p['a_file']}",
                                f"--input_data_pattern={p['test']}",
                                f"--output_file={p['root']}/never.csv"],
        ["--saved_model_dir=", "a_file is a file", "train_dir/export/<step>"]),
}


@pytest.mark.parametrize("case", sorted(FOLDER_CASES))
def test_the_wrong_kind_of_folder_gives_one_clear_error(case, real):
  program, make_args, expected = FOLDER_CASES[case]
  before = _files_under(real["trained"])
  result = run_main(program, *make_args(real))
  _assert_one_error_line(result, expected)
  assert _files_under(real["trained"]) == before
  assert not os.path.exists(os.path.join(real["root"], "never.csv"))
  assert not os.path.exists("~")  # no folder named '~' in the working directory


def test_model_flags_without_a_checkpoint_do_not_bind_the_next_run(real, tmp_path):
  """A first run that stopped on bad data before any checkpoint leaves model_flags.json;
  the next command line, with another model, trains instead of being refused."""
  train_dir = str(tmp_path / "train")
  failed = run_main("train", "--model=LogisticModel", f"--train_dir={train_dir}",
                    f"--train_data_pattern={real['test']}", "--max_steps=1")
  _assert_one_error_line(failed, ["holds no labels"])
  assert json.load(open(os.path.join(train_dir, "model_flags.json")))["model"] == "LogisticModel"
  result = _run(_train(real, str(tmp_path), real["train"]))
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.load(open(os.path.join(train_dir, "model_flags.json")))["model"] == "AttendFusion"


# ----------------------------------------------------------------------------------------
# Flag ranges, for every program (category 4)
# ----------------------------------------------------------------------------------------

TOO_BIG_BATCH = str((1 << 20) + 1)
FLAG_CASES = [
    ("train", "--top_k=0", "--top_k=0: expected an integer >= 1"),
    ("train", "--num_epochs=0", "--num_epochs=0: expected an integer >= 1"),
    ("train", "--max_steps=-3", "--max_steps=-3: expected an integer >= 1"),
    ("train", "--batch_size=0", "--batch_size=0: expected an integer in [1, 1048576]"),
    ("train", f"--batch_size={TOO_BIG_BATCH}", f"--batch_size={TOO_BIG_BATCH}: expected"),
    ("train", "--num_classes=1", "--num_classes=1: expected an integer in [2, 1048576]"),
    ("eval", "--top_k=0", "--top_k=0: expected an integer >= 1"),
    ("eval", f"--batch_size={TOO_BIG_BATCH}", "expected an integer in [1, 1048576]"),
    ("inference", "--top_k=-1", "--top_k=-1: expected an integer >= 1"),
    ("inference", "--batch_size=0", "--batch_size=0: expected an integer in [1, 1048576]"),
]


@pytest.mark.parametrize("program,flag,expected", FLAG_CASES)
def test_out_of_range_flags_give_one_clear_error(program, flag, expected, real, tmp_path):
  if program == "train":
    args = _train(real, str(tmp_path), real["train"], flag)[1]
  elif program == "eval":
    args = _eval(real["trained"], real["validate"], flag)[1]
  else:
    args = _inference(str(tmp_path), real["test"], flag, source=[f"--train_dir={real['trained']}"])[1]
  _assert_one_error_line(run_main(program, *args), [expected])
  assert not os.path.exists(tmp_path / "train")


def test_out_of_range_flags_of_the_other_programs(tmp_path):
  """The tools outside train/eval/inference, each in its own process (all at once)."""
  cases = {
      ("-m", "yt8m_fusion.summary", "--num_classes=1"): "--num_classes=1: expected an integer",
      ("-m", "yt8m_fusion.data.synthetic", "--num_shards=0", f"--output_dir={tmp_path}/s"):
          "--num_shards=0: expected an integer >= 1",
      ("-m", "yt8m_fusion.report", "--num_videos=0", f"--train_dirs={tmp_path}"):
          "--num_videos=0: expected an integer in [1, 40]",
      ("-m", "yt8m_fusion.local_cluster", "--num_workers=0"):
          "--num_workers=0: expected an integer >= 1",
  }
  processes = {args: subprocess.Popen([sys.executable, *args], cwd=REPO, env=ENV, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for args in cases}
  for args, process in processes.items():
    _, stderr = process.communicate(timeout=300)
    _assert_one_error_line(_Completed(process.returncode, stderr), [cases[args]])


class _Completed:

  def __init__(self, returncode, stderr):
    self.returncode = returncode
    self.stderr = stderr


# ----------------------------------------------------------------------------------------
# The soak: train, SIGKILL, resume, eval, inference, export on real shards
# ----------------------------------------------------------------------------------------

def _checkpoint_index(train_dir):
  try:
    return train_dir_lib.latest_checkpoint(train_dir)
  except Exception:  # pylint: disable=broad-except
    return None  # being rewritten: look again


def _assert_every_listed_checkpoint_restores(train_dir):
  """Every checkpoint the index lists is complete and readable (no lost checkpoint)."""
  text = open(os.path.join(train_dir, "checkpoint")).read()
  listed = [line.split('"')[1] for line in text.splitlines()
            if line.startswith("all_model_checkpoint_paths")]
  assert listed, text
  for name in listed:
    reader = tf.train.load_checkpoint(os.path.join(train_dir, name))
    for key in reader.get_variable_to_shape_map():
      reader.get_tensor(key)  # every tensor reads back
  return [train_dir_lib.checkpoint_step(name) for name in listed]


TEMPORARY_MARKS = ("_temp", ".tmp", "tmp-")


def test_soak_train_kill_resume_eval_inference_export(real, tmp_path):
  train_dir = str(tmp_path / "train")
  command = [sys.executable, "train.py", *TINY_MODEL, f"--train_dir={train_dir}",
             f"--train_data_pattern={real['train']}", f"--eval_data_pattern={real['validate']}",
             "--batch_size=32", "--num_epochs=1000", "--export_model_steps=2",
             "--max_checkpoints_to_keep=3", "--log_every_n_steps=1"]
  log = open(tmp_path / "first.log", "w")
  first = subprocess.Popen([*command, "--max_steps=1000"], cwd=REPO, env=ENV, stdout=log,
                           stderr=subprocess.STDOUT)
  deadline = time.time() + 300
  while time.time() < deadline and first.poll() is None:
    latest = _checkpoint_index(train_dir)
    if latest and train_dir_lib.checkpoint_step(latest) >= 4:
      break
    time.sleep(0.05)
  assert first.poll() is None, open(tmp_path / "first.log").read()[-3000:]
  first.send_signal(signal.SIGKILL)
  first.wait(timeout=60)
  killed_at = _assert_every_listed_checkpoint_restores(train_dir)
  # Leftovers of a kill during a save (TensorFlow's temporary checkpoint folder and index).
  os.makedirs(os.path.join(train_dir, "model.ckpt-999_temp"))
  _write(os.path.join(train_dir, "model.ckpt-999_temp", "part-00000-of-00001.index"), "x")
  _write(os.path.join(train_dir, "checkpoint.tmp" + "0" * 32), "half")

  resume_to = max(killed_at) + 3
  second = subprocess.run([*command, f"--max_steps={resume_to}"], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=600)
  assert second.returncode == 0, second.stderr[-4000:]
  assert f"Resuming from {train_dir}/model.ckpt-{max(killed_at)} (step {max(killed_at)}" \
      in second.stderr
  assert "left half-written by an interrupted run" in second.stderr
  steps = _assert_every_listed_checkpoint_restores(train_dir)
  assert max(steps) == resume_to and len(steps) == 3  # --max_checkpoints_to_keep
  assert json.load(open(os.path.join(train_dir, "eval", "metrics.json")))["step"] == resume_to
  export = os.path.join(train_dir, "export", str(resume_to))
  assert os.path.exists(os.path.join(export, "saved_model.pb"))

  evaluate = subprocess.Popen([sys.executable, "eval.py", f"--train_dir={train_dir}",
                               "--run_once", f"--eval_data_pattern={real['validate']}"],
                              cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
  predict = subprocess.run([sys.executable, "inference.py", f"--saved_model_dir={export}",
                            f"--input_data_pattern={real['test']}",
                            f"--output_file={tmp_path}/predictions.csv"],
                           cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
  _, eval_stderr = evaluate.communicate(timeout=600)
  assert evaluate.returncode == 0, eval_stderr[-3000:]
  assert predict.returncode == 0, predict.stderr[-3000:]
  assert len(_csv_rows(tmp_path / "predictions.csv")) == TEST_SPLIT_RECORDS
  assert os.path.exists(os.path.join(train_dir, "eval", f"metrics-{resume_to}.json"))
  left = [name for name in _files_under(str(tmp_path))
          if any(mark in name for mark in TEMPORARY_MARKS)]
  assert not left, left
