"""Real YouTube-8M 2018 video-level records (a sample of the official shards): the project's
reader against an independent parse, the README's programs on them, and a class-prior
baseline that a short training run must beat.

The independent parse reads the TFRecord framing (length, masked CRC-32C of the length and
of the data) and decodes the tf.train.Example protobuf by hand (wire format: varints,
length-delimited fields, packed and unpacked repeated fields): neither TensorFlow's record
reader nor its Example parser nor the protobuf library is used.

The data is `../shared/data/yt8m-2018-video` beside the repository (CI has it); without it
every test here is skipped.
"""

import csv
import hashlib
import json
import os
import struct

import numpy as np
import pytest

from programs import REPO, run_main, run_program

DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "yt8m-2018-video"))
NUM_CLASSES = 3862
FEATURES = {"mean_rgb": 1024, "mean_audio": 128}
# A short run: 10 training shards (about 3,000 videos), 2 held-out validate shards.
TRAIN_SHARDS = [f"train/validate{i:04d}.tfrecord" for i in range(10)]
EVAL_SHARDS = ["validate/validate0100.tfrecord", "validate/validate0101.tfrecord"]

pytestmark = pytest.mark.skipif(
    not os.path.isdir(DATA), reason=f"no real YouTube-8M sample at {DATA} (CI has ../shared)")


# --- An independent reader: TFRecord framing + tf.train.Example wire format ---------------

def _crc32c_table():
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    table.append(crc)
  return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
  crc = 0xFFFFFFFF
  table = _CRC_TABLE
  for byte in data:
    crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc(data):
  """TFRecord's masked CRC-32C: rotate right by 15, add a constant."""
  crc = crc32c(data)
  return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path, check_data_crc=True):
  """The serialized records of a TFRecord file, every CRC checked."""
  records = []
  with open(path, "rb") as handle:
    while True:
      header = handle.read(12)
      if not header:
        return records
      assert len(header) == 12, f"{path}: truncated record header"
      length, length_crc = struct.unpack("<QI", header)
      assert masked_crc(header[:8]) == length_crc, f"{path}: bad length CRC"
      data = handle.read(length)
      (data_crc,) = struct.unpack("<I", handle.read(4))
      assert len(data) == length, f"{path}: truncated record"
      if check_data_crc:
        assert masked_crc(data) == data_crc, f"{path}: bad data CRC"
      records.append(data)


def count_records(path):
  """Records in a TFRecord file, from the length headers alone (seeks over the data)."""
  count = 0
  size = os.path.getsize(path)
  with open(path, "rb") as handle:
    while handle.tell() < size:
      (length,) = struct.unpack("<Q", handle.read(8))
      handle.seek(4 + length + 4, os.SEEK_CUR)
      count += 1
    assert handle.tell() == size, f"{path}: the last record runs past the end of the file"
  return count


def _varint(buffer, position):
  result = shift = 0
  while True:
    byte = buffer[position]
    position += 1
    result |= (byte & 0x7F) << shift
    if not byte & 0x80:
      return result, position
    shift += 7


def _fields(buffer):
  """(field number, wire type, value) of a protobuf message; LEN values as memoryviews."""
  buffer = memoryview(buffer)
  position = 0
  while position < len(buffer):
    key, position = _varint(buffer, position)
    number, wire = key >> 3, key & 7
    if wire == 0:
      value, position = _varint(buffer, position)
    elif wire == 1:
      value, position = buffer[position:position + 8], position + 8
    elif wire == 2:
      length, position = _varint(buffer, position)
      value, position = buffer[position:position + length], position + length
    elif wire == 5:
      value, position = buffer[position:position + 4], position + 4
    else:
      raise ValueError(f"unexpected wire type {wire}")
    yield number, wire, value


def _feature_values(feature):
  """Feature {bytes_list = 1, float_list = 2, int64_list = 3}, each {repeated value = 1}."""
  for kind, _, values in _fields(feature):
    out = []
    for number, wire, value in _fields(values):
      assert number == 1
      if kind == 1:
        out.append(bytes(value))
      elif kind == 2:  # packed (LEN) or one float per field (I32)
        out.extend(np.frombuffer(value, "<f4").tolist())
      elif wire == 2:  # packed varints
        position = 0
        while position < len(value):
          item, position = _varint(value, position)
          out.append(item - (1 << 64) if item >= 1 << 63 else item)
      else:
        out.append(value - (1 << 64) if value >= 1 << 63 else value)
    return kind, out
  return None, []


def parse_example(serialized):
  """tf.train.Example {Features features = 1} -> {name: list of values}.

  Other fields are skipped, as protobuf parsers skip unknown fields: the real records also
  carry an empty field 2 (a SequenceExample's feature_lists).
  """
  parsed = {}
  for number, _, features in _fields(serialized):
    if number != 1:
      continue
    for entry_number, _, entry in _fields(features):  # map<string, Feature> feature = 1
      assert entry_number == 1
      key = value = None
      for field, _, content in _fields(entry):
        if field == 1:
          key = bytes(content).decode("utf-8")
        elif field == 2:
          value = _feature_values(content)[1]
      parsed[key] = value
  return parsed


def parse_shards(relative_paths, check_data_crc=True):
  """{"ids", "labels" (multi-hot), feature arrays, "records"} of the shards, in file order."""
  records = [r for p in relative_paths
             for r in read_records(os.path.join(DATA, p), check_data_crc)]
  examples = [parse_example(r) for r in records]
  labels = np.zeros((len(examples), NUM_CLASSES), np.float32)
  for row, example in enumerate(examples):
    labels[row, example["labels"]] = 1
  parsed = {"records": records, "labels": labels,
            "ids": [example["id"][0].decode("utf-8") for example in examples],
            "label_lists": [example["labels"] for example in examples]}
  for name in FEATURES:
    parsed[name] = np.array([example[name] for example in examples], np.float32)
  return parsed


# --- The files --------------------------------------------------------------------------

def _manifest():
  with open(os.path.join(DATA, "MANIFEST.tsv")) as handle:
    return list(csv.DictReader(handle, delimiter="\t"))


def test_every_shard_has_the_manifest_record_count_and_size():
  rows = _manifest()
  assert len(rows) == 120
  for row in rows:
    path = os.path.join(DATA, row["file"])
    assert os.path.getsize(path) == int(row["bytes"]), row["file"]
    assert count_records(path) == int(row["records"]), row["file"]
  by_split = {split: sum(int(r["records"]) for r in rows if r["file"].startswith(split))
              for split in ("train/", "validate/")}
  assert by_split == {"train/": 28792, "validate/": 5758}  # the data README's counts
  for row in rows[:1] + rows[-1:]:  # one shard of each split, byte for byte
    with open(os.path.join(DATA, row["file"]), "rb") as handle:
      assert hashlib.sha256(handle.read()).hexdigest() == row["sha256"], row["file"]


@pytest.fixture(scope="module")
def held_out():
  return parse_shards(EVAL_SHARDS)


def test_the_reader_returns_what_an_independent_parse_finds(held_out):
  from yt8m_fusion import data as yt8m_data  # pylint: disable=import-outside-toplevel
  manifest = {row["file"]: int(row["records"]) for row in _manifest()}
  assert len(held_out["ids"]) == sum(manifest[p] for p in EVAL_SHARDS)
  spec = yt8m_data.DataSpec(feature_names=tuple(FEATURES),
                            feature_sizes=tuple(FEATURES.values()), num_classes=NUM_CLASSES)
  dataset = yt8m_data.load_dataset([os.path.join(DATA, p) for p in EVAL_SHARDS], spec,
                                   batch_size=128, num_readers=1).dataset
  ids, labels, features = [], [], {name: [] for name in FEATURES}
  for batch in dataset:
    ids += [v.decode("utf-8") for v in batch["video_ids"].numpy()]
    labels.append(batch["labels"].numpy())
    for name in FEATURES:
      features[name].append(batch[name].numpy())
  assert ids == held_out["ids"]  # one reader, files in order: the same order
  assert all(len(v) == 4 for v in ids) and len(set(ids)) == len(ids)
  np.testing.assert_array_equal(np.concatenate(labels), held_out["labels"])
  for name, size in FEATURES.items():
    values = np.concatenate(features[name])
    assert values.shape == (len(ids), size)
    np.testing.assert_array_equal(values, held_out[name])  # float32, bit for bit
  counts = [len(v) for v in held_out["label_lists"]]
  assert min(counts) >= 1 and 2.5 < np.mean(counts) < 3.5  # about 3.0 labels per video
  assert all(0 <= c < NUM_CLASSES for v in held_out["label_lists"] for c in v)


def test_the_segment_vocabulary_lists_1000_classes():
  from yt8m_fusion.data import read_vocabulary  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.data.vocabulary import class_name  # pylint: disable=import-outside-toplevel
  path = os.path.join(DATA, "segment_vocabulary_2019.csv")
  names = read_vocabulary(path)
  assert len(names) == 1000 and all(0 <= c < NUM_CLASSES for c in names)
  assert names[3] == "Concert"
  # Some listed classes have no name (e.g. 120, Knowledge Graph id /m/0dxrf), and the
  # 2,862 others are not listed: both show as "class <index>".
  assert names[120] == "" and class_name(names, 120) == "class 120"
  unlisted = next(c for c in range(NUM_CLASSES) if c not in names)
  assert class_name(names, unlisted) == f"class {unlisted}"


def test_the_2018_vocabulary_names_every_class_and_is_the_one_found_beside_the_data():
  from yt8m_fusion.data import read_vocabulary  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.data.vocabulary import class_name  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.report import runs as runs_lib  # pylint: disable=import-outside-toplevel
  path = os.path.join(DATA, "vocabulary.csv")
  names = read_vocabulary(path)
  assert sorted(names) == list(range(NUM_CLASSES))
  assert names[0] == "Game" and names[3] == "Concert"
  segment_names = read_vocabulary(os.path.join(DATA, "segment_vocabulary_2019.csv"))
  assert 0 not in segment_names  # the 2019 file lacks "Game"; the 2018 file names it
  # Only the rows whose Name is empty in the official file fall back to "class <index>".
  unnamed = [c for c in range(NUM_CLASSES) if not names[c]]
  assert 0 < len(unnamed) < 100
  assert class_name(names, unnamed[0]) == f"class {unnamed[0]}"
  with open(path, newline="", encoding="utf-8") as handle:
    rows = list(csv.DictReader(handle))
  assert {int(row["Index"]): row["Name"] for row in rows} == names  # an independent parse
  # The report (and export) take it over the 2019 file when both are beside the data.
  assert runs_lib.find_vocabulary(os.path.join(DATA, "validate", "*.tfrecord")) == path


# --- The programs on real records ---------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """train.py as the README runs it: a LogisticModel on both features, 60 steps of 256."""
  train_dir = str(tmp_path_factory.mktemp("real_logistic"))
  run_program("train.py", "--model=LogisticModel", "--feature_names=mean_rgb,mean_audio",
              "--feature_sizes=1024,128",
              "--train_data_pattern=" + ",".join(os.path.join(DATA, p) for p in TRAIN_SHARDS),
              "--eval_data_pattern=" + ",".join(os.path.join(DATA, p) for p in EVAL_SHARDS),
              f"--train_dir={train_dir}", "--batch_size=256", "--max_steps=60",
              "--num_epochs=100", "--seed=1")
  with open(os.path.join(train_dir, "eval", "metrics.json")) as handle:
    return {"dir": train_dir, "metrics": json.load(handle)}


def class_prior_gap(train_labels, eval_labels):
  """GAP@20 of predicting each class's training frequency for every video."""
  from yt8m_fusion.metrics import EvaluationMetrics  # pylint: disable=import-outside-toplevel
  prior = train_labels.mean(axis=0)
  metrics = EvaluationMetrics(NUM_CLASSES, 20)
  metrics.accumulate(np.tile(prior, (len(eval_labels), 1)), eval_labels, 0.0)
  return metrics.get()["gap"]


def test_a_short_training_run_beats_the_class_prior(trained, held_out):
  train_labels = parse_shards(TRAIN_SHARDS, check_data_crc=False)["labels"]
  prior_gap = class_prior_gap(train_labels, held_out["labels"])
  metrics = trained["metrics"]
  assert metrics["num_examples"] == len(held_out["ids"])
  assert 0.05 < prior_gap < metrics["gap"], (prior_gap, metrics["gap"])
  assert metrics["gap"] > prior_gap + 0.1


def test_eval_and_the_keras_model_agree_with_the_training_run(trained, held_out):
  """eval.py reproduces train.py's GAP; the Keras model rebuilt from model_flags.json and
  the checkpoint, run on the independently parsed features, gives the same GAP."""
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import train_dir as train_dir_lib  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.metrics import EvaluationMetrics  # pylint: disable=import-outside-toplevel
  pattern = ",".join(os.path.join(DATA, p) for p in EVAL_SHARDS)
  result = run_main("eval.py", f"--train_dir={trained['dir']}", f"--eval_data_pattern={pattern}",
                    "--run_once")
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(trained["dir"], "eval", "metrics.json")) as handle:
    again = json.load(handle)
  assert again["gap"] == pytest.approx(trained["metrics"]["gap"], abs=1e-6)

  model = models.build_model(train_dir_lib.load_config(trained["dir"]))
  train_dir_lib.restore_weights(model, train_dir_lib.latest_checkpoint(trained["dir"]))
  probabilities = np.asarray(model({name: held_out[name] for name in FEATURES}))
  metrics = EvaluationMetrics(NUM_CLASSES, 20)
  metrics.accumulate(probabilities, held_out["labels"], 0.0)
  assert metrics.get()["gap"] == pytest.approx(trained["metrics"]["gap"], abs=1e-5)


def test_serving_default_on_real_records_gives_the_keras_probabilities(trained, held_out,
                                                                       tmp_path):
  """The exported SavedModel's serving_default, given the serialized records, returns the
  Keras model's top-20 classes and probabilities; inference.py writes the same CSV."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import train_dir as train_dir_lib  # pylint: disable=import-outside-toplevel
  export = train_dir_lib.latest_export(trained["dir"])
  assert export and export.endswith("/60")
  serve = tf.saved_model.load(export).signatures["serving_default"]
  served = serve(example_bytes=tf.constant(held_out["records"]))
  assert [v.decode("utf-8") for v in served["video_id"].numpy()] == held_out["ids"]
  classes = served["class_indexes"].numpy()
  scores = served["predictions"].numpy()
  assert classes.shape == scores.shape == (len(held_out["ids"]), 20)

  model = models.build_model(train_dir_lib.load_config(trained["dir"]))
  train_dir_lib.restore_weights(model, train_dir_lib.latest_checkpoint(trained["dir"]))
  probabilities = np.asarray(model({name: held_out[name] for name in FEATURES}))
  np.testing.assert_allclose(scores, np.take_along_axis(probabilities, classes, axis=1),
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(scores, -np.sort(-probabilities, axis=1)[:, :20], rtol=1e-5,
                             atol=1e-7)

  csv_path = str(tmp_path / "predictions.csv")
  result = run_main("inference.py", f"--train_dir={trained['dir']}",
                    f"--output_file={csv_path}", "--input_data_pattern=" +
                    ",".join(os.path.join(DATA, p) for p in EVAL_SHARDS))
  assert result.returncode == 0, result.stderr[-3000:]
  with open(csv_path) as handle:
    lines = handle.read().splitlines()
  assert lines[0] == "VideoId,LabelConfidencePairs"
  rows = {line.split(",")[0]: line.split(",")[1].split() for line in lines[1:]}
  assert sorted(rows) == sorted(held_out["ids"])
  for row, video_id in enumerate(held_out["ids"]):
    values = rows[video_id]
    assert [int(c) for c in values[0::2]] == classes[row].tolist()
    np.testing.assert_allclose([float(s) for s in values[1::2]], scores[row], rtol=1e-5,
                               atol=1e-6)


def test_the_report_on_real_records_names_classes_and_uses_training_positives(trained,
                                                                            held_out,
                                                                            tmp_path):
  import pandas as pd  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import report  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.data import read_vocabulary  # pylint: disable=import-outside-toplevel
  vocabulary = os.path.join(DATA, "vocabulary.csv")  # the 2018 file: every class named
  segment_names = read_vocabulary(os.path.join(DATA, "segment_vocabulary_2019.csv"))
  result = report.write_report(
      [trained["dir"]], str(tmp_path), labels=["logistic"], num_videos=4,
      train_data_pattern=",".join(os.path.join(DATA, p) for p in TRAIN_SHARDS))
  assert set(result.skipped) == {"attention"}  # a LogisticModel has none
  assert result.files["qualitative"] and result.files["per_class_ap_by_frequency"]
  names = read_vocabulary(vocabulary)  # found beside the data without --vocabulary
  qualitative = pd.read_csv(result.files["qualitative_csv"])
  assert list(qualitative["video_id"].unique()) == held_out["ids"][:4]
  for _, row in qualitative.iterrows():
    assert row["class_name"] == (names.get(row["class_index"]) or
                                 f"class {row['class_index']}")
  # Classes the 2019 file lacks (today's figures said "class <index>") have their 2018 names.
  beyond_2019 = qualitative[~qualitative["class_index"].isin(list(segment_names))]
  assert len(beyond_2019) and not beyond_2019["class_name"].str.startswith("class ").all()
  per_class = pd.read_csv(result.files["per_class_ap_csv"])
  train_counts = parse_shards(TRAIN_SHARDS, check_data_crc=False)["labels"].sum(axis=0)
  eval_counts = held_out["labels"].sum(axis=0)
  assert list(per_class["class_index"]) == [int(c) for c in np.flatnonzero(eval_counts)]
  assert list(per_class["train_positives"]) == [int(train_counts[c])
                                                for c in per_class["class_index"]]
  assert list(per_class["logistic"]) == pytest.approx(trained["metrics"]["per_class_ap"],
                                                      abs=1e-6)
  with open(result.files["report"]) as handle:
    assert "training positives of the class (of 2,950 training videos)" in handle.read()
