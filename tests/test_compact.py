"""The compact model's recipe (experiments/compact.py) end to end at tiny sizes: default runs,
ensembles, cross-fitted teachers and distilled students, written as they go and resumed."""

import json
import os

import pytest

from programs import run_program
from yt8m_fusion import data as yt8m_data
from yt8m_fusion import distillation
from yt8m_fusion import models
from yt8m_fusion.errors import UserError
from yt8m_fusion.experiments import compact
from yt8m_fusion.experiments import tuning

TINY = {**models.registry.get_spec("AttendFusion").small_params,
        **models.registry.get_spec("FCLateFusion").small_params}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp("data"))
  generated = yt8m_data.generate_dataset(folder, num_videos=48, num_classes=3862, seed=5,
                                         num_shards=2)
  return {**generated["video"], "num_videos": generated["num_videos"]}


def test_the_recipe_trains_evaluates_distils_and_resumes(dataset, tmp_path):
  recipe = compact.Recipe(seeds=(1, 2), late_fusion_seeds=(1,), teacher_seeds=(1, 2), folds=2,
                          distill_settings=((0.7, 1.0), (0.3, 2.0)), params=tuple(TINY.items()),
                          training=(("batch_size", 16), ("num_epochs", 1)))
  output_dir = str(tmp_path / "compact")
  rows = compact.run(recipe, output_dir, dataset["train"], dataset["validate"])
  assert [(row["stage"], row["name"]) for row in rows[:-1]] == [
      ("default run", "AttendFusion-seed1"), ("default run", "AttendFusion-seed2"),
      ("default run", "FCLateFusion-seed1"),
      ("ensemble", "Attend-Fusion + FC Late Fusion (seed 1)"),
      ("ensemble", "Attend-Fusion, seeds 1, 2"), ("ensemble", "All default runs"),
      ("teacher targets", compact.TEACHER_TARGETS),
      ("distillation setting", "AttendFusion-distilled-w0.7-T1-seed1"),
      ("distillation setting", "AttendFusion-distilled-w0.3-T2-seed1")]
  # The better setting on the first seed trains the other seeds.
  best = compact.best_setting(recipe, rows)
  gaps = {row["name"]: float(row["gap"]) for row in rows[-3:-1]}
  assert gaps[compact.Run("AttendFusion", 1, best).name] == max(gaps.values())
  assert (rows[-1]["stage"], rows[-1]["name"]) == (
      "distilled student", compact.Run("AttendFusion", 2, best).name)
  assert rows[5]["members"] == "AttendFusion-seed1 AttendFusion-seed2 FCLateFusion-seed1"
  for row in rows:
    assert 0.0 <= float(row["gap"]) <= 1.0 and int(row["num_videos"]) > 0
  # The targets are scored on every training video, against its labels.
  assert int(rows[6]["num_videos"]) == dataset["num_videos"]["train"]
  # Each fold's teacher is an ensemble of the two teacher seeds; the students read the
  # cross-fitted file with their setting.
  crossfit = os.path.join(output_dir, "crossfit")
  assert sorted(os.listdir(os.path.join(crossfit, "fold-0"))) == [
      "AttendFusion-seed1", "AttendFusion-seed2",
      "held_out_" + distillation.PREDICTIONS_FILE]
  student = os.path.join(output_dir, "runs", rows[-1]["name"])
  with open(distillation.settings_path(student), encoding="utf-8") as handle:
    settings = json.load(handle)
  assert settings["teacher_predictions"] == os.path.join(crossfit, distillation.PREDICTIONS_FILE)
  assert (settings["weight"], settings["temperature"]) == best
  report = open(os.path.join(output_dir, compact.REPORT_FILE), encoding="utf-8").read()
  assert f"| distilled student | {rows[-1]['name']} |" in report
  assert f"| Attend-Fusion, distilled (w={best[0]:g}, T={best[1]:g}) | 2 |" in report

  # A rerun computes nothing again; a row lost (a run stopped before it was written) is
  # computed again alone, from the trained model.
  checkpoint = os.path.join(output_dir, "runs", "AttendFusion-seed1", "checkpoint")
  modified = os.path.getmtime(checkpoint)
  kept = rows[:-1]
  os.remove(os.path.join(output_dir, compact.RESULTS_FILE))
  for row in kept:
    tuning.append_row(output_dir, row, compact.COLUMNS, compact.RESULTS_FILE)
  again = compact.run(recipe, output_dir, dataset["train"], dataset["validate"])
  assert [row["name"] for row in again] == [row["name"] for row in rows]
  assert again[-1]["gap"] == rows[-1]["gap"]  # the same trained student, evaluated again
  assert os.path.getmtime(checkpoint) == modified


def test_a_recipe_that_cannot_mean_anything_is_one_line(dataset):
  with pytest.raises(UserError, match="--folds=1: expected at least 2"):
    compact.Recipe(folds=1).validate()
  with pytest.raises(UserError, match="--distill_weight=2.0"):
    compact.Recipe(distill_settings=((2.0, 1.0),)).validate()
  for args, message in (
      ([], "--train_data_pattern and --eval_data_pattern are both needed"),
      ([f"--train_data_pattern={dataset['train']}", f"--eval_data_pattern={dataset['validate']}",
        "--seeds=1,x"], "--seeds=1,x: expected comma-separated integers"),
      ([f"--train_data_pattern={dataset['train']}", f"--eval_data_pattern={dataset['validate']}",
        "--distill_settings=0.5"], "--distill_settings: '0.5': expected weight:temperature")):
    result = run_program("yt8m_fusion.experiments.compact", *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
