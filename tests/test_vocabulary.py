"""Class names: the vocabulary reader (yt8m_fusion.core.vocabulary, TensorFlow-free, and its
tf.io.gfile wrapper in yt8m_fusion.data) and the names file inference.py --vocabulary_file
writes beside the Kaggle CSV, from a train_dir, a SavedModel and a LiteRT file.

The real 2018 vocabulary's tests are in test_real_data.py (with the report on real records).
"""

import csv
import os
import subprocess
import sys
import textwrap

import pytest

from programs import REPO, run_main, run_program
from yt8m_fusion import data as yt8m_data
from yt8m_fusion.core import vocabulary as core_vocabulary
from yt8m_fusion.errors import UserError

NUM_CLASSES = 12
# A vocabulary that names classes 0-9 but 3 (and 10, 11 are absent): those show as
# "class <index>"; names hold the characters YouTube-8M's do (",", ":", '"').
SMALL_NAMES = {0: "Game", 1: "Nike, Inc.", 2: "Call of Duty: Black Ops II", 4: 'Toys "R" Us',
               5: "Concert", 6: "Cartoon", 7: "Guitar", 8: "Dance", 9: "Car"}


def _write_small_vocabulary(path, empty_name_for=3):
  with open(path, "w", newline="", encoding="utf-8") as handle:
    writer = csv.writer(handle)
    writer.writerow(["Index", "TrainVideoCount", "KnowledgeGraphId", "Name"])
    for index, name in SMALL_NAMES.items():
      writer.writerow([index, 100 - index, f"/m/{index}", name])
    writer.writerow([empty_name_for, 1, "/m/x", ""])  # listed without a name
  return str(path)


def _expected_name(index):
  return SMALL_NAMES.get(index) or f"class {index}"


# ----------------------------------------------------------------------------------------
# The reader
# ----------------------------------------------------------------------------------------

def test_the_reader_names_listed_classes_and_falls_back_for_the_others(tmp_path):
  path = _write_small_vocabulary(tmp_path / "vocabulary.csv")
  names = core_vocabulary.read_vocabulary(path)
  assert names == {**SMALL_NAMES, 3: ""}
  assert yt8m_data.read_vocabulary(path) == names  # the same reader over tf.io.gfile
  assert [core_vocabulary.class_name(names, c) for c in (1, 3, 11)] == [
      "Nike, Inc.", "class 3", "class 11"]


@pytest.mark.parametrize("content, expected", [
    (None, "vocabulary file not found"),
    ("Index,KnowledgeGraphId\n0,/m/1\n", r"lacks the column\(s\) Name"),
    ("Index,Name\n0,Game\nseven,Car\n", "line 3: Index 'seven' is not a class index"),
    ("Index,Name\n-1,Game\n", "line 2: Index '-1' is not a class index"),
    (b"\x80\x81\xfe\x00binary", "is not UTF-8 text"),
    ("directory", "cannot read the vocabulary file"),
])
def test_a_bad_vocabulary_file_is_one_line_naming_it(content, expected, tmp_path):
  path = tmp_path / "vocabulary.csv"
  if content == "directory":
    path.mkdir()
  elif isinstance(content, bytes):
    path.write_bytes(content)
  elif content is not None:
    path.write_text(content)
  for read in (core_vocabulary.read_vocabulary, yt8m_data.read_vocabulary):
    with pytest.raises(UserError, match=expected) as error:
      read(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_the_names_file_is_beside_the_csv():
  assert core_vocabulary.names_file_for("/out/predictions.csv") == "/out/predictions.names.csv"
  assert core_vocabulary.names_file_for("/out/predictions") == "/out/predictions.names.csv"


# ----------------------------------------------------------------------------------------
# inference.py --vocabulary_file
# ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """A LogisticModel trained 4 steps on synthetic 12-class video-level records, with the
  SavedModel train.py exports and a float32 LiteRT file."""
  from yt8m_fusion import export  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import train_dir as train_dir_lib  # pylint: disable=import-outside-toplevel
  folder = str(tmp_path_factory.mktemp("data"))
  dataset = yt8m_data.generate_dataset(folder, num_videos=120, num_classes=NUM_CLASSES,
                                       seed=3, num_shards=2)
  train_dir = str(tmp_path_factory.mktemp("run"))
  run_program("train.py", "--model=LogisticModel", f"--num_classes={NUM_CLASSES}",
              f"--train_dir={train_dir}", f"--train_data_pattern={dataset['video']['train']}",
              f"--eval_data_pattern={dataset['video']['validate']}", "--batch_size=16",
              "--max_steps=4")
  config = train_dir_lib.load_config(train_dir)
  model = models.build_model(config)
  train_dir_lib.restore_weights(model, train_dir_lib.latest_checkpoint(train_dir))
  litert_file = os.path.join(str(tmp_path_factory.mktemp("litert")), "model.tflite")
  export.export_litert(model, config, litert_file, quantization="none")
  return {"train_dir": train_dir, "saved_model": train_dir_lib.latest_export(train_dir),
          "litert": litert_file, "test": dataset["video"]["validate"],
          "vocabulary": _write_small_vocabulary(os.path.join(folder, "small_vocabulary.csv"))}


def _read_kaggle_csv(path):
  with open(path, encoding="utf-8") as handle:
    assert handle.readline() == "VideoId,LabelConfidencePairs\n"
    rows = {}
    for line in handle:
      video_id, pairs = line.rstrip("\n").split(",", 1)
      values = pairs.split()
      rows[video_id] = [(int(c), float(s)) for c, s in zip(values[0::2], values[1::2])]
  return rows


def _read_names_file(path):
  """{video id: [(index, name, score)]}: index before the first ":", score after the last."""
  with open(path, newline="", encoding="utf-8") as handle:
    reader = csv.reader(handle)
    assert next(reader) == ["VideoId", "Predictions"]
    rows = {}
    for video_id, predictions in reader:
      fields = [field.split(":", 1) for field in predictions.split("; ")]
      rows[video_id] = [(int(index), rest.rsplit(":", 1)[0], float(rest.rsplit(":", 1)[1]))
                        for index, rest in fields]
  return rows


def _check_names_beside(csv_path, names_path):
  kaggle, named = _read_kaggle_csv(csv_path), _read_names_file(names_path)
  assert list(named) == list(kaggle) and len(kaggle) > 10
  shown = set()
  for video_id, pairs in kaggle.items():
    assert [(index, _expected_name(index)) for index, _ in pairs] == [
        (index, name) for index, name, _ in named[video_id]]
    assert [score for _, score in pairs] == pytest.approx(
        [score for _, _, score in named[video_id]], abs=1e-4)
    shown.update(index for index, _ in pairs)
  assert {3, 10, 11} <= shown  # top 12 of 12 classes: the fallbacks are exercised


@pytest.mark.parametrize("source", ["train_dir", "saved_model_dir"])
def test_inference_writes_names_beside_the_unchanged_csv(source, tiny_run, tmp_path):
  # Flags are global in run_main: name both sources (train.py's --train_dir has a default).
  sources = {"train_dir": "", "saved_model_dir": ""}
  sources[source] = tiny_run["train_dir" if source == "train_dir" else "saved_model"]
  common = [*(f"--{name}={value}" for name, value in sources.items()),
            f"--input_data_pattern={tiny_run['test']}", "--top_k=12"]
  plain_csv, named_csv = str(tmp_path / "plain.csv"), str(tmp_path / "predictions.csv")
  result = run_main("inference.py", *common, f"--output_file={plain_csv}")
  assert result.returncode == 0, result.stderr[-3000:]
  result = run_main("inference.py", *common, f"--output_file={named_csv}",
                    f"--vocabulary_file={tiny_run['vocabulary']}")
  assert result.returncode == 0, result.stderr[-3000:]
  with open(plain_csv, encoding="utf-8") as plain, open(named_csv, encoding="utf-8") as named:
    assert plain.read() == named.read()  # the Kaggle CSV is unchanged
  _check_names_beside(named_csv, str(tmp_path / "predictions.names.csv"))
  assert not os.path.exists(str(tmp_path / "plain.names.csv"))


def test_inference_with_a_litert_file_writes_names_without_tensorflow(tiny_run, tmp_path):
  csv_path, names_path = str(tmp_path / "out.csv"), str(tmp_path / "chosen-names.csv")
  runner = textwrap.dedent("""
      import runpy, sys
      sys.argv = ["inference.py"] + sys.argv[1:]
      try:
        runpy.run_path("inference.py", run_name="__main__")
      except SystemExit as exit_:
        assert not exit_.code, exit_.code
      loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
      assert not loaded, loaded[:5]
      """)
  subprocess.run([sys.executable, "-c", runner, f"--litert_model={tiny_run['litert']}",
                  f"--input_data_pattern={tiny_run['test']}", f"--output_file={csv_path}",
                  "--top_k=12", f"--vocabulary_file={tiny_run['vocabulary']}",
                  f"--names_output_file={names_path}"],
                 cwd=REPO, check=True, timeout=300, capture_output=True, text=True)
  _check_names_beside(csv_path, names_path)


def test_inference_with_a_bad_vocabulary_is_one_line_and_writes_nothing(tiny_run, tmp_path):
  bad = tmp_path / "vocabulary.csv"
  bad.write_text("KnowledgeGraphId,Name\n/m/1,Game\n")
  output = tmp_path / "out" / "predictions.csv"
  result = run_main("inference.py", f"--train_dir={tiny_run['train_dir']}",
                    f"--input_data_pattern={tiny_run['test']}", f"--output_file={output}",
                    f"--vocabulary_file={bad}")
  assert result.returncode != 0
  errors = [line for line in result.stderr.splitlines() if str(bad) in line]
  assert errors and "lacks the column(s) Index" in errors[0]
  assert not output.parent.exists() or os.listdir(output.parent) == []
