"""YouTube-8M TFRecords read in plain Python and numpy, for running LiteRT models without
TensorFlow.

`read_batches(data_pattern, inputs, batch_size=...)` yields dicts in the model's input format
(the same values `yt8m_fusion.data.load_dataset(..., dequantize=False)` gives):
  video_ids               list of bytes
  video-level features    float32 [B, D]
  frame-level features    uint8 [B, max_frames, D], zero-padded; `num_frames` int32 [B]
                          (frames of the first feature, at most max_frames)

Records are parsed with protobuf messages that have the wire format of tensorflow's
Example / SequenceExample (built here, so tensorflow is not needed). Each record's framing
(its length and the length's CRC-32C) is checked; the data CRC is not (pure Python would
be too slow), so damaged records show up as protobuf or feature-size errors instead.
Local files only (no gs://).
"""

import dataclasses
import glob
import logging
import os
import struct

import numpy as np
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message as protobuf_message
from google.protobuf import message_factory

from yt8m_fusion.errors import UserError
from yt8m_fusion.tfrecord_framing import masked_crc32c

_PACKAGE = "yt8m_fusion.litert.records"


def _message_classes():
  """Example-compatible messages: BytesList ... SequenceExample, field numbers as in
  tensorflow/core/example/{feature,example}.proto, in a private descriptor pool (so they
  never clash with tensorflow's own classes in a process that has both)."""
  proto = descriptor_pb2.FileDescriptorProto(name="yt8m_fusion_litert_example.proto",
                                             package=_PACKAGE, syntax="proto3")
  types = descriptor_pb2.FieldDescriptorProto
  repeated, optional = types.LABEL_REPEATED, types.LABEL_OPTIONAL

  def message(name, fields, nested=()):
    msg = proto.message_type.add(name=name)
    for entry_name, value_type in nested:  # map<string, value_type> entries
      entry = msg.nested_type.add(name=entry_name)
      entry.options.map_entry = True
      entry.field.add(name="key", number=1, label=optional, type=types.TYPE_STRING)
      entry.field.add(name="value", number=2, label=optional, type=types.TYPE_MESSAGE,
                      type_name=f".{_PACKAGE}.{value_type}")
    for field_name, number, label, kind, type_name, oneof in fields:
      field = msg.field.add(name=field_name, number=number, label=label, type=kind)
      if type_name:
        field.type_name = f".{_PACKAGE}.{type_name}"
      if oneof is not None:
        if not msg.oneof_decl:
          msg.oneof_decl.add(name="kind")
        field.oneof_index = 0

  message("BytesList", [("value", 1, repeated, types.TYPE_BYTES, None, None)])
  message("FloatList", [("value", 1, repeated, types.TYPE_FLOAT, None, None)])
  message("Int64List", [("value", 1, repeated, types.TYPE_INT64, None, None)])
  message("Feature", [("bytes_list", 1, optional, types.TYPE_MESSAGE, "BytesList", 0),
                      ("float_list", 2, optional, types.TYPE_MESSAGE, "FloatList", 0),
                      ("int64_list", 3, optional, types.TYPE_MESSAGE, "Int64List", 0)])
  message("Features", [("feature", 1, repeated, types.TYPE_MESSAGE, "Features.FeatureEntry",
                        None)], nested=[("FeatureEntry", "Feature")])
  message("FeatureList", [("feature", 1, repeated, types.TYPE_MESSAGE, "Feature", None)])
  message("FeatureLists", [("feature_list", 1, repeated, types.TYPE_MESSAGE,
                            "FeatureLists.FeatureListEntry", None)],
          nested=[("FeatureListEntry", "FeatureList")])
  # A tf.train.Example is {1: Features}: it parses as a SequenceExample whose context holds
  # its features, so one message reads both formats.
  message("SequenceExample", [("context", 1, optional, types.TYPE_MESSAGE, "Features", None),
                              ("feature_lists", 2, optional, types.TYPE_MESSAGE,
                               "FeatureLists", None)])
  pool = descriptor_pool.DescriptorPool()
  pool.Add(proto)
  return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.SequenceExample"))


SequenceExample = _message_classes()


# ----------------------------------------------------------------------------------------
# Files and TFRecord framing
# ----------------------------------------------------------------------------------------

def list_files(data_pattern):
  """Files matching a glob or comma-separated globs, sorted per pattern (as
  yt8m_fusion.data.list_files, for local paths)."""
  patterns = [p.strip() for p in data_pattern.split(",") if p.strip()]
  if not patterns:
    raise UserError("the data pattern is empty; expected a file glob such as "
                    "'/data/yt8m/video/test*.tfrecord'")
  files = []
  for pattern in patterns:
    if os.path.isdir(pattern):
      raise UserError(f"'{pattern}' is a directory; expected a file glob such as "
                      f"'{pattern.rstrip('/')}/test*.tfrecord'")
    if "://" in pattern:
      raise UserError(f"'{pattern}': the LiteRT runtime reads local files only; copy the "
                      "records to a local folder")
    matches = sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
    if not matches:
      raise UserError(f"no files match '{pattern}'; expected a glob of TFRecord files such as "
                      "'/data/yt8m/video/test*.tfrecord'")
    files.extend(path for path in matches if path not in files)
  return files


class FramingError(Exception):
  """A TFRecord file whose framing is broken (truncated, or not a TFRecord file)."""


def iterate_records(path):
  """Yields the serialized records of one TFRecord file; FramingError at a broken frame."""
  with open(path, "rb") as handle:
    index = 0
    while True:
      header = handle.read(12)
      if not header:
        return
      if len(header) < 12:
        raise FramingError(f"record {index} is truncated (its header has {len(header)} of 12 "
                           "bytes)")
      length, length_crc = struct.unpack("<QI", header)
      if masked_crc32c(header[:8]) != length_crc:
        raise FramingError(f"record {index}'s length has a wrong checksum (not a TFRecord file, "
                           "or damaged)")
      data = handle.read(length)
      if len(data) < length or len(handle.read(4)) < 4:
        raise FramingError(f"record {index} is truncated ({len(data)} of {length} bytes)")
      yield data
      index += 1


# ----------------------------------------------------------------------------------------
# Records -> model inputs
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ModelInputs:
  """What a model reads from each record."""

  feature_names: tuple
  feature_sizes: tuple
  frame_features: bool
  max_frames: int = 300

  @property
  def names(self):
    """The model's input names, in order (frame-level: the features, then num_frames)."""
    return (*self.feature_names, "num_frames") if self.frame_features else self.feature_names


class RecordError(Exception):
  """One record that does not hold what the model needs (the message says what)."""


def _video_id(context):
  for key in ("id", "video_id"):  # 2018+ data / 2017 data
    feature = context.get(key)
    if feature is not None and feature.bytes_list.value and feature.bytes_list.value[0]:
      return feature.bytes_list.value[0]
  return b""


def _video_level_values(record, name, size):
  feature = record.context.feature.get(name)
  if feature is None:
    if record.feature_lists.feature_list:
      raise RecordError(f"a frame-level record (feature lists "
                        f"{', '.join(sorted(record.feature_lists.feature_list))}) but the model "
                        f"reads video-level features ({name}, ...)")
    present = ", ".join(sorted(k for k in record.context.feature
                               if k not in ("id", "video_id", "labels")))
    raise RecordError(f"feature '{name}' is missing (the record has: {present or 'no features'})"
                      f"; the model expects {size} floats")
  if feature.WhichOneof("kind") != "float_list":
    raise RecordError(f"feature '{name}' holds {feature.WhichOneof('kind') or 'no'} values; "
                      f"expected {size} floats")
  values = np.asarray(feature.float_list.value, dtype=np.float32)
  if values.size != size:
    raise RecordError(f"feature '{name}' has {values.size} values; the model expects {size}")
  if not np.all(np.isfinite(values)):
    raise RecordError(f"feature '{name}' has NaN or Inf values; expected finite floats")
  return values


def _frame_level_values(record, name, size, max_frames):
  """(uint8 [max_frames, size] zero-padded, number of frames in the record)."""
  feature_list = record.feature_lists.feature_list.get(name)
  if feature_list is None or not feature_list.feature:
    if not record.feature_lists.feature_list and any(
        f.WhichOneof("kind") == "float_list" for f in record.context.feature.values()):
      raise RecordError(f"a video-level record (tf.train.Example) but the model reads "
                        f"frame-level features ({name}, ...)")
    raise RecordError(f"feature '{name}' has no frames (missing or empty feature list); "
                      "expected at least one frame")
  frames = feature_list.feature
  kept = [frame.bytes_list.value[0] if len(frame.bytes_list.value) == 1 else None
          for frame in frames[:max_frames]]
  wrong = [index for index, frame in enumerate(kept) if frame is None or len(frame) != size]
  if wrong:
    raise RecordError(f"feature '{name}' has frames whose size is not {size} bytes (frame "
                      f"{wrong[0]}); the model expects {size} uint8 values per frame")
  values = np.zeros((max_frames, size), np.uint8)
  values[:len(kept)] = np.frombuffer(b"".join(kept), np.uint8).reshape(len(kept), size)
  return values, len(frames)


def parse_record(serialized, inputs):
  """One serialized record -> (video id, {input name: value}); RecordError when it does not
  hold what the model needs.

  Args:
    serialized: the record's bytes.
    inputs: the model's `ModelInputs`.
  """
  try:
    record = SequenceExample.FromString(serialized)
  except protobuf_message.DecodeError:
    raise RecordError("not a tf.train.Example / tf.train.SequenceExample (unreadable bytes)") \
        from None
  values = {}
  if inputs.frame_features:
    num_frames = None
    for name, size in zip(inputs.feature_names, inputs.feature_sizes):
      values[name], count = _frame_level_values(record, name, size, inputs.max_frames)
      if num_frames is None:
        num_frames = min(count, inputs.max_frames)  # the first feature's, as the starter
    values["num_frames"] = np.int32(num_frames)
  else:
    for name, size in zip(inputs.feature_names, inputs.feature_sizes):
      values[name] = _video_level_values(record, name, size)
  return _video_id(record.context.feature), values


class SkipCounter:
  """With skip_corrupt_records: what was skipped, for one log line."""

  def __init__(self):
    self.records = 0
    self.file_ends = 0
    self.first = None

  def add(self, kind, path, reason):
    if kind == "record":
      self.records += 1
    else:
      self.file_ends += 1
    if self.first is None:
      self.first = f"{path}: {reason}"

  def summary(self):
    if not (self.records or self.file_ends):
      return "nothing was skipped"
    return (f"skipped {self.records} record(s) and the rest of {self.file_ends} file(s); "
            f"first: {self.first}")


def read_batches(data_pattern, inputs, *, batch_size, skip_corrupt_records=False,
                 skip_counter=None):
  """Yields batches (see the module docstring) of every record of the matching files.

  Args:
    data_pattern: a glob or comma-separated globs of TFRecord files.
    inputs: the model's `ModelInputs`.
    batch_size: videos per batch (the last batch may be smaller).
    skip_corrupt_records: skip records that cannot be used (and the rest of a file whose
      framing is broken), counting them in `skip_counter`, instead of raising UserError.
    skip_counter: a SkipCounter to fill.
  """
  files = list_files(data_pattern)
  logging.info("Reading %d file(s) matching %s", len(files), data_pattern)
  ids, rows = [], []
  for path in files:
    index = -1
    try:
      for index, serialized in enumerate(iterate_records(path)):
        try:
          video_id, values = parse_record(serialized, inputs)
        except RecordError as error:
          if not skip_corrupt_records:
            raise UserError(f"{path}: record {index}: {error}") from None
          if skip_counter is not None:
            skip_counter.add("record", path, f"record {index}: {error}")
          continue
        ids.append(video_id)
        rows.append(values)
        if len(rows) == batch_size:
          yield _stack(ids, rows, inputs)
          ids, rows = [], []
    except FramingError as error:
      if not skip_corrupt_records:
        raise UserError(f"{path}: {error}; expected a complete TFRecord file") from None
      if skip_counter is not None:
        skip_counter.add("file", path, str(error))
    except OSError as error:
      raise UserError(f"cannot read {path}: {error.strerror or error}") from None
  if rows:
    yield _stack(ids, rows, inputs)


def _stack(ids, rows, inputs):
  batch = {"video_ids": ids}
  for name in inputs.names:
    batch[name] = np.stack([row[name] for row in rows])
  return batch
