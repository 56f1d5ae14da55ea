"""Distillation: a student trained against teachers' probabilities, predicted once per video.

    from yt8m_fusion import distillation
    teachers = distillation.parse_teachers("/runs/attend,/runs/fc_late", "2,1")
    distillation.predict_teachers(teachers, "/data/train*.tfrecord", "/tmp/teacher.npz")
    # train.py --teacher_predictions=/tmp/teacher.npz (or --teacher=... to do both)

The teachers are fixed and a video's inputs are the same every epoch, so their
probabilities are predicted once per video into a *teacher predictions file* and looked up
by video id while the student trains (`TeacherTargets`), instead of running the teachers
in every step (docs/DISTILLATION.md has the measured cost of both).

The file (.npz, written atomically) holds, per video, the top-k classes of the teachers'
weighted mean probabilities (`indexes` int16/int32 [N, k], `probabilities` float16 [N, k])
and a JSON header (teachers, weights, k, num_classes, source data, creator). Classes below
the top-k count as 0: a multi-label video has a handful of positive classes, and giving
the ~3,800 others the smallest stored probability would add thousands of small false
targets (the header's `tail_mass_mean` says how much probability the cut dropped).

Cross-fitting (`cross_fit`, `python -m yt8m_fusion.crossfit`) trains one teacher per fold
of the training videos on the other folds, so that each video's soft targets come from a
teacher that never saw it (teachers that trained on a video have memorised its labels).
"""

import dataclasses
import datetime
import io
import json
import logging
import os

import numpy as np
import tensorflow as tf

from yt8m_fusion import io_utils
from yt8m_fusion import prediction
from yt8m_fusion.errors import UserError

PREDICTIONS_FILE = "teacher_predictions.npz"  # in a train_dir (--teacher) or an output_dir
SETTINGS_FILE = "distillation.json"  # in a student's train_dir
FORMAT = "yt8m-fusion teacher predictions 1"
DEFAULT_TOP_K = 100
# Chosen on the real sample's validate/ split (docs/COMPACT_RECIPE.md): the best of the
# weights and temperatures tried, though no distilled student there beat labels alone.
DEFAULT_WEIGHT = 0.2
DEFAULT_TEMPERATURE = 1.0
ON_MISSING = ("error", "labels")  # a training video the file lacks: stop, or labels alone
# The in-graph check's message; `explain_error` turns it into the one-line UserError.
_MISSING_MARK = "teacher predictions lack video"


# ----------------------------------------------------------------------------------------
# Teachers
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Teacher:
  """One teacher: a train_dir, an export folder, a .tflite file or a model .tgz."""

  path: str
  weight: float = 1.0

  def describe(self):
    """What identifies this teacher's predictions: its path, weight and, for a train_dir,
    the checkpoint (a teacher trained further predicts differently)."""
    from yt8m_fusion import train_dir as train_dir_lib  # pylint: disable=import-outside-toplevel
    described = {"path": _absolute(self.path), "weight": self.weight,
                 "kind": prediction.source_kind(self.path)}
    if described["kind"] == "train_dir":
      described["checkpoint"] = os.path.basename(train_dir_lib.require_checkpoint(self.path))
    elif not tf.io.gfile.isdir(self.path):
      described["bytes"] = tf.io.gfile.stat(self.path).length
    return described


def _absolute(path):
  return path if "://" in path else os.path.abspath(path)


def parse_teachers(paths, weights=None, flag="--teacher"):
  """Teachers from comma-separated paths (or a list) and optional weights (same count)."""
  paths = [p.strip() for p in (paths.split(",") if isinstance(paths, str) else paths)
           if p.strip()]
  if not paths:
    raise UserError(f"{flag} is empty; expected one or more teacher paths, comma-separated")
  if weights is None or weights == "" or weights == []:
    values = [1.0] * len(paths)
  else:
    texts = weights.split(",") if isinstance(weights, str) else [str(w) for w in weights]
    shown = ",".join(texts)
    try:
      values = [float(w) for w in texts]
    except ValueError:
      raise UserError(f"{flag}_weights={shown}: expected numbers, comma-separated") from None
    if len(values) != len(paths) or min(values) < 0 or sum(values) <= 0:
      raise UserError(f"{flag}_weights={shown}: expected {len(paths)} non-negative weight(s), "
                      f"one per {flag} path, not all 0")
  return tuple(Teacher(path, weight) for path, weight in zip(paths, values))


class TeacherEnsemble:
  """The weighted mean of several teachers' probabilities (one teacher: its own), computed by
  `prediction.EnsemblePredictor`.

  Members read the same records in the same order; a member whose batch holds the same
  videos in another order is realigned by video id.
  """

  def __init__(self, teachers, *, max_frames=300):
    self.teachers = tuple(teachers)
    predictors = []
    try:
      for teacher in self.teachers:
        predictors.append(prediction.load(teacher.path, max_frames=max_frames))
    except BaseException:
      for predictor in predictors:
        predictor.close()
      raise
    sizes = {p.num_classes for p in predictors}
    if len(sizes) != 1:
      for predictor in predictors:
        predictor.close()
      raise UserError("the teachers predict different numbers of classes: " + ", ".join(
          f"{t.path} ({p.num_classes})" for t, p in zip(self.teachers, predictors)))
    try:
      self.ensemble = prediction.EnsemblePredictor(predictors,
                                                   [t.weight for t in self.teachers])
    except BaseException:
      for predictor in predictors:
        predictor.close()
      raise
    self.num_classes = self.ensemble.num_classes
    self.weights = self.ensemble.weights

  @property
  def predictors(self):
    return self.ensemble.members

  def predictions(self, data_pattern, *, batch_size=512, data_flag="--train_data_pattern"):
    """Yields (video_ids bytes [N], probabilities float32 [N, C]) per batch."""
    for batch in self.ensemble.predictions(data_pattern, batch_size=batch_size,
                                           data_flag=data_flag):
      yield np.asarray(batch.video_ids), batch.probabilities

  def close(self):
    self.ensemble.close()


# ----------------------------------------------------------------------------------------
# The teacher predictions file
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class TeacherPredictions:
  """The contents of a teacher predictions file.

  Attributes:
    video_ids: bytes [N] (unique).
    indexes: int16 or int32 [N, k], the teachers' top-k classes of each video.
    probabilities: float16 [N, k], their mean probabilities (other classes: 0).
    header: the JSON header (format, num_classes, top_k, teachers, data, created_by, ...).
    path: where it was read from (None until written or read).
  """

  video_ids: np.ndarray
  indexes: np.ndarray
  probabilities: np.ndarray
  header: dict
  path: str | None = None

  @property
  def num_classes(self):
    return int(self.header["num_classes"])

  def dense(self, rows=None):
    """float32 [n, num_classes] of the given rows (default all): what the student sees."""
    rows = np.arange(len(self.video_ids)) if rows is None else np.asarray(rows)
    dense = np.zeros((len(rows), self.num_classes), np.float32)
    np.put_along_axis(dense, self.indexes[rows].astype(np.int64),
                      self.probabilities[rows].astype(np.float32), axis=1)
    return dense


def collect(batches, *, num_classes, top_k=DEFAULT_TOP_K, header=None, keep=None):
  """A TeacherPredictions of (video_ids, probabilities [N, C]) batches, keeping each
  video's top_k classes; `keep`: a function of video_ids -> bool [N] (None: all)."""
  requested_top_k, top_k = top_k, min(int(top_k), num_classes)
  ids, indexes, probabilities, tail = [], [], [], []
  index_type = np.int16 if num_classes <= np.iinfo(np.int16).max else np.int32
  for video_ids, scores in batches:
    if keep is not None:
      wanted = keep(video_ids)
      video_ids, scores = video_ids[wanted], scores[wanted]
    if len(video_ids) == 0:
      continue
    top = np.argpartition(-scores, top_k - 1, axis=1)[:, :top_k]
    kept = np.take_along_axis(scores, top, axis=1)
    ids.append(np.asarray(video_ids, dtype=object))
    indexes.append(top.astype(index_type))
    probabilities.append(kept.astype(np.float16))
    totals = np.maximum(scores.sum(axis=1), 1e-12)
    tail.append(1.0 - kept.sum(axis=1) / totals)
  if not ids:
    raise UserError("no videos to predict: the records matched none")
  header = dict(header or {})
  header.update(format=FORMAT, num_classes=int(num_classes), top_k=top_k,
                requested_top_k=int(requested_top_k), rest="0",
                tail_mass_mean=float(np.concatenate(tail).mean()))
  return TeacherPredictions(np.concatenate(ids), np.concatenate(indexes),
                            np.concatenate(probabilities), header)


def merge(parts, header=None):
  """One TeacherPredictions of several (e.g. cross-fitting's folds); a video in two parts is
  an error."""
  first = parts[0]
  for part in parts[1:]:
    if part.num_classes != first.num_classes or part.indexes.shape[1] != first.indexes.shape[1]:
      raise UserError(f"{part.path}: {part.num_classes} classes, top {part.indexes.shape[1]}; "
                      f"{first.path} has {first.num_classes}, top {first.indexes.shape[1]}")
  video_ids = np.concatenate([p.video_ids for p in parts])
  tail = sum(p.header["tail_mass_mean"] * len(p.video_ids) for p in parts) / sum(
      len(p.video_ids) for p in parts)
  merged_header = {**first.header, **(header or {}), "tail_mass_mean": float(tail)}
  merged = TeacherPredictions(video_ids, np.concatenate([p.indexes for p in parts]),
                              np.concatenate([p.probabilities for p in parts]), merged_header)
  _check_unique(merged, "the merged predictions")
  return merged


def _check_unique(predictions, where):
  unique, counts = np.unique(predictions.video_ids.astype(bytes), return_counts=True)
  if len(unique) != len(predictions.video_ids):
    duplicate = unique[counts > 1][0].decode("utf-8", "replace")
    raise UserError(f"{where} hold video {duplicate} more than once; each video must come "
                    "from one source (records listed twice, or the same video in the training "
                    "and the unlabelled data)")


def write_predictions(predictions, path):
  """Writes `predictions` to `path` atomically (a temporary file, then a rename)."""
  _check_unique(predictions, path)
  header = dict(predictions.header, num_videos=len(predictions.video_ids))
  buffer = io.BytesIO()
  np.savez(buffer, video_ids=predictions.video_ids.astype(bytes), indexes=predictions.indexes,
           probabilities=predictions.probabilities,
           header=np.frombuffer(json.dumps(header, sort_keys=True).encode(), np.uint8))
  with io_utils.atomic_output(path, "wb") as handle:
    handle.write(buffer.getvalue())
  predictions.header, predictions.path = header, path
  logging.info("Wrote the teacher predictions of %d videos (top %d of %d classes) to %s",
               len(predictions.video_ids), predictions.indexes.shape[1],
               predictions.num_classes, path)
  return predictions


def read_header(path):
  """The JSON header of a teacher predictions file (without its arrays)."""
  with _open_npz(path) as arrays:
    return _header(arrays, path)


def read_predictions(path):
  """A TeacherPredictions from `path`; UserError naming the file if it is not one."""
  with _open_npz(path) as arrays:
    header = _header(arrays, path)
    try:
      return TeacherPredictions(arrays["video_ids"].astype(object), arrays["indexes"],
                                arrays["probabilities"], header, path)
    except KeyError as error:
      raise UserError(f"{path} lacks the array {error}; expected a teacher predictions file "
                      "(python -m yt8m_fusion.crossfit or train.py --teacher)") from None


class _open_npz:  # pylint: disable=invalid-name
  """np.load of a local or gs:// .npz as a context manager; UserError when unreadable."""

  def __init__(self, path):
    self.path = path

  def __enter__(self):
    try:
      with tf.io.gfile.GFile(self.path, "rb") as handle:
        self.arrays = np.load(io.BytesIO(handle.read()), allow_pickle=False)
    except (tf.errors.OpError, OSError, ValueError) as error:
      raise UserError(f"{self.path} cannot be read as a teacher predictions file "
                      f"({io_utils.describe_error(error)})") from None
    return self.arrays

  def __exit__(self, *exc_info):
    self.arrays.close()


def _header(arrays, path):
  try:
    header = json.loads(arrays["header"].tobytes().decode())
  except (KeyError, ValueError):
    header = {}
  if header.get("format") != FORMAT:
    raise UserError(f"{path} is not a teacher predictions file (no '{FORMAT}' header)")
  return header


def data_fingerprint(data_pattern):
  """What identifies the predicted records: the pattern and every file's path and size."""
  from yt8m_fusion.data import checks  # pylint: disable=import-outside-toplevel
  files = checks.list_files(data_pattern)
  return {"pattern": data_pattern,
          "files": [[path, tf.io.gfile.stat(path).length] for path in files]}


def predict_teachers(teachers, data_pattern, output_path, *, top_k=DEFAULT_TOP_K,
                     batch_size=512, max_frames=300, keep=None, created_by="yt8m_fusion",
                     data_flag="--train_data_pattern"):
  """Predicts `data_pattern`'s videos with the teachers' weighted mean into `output_path`.

  Args:
    teachers: `Teacher`s (`parse_teachers`).
    data_pattern: the records (labelled or not).
    output_path: the .npz to write (atomically).
    top_k: classes kept per video.
    batch_size, max_frames: of the prediction.
    keep: a function of video_ids bytes [N] -> bool [N]: the videos kept (None: all).
    created_by: recorded in the header.
    data_flag: the flag named by errors about the records.

  Returns:
    The TeacherPredictions written.
  """
  ensemble = TeacherEnsemble(teachers, max_frames=max_frames)
  try:
    header = {"teachers": [t.describe() for t in teachers], "data": data_fingerprint(data_pattern),
              "created_by": created_by,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    logging.info("Predicting %s with %s", data_pattern,
                 " + ".join(f"{w:g} x {t.path}" for w, t in zip(ensemble.weights, teachers)))
    predictions = collect(ensemble.predictions(data_pattern, batch_size=batch_size,
                                               data_flag=data_flag),
                          num_classes=ensemble.num_classes, top_k=top_k, header=header,
                          keep=keep)
  finally:
    ensemble.close()
  return write_predictions(predictions, output_path)


# ----------------------------------------------------------------------------------------
# The student's side: settings, targets in the input pipeline
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DistillationOptions:
  """How a student is distilled (TrainOptions.distillation)."""

  predictions_path: str
  weight: float = DEFAULT_WEIGHT
  temperature: float = DEFAULT_TEMPERATURE
  on_missing: str = "error"

  def validate(self):
    if not 0.0 <= self.weight <= 1.0:
      raise UserError(f"--distill_weight={self.weight}: expected a value in [0, 1]")
    if self.temperature <= 0:
      raise UserError(f"--distill_temperature={self.temperature}: expected a value > 0")
    if self.on_missing not in ON_MISSING:
      raise UserError(f"--distill_missing={self.on_missing}: expected one of "
                      f"{', '.join(ON_MISSING)}")
    return self


class TeacherTargets:
  """Looks up the teachers' probabilities of a batch's videos, in the input pipeline.

  A hash table maps video id -> row; the row's top-k are scattered into a dense float32
  [B, num_classes]. `found` [B] is 0 for a video the file lacks, with on_missing="labels"
  (with "error", such a video stops training; `explain_error` names it).
  """

  def __init__(self, predictions, num_classes, on_missing="error"):
    if predictions.num_classes != num_classes:
      raise UserError(f"{predictions.path} holds {predictions.num_classes} classes; the model "
                      f"predicts {num_classes}")
    self.path = predictions.path
    self.num_classes = num_classes
    self.on_missing = on_missing
    self._table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(predictions.video_ids.astype(bytes)),
            tf.range(len(predictions.video_ids), dtype=tf.int64)), default_value=-1)
    # float32 in memory: gathering float16 on CPUs without AVX-512 is ~5x slower
    # (benchmarks/distillation_cost.py); 8 bytes per stored class (880 MB for 1.1M videos).
    self._indexes = tf.constant(predictions.indexes.astype(np.int32))
    self._probabilities = tf.constant(predictions.probabilities.astype(np.float32))

  def __call__(self, video_ids):
    """{"probabilities": float32 [B, C], "found": float32 [B]} of string video ids [B]."""
    rows = self._table.lookup(video_ids)
    found = rows >= 0
    checks = []
    if self.on_missing == "error":
      missing = tf.boolean_mask(video_ids, tf.logical_not(found))
      checks.append(tf.debugging.Assert(tf.reduce_all(found), [_MISSING_MARK, missing[:1]]))
    with tf.control_dependencies(checks):
      rows = tf.maximum(rows, 0)
    indexes = tf.gather(self._indexes, rows)  # [B, k]
    values = tf.gather(self._probabilities, rows) * tf.cast(found, tf.float32)[:, tf.newaxis]
    batch = tf.shape(indexes)[0]
    examples = tf.broadcast_to(tf.range(batch)[:, tf.newaxis], tf.shape(indexes))
    dense = tf.scatter_nd(tf.stack([examples, indexes], axis=-1), values,
                          tf.stack([batch, self.num_classes]))
    return {"probabilities": dense, "found": tf.cast(found, tf.float32)}

  def training_triples(self, dataset, spec):
    """(inputs, labels, teacher targets) triples for the TrainingModel's step."""
    from yt8m_fusion import inputs as model_inputs  # pylint: disable=import-outside-toplevel
    return dataset.map(lambda batch: (model_inputs.select_model_inputs(batch, spec),
                                      batch["labels"], self(batch["video_ids"])),
                       num_parallel_calls=tf.data.AUTOTUNE)

  def explain_error(self, error):
    """The one-line UserError for a missing video met while training (else None)."""
    message = str(getattr(error, "message", "") or error)
    if _MISSING_MARK not in message:
      return None
    video_id = message.split(_MISSING_MARK, 1)[1]
    video_id = video_id.split("[", 1)[-1].split("]", 1)[0].strip().strip("\"'")
    video_id = video_id.removeprefix("b'").removeprefix('b"').rstrip("'\"")
    return UserError(f"{self.path} has no teacher predictions for video {video_id} (read from "
                     "--train_data_pattern); predict every training video, or pass "
                     "--distill_missing=labels to train such videos on their labels alone")


def load_targets(options, num_classes):
  """The TeacherTargets of DistillationOptions (reads the file)."""
  return TeacherTargets(read_predictions(options.predictions_path), num_classes,
                        options.on_missing)


def filter_videos(dataset, keep, batch_size, drop_remainder=False):
  """Batches of only the videos `keep` (video_ids [N] -> bool [N]) accepts, rebatched."""
  def masked(batch):
    wanted = keep(batch["video_ids"])
    return {name: tf.boolean_mask(value, wanted) for name, value in batch.items()}
  return dataset.map(masked).unbatch().batch(batch_size, drop_remainder=drop_remainder)


# ----------------------------------------------------------------------------------------
# train.py --teacher / --teacher_predictions: settings saved in the train_dir
# ----------------------------------------------------------------------------------------

def settings_path(train_dir):
  return os.path.join(train_dir, SETTINGS_FILE)


def prepare(train_dir, train_data_pattern, *, teachers=None, predictions_path=None,
            weight=None, temperature=None, on_missing=None, top_k=None,
            batch_size=512, max_frames=300, is_chief=True):
  """The DistillationOptions of a train.py run, or None when it is not distilled.

  With `teachers`, the training records are predicted once into train_dir/PREDICTIONS_FILE
  (reused when its header names the same teachers, records and top_k). With
  `predictions_path`, that file is used. With neither, a train_dir that was distilled and
  has a checkpoint resumes with its saved settings (train_dir/distillation.json), as it
  resumes with model_flags.json; a resumed run given other teachers is refused.
  weight, temperature, on_missing, top_k: None takes the saved value, else the default.
  """
  from yt8m_fusion import train_dir as train_dir_lib  # pylint: disable=import-outside-toplevel
  if teachers and predictions_path:
    raise UserError("give --teacher or --teacher_predictions, not both")
  path = settings_path(train_dir)
  saved = None
  if tf.io.gfile.exists(path) and train_dir_lib.latest_checkpoint(train_dir) is not None:
    try:
      with tf.io.gfile.GFile(path) as handle:
        saved = json.load(handle)
    except (tf.errors.OpError, ValueError) as error:
      raise UserError(f"{path} cannot be read ({io_utils.describe_error(error)}); restore it "
                      "or start a new model") from None
  if teachers:
    source = {"teachers": [{"path": _absolute(t.path), "weight": t.weight}
                           for t in teachers]}
  elif predictions_path:
    source = {"teacher_predictions": _absolute(predictions_path)}
  elif saved is not None:
    source = {k: saved[k] for k in ("teachers", "teacher_predictions") if k in saved}
    teachers = [Teacher(t["path"], t["weight"]) for t in source.get("teachers", [])]
    predictions_path = source.get("teacher_predictions")
    logging.info("Resuming the distillation saved in %s", path)
  else:
    return None
  if saved is not None:
    saved_source = {k: saved[k] for k in ("teachers", "teacher_predictions") if k in saved}
    if saved_source != source:
      raise UserError(f"{path} says this run was distilled from {_describe_source(saved_source)}, "
                      f"not {_describe_source(source)}; resume with the same teachers, or "
                      "start a new model (--start_new_model or an empty --train_dir)")
  saved = saved or {}

  def pick(value, name, default):
    return value if value is not None else saved.get(name, default)

  top_k = pick(top_k, "top_k", DEFAULT_TOP_K)
  if teachers:
    predictions_path = os.path.join(train_dir, PREDICTIONS_FILE)
    if is_chief:
      _predict_or_reuse(teachers, train_data_pattern, predictions_path, top_k=top_k,
                        batch_size=batch_size, max_frames=max_frames)
  options = DistillationOptions(predictions_path, weight=pick(weight, "weight", DEFAULT_WEIGHT),
                                temperature=pick(temperature, "temperature",
                                                 DEFAULT_TEMPERATURE),
                                on_missing=pick(on_missing, "on_missing", "error")).validate()
  read_header(predictions_path)  # a bad file is refused before the model is built
  if is_chief:
    io_utils.write_text_atomic(path, json.dumps(
        {**source, "predictions_path": predictions_path, "weight": options.weight,
         "temperature": options.temperature, "on_missing": options.on_missing,
         "top_k": top_k},
        indent=2, sort_keys=True) + "\n")
  return options


def _describe_source(source):
  if "teachers" in source:
    return "--teacher=" + ",".join(t["path"] for t in source["teachers"])
  return f"--teacher_predictions={source.get('teacher_predictions')}"


def _predict_or_reuse(teachers, data_pattern, path, *, top_k, batch_size, max_frames):
  wanted = {"teachers": [t.describe() for t in teachers],
            "data": data_fingerprint(data_pattern), "requested_top_k": top_k}
  if tf.io.gfile.exists(path):
    header = read_header(path)
    if {key: header.get(key) for key in wanted} == wanted:
      logging.info("Reusing the teacher predictions in %s", path)
      return
    logging.warning("%s was predicted by other teachers (or checkpoints) or from other "
                    "records: predicting the training records again", path)
  predict_teachers(teachers, data_pattern, path, top_k=top_k, batch_size=batch_size,
                   max_frames=max_frames, created_by="train.py --teacher")


# ----------------------------------------------------------------------------------------
# Cross-fitting
# ----------------------------------------------------------------------------------------

def fold_of(video_ids, folds):
  """The fold of each video id: a stable hash (FarmHash Fingerprint64) modulo `folds`.
  Works on numpy bytes arrays and on string tensors (returns a tensor then)."""
  buckets = tf.strings.to_hash_bucket_fast(video_ids, folds)
  return buckets if isinstance(video_ids, tf.Tensor) else buckets.numpy()


@dataclasses.dataclass(frozen=True)
class FoldFilter:
  """Keeps the videos outside fold `held_out` (the training set of that fold's teacher)."""

  folds: int
  held_out: int

  def __call__(self, video_ids):
    return tf.not_equal(fold_of(video_ids, self.folds), self.held_out)


@dataclasses.dataclass
class CrossFitResult:
  predictions_path: str | None  # None when interrupted
  teacher_dirs: list  # [fold][model] train_dirs
  interrupted: bool = False


def teacher_dir(output_dir, fold, config, num_models, seed=None, num_seeds=1):
  """fold-<i>, or fold-<i>/<model> with several models, or fold-<i>/<model>-seed<S> with
  several seeds."""
  folder = os.path.join(output_dir, f"fold-{fold}")
  if num_seeds > 1:
    return os.path.join(folder, f"{config.model}-seed{seed}")
  return os.path.join(folder, config.model) if num_models > 1 else folder


def cross_fit(configs, output_dir, train_data_pattern, *, folds=5, options=None, reading=None,
              unlabelled_data_pattern=None, top_k=DEFAULT_TOP_K, batch_size=512, seeds=None):
  """Trains `folds` teachers (per model config and seed) and writes the cross-fitted
  predictions.

  Each video's fold is `fold_of(video_id, folds)`. Teacher i (output_dir/fold-i; with several
  configs or seeds, an ensemble of output_dir/fold-i/<model>[-seed<S>] whose probabilities
  are averaged) trains on the other folds and predicts fold i; with
  `unlabelled_data_pattern`, every teacher predicts those records, averaged. Everything goes
  into output_dir/PREDICTIONS_FILE. Rerunning the call resumes: trained teachers and
  predicted folds are reused.

  Args:
    configs: ModelConfigs of the teacher models (one, or several for an ensemble).
    output_dir: the teachers' train_dirs and the predictions file go here.
    train_data_pattern: the labelled training records.
    folds: k >= 2.
    options: the teachers' TrainOptions, one for all or a list with one per config (each
      model's own defaults, for instance).
    reading: the teachers' training.ReadOptions.
    unlabelled_data_pattern: records to predict with all teachers (e.g. the test split).
    top_k, batch_size: of the predictions.
    seeds: one teacher per config and seed, in each fold (None: the options' seed alone).

  Returns:
    A CrossFitResult.
  """
  from yt8m_fusion import training  # pylint: disable=import-outside-toplevel
  import keras  # pylint: disable=import-outside-toplevel
  if folds < 2:
    raise UserError(f"--folds={folds}: expected at least 2")
  options = options or training.TrainOptions()
  per_config = list(options) if isinstance(options, (list, tuple)) else [options] * len(configs)
  if len(per_config) != len(configs):
    raise ValueError(f"{len(per_config)} TrainOptions for {len(configs)} model configs")
  seeds = list(seeds) if seeds else [per_config[0].seed]
  if len(set(seeds)) != len(seeds):
    raise UserError(f"--seeds={','.join(map(str, seeds))}: a seed is given twice")
  members = [(config, config_options, seed)
             for config, config_options in zip(configs, per_config) for seed in seeds]
  reading = reading or training.ReadOptions()
  max_frames = reading.max_frames
  dirs = [[teacher_dir(output_dir, fold, config, len(configs), seed, len(seeds))
           for config, _, seed in members] for fold in range(folds)]
  for fold in range(folds):
    for (config, config_options, seed), directory in zip(members, dirs[fold]):
      logging.info("Cross-fitting: teacher %s (seed %s) of fold %d/%d, trained on the other "
                   "folds", config.model, seed, fold, folds)
      keras.backend.clear_session()
      result = training.run(config, directory, train_data_pattern,
                            options=dataclasses.replace(config_options, seed=seed),
                            reading=dataclasses.replace(reading,
                                                        keep_videos=FoldFilter(folds, fold)),
                            export=False)
      if result.train.interrupted:
        return CrossFitResult(None, dirs, interrupted=True)
  parts = []
  for fold in range(folds):
    path = os.path.join(output_dir, f"fold-{fold}", "held_out_" + PREDICTIONS_FILE)
    keep = lambda ids, fold=fold: fold_of(ids, folds) == fold
    _predict_part(dirs[fold], train_data_pattern, path, keep, top_k=top_k,
                  batch_size=batch_size, max_frames=max_frames,
                  created_by=f"crossfit: fold {fold} of {folds}")
    parts.append(read_predictions(path))
  if unlabelled_data_pattern:
    path = os.path.join(output_dir, "unlabelled_" + PREDICTIONS_FILE)
    _predict_part([d for fold_dirs in dirs for d in fold_dirs], unlabelled_data_pattern, path,
                  None, top_k=top_k, batch_size=batch_size, max_frames=max_frames,
                  created_by="crossfit: unlabelled, all teachers", data_flag=
                  "--unlabelled_data_pattern")
    parts.append(read_predictions(path))
  merged = merge(parts, header={
      "created_by": "python -m yt8m_fusion.crossfit", "folds": folds,
      "fold_hash": "tf.strings.to_hash_bucket_fast(video_id, folds)",
      "teachers": [{"fold": fold, "teachers": [part_teacher for part_teacher in
                                                parts[fold].header["teachers"]]}
                   for fold in range(folds)],
      "data": data_fingerprint(train_data_pattern),
      "unlabelled_data": (data_fingerprint(unlabelled_data_pattern)
                          if unlabelled_data_pattern else None)})
  predictions_path = os.path.join(output_dir, PREDICTIONS_FILE)
  write_predictions(merged, predictions_path)
  return CrossFitResult(predictions_path, dirs)


def _predict_part(train_dirs, data_pattern, path, keep, *, top_k, batch_size, max_frames,
                  created_by, data_flag="--train_data_pattern"):
  """Predicts into `path` unless it holds the same teachers' predictions of the same data."""
  teachers = [Teacher(directory) for directory in train_dirs]
  if tf.io.gfile.exists(path):
    header = read_header(path)
    if (header.get("teachers") == [t.describe() for t in teachers]
        and header.get("data") == data_fingerprint(data_pattern)
        and header.get("requested_top_k") == top_k):
      logging.info("Reusing %s", path)
      return
  predict_teachers(teachers, data_pattern, path, top_k=top_k, batch_size=batch_size,
                   max_frames=max_frames, keep=keep, created_by=created_by,
                   data_flag=data_flag)
