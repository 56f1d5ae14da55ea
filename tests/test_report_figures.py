"""The report's per-class and naming pieces on small synthetic predictions (no training):
vocabularies that name only some classes, per-class AP by class frequency (binned, CSV,
Markdown, figure), the qualitative figure and GAP against parameters."""

import os

import pandas as pd
import pytest

from yt8m_fusion.data import read_vocabulary
from yt8m_fusion.data.vocabulary import class_name
from yt8m_fusion.models.config import ModelConfig
from yt8m_fusion.report import figures
from yt8m_fusion.report import runs as runs_lib
from yt8m_fusion.report import writer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SEGMENT_VOCABULARY = (
    "Index,KnowledgeGraphId,Name,PositiveSegmentCount,TotalSegmentCount\n"
    "3,/m/01jddz,Concert,181,240\n"
    "7,/m/0k4j,Car,159,246\n"
    "11,/m/02wbm,\"Food, drink\",121,247\n")


def _png(path):
  with open(path, "rb") as handle:
    return handle.read(8) == PNG_SIGNATURE and os.path.getsize(path) > 5000


def _run(label, aps, model="AttendFusion"):
  config = ModelConfig(model=model, feature_names=["mean_rgb", "mean_audio"],
                       feature_sizes=[1024, 128], num_classes=20)
  return runs_lib.Run(train_dir=f"/runs/{label}", label=label, config=config,
                      metrics={"per_class_ap": list(aps), "gap": 0.5})


def test_a_segment_vocabulary_names_some_classes(tmp_path):
  path = tmp_path / "data" / "segment_vocabulary_2019.csv"
  path.parent.mkdir()
  path.write_text(SEGMENT_VOCABULARY)
  names = read_vocabulary(str(path))
  assert names == {3: "Concert", 7: "Car", 11: "Food, drink"}
  assert class_name(names, 3) == "Concert"
  assert class_name(names, 123) == "class 123"
  assert class_name({5: ""}, 5) == "class 5"  # an empty name is no name
  assert runs_lib.read_vocabulary_table(str(path)) == (names, None)  # no TrainVideoCount
  # Found one folder above the data, as in the real sample's layout.
  (tmp_path / "data" / "validate").mkdir()
  assert runs_lib.find_vocabulary(str(tmp_path / "data" / "validate" / "*.tfrecord")) == \
      str(path)
  (tmp_path / "data" / "vocabulary.csv").write_text("Index,Name\n1,One\n")
  assert runs_lib.find_vocabulary(str(tmp_path / "data" / "validate" / "*.tfrecord")) == \
      str(tmp_path / "data" / "vocabulary.csv")  # the full vocabulary first


def test_binned_ap_hand_computed():
  aps = [0.1, 0.5, 0.9, 0.3, 0.7, 0.2]
  counts = [0, 2, 5, 50, 1, 4]
  bins = figures.binned_ap(aps, counts)
  assert [(b["name"], b["classes"]) for b in bins] == [
      ("0", 1), ("1-2", 2), ("3-9", 2), (">=30", 1)]  # 10-29 is empty: left out
  assert [b["mean_ap"] for b in bins] == pytest.approx([0.1, 0.6, 0.55, 0.3])
  assert [b["median_ap"] for b in bins] == pytest.approx([0.1, 0.6, 0.55, 0.3])


def test_per_class_ap_by_frequency_csv_markdown_and_figures(tmp_path):
  classes = [0, 3, 7, 12]
  runs = [_run("AF", [0.2, 0.4, 0.9, 1.0]), _run("Late", [0.0, 0.6, 0.7, 0.8], "FCLateFusion"),
          _run("other data", [0.5])]  # APs of other classes: left out of the by-class views
  class_info = {"classes": classes, "eval_positives": {0: 1, 3: 2, 7: 1, 12: 5},
                "frequency": {0: 0, 3: 2, 7: 40, 12: 400}, "frequency_column": "train_positives",
                "frequency_name": "training positives"}
  names = {3: "Concert", 7: "Car"}
  csv_path = writer._per_class_csv(runs, class_info, names,  # pylint: disable=protected-access
                                   str(tmp_path / "per_class_ap.csv"))
  table = pd.read_csv(csv_path)
  assert list(table.columns) == ["class_index", "class_name", "eval_positives",
                                 "train_positives", "AF", "Late"]
  assert list(table["class_name"]) == ["class 0", "Concert", "Car", "class 12"]
  assert list(table["train_positives"]) == [0, 2, 40, 400]
  assert list(table["Late"]) == pytest.approx([0.0, 0.6, 0.7, 0.8])

  markdown = writer.ap_by_frequency_markdown(runs, class_info)
  assert markdown.splitlines()[0] == "| training positives | classes | AF | Late |"
  assert "| 0 | 1 | 0.200 | 0.000 |" in markdown
  assert "| 1-2 | 1 | 0.400 | 0.600 |" in markdown
  assert "| 30-99 | 1 | 0.900 | 0.700 |" in markdown
  assert "| >=300 | 1 | 1.000 | 0.800 |" in markdown

  assert _png(figures.per_class_ap_by_frequency(runs, str(tmp_path / "by_freq.png"),
                                                class_info))
  assert _png(figures.per_class_ap(runs, str(tmp_path / "per_class.png"), class_info))


def test_qualitative_figure_shows_names_and_unnamed_classes(tmp_path):
  names = {3: "Concert", 7: "Car"}
  examples = [{"video_id": "Ab12", "truth": [class_name(names, c) for c in (3, 123)],
               "truth_ids": {3, 123},
               "top": [[(3, class_name(names, 3), 0.9), (7, class_name(names, 7), 0.4),
                        (123, class_name(names, 123), 0.2)],
                       [(7, "Car", 0.6), (5, class_name(names, 5), 0.3), (3, "Concert", 0.1)]]}]
  assert examples[0]["truth"] == ["Concert", "class 123"]
  assert _png(figures.qualitative(examples, ["AF", "Late"], str(tmp_path / "q.png")))


def test_gap_vs_parameters_from_a_table(tmp_path):
  table = pd.DataFrame([
      {"model": "Attend-Fusion", "architecture": "AttendFusion", "modalities": "visual + audio",
       "gap": 0.80, "parameters": 72_865_046},
      {"model": "FC Late Fusion", "architecture": "FCLateFusion",
       "modalities": "visual + audio", "gap": 0.81, "parameters": 341_204_524},
      {"model": "FC audio-only", "architecture": "FCModel", "modalities": "audio",
       "gap": float("nan"), "parameters": 1_000_000}])  # not evaluated: left out
  assert _png(figures.gap_vs_parameters(table, str(tmp_path / "gap.png")))
