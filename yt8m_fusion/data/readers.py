"""tf.data readers for YouTube-8M TFRecords: parsing, file sharding, skipping.

Files are read in parallel (interleave, AUTOTUNE) and batches prefetched. How records
are parsed was chosen by measurement (benchmarks/input_pipeline.py, docs/PERFORMANCE.md):
- Video-level records (small) are batched first and parsed a whole batch at a time
  (`tf.io.parse_example`, in `parse_serialized`), cheaper per record than one parse each.
- Frame-level records of real length (hundreds of frames) are parsed one record at a time
  in parallel and then batched: the parse itself dominates, and batching the serialized
  records first only adds a copy and batch-sized intermediates. Short videos (the demo
  data) are batch-parsed instead, where the per-record overhead dominates. Both give
  identical values.
- Frame-level features can stay uint8 through the pipeline (`dequantize=False`, a quarter
  of the memory); the model dequantizes them and masks the padding with `num_frames`.
- Segment data (2019) is parsed in small batches of videos, then its 5-frame segments
  are re-batched.

Batches are dicts (see `load_dataset`). Bad data stops the pipeline with a tf error
(a parse error, or one of our in-graph checks: label ids, frame byte sizes, NaN/Inf,
videos without frames, segment fields); `checks.explain_read_error` turns it into a
one-line UserError that names the file, the feature and what was expected. With
`skip_corrupt_records=True` such records are dropped instead and counted by a
`SkipCounter` (see there).
"""

import concurrent.futures
import logging
import typing

import tensorflow as tf

from yt8m_fusion.data import checks as checks_lib
from yt8m_fusion.data import quantization
from yt8m_fusion.data import records as records_lib
from yt8m_fusion.data.spec import SEGMENT_SIZE
from yt8m_fusion.errors import UserError

# Prefix of the messages of our in-graph checks (explain_read_error looks for it).
CHECK_PREFIX = "yt8m_fusion data check"
_TFRECORD_BUFFER_BYTES = 1 << 20
_TFRECORD_OVERHEAD_BYTES = 16  # length (8) + length crc (4) + data crc (4)
# load_dataset(batch_parse_frames=None) batch-parses frame-level records with fewer frames.
BATCH_PARSE_BELOW_FRAMES = 100


# ----------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------

def _context_spec(segment_labels):
  spec = {
      "id": tf.io.FixedLenFeature([], tf.string, default_value=""),
      "video_id": tf.io.FixedLenFeature([], tf.string, default_value=""),  # 2017 data
      "labels": tf.io.VarLenFeature(tf.int64),
  }
  if segment_labels:
    spec["segment_labels"] = tf.io.VarLenFeature(tf.int64)
    spec["segment_start_times"] = tf.io.VarLenFeature(tf.int64)
    spec["segment_scores"] = tf.io.VarLenFeature(tf.float32)
  return spec


class _Checks:
  """Collects in-graph assertions; eagerly they raise at once, in a graph they gate outputs."""

  def __init__(self, enabled):
    self.enabled = enabled
    self.ops = []

  def add(self, op):
    if self.enabled and op is not None:
      self.ops.append(op)

  def gate(self, tensor):
    if not self.ops:
      return tensor
    with tf.control_dependencies(self.ops):
      return tf.identity(tensor)


def _video_ids(context):
  return tf.where(tf.strings.length(context["id"]) > 0, context["id"], context["video_id"])


def _multi_hot(sparse_labels, batch_size, num_classes, checks):
  values = sparse_labels.values
  if checks.enabled:
    checks.add(tf.debugging.assert_non_negative(
        values, message=f"{CHECK_PREFIX}: label id < 0; expected 0 <= id < {num_classes}"))
    checks.add(tf.debugging.assert_less(
        values, tf.constant(num_classes, tf.int64),
        message=f"{CHECK_PREFIX}: label id >= num_classes={num_classes}"))
  indices = tf.stack([sparse_labels.indices[:, 0], values], axis=1)
  shape = tf.stack([tf.cast(batch_size, tf.int64), tf.constant(num_classes, tf.int64)])
  dense = tf.scatter_nd(indices, tf.ones_like(values, tf.float32), shape)
  return tf.minimum(dense, 1.0)  # a label listed twice stays 1


def _parse_video_level(serialized, names, sizes, num_classes, checks):
  spec = _context_spec(False)
  for name, size in zip(names, sizes):
    spec[name] = tf.io.FixedLenFeature([size], tf.float32)
  parsed = tf.io.parse_example(serialized, spec)
  batch_size = tf.shape(serialized)[0]
  batch = {"video_ids": _video_ids(parsed)}
  for name in names:
    values = parsed[name]
    if checks.enabled:
      values = tf.debugging.check_numerics(
          values, f"{CHECK_PREFIX}: feature '{name}' has NaN/Inf values; expected finite floats")
    batch[name] = values
  batch["num_frames"] = tf.ones([batch_size], tf.int32)
  batch["labels"] = _multi_hot(parsed["labels"], batch_size, num_classes, checks)
  return batch


def _parse_frame_level(serialized, names, sizes, num_classes, max_frames, dequantize,
                       segment_labels, checks, decode=True):
  sequence_spec = {name: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
                   for name in names}
  context, feature_lists, lengths = tf.io.parse_sequence_example(
      serialized, context_features=_context_spec(segment_labels),
      sequence_features=sequence_spec)
  batch_size = tf.shape(serialized)[0]
  batch = {"video_ids": _video_ids(context)}
  num_frames = None
  for name, size in zip(names, sizes):
    strings = feature_lists[name][:, :max_frames]  # [B, T <= max_frames]
    frames = tf.cast(tf.minimum(lengths[name], max_frames), tf.int32)
    if num_frames is None:
      num_frames = frames  # the starter counts the frames of the FIRST feature
    if checks.enabled:
      checks.add(tf.debugging.assert_positive(
          lengths[name], message=f"{CHECK_PREFIX}: feature '{name}' has no frames (missing "
          "or empty feature list); expected at least one frame"))
      valid = tf.sequence_mask(frames, tf.shape(strings)[1])
      wrong_size = tf.logical_and(valid, tf.strings.length(strings) != size)
      checks.add(tf.debugging.Assert(
          tf.logical_not(tf.reduce_any(wrong_size)),
          [f"{CHECK_PREFIX}: feature '{name}' has frames whose size is not {size} bytes"]))
    if not decode:
      continue
    quantized = tf.io.decode_raw(strings, tf.uint8, fixed_length=size)  # [B, T, size]
    longest = tf.shape(quantized)[1]
    if dequantize:
      # Zero padding AFTER dequantization, as the starter's resize_axis did: the frames
      # past each video's end (up to the longest in the batch) are zeroed, then padded.
      mask = tf.sequence_mask(frames, longest)[:, :, tf.newaxis]
      values = tf.where(mask, quantization.dequantize(quantized), tf.zeros([], tf.float32))
    else:
      values = quantized  # padding is q=0
    values = tf.pad(values, [[0, 0], [0, max_frames - longest], [0, 0]])
    batch[name] = tf.ensure_shape(values, [None, max_frames, size])
  batch["num_frames"] = num_frames
  if not segment_labels:
    batch["labels"] = _multi_hot(context["labels"], batch_size, num_classes, checks)
    return batch
  return _segments(batch, context, names, num_classes, max_frames, checks, decode)


def _segments(batch, context, names, num_classes, max_frames, checks, decode=True):
  """Videos -> their rated 5-frame segments (the 2019 segment-level data)."""
  seg_labels = context["segment_labels"]
  seg_starts = context["segment_start_times"]
  seg_scores = context["segment_scores"]
  batch_size = tf.shape(batch["video_ids"])[0]
  if checks.enabled:
    rows = [tf.math.bincount(tf.cast(s.indices[:, 0], tf.int32), minlength=batch_size,
                             maxlength=batch_size) for s in (seg_labels, seg_starts, seg_scores)]
    same = tf.logical_and(tf.reduce_all(rows[0] == rows[1]), tf.reduce_all(rows[0] == rows[2]))
    checks.add(tf.debugging.Assert(same, [
        f"{CHECK_PREFIX}: segment_labels, segment_start_times and segment_scores have "
        "different lengths; expected one start time and one score per segment label"]))
    checks.add(tf.debugging.assert_non_negative(
        seg_starts.values, message=f"{CHECK_PREFIX}: segment_start_times < 0"))
    checks.add(tf.debugging.assert_less_equal(
        seg_starts.values, tf.constant(max_frames - SEGMENT_SIZE, tf.int64),
        message=f"{CHECK_PREFIX}: segment_start_times + {SEGMENT_SIZE} > max_frames={max_frames}"))
    checks.add(tf.debugging.assert_non_negative(
        seg_labels.values, message=f"{CHECK_PREFIX}: segment label id < 0"))
    checks.add(tf.debugging.assert_less(
        seg_labels.values, tf.constant(num_classes, tf.int64),
        message=f"{CHECK_PREFIX}: segment label id >= num_classes={num_classes}"))
  # Triples (video row, start, class, score) in record order; a segment per unique
  # (video, start) pair, in order of first appearance (as the starter's tf.unique).
  rows = seg_labels.indices[:, 0]
  keys = rows * max_frames + seg_starts.values
  unique_keys, segment_of_triple = tf.unique(keys, out_idx=tf.int64)
  segment_rows = unique_keys // max_frames
  segment_starts = unique_keys % max_frames
  num_segments = tf.shape(unique_keys, out_type=tf.int64)[0]
  out = {"video_ids": tf.gather(batch["video_ids"], segment_rows)}
  frame_index = (segment_rows * max_frames + segment_starts)[:, tf.newaxis] + tf.range(
      SEGMENT_SIZE, dtype=tf.int64)[tf.newaxis, :]  # [S, 5]
  for name in names:
    if not decode:
      continue
    features = batch[name]
    size = features.shape[-1]
    flat = tf.reshape(features, [-1, size])
    out[name] = tf.ensure_shape(tf.gather(flat, frame_index), [None, SEGMENT_SIZE, size])
  out["num_frames"] = tf.fill(tf.cast(tf.reshape(num_segments, [1]), tf.int32), SEGMENT_SIZE)
  indices = tf.stack([segment_of_triple, seg_labels.values], axis=1)
  shape = tf.stack([num_segments, tf.constant(num_classes, tf.int64)])
  zeros = tf.zeros(shape, tf.float32)
  out["labels"] = tf.tensor_scatter_nd_max(zeros, indices, seg_scores.values)
  out["label_weights"] = tf.tensor_scatter_nd_max(
      zeros, indices, tf.ones_like(seg_scores.values))
  return out


def _parse_frame_record(serialized, names, sizes, num_classes, max_frames, dequantize,
                        validate=True):
  """One SequenceExample -> one example of a frame-level batch (same values as parse_serialized).

  `load_dataset` maps this over the records (in parallel) and batches the results: for
  frame-level records this costs less CPU than batching the serialized records first
  (see the module docstring and benchmarks/input_pipeline.py).
  """
  context, lists = tf.io.parse_single_sequence_example(
      serialized, context_features=_context_spec(False),
      sequence_features={name: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
                         for name in names})
  out = {"video_ids": tf.where(tf.strings.length(context["id"]) > 0, context["id"],
                               context["video_id"])}
  num_frames = None
  conditions, messages = [], []
  for name, size in zip(names, sizes):
    strings = lists[name][:max_frames]
    frames = tf.shape(strings)[0]
    if num_frames is None:
      num_frames = frames  # the starter counts the frames of the FIRST feature
    if validate:
      conditions.append(tf.size(lists[name]) > 0)
      messages.append(f"feature '{name}' needs at least one frame")
      conditions.append(tf.reduce_all(tf.strings.length(strings) == size))
      messages.append(f"every '{name}' frame needs {size} bytes")
    quantized = tf.io.decode_raw(strings, tf.uint8, fixed_length=size)  # [frames, size]
    values = quantization.dequantize(quantized) if dequantize else quantized
    # Zero padding AFTER dequantization (as the starter's resize_axis), or q=0 for uint8.
    out[name] = tf.ensure_shape(tf.pad(values, [[0, max_frames - frames], [0, 0]]),
                                [max_frames, size])
  labels = context["labels"].values
  if validate:
    conditions.append(tf.reduce_all(tf.logical_and(labels >= 0, labels < num_classes)))
    messages.append(f"label ids need 0 <= id < num_classes={num_classes}")
    # One assertion for the record; the message lists each condition and whether it held.
    data = [f"{CHECK_PREFIX} failed:"]
    for condition, message in zip(conditions, messages):
      data += [message, condition]
    assertion = tf.debugging.Assert(tf.reduce_all(tf.stack(conditions)), data + [labels])
    with tf.control_dependencies([assertion]):
      num_frames = tf.identity(num_frames)
  out["num_frames"] = num_frames
  dense = tf.scatter_nd(labels[:, tf.newaxis], tf.ones_like(labels, tf.float32), [num_classes])
  out["labels"] = tf.minimum(dense, 1.0)  # a label listed twice stays 1
  return out


def parse_serialized(serialized, spec, *, dequantize=True, validate=True):
  """Serialized records (a `[N]` string tensor) -> a batch dict, as `load_dataset` yields.

  `spec` (a DataSpec) says which features to parse and how the records are laid out.

  Graph-safe (works in a `tf.function` with a `[None]` string input, e.g. a SavedModel
  serving signature). Keys: `video_ids` string `[N]`; one per feature name (video-level
  float32 `[N, D]`; frame-level `[N, max_frames, D]`, float32 dequantized and
  zero-padded, or uint8 with `dequantize=False`, padded with q=0); `num_frames` int32
  `[N]` (min(frames of the first feature, max_frames); ones for video-level);
  `labels` float32 multi-hot `[N, num_classes]`. With `spec.segment_labels`
  (frame-level only) the rows are the rated 5-frame segments of the records:
  features `[S, 5, D]`, `num_frames` 5, `labels[s, c]` = the rating score,
  `label_weights[s, c]` = 1 for rated pairs.

  With `validate=True` (default) in-graph checks stop with a tf.errors.InvalidArgumentError
  whose message starts with "yt8m_fusion data check" on a label id outside
  [0, num_classes), NaN/Inf video-level values, a feature without frames, a frame of the
  wrong byte size or inconsistent segment fields.
  """
  names, sizes = spec.feature_names, spec.feature_sizes
  serialized = tf.convert_to_tensor(serialized, tf.string)
  checks = _Checks(validate)
  if spec.frame_features:
    batch = _parse_frame_level(serialized, names, sizes, spec.num_classes, spec.max_frames,
                               dequantize, spec.segment_labels, checks)
  else:
    batch = _parse_video_level(serialized, names, sizes, spec.num_classes, checks)
  if checks.ops:
    batch = {key: checks.gate(value) for key, value in batch.items()}
  return batch


def _validate_one(serialized, spec):
  """Runs the parse and all checks on one record; True, or an error (used when skipping)."""
  checks = _Checks(True)
  records = tf.reshape(serialized, [1])
  names, sizes = spec.feature_names, spec.feature_sizes
  if spec.frame_features:
    out = _parse_frame_level(records, names, sizes, spec.num_classes, spec.max_frames, False,
                             spec.segment_labels, checks, decode=False)
  else:
    out = _parse_video_level(records, names, sizes, spec.num_classes, checks)
    # check_numerics is an identity: consume its outputs so it runs.
    checks.ops.extend(tf.reduce_sum(out[name]) for name in names)
  checks.ops.append(out["labels"])
  with tf.control_dependencies([op for op in checks.ops if op is not None]):
    return tf.constant(True)


# ----------------------------------------------------------------------------------------
# Skipping corrupt records
# ----------------------------------------------------------------------------------------

class SkipCounter:
  """Counts what `load_dataset(..., skip_corrupt_records=True)` skipped.

  - `invalid_records`: records read but dropped (not an Example/SequenceExample, a
    missing or wrongly sized feature, a label id out of range, NaN/Inf values, a
    video without frames, ...).
  - `unreadable_files` / `unreadable_bytes`: files where the TFRecord framing broke
    (bad checksum, truncation, not a TFRecord file). TensorFlow cannot resynchronise
    inside such a file, so the rest of it is skipped; its records cannot be counted,
    only its bytes.

  The counts grow while the dataset is iterated (records the pipeline has prefetched
  are already counted). `load_dataset` returns it beside the dataset, e.g.

      batches = load_dataset(pattern, spec, skip_corrupt_records=True)
      model.fit(batches.dataset, ...)
      batches.skip_counter.log()   # one warning line if anything was skipped
  """

  def __init__(self):
    with tf.init_scope():
      self._invalid = tf.Variable(0, dtype=tf.int64, trainable=False, name="invalid_records")
      self._files = tf.Variable(0, dtype=tf.int64, trainable=False, name="unreadable_files")
      self._bytes = tf.Variable(0, dtype=tf.int64, trainable=False, name="unreadable_bytes")

  @property
  def invalid_records(self):
    return int(self._invalid.numpy())

  @property
  def unreadable_files(self):
    return int(self._files.numpy())

  @property
  def unreadable_bytes(self):
    return int(self._bytes.numpy())

  @property
  def skipped_anything(self):
    return bool(self.invalid_records or self.unreadable_files)

  def reset(self):
    for variable in (self._invalid, self._files, self._bytes):
      variable.assign(0)

  def summary(self):
    text = f"skipped {self.invalid_records} invalid record(s)"
    if self.unreadable_files:
      text += (f" and the unreadable rest of {self.unreadable_files} file(s) "
               f"({self.unreadable_bytes} bytes)")
    return text

  def log(self, logger=None):
    """Logs one warning line when something was skipped; returns the summary."""
    text = self.summary()
    if self.skipped_anything:
      (logger or logging.getLogger("yt8m_fusion.data")).warning("Corrupt input: %s", text)
    return text

  def _update(self, dropped, lost_bytes):
    return tf.group(
        self._invalid.assign_add(dropped),
        self._files.assign_add(tf.cast(lost_bytes > 0, tf.int64)),
        self._bytes.assign_add(tf.maximum(lost_bytes, 0)))

  def __repr__(self):
    return f"SkipCounter({self.summary()})"


def _file_sizes(files, compressions):
  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    return list(pool.map(records_lib.content_size, files, compressions))


def _read_file_skipping(filename, size, compression):
  """Records of one file, then an end marker with the bytes left unread by a read error
  (`size`: the bytes of its decompressed content)."""
  records = tf.data.TFRecordDataset(filename, compression_type=compression,
                                    buffer_size=_TFRECORD_BUFFER_BYTES).ignore_errors()
  records = records.map(lambda r: (r, tf.constant(False), tf.constant(-1, tf.int64)))
  end = tf.data.Dataset.from_tensors((tf.constant(""), tf.constant(True), size))

  def step(consumed, element):
    record, is_end, file_size = element
    length = tf.cast(tf.strings.length(record), tf.int64) + _TFRECORD_OVERHEAD_BYTES
    lost = tf.where(tf.logical_and(is_end, file_size >= 0), file_size - consumed,
                    tf.constant(0, tf.int64))
    return consumed + tf.where(is_end, tf.constant(0, tf.int64), length), (record, is_end, lost)

  return records.concatenate(end).scan(tf.constant(0, tf.int64), step)


def _skip_invalid(records, counter, validate_fn):
  """(record, is_end, lost) elements -> valid records; counts the dropped ones."""
  records = records.enumerate()

  def validate(index, element):
    record, is_end, lost = element
    ok = tf.cond(is_end, lambda: tf.constant(True), lambda: validate_fn(record))
    with tf.control_dependencies([ok]):
      return index, tf.identity(record), tf.identity(is_end), lost

  records = records.map(validate, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  records = records.ignore_errors()  # a failing check drops the record; the gap counts it

  def gaps(last_index, element):
    index, record, is_end, lost = element
    return index, (record, is_end, lost, index - last_index - 1)

  records = records.scan(tf.constant(-1, tf.int64), gaps)

  def update(record, is_end, lost, dropped):
    update_op = counter._update(dropped, lost)  # pylint: disable=protected-access
    with tf.control_dependencies([update_op]):
      return tf.identity(record), tf.identity(is_end)

  records = records.map(update)
  return records.filter(lambda record, is_end: tf.logical_not(is_end)).map(
      lambda record, is_end: record)


# ----------------------------------------------------------------------------------------
# The dataset
# ----------------------------------------------------------------------------------------

def _shard(files, input_context, data_pattern):
  if input_context is None:
    return files
  num_pipelines = input_context.num_input_pipelines
  if len(files) < num_pipelines:
    raise UserError(
        f"{checks_lib.describe_pattern(data_pattern)} matches {len(files)} file(s) but there "
        f"are {num_pipelines} input pipelines (workers); sharding is by file, so each needs at "
        "least one: split the data into more files or use fewer workers")
  return files[input_context.input_pipeline_id::num_pipelines]


class Batches(typing.NamedTuple):
  """What `load_dataset` returns."""

  dataset: tf.data.Dataset  # dict batches (see `parse_serialized`)
  skip_counter: "SkipCounter | None"  # with skip_corrupt_records: what was skipped
  files: tuple  # the files read (this pipeline's share with an input_context)


def load_dataset(data_pattern, spec, *, batch_size=1024, shuffle=False, num_epochs=1,
                 dequantize=True, num_readers=8, input_context=None, drop_remainder=False,
                 skip_corrupt_records=False, seed=None, shuffle_buffer_size=None,
                 batch_parse_frames=None, require_labels=False):
  """YouTube-8M batches (dicts, see `parse_serialized`) of the records `spec` describes.

  The files are checked first (`checks.check_files`: the first record of each file, so a
  wrong feature, size or level is one line naming the file), once.

  Args:
    data_pattern: a glob, a comma-separated list of globs, or a list of paths/globs
      (tf.io.gfile, so gs:// works). UserError when a pattern matches nothing.
    spec: a `DataSpec`: features, video- or frame-level, classes, max_frames, segments.
    batch_size: records per batch (segments per batch with `spec.segment_labels`). With
      `input_context`, this is the batch of this pipeline (use
      `input_context.get_per_replica_batch_size(global_batch_size)`).
    shuffle: shuffle files (each epoch) and records (buffer of `shuffle_buffer_size`).
    num_epochs: passes over the data; None or <= 0 repeats forever.
    dequantize: frame-level only: float32 dequantized features (True) or the raw uint8
      (False; the model dequantizes, padding is q=0).
    num_readers: files read in parallel (interleave cycle length).
    input_context: a `tf.distribute.InputContext`: this pipeline reads every
      `num_input_pipelines`-th file (UserError if there are fewer files than pipelines).
    drop_remainder: drop the last partial batch (static batch dimension).
    skip_corrupt_records: drop unreadable/invalid records instead of failing, counted
      by the returned `skip_counter`. Costs a per-record validation.
    seed: shuffle seed; with a seed the order is reproducible.
    shuffle_buffer_size: records in the shuffle buffer (default 8 batches for
      video-level, 1 batch but at most 1024 records for frame-level).
    batch_parse_frames: frame-level: True batches the serialized records first and
      parses whole batches with `parse_serialized` (as video-level data always is);
      False parses each record in parallel and batches the results. Same values.
      None (default) picks by the first record's frame count: batch parsing below
      BATCH_PARSE_BELOW_FRAMES frames, where it takes less CPU per record, per-record
      parsing for real-length videos, where that takes less (docs/PERFORMANCE.md,
      benchmarks/input_pipeline.py).
    require_labels: refuse files whose records have no labels (the test split), for
      training and evaluation.

  Returns:
    `Batches(dataset, skip_counter, files)`.
  """
  for value, what in ((batch_size, "batch_size"), (num_readers, "num_readers")):
    if int(value) < 1:
      raise UserError(f"{what} must be at least 1, got {value}")
  files = _shard(checks_lib.list_files(data_pattern), input_context, data_pattern)
  first_record_frames = checks_lib.check_files(
      files, frame_features=spec.frame_features, feature_names=spec.feature_names,
      feature_sizes=spec.feature_sizes, num_classes=spec.num_classes,
      segment_labels=spec.segment_labels, max_frames=spec.max_frames,
      skip_corrupt_records=skip_corrupt_records,
      require_labels=require_labels)["first_record_frames"]
  if batch_parse_frames is None:
    # Short videos: the per-record overhead dominates, batch parsing wins; long videos:
    # the parse dominates and batching the serialized records only adds copies.
    batch_parse_frames = first_record_frames is not None and \
        first_record_frames < BATCH_PARSE_BELOW_FRAMES

  deterministic = (not shuffle) or seed is not None
  repeat = None if (num_epochs is None or num_epochs <= 0) else int(num_epochs)

  compressions = records_lib.detect_compressions(files)  # "" (plain), GZIP or ZLIB
  if skip_corrupt_records:
    counter = SkipCounter()
    file_ds = tf.data.Dataset.from_tensor_slices(
        (files, tf.constant(_file_sizes(files, compressions), tf.int64), compressions))
    read = _read_file_skipping
  else:
    counter = None
    file_ds = tf.data.Dataset.from_tensor_slices((files, compressions))
    read = lambda f, c: tf.data.TFRecordDataset(f, compression_type=c,
                                                buffer_size=_TFRECORD_BUFFER_BYTES)
  if shuffle:
    file_ds = file_ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  file_ds = file_ds.repeat(repeat)
  records = file_ds.interleave(read, cycle_length=min(num_readers, len(files)), block_length=1,
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  if skip_corrupt_records:
    records = _skip_invalid(records, counter, lambda r: _validate_one(r, spec))
  if shuffle:
    if shuffle_buffer_size is None:
      shuffle_buffer_size = min(batch_size, 1024) if spec.frame_features else 8 * batch_size
    records = records.shuffle(max(1, int(shuffle_buffer_size)), seed=seed,
                              reshuffle_each_iteration=True)

  parse = lambda s: parse_serialized(s, spec, dequantize=dequantize)
  if spec.segment_labels:
    # Whole videos are parsed in small batches, then their segments re-batched.
    videos = records.batch(max(1, min(batch_size, 32)))
    segments = videos.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=deterministic)
    dataset = segments.unbatch().batch(batch_size, drop_remainder=drop_remainder)
  elif spec.frame_features and not batch_parse_frames:
    dataset = records.map(
        lambda s: _parse_frame_record(s, spec.feature_names, spec.feature_sizes,
                                      spec.num_classes, spec.max_frames, dequantize),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
  else:
    dataset = records.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=deterministic)
  dataset = dataset.prefetch(tf.data.AUTOTUNE)

  options = tf.data.Options()
  if input_context is not None:
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
  return Batches(dataset.with_options(options), counter, tuple(files))
