"""The tuning sweep: runs parsed from text, trained epoch by epoch, resumed from results.csv."""

import json
import os

import pytest

from yt8m_fusion import data as yt8m_data
from yt8m_fusion import distillation
from yt8m_fusion.errors import UserError
from yt8m_fusion.experiments import tuning


def test_runs_are_parsed_into_options_and_hyper_parameters():
  run = tuning.parse_run("flf: model=FCLateFusion batch_size=256 base_learning_rate=3e-4 "
                         "input_l2_norm=none epochs=3")
  assert run == tuning.TuningRun("flf", "FCLateFusion",
                                 (("batch_size", 256), ("base_learning_rate", 3e-4)),
                                 (("input_l2_norm", "none"),), 3)
  assert tuning.run_config(run).params["input_l2_norm"] == "none"
  for text, message in (("x: batch_size=2", "model=... is missing"),
                        ("x: model=Nope", "not a known model"),
                        ("x: model=FCModel colour=red", "'colour' is neither"),
                        ("x: model=FCModel batch_size=big", "batch_size=big: expected a number"),
                        ("no colon", "expected 'name: model=MODEL"),
                        ("x: model=FCModel distill_weight=0.5", "need teacher_predictions="),
                        ("x: model=FCModel teacher_predictions=t.npz distill_weight=half",
                         "distill_weight=half: expected a number")):
    with pytest.raises(UserError, match=message):
      tuning.parse_run(text)


def test_sweep_appends_each_epoch_and_resumes(tmp_path):
  data = yt8m_data.generate_dataset(str(tmp_path / "data"), num_videos=48, num_classes=3862,
                                    seed=5, num_shards=2)
  runs = [tuning.parse_run("tiny: model=FCModel fc_hidden_size=8 fc_num_layers=1 "
                           "batch_size=16 epochs=2")]
  output_dir = str(tmp_path / "sweep")
  tuning.sweep(runs, output_dir, data["video"]["train"], data["video"]["validate"])
  rows = tuning.read_results(output_dir)
  assert [(row["run"], int(row["epoch"])) for row in rows] == [("tiny", 1), ("tiny", 2)]
  assert int(rows[1]["step"]) > int(rows[0]["step"]) > 0
  assert 0.0 <= float(rows[1]["gap"]) <= 1.0
  runs = [tuning.parse_run("tiny: model=FCModel fc_hidden_size=8 fc_num_layers=1 "
                           "batch_size=16 epochs=3")]
  tuning.sweep(runs, output_dir, data["video"]["train"], data["video"]["validate"])
  rows = tuning.read_results(output_dir)
  assert [int(row["epoch"]) for row in rows] == [1, 2, 3]  # epochs 1-2 were not redone
  gap, epoch = tuning.best_epochs(rows)["tiny"]
  assert gap == max(float(row["gap"]) for row in rows) and epoch in (1, 2, 3)


def test_a_run_can_be_distilled_from_a_predictions_file(tmp_path):
  data = yt8m_data.generate_dataset(str(tmp_path / "data"), num_videos=48, num_classes=3862,
                                    seed=5, num_shards=2)
  tiny = "model=FCModel fc_hidden_size=8 fc_num_layers=1 batch_size=16"
  output_dir = str(tmp_path / "sweep")
  tuning.sweep([tuning.parse_run(f"teacher: {tiny} epochs=1")], output_dir,
               data["video"]["train"], data["video"]["validate"])
  predictions = str(tmp_path / "teacher_predictions.npz")
  distillation.predict_teachers([distillation.Teacher(os.path.join(output_dir, "runs",
                                                                   "teacher"))],
                                data["video"]["train"], predictions, top_k=10)
  student = tuning.parse_run(f"student: {tiny} teacher_predictions={predictions} "
                             "distill_weight=0.7 distill_temperature=2 epochs=2")
  assert student.distillation == (("teacher_predictions", predictions),
                                  ("distill_weight", 0.7), ("distill_temperature", 2.0))
  tuning.sweep([student], output_dir, data["video"]["train"], data["video"]["validate"])
  rows = [row for row in tuning.read_results(output_dir) if row["run"] == "student"]
  assert [int(row["epoch"]) for row in rows] == [1, 2]
  assert "distill_weight=0.7" in rows[0]["settings"]
  with open(distillation.settings_path(os.path.join(output_dir, "runs", "student")),
            encoding="utf-8") as handle:
    saved = json.load(handle)
  assert (saved["teacher_predictions"], saved["weight"], saved["temperature"]) == (
      predictions, 0.7, 2.0)
