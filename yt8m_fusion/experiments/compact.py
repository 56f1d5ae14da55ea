"""The compact model's recipe: default runs, their ensembles, and Attend-Fusion distilled from
cross-fitted teachers.

    python -m yt8m_fusion.experiments.compact --output_dir=reports/compact \
        --train_data_pattern='.../train/*.tfrecord' --eval_data_pattern='.../validate/*.tfrecord'

Five stages, in order (docs/DISTILLATION.md has the method, docs/COMPACT_RECIPE.md the figures):

1. **Default runs**: Attend-Fusion with each of `Recipe.seeds` and FC Late Fusion with each of
   `Recipe.late_fusion_seeds`, each with its model's training defaults (what
   `train.py --model=M --seed=S` does), into runs/<model>-seed<S>.
2. **Ensembles** of those runs, evaluated as `eval.py --train_dir=A,B --run_once` does (the
   mean of the members' probabilities): Attend-Fusion with FC Late Fusion, the
   Attend-Fusion seeds, and all of them.
3. **Cross-fitted teachers** (`distillation.cross_fit`): the teacher ensemble
   (`Recipe.teacher_models` x `Recipe.teacher_seeds`) trained on `Recipe.folds` folds of the
   training videos, each fold predicted by the teachers that did not see it, into
   crossfit/teacher_predictions.npz.
4. **Distillation settings**: a student (Attend-Fusion, the first seed) for each
   (weight, temperature) of `Recipe.distill_settings`; the best on the evaluation split is
   kept (one setting: no choice to make).
5. **Students**: Attend-Fusion distilled with that setting, one per seed, into
   runs/AttendFusion-distilled-w<W>-T<T>-seed<S> (the first seed's is stage 4's).

Every model and ensemble is evaluated on the evaluation split once, and its row (GAP,
Hit@1, mAP, F1, members, seconds) is appended to results.csv as soon as it is known;
report.md is written from results.csv at the end of each stage. Rerunning the same command
resumes: a row in results.csv is not computed again, and an interrupted run continues from
its last checkpoint (`training.run` resumes). A train_dir trained beforehand by
`train.py --model=M --seed=S` with the defaults may be placed (or linked) at
runs/<model>-seed<S>: it is evaluated, not trained again.
"""

import dataclasses
import logging
import os
import time

from yt8m_fusion import distillation
from yt8m_fusion import evaluation
from yt8m_fusion import losses
from yt8m_fusion import prediction
from yt8m_fusion import training
from yt8m_fusion.core import files
from yt8m_fusion.errors import UserError
from yt8m_fusion.experiments import tuning

RESULTS_FILE = "results.csv"
REPORT_FILE = "report.md"
COLUMNS = ("stage", "name", "members", "gap", "hit_at_one", "map", "f1", "num_videos",
           "seconds")
ATTEND_FUSION, LATE_FUSION = "AttendFusion", "FCLateFusion"
# The row of the cross-fitted predictions scored against the training videos' labels: how
# much the soft targets know that the labels do not say (teachers that trained on the videos
# score near 1 there).
TEACHER_TARGETS = "Cross-fitted teachers on the training videos"


@dataclasses.dataclass(frozen=True)
class Recipe:
  """What the experiment trains; the defaults are the ones docs/COMPACT_RECIPE.md reports."""

  seeds: tuple = (1, 2, 3)  # Attend-Fusion's default runs, and the students
  late_fusion_seeds: tuple = (1,)
  teacher_models: tuple = (ATTEND_FUSION,)  # the cross-fitted teacher ensemble
  teacher_seeds: tuple = (1, 2)
  folds: int = 3
  # (weight, temperature) candidates of the students' distillation, tried on the first seed.
  distill_settings: tuple = ((0.5, 1.0), (0.9, 1.0), (0.5, 2.0), (0.2, 1.0))
  # Of the runs this experiment trains (None: each model's default, float32).
  mixed_precision: str | None = None
  num_classes: int = 3862
  # Over the models' defaults: (hyper-parameter, value) pairs (a model ignores another
  # model's) and (TrainOptions field, value) pairs, e.g. small sizes for a quick try.
  params: tuple = ()
  training: tuple = ()

  def validate(self):
    if not self.seeds:
      raise UserError("--seeds: expected at least one seed")
    if self.folds < 2:
      raise UserError(f"--folds={self.folds}: expected at least 2")
    if not self.distill_settings:
      raise UserError("--distill_settings: expected at least one weight:temperature")
    for weight, temperature in self.distill_settings:
      distillation.DistillationOptions("", weight, temperature).validate()
    return self


@dataclasses.dataclass(frozen=True)
class Run:
  """One trained model: its folder under runs/, model and seed, and its distillation
  setting (weight, temperature), None for a model trained on the labels."""

  model: str
  seed: int
  distilled: tuple | None = None

  @property
  def name(self):
    if self.distilled is None:
      return f"{self.model}-seed{self.seed}"
    weight, temperature = self.distilled
    return f"{self.model}-distilled-w{weight:g}-T{temperature:g}-seed{self.seed}"


def default_runs(recipe):
  return ([Run(ATTEND_FUSION, seed) for seed in recipe.seeds]
          + [Run(LATE_FUSION, seed) for seed in recipe.late_fusion_seeds])


def setting_runs(recipe):
  """Stage 4: the first seed's student for each distillation setting."""
  return [Run(ATTEND_FUSION, recipe.seeds[0], tuple(setting))
          for setting in recipe.distill_settings]


def student_runs(recipe, setting):
  return [Run(ATTEND_FUSION, seed, tuple(setting)) for seed in recipe.seeds]


def best_setting(recipe, rows):
  """The setting whose stage-4 student has the highest GAP in `rows` (None before all
  have one)."""
  gaps = {row["name"]: float(row["gap"]) for row in rows}
  runs = setting_runs(recipe)
  if any(run_.name not in gaps for run_ in runs):
    return None
  return max(runs, key=lambda run_: gaps[run_.name]).distilled


def ensembles(recipe):
  """{name: [Run]}: the ensembles of stage 2 (those with at least two members)."""
  attend = [Run(ATTEND_FUSION, seed) for seed in recipe.seeds]
  late = [Run(LATE_FUSION, seed) for seed in recipe.late_fusion_seeds]
  candidates = {
      f"Attend-Fusion + FC Late Fusion (seed {recipe.seeds[0]})": attend[:1] + late[:1],
      f"Attend-Fusion, seeds {_seeds(recipe.seeds)}": attend,
      "All default runs": attend + late,
  }
  named, seen = {}, set()
  for name, members in candidates.items():
    if len(members) >= 2 and tuple(members) not in seen:
      named[name] = members
      seen.add(tuple(members))
  return named


def _seeds(seeds):
  return ", ".join(map(str, seeds))


def read_results(output_dir):
  return tuning.read_results(output_dir, RESULTS_FILE)


def run(recipe, output_dir, train_data_pattern, eval_data_pattern):
  """Runs the stages that are not done yet; returns results.csv's rows."""
  recipe.validate()
  os.makedirs(output_dir, exist_ok=True)
  runs_dir = os.path.join(output_dir, "runs")

  def train_dir(run_):
    return os.path.join(runs_dir, run_.name)

  def done():
    return {row["name"] for row in read_results(output_dir)}

  def train_and_record(stage, runs, predictions_path=None):
    for run_ in runs:
      if run_.name not in done():
        started = time.time()
        _train(run_, train_dir(run_), train_data_pattern, recipe, predictions_path)
        _record(output_dir, stage, run_.name, [train_dir(run_)], eval_data_pattern, started)
    write_report(output_dir, recipe)

  train_and_record("default run", default_runs(recipe))
  for name, members in ensembles(recipe).items():
    if name not in done():
      _record(output_dir, "ensemble", name, [train_dir(m) for m in members],
              eval_data_pattern, time.time())
  write_report(output_dir, recipe)

  crossfit_dir = os.path.join(output_dir, "crossfit")
  predictions_path = os.path.join(crossfit_dir, distillation.PREDICTIONS_FILE)
  setting = best_setting(recipe, read_results(output_dir))
  if setting is None or any(run_.name not in done() for run_ in student_runs(recipe, setting)):
    configs = [_config(model, recipe) for model in recipe.teacher_models]
    logging.info("Cross-fitted teachers: %s x seeds %s on %d folds",
                 ", ".join(recipe.teacher_models), _seeds(recipe.teacher_seeds), recipe.folds)
    result = distillation.cross_fit(
        configs, crossfit_dir, train_data_pattern, folds=recipe.folds,
        options=[_options(model, recipe, seed=None) for model in recipe.teacher_models],
        seeds=recipe.teacher_seeds)
    if result.interrupted:
      raise UserError("interrupted while training the cross-fitted teachers: rerun the "
                      "same command to resume")

  if TEACHER_TARGETS not in done():
    started = time.time()
    metrics = evaluate_targets(predictions_path, train_data_pattern,
                               _config(ATTEND_FUSION, recipe))
    _append(output_dir, "teacher targets", TEACHER_TARGETS, recipe.teacher_models, metrics,
            started)
  train_and_record("distillation setting", setting_runs(recipe), predictions_path)
  setting = best_setting(recipe, read_results(output_dir))
  logging.info("Distillation setting: weight %g, temperature %g", *setting)
  # The first seed's student is the setting's run of stage 4.
  train_and_record("distilled student", student_runs(recipe, setting)[1:], predictions_path)
  return read_results(output_dir)


def _config(model, recipe):
  return tuning.model_config(model, dict(recipe.params), recipe.num_classes)


def _options(model, recipe, seed):
  overrides = {**dict(recipe.training), "seed": seed, "verbose": 2}
  if recipe.mixed_precision:
    overrides["mixed_precision"] = recipe.mixed_precision
  return training.TrainOptions.for_model(model, **overrides)


def _train(run_, train_dir, train_data_pattern, recipe, predictions_path=None):
  """Trains (or resumes, or finds trained) `run_` in `train_dir`."""
  options = _options(run_.model, recipe, run_.seed)
  if run_.distilled is not None:
    weight, temperature = run_.distilled
    options.distillation = distillation.prepare(
        train_dir, train_data_pattern, predictions_path=predictions_path,
        weight=weight, temperature=temperature)
  logging.info("Training %s", run_.name)
  result = training.run(_config(run_.model, recipe), train_dir, train_data_pattern,
                        options=options, export=False)
  if result.train.interrupted:
    raise UserError(f"interrupted while training {train_dir}: rerun the same command to "
                    "resume")


def evaluate(train_dirs, data_pattern, batch_size=1024):
  """The metrics of the mean of the train_dirs' probabilities (one train_dir: its own) at
  their latest checkpoints."""
  opened = (prediction.from_train_dir(train_dirs[0]) if len(train_dirs) == 1
            else prediction.ensemble(train_dirs))
  with opened as predictor:
    members = getattr(predictor, "members", [predictor])
    batches = predictor.predictions(data_pattern, batch_size=batch_size, labels=True,
                                    data_flag="--eval_data_pattern")
    return evaluation.compute_metrics(batches, predictor.num_classes,
                                      losses.get_loss(members[0].config.label_loss))


def evaluate_targets(predictions_path, data_pattern, config, batch_size=1024):
  """The metrics of a teacher predictions file against the labels of `data_pattern`'s
  videos (every one must be in the file)."""
  from yt8m_fusion import inputs  # pylint: disable=import-outside-toplevel
  predictions = distillation.read_predictions(predictions_path)
  row_of = {video_id: row for row, video_id in enumerate(predictions.video_ids)}

  def batches():
    read = inputs.load_batches(data_pattern, config.data_spec(), batch_size=batch_size,
                               require_labels=True)
    for batch in prediction.explained_batches(read.dataset, data_pattern, config.data_spec(),
                                              "--train_data_pattern"):
      video_ids = batch["video_ids"].numpy()
      try:
        rows = [row_of[video_id] for video_id in video_ids]
      except KeyError as error:
        raise UserError(f"{predictions_path} has no prediction of the video "
                        f"{error.args[0]!r}") from None
      yield prediction.PredictionBatch(video_ids=video_ids,
                                       probabilities=predictions.dense(rows),
                                       labels=batch["labels"].numpy())

  return evaluation.compute_metrics(batches(), predictions.num_classes,
                                    losses.get_loss(config.label_loss))


def _record(output_dir, stage, name, train_dirs, data_pattern, started):
  logging.info("Evaluating %s (%s)", name, ", ".join(train_dirs))
  metrics = evaluate(train_dirs, data_pattern)
  _append(output_dir, stage, name, [os.path.basename(path) for path in train_dirs], metrics,
          started)


def _append(output_dir, stage, name, members, metrics, started):
  row = {"stage": stage, "name": name, "members": " ".join(members),
         "gap": f"{metrics['gap']:.4f}", "hit_at_one": f"{metrics['avg_hit_at_one']:.4f}",
         "map": f"{metrics['map']:.4f}", "f1": f"{metrics['f1']:.4f}",
         "num_videos": metrics["num_examples"], "seconds": round(time.time() - started)}
  tuning.append_row(output_dir, row, COLUMNS, RESULTS_FILE)
  logging.info("%s: GAP %s, Hit@1 %s, mAP %s, F1 %s", name, row["gap"], row["hit_at_one"],
               row["map"], row["f1"])


def write_report(output_dir, recipe):
  """report.md: results.csv as a table, with each stage's mean over seeds."""
  rows = read_results(output_dir)
  lines = ["# The compact model's recipe: results", "",
           f"Evaluation split: every row on the same videos. Recipe: {recipe}.", "",
           "| stage | name | GAP | Hit@1 | mAP | F1 | videos | seconds |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
  for row in rows:
    lines.append(f"| {row['stage']} | {row['name']} | {row['gap']} | {row['hit_at_one']} | "
                 f"{row['map']} | {row['f1']} | {row['num_videos']} | {row['seconds']} |")
  lines += ["", "| runs | seeds | mean GAP | range |", "|---|---:|---:|---:|"]
  groups = [("Attend-Fusion, default", default_runs(recipe)[:len(recipe.seeds)])]
  setting = best_setting(recipe, rows)
  if setting is not None:
    groups.append((f"Attend-Fusion, distilled (w={setting[0]:g}, T={setting[1]:g})",
                   student_runs(recipe, setting)))
  for label, runs in groups:
    gaps = [float(row["gap"]) for row in rows if row["name"] in {r.name for r in runs}]
    if gaps:
      lines.append(f"| {label} | {len(gaps)} | {sum(gaps) / len(gaps):.4f} | "
                   f"{max(gaps) - min(gaps):.4f} |")
  files.write_text_atomic(os.path.join(output_dir, REPORT_FILE), "\n".join(lines) + "\n")


if __name__ == "__main__":  # python -m yt8m_fusion.experiments.compact: yt8m_fusion.cli.compact
  from yt8m_fusion.cli.compact import run as _run  # pylint: disable=import-outside-toplevel
  _run()
