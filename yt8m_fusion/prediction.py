"""Prediction: class probabilities of TFRecords, from a train_dir, an export, a LiteRT file or
a model .tgz.

    from yt8m_fusion import prediction
    with prediction.load("/tmp/attend_fusion") as predictor:  # or export/<step>, .tflite, .tgz
      for batch in predictor.predictions("/data/test*.tfrecord", top_k=20):
        indexes, scores = batch.top_k(20)  # batch.probabilities: float32 [N, num_classes]

Every predictor reads records the same way and yields `PredictionBatch`es: the video ids,
all class probabilities (what an ensemble averages), and on request the labels (evaluation)
and the top-k (the CSV). A data error met while reading becomes one `UserError` line naming
the file and the feature (`explained_batches`, the one place that explains them).

`EnsemblePredictor` (`ensemble(paths, weights)`) averages several predictors' probabilities,
optionally weighted (docs/ENSEMBLES.md).

Predictors that run the model with TensorFlow (a Keras model, a train_dir, a .tgz, a
SavedModel) read with `yt8m_fusion.data`; the LiteRT predictor reads with
`yt8m_fusion.litert.records` and never imports TensorFlow.
"""

import dataclasses
import logging
import os
import tempfile

import numpy as np

from yt8m_fusion.core import files as core_files
from yt8m_fusion.core import submission_format
from yt8m_fusion.errors import UserError

# TensorFlow (and Keras) are imported by the predictors that need them, so that the LiteRT
# predictor runs where only ai-edge-litert is installed.
# pylint: disable=import-outside-toplevel

DEFAULT_DATA_FLAG = "--input_data_pattern"
_EXPECTED_SOURCE = ("expected a train_dir, an export folder train_dir/export/<step>, a .tflite "
                    "file or a model .tgz")


@dataclasses.dataclass(frozen=True)
class PredictionBatch:
  """The predictions of one batch of records.

  Attributes:
    video_ids: bytes [N] (with split_segments: b"<video id>:<first frame>").
    probabilities: float32 [N, num_classes].
    labels: float32 multi-hot [N, num_classes], when the predictions were asked with labels.
    label_weights: float32 [N, num_classes], segment labels only (the rated pairs).
    top_indexes, top_scores: the top_k classes, highest first, when asked with top_k.
  """

  video_ids: np.ndarray
  probabilities: np.ndarray
  labels: np.ndarray | None = None
  label_weights: np.ndarray | None = None
  top_indexes: np.ndarray | None = None
  top_scores: np.ndarray | None = None

  def __len__(self):
    return len(self.video_ids)

  def top_k(self, k):
    """(class indexes [N, k'], scores [N, k']), highest first (ties: lower class first);
    k' = min(k, num_classes)."""
    if self.top_indexes is not None and self.top_indexes.shape[1] >= min(
        k, self.probabilities.shape[1]):
      return self.top_indexes[:, :k], self.top_scores[:, :k]
    return submission_format.top_k_numpy(self.probabilities, k)


class Predictor:
  """What every predictor offers; use one as a context manager (or call `close`).

  Attributes:
    spec: the `core.spec.DataSpec` of the records it reads (TensorFlow-free: the LiteRT
      predictor has one too, from the file's embedded model flags).
    config: the `models.ModelConfig`, or None where the model is not rebuilt (LiteRT).
    num_classes: the width of the probabilities.
    description: one line naming the model, for logs.
  """

  spec = None
  config = None
  num_classes = 0
  description = ""

  def predict_batch(self, inputs):
    """Class probabilities float32 [N, num_classes] (numpy) of one batch of model inputs
    ({feature name: [N, D] or uint8 [N, T, D]}, plus num_frames int32 [N] frame-level)."""
    raise NotImplementedError

  def predictions(self, data_pattern, *, batch_size=512, skip_corrupt_records=False,
                  top_k=None, top_k_classes=None, labels=False, segment_labels=False,
                  split_segments=False, num_readers=None, data_flag=DEFAULT_DATA_FLAG):
    """Yields a `PredictionBatch` per batch of the records matching `data_pattern`.

    Args:
      data_pattern: a glob, or comma-separated globs, of TFRecord files.
      batch_size: records per batch (the last one may be smaller).
      skip_corrupt_records: skip records that cannot be used, logging what was skipped.
      top_k: also compute the top_k classes of each record (`top_indexes`, `top_scores`).
      top_k_classes: the class indexes the top-k ranks (the others score 0 there, as the
        segment format's rated classes); None: all.
      labels: also read the labels (records without labels are an error).
      segment_labels: read the 2019 segment labels (with `labels`; frame-level models).
      split_segments: predict each 5-frame segment of each video (frame-level models).
      num_readers: files read in parallel (None: the reader's default).
      data_flag: the flag named in error messages about the data.

    Raises:
      UserError: the data cannot be read (one line naming the file and the feature).
    """
    raise NotImplementedError

  def close(self):
    """Releases the model (a predictor is not used after)."""

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()


def explained_batches(dataset, data_pattern, spec, data_flag, skip_counter=None):
  """Iterates `dataset`, turning a data error into the one-line UserError; at its end, logs
  what skip_corrupt_records skipped (`skip_counter`, or None)."""
  from yt8m_fusion.data import explain
  iterator = iter(dataset)
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      explain.log_skipped(skip_counter, data_flag)
      return
    except explain.DATA_ERRORS as error:
      raise explain.explain_data_error(error, data_pattern, spec, data_flag) from None
    yield batch


def write_top_k(batches, writer, *, source=""):
  """Adds each batch's top-k (asked with `top_k`) to a `VideoSubmissionWriter` and commits
  it; any error aborts it (no CSV is left) and propagates. Returns the number of videos."""
  try:
    for batch in batches:
      writer.add_batch(batch.video_ids, batch.top_indexes, batch.top_scores, source=source)
  except BaseException as error:
    writer.abort(error)
    raise
  writer.commit()
  return writer.num_videos


class TensorFlowPredictor(Predictor):
  """Runs a function of the model inputs (a Keras model, a SavedModel signature) compiled
  with the top-k in the graph, on batches read by `yt8m_fusion.data`."""

  def __init__(self, probabilities_fn, config, *, max_frames=300, description="",
               compile_fn=True):
    """`probabilities_fn`: {input name: tensor} -> probabilities [N, num_classes];
    `compile_fn`: wrap it in a tf.function (False: it is a graph function already)."""
    self.config = config
    self.spec = config.data_spec(max_frames=max_frames)
    self.num_classes = self.spec.num_classes
    self.description = description or config.model
    self._probabilities_fn = probabilities_fn
    self._compile_fn = compile_fn
    self._compiled = {}

  def _predict_fn(self, top_k, top_k_classes=None):
    """The compiled batch -> {probabilities[, top_indexes, top_scores]} (one per top-k)."""
    key = (top_k, None if top_k_classes is None else tuple(sorted(top_k_classes)))
    if key not in self._compiled:
      import tensorflow as tf
      from yt8m_fusion import inputs as model_inputs
      spec = self.spec
      mask = None if top_k_classes is None else tf.constant(
          _class_mask(top_k_classes, self.num_classes))

      def predict(batch):
        probabilities = tf.cast(
            self._probabilities_fn(model_inputs.select_model_inputs(batch, spec)), tf.float32)
        outputs = {"probabilities": probabilities}
        if top_k:
          ranked = probabilities if mask is None else probabilities * mask
          outputs["top_scores"], outputs["top_indexes"] = tf.math.top_k(ranked, k=top_k)
        return outputs

      # A SavedModel signature is called as it is: wrapped in another tf.function, its
      # float results may differ in the last bit from those of serving_default.
      self._compiled[key] = tf.function(predict) if self._compile_fn else predict
    return self._compiled[key]

  def predict_batch(self, inputs):
    import tensorflow as tf
    tensors = {name: tf.convert_to_tensor(value) for name, value in inputs.items()}
    return self._predict_fn(None)(tensors)["probabilities"].numpy()

  def predictions(self, data_pattern, *, batch_size=512, skip_corrupt_records=False,
                  top_k=None, top_k_classes=None, labels=False, segment_labels=False,
                  split_segments=False, num_readers=None, data_flag=DEFAULT_DATA_FLAG):
    predict = self._predict_fn(min(top_k, self.num_classes) if top_k else None, top_k_classes)
    for batch in _read_batches(self.spec, data_pattern, batch_size=batch_size,
                               skip_corrupt_records=skip_corrupt_records, labels=labels,
                               segment_labels=segment_labels, split_segments=split_segments,
                               num_readers=num_readers, data_flag=data_flag):
      outputs = {name: value.numpy() for name, value in predict(batch).items()}
      yield PredictionBatch(video_ids=batch["video_ids"].numpy(), **outputs,
                            **_label_outputs(batch, labels))

  def close(self):
    self._compiled.clear()
    self._probabilities_fn = None


def _read_batches(spec, data_pattern, *, batch_size, skip_corrupt_records, labels,
                  segment_labels, split_segments, num_readers, data_flag):
  """The batches (model input format) of `spec`'s features in the records, through
  `explained_batches`; with split_segments, one row per 5-frame segment."""
  from yt8m_fusion import inputs as model_inputs
  from yt8m_fusion import submission
  spec = dataclasses.replace(spec, segment_labels=bool(segment_labels))
  if split_segments and not spec.frame_features:
    raise UserError("--segment_labels needs a frame-level model (trained with "
                    "--frame_features)")
  reader_options = {} if num_readers is None else {"num_readers": num_readers}
  batches = model_inputs.load_batches(
      data_pattern, spec, batch_size=batch_size, skip_corrupt_records=skip_corrupt_records,
      require_labels=bool(labels), **reader_options)
  dataset = batches.dataset
  if split_segments:
    dataset = dataset.map(lambda batch: submission.split_into_segments(batch,
                                                                       spec.feature_names))
  yield from explained_batches(dataset, data_pattern, spec, data_flag, batches.skip_counter)


def _label_outputs(batch, labels):
  """{labels[, label_weights]} of a batch (numpy) when `labels` were asked, else {}."""
  if not labels:
    return {}
  outputs = {"labels": batch["labels"].numpy()}
  if "label_weights" in batch:
    outputs["label_weights"] = batch["label_weights"].numpy()
  return outputs


class KerasPredictor(TensorFlowPredictor):
  """A Keras model in memory (`model`), e.g. restored from a train_dir's checkpoint.

  Attributes (from_train_dir / from_model_tgz): `train_dir`, `checkpoint` (its path).
  """

  def __init__(self, model, config, *, max_frames=300, description=""):
    self.model = model
    self.train_dir = None
    self.checkpoint = None
    super().__init__(lambda inputs: model(inputs, training=False), config,
                     max_frames=max_frames, description=description)

  def close(self):
    super().close()
    self.model = None


class SavedModelPredictor(TensorFlowPredictor):
  """An export folder (train_dir/export/<step>), through its `probabilities` signature."""

  def __init__(self, path, *, max_frames=300):
    import tensorflow as tf
    from yt8m_fusion import export
    config = export.read_export_config(path)  # a UserError says what the folder is instead
    try:
      self._loaded = tf.saved_model.load(path)
    except (tf.errors.OpError, OSError, ValueError) as error:
      reason = (getattr(error, "message", None) or str(error)).strip().splitlines()[0][:200]
      raise UserError(f"--saved_model_dir={path} cannot be loaded ({reason}); expected a "
                      "complete export folder train_dir/export/<step>") from None
    signature = self._loaded.signatures[export.PROBABILITIES_SIGNATURE]
    self.path = path
    self.ensemble_info = export.read_ensemble_info(path)  # None: one model
    model_name = config.model if self.ensemble_info is None else "ensemble of " + " + ".join(
        member["model_flags"]["model"] for member in self.ensemble_info["members"])
    super().__init__(lambda inputs: signature(**inputs)["probabilities"], config,
                     max_frames=max_frames, description=f"{path} ({model_name})",
                     compile_fn=False)

  def close(self):
    super().close()
    self._loaded = None


class LiteRTPredictor(Predictor):
  """A `.tflite` file written by `python -m yt8m_fusion.export --format=litert`, run by the
  ai_edge_litert interpreter on records read in plain Python (no TensorFlow)."""

  def __init__(self, model):
    """`model`: a `litert.LiteRTModel` (from_litert loads one from its path)."""
    self.model = model
    self.path = model.path
    self.spec = model.spec
    self.num_classes = model.num_classes
    self.description = f"{model.path} ({model.model_name}, {model.quantization})"

  def predict_batch(self, inputs):
    return np.asarray(self.model.predict(inputs), np.float32)

  def predictions(self, data_pattern, *, batch_size=512, skip_corrupt_records=False,
                  top_k=None, top_k_classes=None, labels=False, segment_labels=False,
                  split_segments=False, num_readers=None, data_flag=DEFAULT_DATA_FLAG):
    from yt8m_fusion.core.skipping import SkipCounter
    from yt8m_fusion.litert import records
    for wanted, what in ((labels, "labels"), (segment_labels or split_segments, "segments")):
      if wanted:
        raise UserError(f"{self.path}: the LiteRT predictor reads no {what}; use the train_dir "
                        "or the SavedModel")
    mask = None if top_k_classes is None else _class_mask(top_k_classes, self.num_classes)
    skipped = SkipCounter()
    for batch in records.read_batches(data_pattern, self.spec, batch_size=batch_size,
                                      skip_corrupt_records=skip_corrupt_records,
                                      skip_counter=skipped):
      probabilities = self.predict_batch(batch)
      top = (None, None)
      if top_k:
        ranked = probabilities if mask is None else probabilities * mask
        top = submission_format.top_k_numpy(ranked, top_k)
      yield PredictionBatch(video_ids=np.asarray(batch["video_ids"], dtype=object),
                            probabilities=probabilities, top_indexes=top[0], top_scores=top[1])
    if skip_corrupt_records:
      logging.info("--skip_corrupt_records: %s", skipped.summary())

  def close(self):
    self.model = None


class EnsemblePredictor(Predictor):
  """The weighted mean of several predictors' probabilities (an ensemble).

  Members may be different models: the records must hold the union of their features
  (`spec`). When every member runs with TensorFlow the records are read once, each member
  taking its own inputs from the batch; otherwise (a LiteRT member) each member reads them
  and the video ids must agree batch by batch. With only LiteRT members no TensorFlow is
  imported.

  Frame-level and video-level members together read frame-level records (TensorFlow
  members only): a video-level member gets the mean of each video's dequantized frames
  (`mean_rgb` of `rgb`, `mean_audio` of `audio`), which is what YouTube-8M's video-level
  features are.

  Attributes:
    members: the member predictors (closed with the ensemble).
    weights: float, one per member, summing to 1.
  """

  def __init__(self, members, weights=None):
    """`weights`: one non-negative number per member (normalized); None: equal weights."""
    self.members = list(members)
    if not self.members:
      raise UserError("an ensemble needs at least one model")
    self.weights = ensemble_weights(weights, len(self.members))
    described = ", ".join(f"{member.description}: {member.num_classes}" for member in self.members)
    if len({member.num_classes for member in self.members}) != 1:
      raise UserError("the ensemble's models predict different numbers of classes "
                      f"({described}); expected models trained on one vocabulary")
    self.num_classes = self.members[0].num_classes
    self.spec = union_spec([member.spec for member in self.members],
                           [member.description for member in self.members])
    if self.spec.frame_features and not self.reads_once and any(
        not member.spec.frame_features for member in self.members):
      raise UserError("the ensemble mixes frame-level and video-level models with a LiteRT "
                      "file (" + ", ".join(member.description for member in self.members)
                      + "); a LiteRT file reads only records of its own level: give such "
                      "members as train_dirs or exports")
    self.config = None
    self.description = "ensemble of " + " + ".join(
        f"{weight:.3g} x {member.description}" for weight, member in
        zip(self.weights, self.members))

  @property
  def reads_once(self):
    """True when one TensorFlow pipeline feeds every member."""
    return all(isinstance(member, TensorFlowPredictor) for member in self.members)

  def predict_batch(self, inputs):
    total = None
    for weight, member in zip(self.weights, self.members):
      names = member.spec.model_input_names
      part = weight * np.asarray(member.predict_batch({n: inputs[n] for n in names}), np.float32)
      total = part if total is None else total + part
    return total

  def predictions(self, data_pattern, *, batch_size=512, skip_corrupt_records=False,
                  top_k=None, top_k_classes=None, labels=False, segment_labels=False,
                  split_segments=False, num_readers=None, data_flag=DEFAULT_DATA_FLAG):
    options = dict(batch_size=batch_size, skip_corrupt_records=skip_corrupt_records,
                   labels=labels, segment_labels=segment_labels, split_segments=split_segments,
                   num_readers=num_readers, data_flag=data_flag)
    batches = (self._read_once(data_pattern, **options) if self.reads_once
               else self._zipped(data_pattern, **options))
    mask = None if top_k_classes is None else _class_mask(top_k_classes, self.num_classes)
    for batch in batches:
      if top_k:
        ranked = batch.probabilities if mask is None else batch.probabilities * mask
        indexes, scores = submission_format.top_k_numpy(ranked, min(top_k, self.num_classes))
        batch = dataclasses.replace(batch, top_indexes=indexes, top_scores=scores)
      yield batch

  def _read_once(self, data_pattern, *, batch_size, skip_corrupt_records, labels,
                 segment_labels, split_segments, num_readers, data_flag):
    """One tf.data pipeline of the union spec; each member computes on its inputs."""
    # pylint: disable-next=protected-access
    functions = [member._predict_fn(None) for member in self.members]
    # Video-level members of a frame-level read take the means of the frames.
    means_of_frames = [self.spec.frame_features and not member.spec.frame_features
                       for member in self.members]
    if any(means_of_frames) and (segment_labels or split_segments):
      raise UserError("segments are rated on frames: an ensemble with video-level models "
                      "cannot predict or evaluate segments")
    for batch in _read_batches(self.spec, data_pattern, batch_size=batch_size,
                               skip_corrupt_records=skip_corrupt_records, labels=labels,
                               segment_labels=segment_labels, split_segments=split_segments,
                               num_readers=num_readers, data_flag=data_flag):
      total = None
      for weight, predict, member, of_frames in zip(self.weights, functions, self.members,
                                                    means_of_frames):
        inputs = _with_frame_means(batch, member.spec) if of_frames else batch
        part = weight * predict(inputs)["probabilities"].numpy()
        total = part if total is None else total + part
      yield PredictionBatch(video_ids=batch["video_ids"].numpy(), probabilities=total,
                            **_label_outputs(batch, labels))

  def _zipped(self, data_pattern, **options):
    """Each member reads the records; the batches must hold the same videos."""
    streams = [member.predictions(data_pattern, **options) for member in self.members]
    for batches in zip(*streams, strict=True):
      first = batches[0]
      video_ids = np.asarray(first.video_ids)
      total = np.zeros_like(first.probabilities, dtype=np.float32)
      for weight, batch, member in zip(self.weights, batches, self.members):
        total += weight * _aligned_probabilities(batch, video_ids, member, self.members[0])
      yield dataclasses.replace(first, probabilities=total, top_indexes=None, top_scores=None)

  def close(self):
    for member in self.members:
      member.close()
    self.members = []


def ensemble_weights(weights, num_members):
  """`weights` (numbers or their strings; None: equal) as floats summing to 1; a UserError
  for a bad count or value."""
  if weights is None:
    return [1.0 / num_members] * num_members
  try:
    weights = [float(weight) for weight in weights]
  except (TypeError, ValueError):
    raise UserError(f"--ensemble_weights={','.join(map(str, weights))}: expected "
                    "comma-separated numbers") from None
  if len(weights) != num_members:
    raise UserError(f"--ensemble_weights has {len(weights)} weights for {num_members} models; "
                    "expected one weight per model, in the models' order")
  if any(weight < 0 or not np.isfinite(weight) for weight in weights):
    raise UserError(f"--ensemble_weights={','.join(f'{w:g}' for w in weights)}: expected "
                    "non-negative weights")
  total = sum(weights)
  if total <= 0:
    raise UserError("--ensemble_weights are all 0; expected at least one positive weight")
  return [weight / total for weight in weights]


def union_spec(specs, descriptions):
  """The DataSpec of records that every member's spec can read: the union of the features,
  frame-level when any member is (a video-level member's `mean_rgb` is then read as `rgb`);
  a UserError says what is expected when they cannot be read together."""
  from yt8m_fusion.core.spec import FRAME_NAMES  # pylint: disable=import-outside-toplevel
  frame_level = any(spec.frame_features for spec in specs)
  sizes = {}
  for spec, description in zip(specs, descriptions):
    for name, size in zip(spec.feature_names, spec.feature_sizes):
      if frame_level and not spec.frame_features:
        if name not in FRAME_NAMES:
          raise UserError(f"{description} reads the video-level feature {name}, which is not "
                          "the mean of a frame-level feature; with frame-level models in the "
                          f"ensemble, expected video-level features among "
                          f"{', '.join(FRAME_NAMES)}")
        name = FRAME_NAMES[name]
      if sizes.setdefault(name, size) != size:
        raise UserError(f"the ensemble's models read the feature {name} with different sizes "
                        f"({sizes[name]} and {size} in {description}); expected one size")
  frame_specs = [spec for spec in specs if spec.frame_features]
  max_frames = {spec.max_frames for spec in frame_specs}
  if len(max_frames) > 1:
    raise UserError(f"the ensemble's frame-level models read different --max_frames "
                    f"({', '.join(map(str, sorted(max_frames)))}); expected one")
  return dataclasses.replace(frame_specs[0] if frame_specs else specs[0],
                             feature_names=tuple(sizes), feature_sizes=tuple(sizes.values()))


def _with_frame_means(batch, spec):
  """`batch` (frame-level) with the video-level features `spec` reads, each the mean of the
  video's dequantized frames."""
  from yt8m_fusion.models import common
  return {**batch, **common.frame_means(batch, spec.feature_names)}


def _aligned_probabilities(batch, video_ids, member, first):
  """batch.probabilities in the order of `video_ids` (the first member's batch)."""
  ids = np.asarray(batch.video_ids)
  if np.array_equal(ids, video_ids):
    return batch.probabilities
  order = {video_id: row for row, video_id in enumerate(ids)}
  try:
    return batch.probabilities[[order[video_id] for video_id in video_ids]]
  except KeyError:
    raise UserError(f"{member.description} read the records in another order than "
                    f"{first.description}; expected members that read records alike (give "
                    "models of one kind: train_dirs, exports or LiteRT files)") from None


def _class_mask(class_indexes, num_classes):
  """float32 [num_classes]: 1 at the given classes, 0 elsewhere."""
  wanted = set(class_indexes)
  return np.asarray([1.0 if index in wanted else 0.0 for index in range(num_classes)],
                    np.float32)


# ----------------------------------------------------------------------------------------
# Constructors
# ----------------------------------------------------------------------------------------

def from_keras_model(model, config, *, max_frames=300):
  """A predictor of a Keras model built by `models.build_model(config)`."""
  return KerasPredictor(model, config, max_frames=max_frames)


def from_train_dir(train_dir, checkpoint=None, *, max_frames=300, configure=None):
  """The model of a train_dir (model_flags.json) with a checkpoint's weights.

  Args:
    train_dir: the folder train.py wrote.
    checkpoint: a checkpoint path (train_dir/model.ckpt-<step>) or a step; None: the latest.
    max_frames: frames read per video (frame-level models).
    configure: a function of the saved ModelConfig returning the one to build (the programs
      apply the model flags given on their command line); None: the saved one.
  """
  from yt8m_fusion import models
  from yt8m_fusion import train_dir as train_dir_lib
  config = train_dir_lib.load_config(train_dir)
  if configure is not None:
    config = configure(config)
  if checkpoint is None:
    checkpoint = train_dir_lib.require_checkpoint(train_dir)
  elif isinstance(checkpoint, int):
    checkpoint = os.path.join(train_dir, f"{train_dir_lib.CHECKPOINT_PREFIX}-{checkpoint}")
  model = models.build_model(config)
  train_dir_lib.restore_weights(model, checkpoint)
  predictor = KerasPredictor(model, config, max_frames=max_frames,
                             description=f"{checkpoint} ({config.model})")
  predictor.train_dir, predictor.checkpoint = train_dir, checkpoint
  return predictor


def from_saved_model(path, *, max_frames=300):
  """An export folder train_dir/export/<step> (export_saved_model)."""
  return SavedModelPredictor(path, max_frames=max_frames)


def from_litert(path, num_threads=None):
  """A LiteRT file (num_threads: interpreter threads; None: one per CPU core)."""
  from yt8m_fusion import litert
  return LiteRTPredictor(litert.LiteRTModel(path, num_threads=num_threads))


def from_model_tgz(path, untar_dir, *, max_frames=300, configure=None):
  """A model archive (inference.py --output_model_tgz), extracted into `untar_dir`."""
  from yt8m_fusion import submission
  train_dir = submission.extract_model_tgz(path, untar_dir)
  return from_train_dir(train_dir, max_frames=max_frames, configure=configure)


def load(path, *, untar_dir=None, num_threads=None, max_frames=300):
  """The predictor of whatever `path` is: a train_dir, an export folder, a .tflite file or a
  model .tgz (extracted into `untar_dir`; None: a new temporary folder)."""
  kind = source_kind(path)
  if kind == "litert":
    return from_litert(path, num_threads=num_threads)
  if kind == "model_tgz":
    return from_model_tgz(path, untar_dir or tempfile.mkdtemp(prefix="yt8m-model-"),
                          max_frames=max_frames)
  if kind == "saved_model":
    return from_saved_model(path, max_frames=max_frames)
  return from_train_dir(path, max_frames=max_frames)


def ensemble(paths, weights=None, *, untar_dir=None, num_threads=None, max_frames=300):
  """The EnsemblePredictor of the models at `paths` (each loaded by `load`); one path: that
  model's own predictor when `weights` is None."""
  paths = list(paths)
  if len(paths) == 1 and weights is None:
    return load(paths[0], untar_dir=untar_dir, num_threads=num_threads, max_frames=max_frames)
  ensemble_weights(weights, len(paths))  # a bad count fails before any model loads
  members = []
  try:
    for index, path in enumerate(paths):
      member_untar_dir = None if untar_dir is None else os.path.join(untar_dir, str(index))
      members.append(load(path, untar_dir=member_untar_dir, num_threads=num_threads,
                          max_frames=max_frames))
    return EnsemblePredictor(members, weights)
  except BaseException:
    for member in members:
      member.close()
    raise


def source_kind(path):
  """"train_dir", "saved_model", "litert" or "model_tgz"; a UserError for anything else."""
  files = _filesystem(path)
  if not files.exists(path):
    raise UserError(f"{path} does not exist; {_EXPECTED_SOURCE}")
  if not files.isdir(path):
    head = _head(files, path, 8)
    if path.endswith(".tflite") or head[4:8] == b"TFL3":
      return "litert"
    if path.endswith((".tgz", ".tar.gz")) or head[:2] == b"\x1f\x8b":
      return "model_tgz"
    raise UserError(f"{path} is neither a .tflite file nor a model .tgz; {_EXPECTED_SOURCE}")
  if files.exists(os.path.join(path, "saved_model.pb")):
    return "saved_model"
  if files.exists(os.path.join(path, "model_flags.json")):
    return "train_dir"
  versions = sorted((name for name in files.listdir(path) if name.isdigit() and
                     files.exists(os.path.join(path, name, "saved_model.pb"))), key=int)
  if versions:
    raise UserError(f"{path} holds the exports {', '.join(versions)}; {_EXPECTED_SOURCE}: give "
                    f"one, e.g. {os.path.join(path, versions[-1])}")
  raise UserError(f"{path} is a folder without model_flags.json or saved_model.pb; "
                  f"{_EXPECTED_SOURCE}")


def _filesystem(path):
  """`core.files.LOCAL` for local paths (no TensorFlow for a .tflite); tf.io.gfile (gs://)
  for the others."""
  if "://" in path:
    from yt8m_fusion import io_utils
    return io_utils.GFILE
  return core_files.LOCAL


def _head(files, path, size):
  with files.open(path, "rb") as handle:
    return handle.read(size)
