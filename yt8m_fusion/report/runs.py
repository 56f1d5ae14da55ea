"""What a training directory holds, read for the report: flags, evaluations, logs, sizes.

`load_run(train_dir)` -> `Run` with
  - `config`: the ModelConfig of model_flags.json,
  - `metrics`: eval/metrics.json (the latest evaluation, as evaluation.write_results wrote it),
  - `eval_history`: every eval/metrics-<step>.json, by step (the validation curve),
  - `train_log`: train_log.csv as a pandas DataFrame (the training curve),
  - `size_bytes` / `size_of`: the latest SavedModel's size on disk (what is deployed), or the
    latest checkpoint's (weights and optimizer state) when nothing was exported.
Nothing here imports the model code: a table needs only these files.
"""

import dataclasses
import io
import json
import math
import os
import re

import pandas as pd
import tensorflow as tf

from yt8m_fusion import models
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.errors import UserError
from yt8m_fusion.models.config import ModelConfig

_EVAL_FILE = re.compile(r"^metrics-(\d+)\.json$")


@dataclasses.dataclass
class Run:
  """One trained model, as found in its train_dir."""

  train_dir: str
  label: str
  config: ModelConfig
  metrics: dict | None = None
  eval_history: list = dataclasses.field(default_factory=list)
  train_log: pd.DataFrame | None = None
  size_bytes: int | None = None
  size_of: str = ""
  checkpoint: str | None = None
  extra: dict = dataclasses.field(default_factory=dict)

  @property
  def eval_data_pattern(self):
    return (self.metrics or {}).get("data_pattern") or ""

  @property
  def has_attention(self):
    return models.has_attention(self.config)


def default_label(train_dir):
  """The folder's name: /x/runs/attend_fusion/ -> attend_fusion."""
  return os.path.basename(os.path.normpath(train_dir)) or train_dir


def load_run(train_dir, label=None, extra=None):
  """Reads one train_dir; a UserError if it is not a folder written by train.py."""
  if not tf.io.gfile.isdir(train_dir):
    raise UserError(f"--train_dirs: {train_dir} is not a folder; give folders written by "
                    "train.py (each holds model_flags.json)")
  config = train_dir_lib.load_config(train_dir)
  # Rebuilt from model_flags.json alone: flags added since take the values it was trained with.
  config.params = models.params_as_trained(config.model, config.params)
  history = _read_eval_history(train_dir)
  metrics = _read_json(os.path.join(train_dir_lib.eval_dir(train_dir), "metrics.json"))
  if metrics is None and history:
    metrics = history[-1]
  checkpoint = train_dir_lib.latest_checkpoint(train_dir)
  size_bytes, size_of = _size_on_disk(train_dir, checkpoint)
  return Run(train_dir=train_dir, label=label or default_label(train_dir), config=config,
             metrics=metrics, eval_history=history, train_log=_read_train_log(train_dir),
             size_bytes=size_bytes, size_of=size_of, checkpoint=checkpoint,
             extra=dict(extra or {}))


def load_runs(train_dirs, labels=None, extra=None):
  """Reads several train_dirs; labels (default: the folder names) must be unique."""
  if not train_dirs:
    raise UserError("--train_dirs is empty; give one or more folders written by train.py")
  if labels is not None and len(labels) != len(train_dirs):
    raise UserError(f"--labels has {len(labels)} names for {len(train_dirs)} --train_dirs; give "
                    "one label per train_dir (or none)")
  labels = list(labels) if labels is not None else [default_label(d) for d in train_dirs]
  duplicates = sorted({label for label in labels if labels.count(label) > 1})
  if duplicates:
    raise UserError(f"two runs have the label {duplicates[0]!r}; pass --labels with a unique "
                    "name per train_dir")
  extra = extra or {}
  return [load_run(d, label, extra.get(label)) for d, label in zip(train_dirs, labels)]


def _read_json(path):
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as handle:
    text = handle.read()
  try:
    return json.loads(text)
  except json.JSONDecodeError as error:
    raise UserError(f"{path} is not valid JSON ({error}); rerun eval.py to rewrite it") from None


def _read_eval_history(train_dir):
  folder = train_dir_lib.eval_dir(train_dir)
  if not tf.io.gfile.isdir(folder):
    return []
  found = []
  for name in tf.io.gfile.listdir(folder):
    match = _EVAL_FILE.match(name)
    if match:
      record = _read_json(os.path.join(folder, name))
      record.setdefault("step", int(match.group(1)))
      found.append(record)
  return sorted(found, key=lambda record: int(record["step"]))


def _read_train_log(train_dir):
  path = os.path.join(train_dir, train_dir_lib.TRAIN_LOG_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as handle:
    text = handle.read()
  if not text.strip():
    return None
  try:
    frame = pd.read_csv(io.StringIO(text))
  except (pd.errors.ParserError, ValueError) as error:
    raise UserError(f"{path} is not a CSV written by train.py ({error})") from None
  if "step" not in frame.columns:
    raise UserError(f"{path} has no 'step' column; expected the columns written by train.py")
  frame = frame.apply(pd.to_numeric, errors="coerce").dropna(subset=["step"])
  # A resumed run may log a step twice (the interrupted epoch is read again): keep the last.
  frame = frame.drop_duplicates(subset="step", keep="last").sort_values("step")
  return frame.reset_index(drop=True)


def directory_size(path):
  total = 0
  for folder, _, files in tf.io.gfile.walk(path):
    for name in files:
      total += tf.io.gfile.stat(os.path.join(folder, name)).length
  return total


def _size_on_disk(train_dir, checkpoint):
  export = train_dir_lib.latest_export(train_dir)
  if export:
    return directory_size(export), "SavedModel"
  if checkpoint:
    prefix = os.path.basename(checkpoint) + "."
    folder = os.path.dirname(checkpoint)
    total = sum(tf.io.gfile.stat(os.path.join(folder, name)).length
                for name in tf.io.gfile.listdir(folder) if name.startswith(prefix))
    return total, "checkpoint"
  return None, ""


def read_vocabulary_table(path):
  """vocabulary.csv -> (names {index: name}, train counts {index: TrainVideoCount} or None)."""
  from yt8m_fusion.data import vocabulary  # pylint: disable=import-outside-toplevel
  rows = vocabulary.read_vocabulary_rows(path)
  names = {row["Index"]: row["Name"] for row in rows}
  counts = {}
  for row in rows:
    try:
      counts[row["Index"]] = int(float(row.get("TrainVideoCount")))
    except (TypeError, ValueError):  # the 2019 file has no such column
      continue
  return names, (counts if any(counts.values()) else None)


def find_vocabulary(data_pattern):
  """A vocabulary beside the data files or one folder up (the demo's and the real sample's
  layouts): the 2018 vocabulary.csv first (it names every class), else another
  `*vocabulary*.csv` (e.g. the 2019 segment vocabulary, which names 1,000 of the classes)."""
  for pattern in [p.strip() for p in (data_pattern or "").split(",") if p.strip()]:
    folder = os.path.dirname(pattern)
    for candidate_folder in (folder, os.path.dirname(folder)):
      if "*" in candidate_folder or not tf.io.gfile.isdir(candidate_folder):
        continue
      exact = os.path.join(candidate_folder, "vocabulary.csv")
      if tf.io.gfile.exists(exact):
        return exact
      others = sorted(tf.io.gfile.glob(os.path.join(candidate_folder, "*vocabulary*.csv")))
      if others:
        return others[0]
  return None


def finite(value):
  """float(value), or NaN for None / non-numbers."""
  try:
    number = float(value)
  except (TypeError, ValueError):
    return math.nan
  return number
