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
(a parse error, or the in-graph form of the record rules of `yt8m_fusion.core.validation`:
label ids, frame byte sizes, NaN/Inf, videos without frames, segment fields), which
`checks.explain_read_error` turns into a one-line UserError that names the file, the
feature and what was expected (the same rules, applied in Python). With
`skip_corrupt_records=True` such records are dropped instead and counted by a
`SkipCounter` (see there).
"""

import concurrent.futures
import typing

import tensorflow as tf

from yt8m_fusion.core import skipping
from yt8m_fusion.core import validation
from yt8m_fusion.core.spec import SEGMENT_SIZE
from yt8m_fusion.core.validation import CHECK_PREFIX
from yt8m_fusion.data import checks as checks_lib
from yt8m_fusion.data import quantization
from yt8m_fusion.data import records as records_lib
from yt8m_fusion.errors import UserError
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
  """The spec's record rules (`core.validation`) as in-graph conditions, asserted at once.

  `add(spec, values)` turns each rule whose key is in `values` into a condition:
    CLASS_IDS, SEGMENT_STARTS: the int64 values;  FEATURE: the float values;
    FRAMES: (frame counts, byte lengths of the frames read, mask of the frames read);
    SEGMENT_SCORES: the values per record of (segment_labels, segment_start_times,
    segment_scores).
  Eagerly a failed assertion raises at once; in a graph `gate` makes outputs wait for it.
  The message lists every requirement and whether it held.
  """

  def __init__(self, enabled):
    self.enabled = enabled
    self.ops = []

  def add(self, spec, values):
    if not self.enabled:
      return
    conditions = []
    for rule in validation.record_rules(spec):
      if rule.key in values:
        conditions.append((_condition(rule, values[rule.key]), rule.requirement))
    if conditions:
      data = [f"{CHECK_PREFIX} failed:"]
      for condition, requirement in conditions:
        data += [requirement, condition]
      held = tf.reduce_all(tf.stack([condition for condition, _ in conditions]))
      self.ops.append(tf.debugging.Assert(held, data))

  def gate(self, tensor):
    if not self.ops:
      return tensor
    with tf.control_dependencies(self.ops):
      return tf.identity(tensor)


def _condition(rule, value):
  """A scalar bool: `value` (see `_Checks.add`) satisfies `rule`."""
  if rule.check == validation.CLASS_IDS:
    return tf.reduce_all(tf.logical_and(value >= 0, value < rule.limit))
  if rule.check == validation.SEGMENT_STARTS:
    return tf.reduce_all(tf.logical_and(value >= 0, value <= rule.limit))
  if rule.check == validation.FEATURE:
    return tf.reduce_all(tf.math.is_finite(value))
  if rule.check == validation.FRAMES:
    counts, lengths, read = value
    return tf.logical_and(tf.reduce_all(counts > 0), tf.reduce_all(
        tf.logical_or(tf.logical_not(read), lengths == rule.size)))
  if rule.check == validation.SEGMENT_SCORES:
    labels, starts, scores = value
    return tf.logical_and(tf.reduce_all(labels == starts), tf.reduce_all(labels == scores))
  raise ValueError(f"no in-graph check for {rule}")


def _video_ids(context):
  return tf.where(tf.strings.length(context["id"]) > 0, context["id"], context["video_id"])


def _multi_hot(sparse_labels, batch_size, num_classes):
  values = sparse_labels.values
  indices = tf.stack([sparse_labels.indices[:, 0], values], axis=1)
  shape = tf.stack([tf.cast(batch_size, tf.int64), tf.constant(num_classes, tf.int64)])
  dense = tf.scatter_nd(indices, tf.ones_like(values, tf.float32), shape)
  return tf.minimum(dense, 1.0)  # a label listed twice stays 1


def _parse_video_level(serialized, spec, checks):
  features = _context_spec(False)
  for name, size in zip(spec.feature_names, spec.feature_sizes):
    features[name] = tf.io.FixedLenFeature([size], tf.float32)
  parsed = tf.io.parse_example(serialized, features)
  batch_size = tf.shape(serialized)[0]
  checks.add(spec, {"labels": parsed["labels"].values,
                    **{name: parsed[name] for name in spec.feature_names}})
  batch = {"video_ids": _video_ids(parsed)}
  batch.update({name: parsed[name] for name in spec.feature_names})
  batch["num_frames"] = tf.ones([batch_size], tf.int32)
  batch["labels"] = _multi_hot(parsed["labels"], batch_size, spec.num_classes)
  return batch


def _frame_list_spec(spec):
  return {name: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
          for name in spec.feature_names}


def _parse_frame_level(serialized, spec, dequantize, checks, decode=True):
  max_frames = spec.max_frames
  context, feature_lists, lengths = tf.io.parse_sequence_example(
      serialized, context_features=_context_spec(spec.segment_labels),
      sequence_features=_frame_list_spec(spec))
  batch_size = tf.shape(serialized)[0]
  batch = {"video_ids": _video_ids(context)}
  num_frames = None
  rule_values = {"labels": context["labels"].values}
  for name, size in zip(spec.feature_names, spec.feature_sizes):
    strings = feature_lists[name][:, :max_frames]  # [B, T <= max_frames]
    frames = tf.cast(tf.minimum(lengths[name], max_frames), tf.int32)
    if num_frames is None:
      num_frames = frames  # the starter counts the frames of the FIRST feature
    rule_values[name] = (lengths[name], tf.strings.length(strings),
                         tf.sequence_mask(frames, tf.shape(strings)[1]))
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
  checks.add(spec, rule_values)
  batch["num_frames"] = num_frames
  if not spec.segment_labels:
    batch["labels"] = _multi_hot(context["labels"], batch_size, spec.num_classes)
    return batch
  return _segments(batch, context, spec, checks, decode)


def _segments(batch, context, spec, checks, decode=True):
  """Videos -> their rated 5-frame segments (the 2019 segment-level data)."""
  max_frames = spec.max_frames
  seg_labels = context["segment_labels"]
  seg_starts = context["segment_start_times"]
  seg_scores = context["segment_scores"]
  batch_size = tf.shape(batch["video_ids"])[0]
  if checks.enabled:
    per_record = tuple(
        tf.math.bincount(tf.cast(s.indices[:, 0], tf.int32), minlength=batch_size,
                         maxlength=batch_size) for s in (seg_labels, seg_starts, seg_scores))
    checks.add(spec, {"segment_labels": seg_labels.values,
                      "segment_start_times": seg_starts.values, "segment_scores": per_record})
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
  for name in spec.feature_names:
    if not decode:
      continue
    features = batch[name]
    size = features.shape[-1]
    flat = tf.reshape(features, [-1, size])
    out[name] = tf.ensure_shape(tf.gather(flat, frame_index), [None, SEGMENT_SIZE, size])
  out["num_frames"] = tf.fill(tf.cast(tf.reshape(num_segments, [1]), tf.int32), SEGMENT_SIZE)
  indices = tf.stack([segment_of_triple, seg_labels.values], axis=1)
  shape = tf.stack([num_segments, tf.constant(spec.num_classes, tf.int64)])
  zeros = tf.zeros(shape, tf.float32)
  out["labels"] = tf.tensor_scatter_nd_max(zeros, indices, seg_scores.values)
  out["label_weights"] = tf.tensor_scatter_nd_max(
      zeros, indices, tf.ones_like(seg_scores.values))
  return out


def _parse_frame_record(serialized, spec, dequantize, validate=True):
  """One SequenceExample -> one example of a frame-level batch (same values as parse_serialized).

  `load_dataset` maps this over the records (in parallel) and batches the results: for
  frame-level records this costs less CPU than batching the serialized records first
  (see the module docstring and benchmarks/input_pipeline.py).
  """
  max_frames = spec.max_frames
  context, lists = tf.io.parse_single_sequence_example(
      serialized, context_features=_context_spec(False),
      sequence_features=_frame_list_spec(spec))
  out = {"video_ids": tf.where(tf.strings.length(context["id"]) > 0, context["id"],
                               context["video_id"])}
  num_frames = None
  labels = context["labels"].values
  rule_values = {"labels": labels}
  for name, size in zip(spec.feature_names, spec.feature_sizes):
    strings = lists[name][:max_frames]
    frames = tf.shape(strings)[0]
    if num_frames is None:
      num_frames = frames  # the starter counts the frames of the FIRST feature
    rule_values[name] = (tf.size(lists[name]), tf.strings.length(strings), True)
    quantized = tf.io.decode_raw(strings, tf.uint8, fixed_length=size)  # [frames, size]
    values = quantization.dequantize(quantized) if dequantize else quantized
    # Zero padding AFTER dequantization (as the starter's resize_axis), or q=0 for uint8.
    out[name] = tf.ensure_shape(tf.pad(values, [[0, max_frames - frames], [0, 0]]),
                                [max_frames, size])
  checks = _Checks(validate)
  checks.add(spec, rule_values)
  out["num_frames"] = checks.gate(num_frames)
  dense = tf.scatter_nd(labels[:, tf.newaxis], tf.ones_like(labels, tf.float32),
                        [spec.num_classes])
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

  With `validate=True` (default) the spec's record rules (`yt8m_fusion.core.validation`)
  are checked in the graph: a record that breaks one stops with a
  tf.errors.InvalidArgumentError whose message starts with "yt8m_fusion data check" and
  lists the requirements (label ids in [0, num_classes), finite video-level values, at
  least one frame and frames of the right byte size, consistent segment fields).
  """
  serialized = tf.convert_to_tensor(serialized, tf.string)
  checks = _Checks(validate)
  if spec.frame_features:
    batch = _parse_frame_level(serialized, spec, dequantize, checks)
  else:
    batch = _parse_video_level(serialized, spec, checks)
  if checks.ops:
    batch = {key: checks.gate(value) for key, value in batch.items()}
  return batch


def _validate_one(serialized, spec):
  """Runs the parse and all checks on one record; True, or an error (used when skipping)."""
  checks = _Checks(True)
  records = tf.reshape(serialized, [1])
  if spec.frame_features:
    out = _parse_frame_level(records, spec, False, checks, decode=False)
  else:
    out = _parse_video_level(records, spec, checks)
  with tf.control_dependencies(checks.ops + [out["labels"]]):
    return tf.constant(True)


# ----------------------------------------------------------------------------------------
# Skipping corrupt records
# ----------------------------------------------------------------------------------------

class SkipCounter(skipping.SkipCounter):
  """`core.skipping.SkipCounter` counted in graph variables by the tf.data pipeline of
  `load_dataset(..., skip_corrupt_records=True)`.

  The counts grow while the dataset is iterated (records the pipeline has prefetched
  are already counted). `load_dataset` returns it beside the dataset, e.g.

      batches = load_dataset(pattern, spec, skip_corrupt_records=True)
      model.fit(batches.dataset, ...)
      batches.skip_counter.log()   # one warning line if anything was skipped
  """

  def __init__(self):
    super().__init__()
    with tf.init_scope():
      self._variables = {name: tf.Variable(0, dtype=tf.int64, trainable=False, name=name)
                         for name in ("invalid_records", "unreadable_files", "unreadable_bytes")}

  @property
  def invalid_records(self):
    return int(self._variables["invalid_records"].numpy())

  @property
  def unreadable_files(self):
    return int(self._variables["unreadable_files"].numpy())

  @property
  def unreadable_bytes(self):
    return int(self._variables["unreadable_bytes"].numpy())

  def reset(self):
    for variable in self._variables.values():
      variable.assign(0)

  def _update(self, dropped, lost_bytes):
    return tf.group(
        self._variables["invalid_records"].assign_add(dropped),
        self._variables["unreadable_files"].assign_add(tf.cast(lost_bytes > 0, tf.int64)),
        self._variables["unreadable_bytes"].assign_add(tf.maximum(lost_bytes, 0)))


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
      files, spec, skip_corrupt_records=skip_corrupt_records,
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
        lambda s: _parse_frame_record(s, spec, dequantize),
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
