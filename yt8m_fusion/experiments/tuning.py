"""Tuning training defaults: each configuration trained epoch by epoch, evaluated after each.

    python -m yt8m_fusion.experiments.tuning --output_dir=reports/tuning \
        --train_data_pattern='.../train/*.tfrecord' --eval_data_pattern='.../validate/*.tfrecord' \
        --runs='flf_b256: model=FCLateFusion batch_size=256 input_l2_norm=none epochs=4'

A run is a model, the training options and hyper-parameters that differ from the model's
defaults, optionally a distillation (`teacher_predictions=FILE distill_weight=W
distill_temperature=T`, as train.py's flags), and a number of epochs. Each run trains in its
own train_dir, one epoch at a time (`training.run` resumes), and after each epoch its GAP,
Hit@1, F1 and mAP on the evaluation split are appended to `results.csv`, so a sweep can stop
at any moment and a rerun of the same command continues where it stopped. The validation curve gives each
run's best number of epochs, which is how the defaults in the model registry were chosen
(docs/TRAINING.md has the table).
"""

import csv
import dataclasses
import logging
import os

from yt8m_fusion import distillation
from yt8m_fusion import models
from yt8m_fusion import training
from yt8m_fusion.errors import UserError

RESULTS_FILE = "results.csv"
COLUMNS = ("run", "epoch", "step", "gap", "hit_at_one", "f1", "map", "seconds", "settings")
FEATURE_SIZES = {"mean_rgb": 1024, "mean_audio": 128}


@dataclasses.dataclass(frozen=True)
class TuningRun:
  """One configuration: its name, model, TrainOptions overrides, hyper-parameters, epochs."""

  name: str
  model: str
  options: tuple = ()  # (TrainOptions field, value) pairs
  params: tuple = ()  # (hyper-parameter, value) pairs
  epochs: int = 5
  distillation: tuple = ()  # (DISTILLATION_KEYS key, value) pairs

  @property
  def settings(self):
    return " ".join(f"{key}={value}"
                    for key, value in self.options + self.params + self.distillation)


# train.py's distillation flags a run may set (teacher_predictions: a file of predictions).
DISTILLATION_KEYS = {"teacher_predictions": str, "distill_weight": float,
                     "distill_temperature": float}


def parse_run(text):
  """'name: model=M key=value ... epochs=N' -> a TuningRun (UserError naming the part)."""
  name, _, rest = text.partition(":")
  name = name.strip()
  if not name or not rest.strip() or not name.replace("-", "_").replace(".", "_").isidentifier():
    raise UserError(f"--runs: {text!r}: expected 'name: model=MODEL key=value ... epochs=N'")
  fields = {field.name: field for field in dataclasses.fields(training.TrainOptions)}
  hparams = models.registry.hparam_flags()
  model, epochs, options, params, distilling = None, 5, [], [], []
  for item in rest.split():
    key, sep, value = item.partition("=")
    if not sep:
      raise UserError(f"--runs: {name}: {item!r} is not key=value")
    if key == "model":
      models.registry.get_spec(value)
      model = value
    elif key == "epochs":
      epochs = _number(name, key, value, int)
    elif key in fields:
      default = getattr(training.TrainOptions(), key)
      options.append((key, _number(name, key, value, type(default))
                      if isinstance(default, (int, float)) and not isinstance(default, bool)
                      else value))
    elif key in hparams:
      params.append((key, value))
    elif key in DISTILLATION_KEYS:
      distilling.append((key, _number(name, key, value, DISTILLATION_KEYS[key])))
    else:
      raise UserError(f"--runs: {name}: {key!r} is neither a training option, a model "
                      "hyper-parameter nor a distillation setting")
  if model is None:
    raise UserError(f"--runs: {name}: model=... is missing")
  if distilling and "teacher_predictions" not in dict(distilling):
    raise UserError(f"--runs: {name}: distill_weight and distill_temperature need "
                    "teacher_predictions=FILE")
  return TuningRun(name, model, tuple(options), tuple(params), epochs, tuple(distilling))


def _number(name, key, value, kind):
  try:
    return kind(value)
  except ValueError:
    raise UserError(f"--runs: {name}: {key}={value}: expected a number") from None


def run_config(run, num_classes=3862):
  return model_config(run.model, dict(run.params), num_classes)


def model_config(model, params=None, num_classes=3862):
  """The video-level ModelConfig of `model`: its default features, its hyper-parameters'
  defaults, then `params`."""
  features = models.default_feature_names(model, frame_features=False)
  return models.ModelConfig(model=model, feature_names=features,
                            feature_sizes=[FEATURE_SIZES[name] for name in features],
                            num_classes=num_classes,
                            params=models.complete_params(model, dict(params or {})))


def read_results(output_dir, filename=RESULTS_FILE):
  """The rows of output_dir/filename ([] before the first)."""
  path = os.path.join(output_dir, filename)
  if not os.path.exists(path):
    return []
  with open(path, newline="", encoding="utf-8") as handle:
    return list(csv.DictReader(handle))


def append_row(output_dir, row, columns=COLUMNS, filename=RESULTS_FILE):
  """Appends `row` to output_dir/filename (with the header first), on disk at return: a
  sweep stopped at any moment keeps every row it reported."""
  path = os.path.join(output_dir, filename)
  new = not os.path.exists(path)
  with open(path, "a", newline="", encoding="utf-8") as handle:
    writer = csv.DictWriter(handle, fieldnames=columns)
    if new:
      writer.writeheader()
    writer.writerow(row)
    handle.flush()
    os.fsync(handle.fileno())


def sweep(runs, output_dir, train_data_pattern, eval_data_pattern, *, seed=1,
          num_classes=3862):
  """Trains every run epoch by epoch, skipping the epochs already in results.csv."""
  os.makedirs(output_dir, exist_ok=True)
  for run in runs:
    done = {int(row["epoch"]) for row in read_results(output_dir) if row["run"] == run.name}
    config = run_config(run, num_classes)
    for epoch in range(1, run.epochs + 1):
      if epoch in done:
        continue
      options = training.TrainOptions.for_model(
          run.model, config.label_loss, **dict(run.options), num_epochs=epoch, seed=seed,
          verbose=0)
      train_dir = os.path.join(output_dir, "runs", run.name)
      if run.distillation:
        settings = dict(run.distillation)
        options.distillation = distillation.prepare(
            train_dir, train_data_pattern, predictions_path=settings["teacher_predictions"],
            weight=settings.get("distill_weight"),
            temperature=settings.get("distill_temperature"))
      logging.info("%s: epoch %d of %d (%s)", run.name, epoch, run.epochs, run.settings)
      result = training.run(config, train_dir, train_data_pattern, options=options,
                            eval_data_pattern=eval_data_pattern, export=False)
      metrics = result.eval_results
      append_row(output_dir, {
          "run": run.name, "epoch": epoch, "step": result.train.step,
          "gap": metrics["gap"], "hit_at_one": metrics["avg_hit_at_one"],
          "f1": metrics["f1"], "map": metrics["map"],
          "seconds": round(result.seconds, 1), "settings": run.settings})


def best_epochs(rows):
  """{run: (best GAP, its epoch)} from results.csv rows."""
  best = {}
  for row in rows:
    gap, epoch = float(row["gap"]), int(row["epoch"])
    if row["run"] not in best or gap > best[row["run"]][0]:
      best[row["run"]] = (gap, epoch)
  return best


if __name__ == "__main__":  # python -m yt8m_fusion.experiments.tuning: yt8m_fusion.cli.tuning
  from yt8m_fusion.cli.tuning import run as _run  # pylint: disable=import-outside-toplevel
  _run()
