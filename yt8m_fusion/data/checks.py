"""Finding input files and explaining bad input as one-line UserErrors.

- `list_files(pattern)`: a glob, comma-separated globs, or a list -> sorted files;
  UserError naming the pattern that matches nothing.
- `check_files(files, ...)`: a cheap look at the container (plain, GZIP, ZLIB) and the
  first record of every file before training starts: not a TFRecord file, video- vs
  frame-level (and the two mixed), feature keys and sizes, labels (missing in the test
  split, or out of range). Most flag and pattern mistakes show up here.
- `explain_read_error(error, files, ...)`: after a tf error while iterating a
  dataset, scans the files in Python for the culprit and returns a UserError naming
  the file, the record, the feature and what was expected, e.g.

      try:
        model.fit(dataset, ...)
      except tf.errors.OpError as error:
        raise explain_read_error(error, files, **reader_kwargs) from error
"""

import concurrent.futures
import dataclasses
import logging
import os
import re

import numpy as np
import tensorflow as tf
from google.protobuf import message as protobuf_message

from yt8m_fusion.data import records as records_lib
from yt8m_fusion.data.spec import SEGMENT_SIZE
from yt8m_fusion.data.spec import SEGMENTS_NEED_FRAMES
from yt8m_fusion.errors import UserError

_LOG = logging.getLogger("yt8m_fusion.data")
_GLOB_CHARS = re.compile(r"[*?\[]")
# Problems that come from flags (the same for every record) rather than from bad data.
CONFIG_CATEGORIES = ("format", "missing", "size", "type")


def _split_patterns(data_pattern):
  if isinstance(data_pattern, (str, bytes, os.PathLike)):
    text = os.fsdecode(data_pattern)
    return [p.strip() for p in text.split(",") if p.strip()]
  return [os.fsdecode(p).strip() for p in data_pattern if os.fsdecode(p).strip()]


def describe_pattern(data_pattern):
  """A short, quoted rendering of a pattern or file list for messages."""
  patterns = _split_patterns(data_pattern)
  if len(patterns) == 1:
    return f"'{patterns[0]}'"
  if len(patterns) <= 3:
    return "'" + ",".join(patterns) + "'"
  return f"'{patterns[0]}' (and {len(patterns) - 1} more)"


def list_files(data_pattern):
  """Files matching a glob, a comma-separated list of globs, or a list of paths/globs.

  Uses tf.io.gfile (gs:// works). Matches are sorted per pattern, duplicates dropped.
  Raises UserError when the pattern is empty, names a directory, or matches nothing.
  """
  patterns = _split_patterns(data_pattern)
  if not patterns:
    raise UserError("the data pattern is empty; expected a file glob such as "
                    "'/data/yt8m/video/train*.tfrecord'")
  files, seen = [], set()
  for pattern in patterns:
    if not _GLOB_CHARS.search(pattern) and tf.io.gfile.isdir(pattern):
      raise UserError(f"'{pattern}' is a directory; expected a file glob such as "
                      f"'{pattern.rstrip('/')}/train*.tfrecord'")
    try:
      matches = tf.io.gfile.glob(pattern)
    except tf.errors.OpError as error:
      raise UserError(f"cannot list '{pattern}': {short_tf_message(error)}") from None
    if not matches:
      if pattern.startswith("~"):
        raise UserError(f"no files match '{pattern}': it starts with '~', which the shell does "
                        "not expand after --flag=; expected the full path, e.g. "
                        f"'{os.path.expanduser(pattern)}'")
      raise UserError(f"no files match '{pattern}'; expected a glob of TFRecord files such as "
                      "'/data/yt8m/video/train*.tfrecord'")
    for match in sorted(matches):
      if match not in seen:
        seen.add(match)
        files.append(match)
  return files


def short_tf_message(error):
  """The first line of a tf error's message without the function-node noise."""
  text = getattr(error, "message", None) or str(error)
  text = re.sub(r"\{\{function_node [^}]*\}\}", "", text)
  text = re.sub(r"\s*\[Op:[^\]]*\]", "", text)
  text = re.sub(r"\s+name:\s*$", "", text.strip())
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  return lines[0] if lines else type(error).__name__


# ----------------------------------------------------------------------------------------
# Record validation in Python (mirrors the parse and the in-graph checks of readers.py)
# ----------------------------------------------------------------------------------------

class RecordProblem:
  """What is wrong with one record: a category, the feature (or None) and a message."""

  def __init__(self, category, feature, message):
    self.category, self.feature, self.message = category, feature, message

  def __repr__(self):
    return f"RecordProblem({self.category!r}, {self.feature!r}, {self.message!r})"


def _kind_name(kind):
  return {"bytes": "bytes", "float": "float", "int64": "int64", None: "no"}[kind]


def _video_id_of(record):
  for key in ("id", "video_id"):
    feature = record.context.feature.get(key)
    if feature is not None and feature.WhichOneof("kind") == "bytes_list" and \
        feature.bytes_list.value:
      return feature.bytes_list.value[0].decode("utf-8", "replace")
  return None


def _check_labels(values, key, num_classes):
  for value in values:
    if value < 0 or value >= num_classes:
      return RecordProblem(
          "label", key, f"'{key}' holds the class id {value}; expected "
          f"0 <= id < num_classes={num_classes} (--num_classes; the 2017 data has 4716 classes)")
  return None


def _check_context_types(record, segment_labels, num_classes):
  expected = {"id": "bytes", "video_id": "bytes", "labels": "int64"}
  if segment_labels:
    expected.update(segment_labels="int64", segment_start_times="int64", segment_scores="float")
  for key, want in expected.items():
    feature = record.context.feature.get(key)
    if feature is None:
      continue
    kind, values = records_lib.feature_values(feature)
    if kind is not None and kind != want:
      return RecordProblem("type", key, f"'{key}' holds {_kind_name(kind)} values; expected {want}")
    if key in ("id", "video_id") and len(values) > 1:
      return RecordProblem("type", key, f"'{key}' holds {len(values)} values; expected one")
  labels = record.context.feature.get("labels")
  if labels is not None:
    problem = _check_labels(records_lib.feature_values(labels)[1], "labels", num_classes)
    if problem:
      return problem
  return None


def _check_video_level(record, names, sizes):
  context = record.context.feature
  if record.feature_lists.feature_list and not any(name in context for name in names):
    lists = ", ".join(sorted(record.feature_lists.feature_list))
    return RecordProblem(
        "format", names[0], f"holds frame-level records (tf.train.SequenceExample with the "
        f"feature lists {lists}) but video-level features ({', '.join(names)}) were requested; "
        "expected tf.train.Example records: add --frame_features (with frame feature names such "
        "as rgb,audio) or read the video-level files")
  for name, size in zip(names, sizes):
    feature = context.get(name)
    if feature is None:
      present = ", ".join(sorted(k for k in context if k not in ("id", "video_id", "labels")))
      return RecordProblem("missing", name, f"feature '{name}' is missing (the record has: "
                           f"{present or 'no features'}); expected {size} floats (--feature_names)")
    kind, values = records_lib.feature_values(feature)
    if kind != "float":
      return RecordProblem("type", name, f"feature '{name}' holds {_kind_name(kind)} values; "
                           f"expected {size} floats")
    if len(values) != size:
      return RecordProblem("size", name, f"feature '{name}' has {len(values)} values; expected "
                           f"{size} (--feature_sizes)")
    array = np.asarray(values, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
      return RecordProblem("nonfinite", name, f"feature '{name}' has a {array[bad[0]]} value at "
                           f"index {bad[0]}; expected finite floats")
  return None


def _check_frame_level(record, names, sizes):
  lists = record.feature_lists.feature_list
  context = record.context.feature
  if not lists:
    float_keys = sorted(k for k, f in context.items() if f.WhichOneof("kind") == "float_list")
    if float_keys:
      return RecordProblem(
          "format", names[0], f"holds video-level records (tf.train.Example with the features "
          f"{', '.join(float_keys)}) but frame-level features ({', '.join(names)}) were requested "
          "(--frame_features); expected tf.train.SequenceExample records: drop --frame_features "
          "(with video feature names such as mean_rgb,mean_audio) or read the frame-level files")
  for index, (name, size) in enumerate(zip(names, sizes)):
    feature_list = lists.get(name)
    if feature_list is None:
      present = ", ".join(sorted(lists)) or "none"
      return RecordProblem("missing", name, f"feature list '{name}' is missing (the record's "
                           f"feature lists: {present}); expected {size} uint8 values per frame "
                           "(--feature_names)")
    if not feature_list.feature:
      return RecordProblem("frames", name, f"feature '{name}' has zero frames; expected a video "
                           "with at least one frame")
    for t, frame in enumerate(feature_list.feature):
      kind, values = records_lib.feature_values(frame)
      if kind != "bytes":
        return RecordProblem("type", name, f"feature '{name}' frame {t} holds "
                             f"{_kind_name(kind)} values; expected one bytes value of {size} "
                             "quantized uint8 values")
      if len(values) != 1:
        return RecordProblem("type", name, f"feature '{name}' frame {t} holds {len(values)} "
                             "bytes values; expected one")
      if len(values[0]) != size:
        return RecordProblem("size", name, f"feature '{name}' frame {t} has {len(values[0])} "
                             f"bytes; expected {size} (--feature_sizes)")
    del index
  return None


def _check_segments(record, num_classes, max_frames):
  context = record.context.feature
  values = {key: records_lib.feature_values(context[key])[1] if key in context else []
            for key in ("segment_labels", "segment_start_times", "segment_scores")}
  lengths = {key: len(v) for key, v in values.items()}
  if len(set(lengths.values())) > 1:
    return RecordProblem("segments", "segment_labels", "segment_labels, segment_start_times and "
                         f"segment_scores have {lengths['segment_labels']}, "
                         f"{lengths['segment_start_times']} and {lengths['segment_scores']} "
                         "values; "
                         "expected the same number")
  problem = _check_labels(values["segment_labels"], "segment_labels", num_classes)
  if problem:
    return problem
  for start in values["segment_start_times"]:
    if start < 0 or start + SEGMENT_SIZE > max_frames:
      return RecordProblem("segments", "segment_start_times", f"segment start time {start} is "
                           f"outside the video; expected 0 <= start <= max_frames - "
                           f"{SEGMENT_SIZE} = {max_frames - SEGMENT_SIZE}")
  return None


def validate_record(raw, *, frame_features, feature_names, feature_sizes, num_classes=3862,
                    segment_labels=False, max_frames=300):
  """Checks one serialized record as the reader would.

  Returns (problem, video_id): a RecordProblem (None if the reader accepts the record)
  and the record's id (None if it has none or is undecodable).
  """
  try:
    record = records_lib.parse_record(raw)
  except (protobuf_message.DecodeError, ValueError, RuntimeError) as error:
    return RecordProblem("corrupt", None, "is not a serialized tf.train.Example or "
                         f"SequenceExample ({error or 'undecodable bytes'})"), None
  video_id = _video_id_of(record)
  names, sizes = list(feature_names), [int(s) for s in feature_sizes]
  problem = _check_context_types(record, segment_labels, num_classes)
  if problem is None:
    if frame_features:
      problem = _check_frame_level(record, names, sizes)
    else:
      problem = _check_video_level(record, names, sizes)
  if problem is None and segment_labels:
    problem = _check_segments(record, num_classes, max_frames)
  return problem, video_id


def _record_error(path, index, video_id, problem):
  where = f"{path}: record {index}"
  if video_id:
    where += f" (id '{video_id}')"
  return UserError(f"{where}: {problem.message}")


def _file_size(path):
  try:
    return tf.io.gfile.stat(path).length
  except tf.errors.OpError:
    return None


def _empty_file_error(path):
  return UserError(f"{path}: the file is empty (0 bytes); expected a TFRecord file of "
                   "tf.train.Example or SequenceExample records")


def _count_readable(path):
  """Records readable before the first read error (reads one record at a time)."""
  count = 0
  try:
    for _ in records_lib.iterate_records(path, batch_size=1):
      count += 1
  except tf.errors.OpError:
    pass
  return count


def _unreadable_error(path, error, records_read=None):
  if records_read is None:
    records_read = _count_readable(path)
  detail = short_tf_message(error)
  detail = re.sub(r"'? failed with .*$", "", detail)
  offset = re.search(r"record at (\d+)", detail)
  if "truncated" in detail:
    what = "is truncated"
  elif records_read == 0 and offset and offset.group(1) == "0":
    what = "is not a TFRecord file (or its first record is corrupted)"
  else:
    what = "has a corrupted record (checksum mismatch)"
  at = f" at byte {offset.group(1)}" if offset else ""
  return UserError(f"{path}: the file {what}{at}, after {records_read} good record(s) "
                   f"({detail}); expected an intact TFRecord file — re-copy it, or use "
                   "--skip_corrupt_records")


# ----------------------------------------------------------------------------------------
# A look at every file before reading: its container and its first record
# ----------------------------------------------------------------------------------------

# Records of a file read to decide that it holds no labels (its first one has none).
LABEL_CHECK_RECORDS = 16
_PEEK_BYTES = 1 << 16
_MAX_PEEK_RECORD_BYTES = 1 << 28
_PEEK_THREADS = 16


@dataclasses.dataclass
class FilePeek:
  """What the first bytes of a file say: its size, container, first record."""

  path: str
  size: int = None            # bytes on disk (None: unknown)
  compression: str = None     # "", "GZIP", "ZLIB"; None: no TFRecord framing found
  first_record: bytes = None  # serialized (None: could not be read here)
  not_tfrecord: str = None    # why it is certainly not a TFRecord file
  broken_stream: int = None   # compressed and cut short or corrupt: content bytes before


def _looks_like_text(head):
  sample = head[:512]
  if not sample or b"\x00" in sample:
    return False
  printable = sum(32 <= byte < 127 or byte in b"\t\n\r" for byte in sample)
  return printable >= 0.95 * len(sample)


def peek_file(path):
  """A FilePeek of one file: reads its first bytes (and first record) in Python."""
  size = _file_size(path)
  if size == 0:
    return FilePeek(path, size=0)
  try:
    head = records_lib.read_prefix(path, _PEEK_BYTES)
    compression = records_lib.detect_compression(path, head[:12])
    if compression is None:
      why = None
      if _looks_like_text(head):
        why = "is a text file"
      elif head[:2] == b"\x1f\x8b":
        why = "is GZIP-compressed data that holds no TFRecords"
      return FilePeek(path, size=size, not_tfrecord=why)
    broken = None
    if compression:
      content_bytes, intact = records_lib.compressed_stream(path, compression)
      broken = None if intact else content_bytes
    content = head if not compression else records_lib.read_prefix(path, _PEEK_BYTES,
                                                                   compression)
    length = int.from_bytes(content[:8], "little")
    first = None
    if length <= _MAX_PEEK_RECORD_BYTES:
      if len(content) < 12 + length:
        content = records_lib.read_prefix(path, 12 + length, compression)
      if len(content) >= 12 + length:
        first = content[12:12 + length]  # data checksum unchecked: tf.data checks it
    return FilePeek(path, size=size, compression=compression, first_record=first,
                    broken_stream=broken)
  except (tf.errors.OpError, OSError):
    if tf.io.gfile.isdir(path):  # a glob such as 'data/*' matched a folder
      return FilePeek(path, not_tfrecord="is a folder")
    if not tf.io.gfile.exists(path):  # a broken link: globs list it, nothing reads it
      return FilePeek(path, not_tfrecord="does not exist (a broken link?)")
    return FilePeek(path, size=size)  # e.g. no permission: the reader's error says so


def peek_files(files):
  """`peek_file` of each file, read in parallel (remote file systems have latency)."""
  if len(files) <= 1:
    return [peek_file(path) for path in files]
  with concurrent.futures.ThreadPoolExecutor(min(_PEEK_THREADS, len(files))) as pool:
    return list(pool.map(peek_file, files))


def _record_kind(raw):
  """"frame" (SequenceExample with feature lists), "video" (Example) or None (undecodable)."""
  try:
    record = records_lib.parse_record(raw)
  except (protobuf_message.DecodeError, ValueError, RuntimeError):
    return None
  return "frame" if record.feature_lists.feature_list else "video"


def _has_labels(raw, key):
  try:
    feature = records_lib.parse_record(raw).context.feature.get(key)
  except (protobuf_message.DecodeError, ValueError, RuntimeError):
    return True  # not a label question: the record checks report it
  return feature is not None and bool(records_lib.feature_values(feature)[1])


def _not_tfrecord_error(peek):
  folder = os.path.dirname(peek.path) or "."
  return UserError(f"{peek.path}: {peek.not_tfrecord}, not a TFRecord file; expected only "
                   f"TFRecord files in the data pattern: narrow it (e.g. '{folder}/*.tfrecord')")


def _broken_stream_error(peek):
  return UserError(f"{peek.path}: the {peek.compression}-compressed file is cut short or "
                   f"corrupt after {peek.broken_stream} bytes of content; expected an intact "
                   "compressed TFRecord file — re-copy it, or use --skip_corrupt_records")


_KINDS = {"video": "video-level records (tf.train.Example)",
          "frame": "frame-level records (tf.train.SequenceExample)"}


def _mixed_kinds_error(odd, num_odd, num_files, frame_features):
  wanted = "frame" if frame_features else "video"
  unwanted = "video" if frame_features else "frame"
  requested = "as --frame_features requests" if frame_features else \
      "as requested without --frame_features"
  others = f" (and {num_odd - 1} more file(s) like it)" if num_odd > 1 else ""
  return UserError(
      f"{odd}: holds {_KINDS[unwanted]}, unlike the other {num_files - num_odd} file(s) of the "
      f"data pattern ({_KINDS[wanted].split(' (')[0]}, {requested}){others}; expected one kind "
      "of file per pattern: remove it from the pattern or narrow the pattern")


def _unlabelled_error(path, key, records_checked, num_unlabelled, num_files):
  none = f"none of its first {records_checked} record(s) has '{key}'"
  if key == "segment_labels":
    where = (f"{path}: holds no segment ratings ({none}; in the 2019 data only the validate "
             "split has them)")
    expected = "; expected segment-rated records to train or evaluate on with --segment_labels"
  else:
    where = f"{path}: holds no labels ({none}), like the test split"
    expected = "; expected labelled records to train or evaluate on"
  if num_unlabelled < num_files:
    return UserError(f"{where}{expected}: remove it from the data pattern ({num_unlabelled} of "
                     f"its {num_files} files hold none)")
  others = f", as do the other {num_files - 1} file(s) of the data pattern" \
      if num_files > 1 else ""
  if key == "segment_labels":
    return UserError(f"{where}{others}{expected}")
  return UserError(f"{where}{others}{expected} (the train or validate split); predict the "
                   "test split with inference.py")


def _unlabelled_records_checked(path, compression, key):
  """How many leading records of `path` hold no `key` (0 when one of the first
  LABEL_CHECK_RECORDS has it)."""
  checked = 0
  try:
    for raw in records_lib.iterate_records(path, batch_size=LABEL_CHECK_RECORDS,
                                           compression_type=compression):
      if _has_labels(raw, key):
        return 0
      checked += 1
      if checked >= LABEL_CHECK_RECORDS:
        break
  except tf.errors.OpError:
    pass  # an unreadable file is reported by the record checks
  return checked


def _check_first_records(path, compression, num_records, kwargs, skip_corrupt_records, info):
  """Reads the first `num_records` records of one file with tf.data and checks them."""
  frame_features, feature_names = kwargs["frame_features"], kwargs["feature_names"]
  try:
    for index, raw in enumerate(records_lib.iterate_records(
        path, batch_size=num_records, compression_type=compression)):
      if index >= num_records:
        break
      problem, video_id = validate_record(raw, **kwargs)
      if problem is None:
        if frame_features and info["first_record_frames"] is None:
          info["first_record_frames"] = len(records_lib.parse_record(raw).feature_lists
                                            .feature_list[feature_names[0]].feature)
        continue
      error = _record_error(path, index, video_id, problem)
      if skip_corrupt_records and problem.category not in CONFIG_CATEGORIES:
        _LOG.warning("%s (will be skipped)", error)
        continue
      raise error
  except tf.errors.OpError as error:
    if skip_corrupt_records:
      _LOG.warning("%s: unreadable (%s); the rest of the file will be skipped", path,
                   short_tf_message(error))
      return
    raise _unreadable_error(path, error) from None


def check_files(files, *, frame_features, feature_names, feature_sizes, num_classes=3862,
                segment_labels=False, max_frames=300, num_files=1, num_records=1,
                skip_corrupt_records=False, require_labels=False):
  """Checks every file's container and first record, and the first `num_records` records
  of the first `num_files` files, before any reading.

  Returns {"first_record_frames": frames of the first feature in the first good record
  (frame-level; None otherwise or if no record could be read)}.

  Raises a UserError naming the file (and the record and feature) for an empty file, a
  file that is not a TFRecord file (text, or compressed data without TFRecords) or is not
  readable, video- and frame-level files mixed in one pattern (naming the odd file),
  video- vs frame-level records that do not match `frame_features`, missing features,
  wrong sizes or types, label ids >= num_classes, NaN/Inf values, videos without frames,
  and, with `require_labels` (training, evaluation), files whose records hold no labels
  (the test split; `segment_labels` in segment mode). GZIP/ZLIB-compressed TFRecord files
  are accepted (the readers decompress them). With `skip_corrupt_records` only mistakes
  that come from the flags or the pattern raise; corrupt data is logged and left to the
  reader to skip.
  """
  if segment_labels and not frame_features:
    raise UserError(SEGMENTS_NEED_FRAMES)
  if isinstance(files, (str, os.PathLike)):
    files = list_files(files)
  kwargs = dict(frame_features=frame_features, feature_names=feature_names,
                feature_sizes=feature_sizes, num_classes=num_classes,
                segment_labels=segment_labels, max_frames=max_frames)
  if not skip_corrupt_records:
    for path in files:
      if "://" not in path and os.path.isfile(path) and os.path.getsize(path) == 0:
        raise _empty_file_error(path)
  peeks = peek_files(files)
  for peek in peeks:
    if peek.not_tfrecord:
      raise _not_tfrecord_error(peek)
    if peek.broken_stream is not None:
      error = _broken_stream_error(peek)
      if not skip_corrupt_records:
        raise error
      _LOG.warning("%s (the records before the break will be read)", error)

  # Video- and frame-level files in one pattern: name the odd one (when every file is of
  # the other kind, the flag is what is wrong, and the record checks below say so).
  kinds = {peek.path: _record_kind(peek.first_record) for peek in peeks
           if peek.first_record is not None}
  unwanted = "video" if frame_features else "frame"
  odd = [path for path in files if kinds.get(path) == unwanted]
  num_known = sum(kind is not None for kind in kinds.values())
  if odd and len(odd) < num_known:
    raise _mixed_kinds_error(odd[0], len(odd), num_known, frame_features)

  info = {"first_record_frames": None}
  for index, peek in enumerate(peeks):
    if peek.size == 0:
      if skip_corrupt_records:
        _LOG.warning("%s is empty (0 bytes)", peek.path)
        continue
      raise _empty_file_error(peek.path)
    if index < max(1, num_files):
      _check_first_records(peek.path, peek.compression, num_records, kwargs,
                           skip_corrupt_records, info)
      continue
    # Other files: the first record read in Python; tf.data reads the file again only
    # when something is wrong, for the same message as for the first file.
    if peek.first_record is None or validate_record(peek.first_record, **kwargs)[0] is not None:
      _check_first_records(peek.path, peek.compression, 1, kwargs, skip_corrupt_records, info)

  if require_labels:
    key = "segment_labels" if segment_labels else "labels"
    unlabelled = []
    for peek in peeks:
      if peek.first_record is None or _has_labels(peek.first_record, key):
        continue
      checked = _unlabelled_records_checked(peek.path, peek.compression, key)
      if checked:
        unlabelled.append((peek.path, checked))
    if unlabelled:
      path, checked = unlabelled[0]
      raise _unlabelled_error(path, key, checked, len(unlabelled), len(files))
  return info


def explain_read_error(error, files, *, frame_features, feature_names, feature_sizes,
                       num_classes=3862, segment_labels=False, max_frames=300, max_files=None,
                       **unused_reader_kwargs):
  """A UserError naming the file, record, feature and expectation behind a tf read error.

  `error` is a tf.errors.OpError raised while iterating a dataset of `files` (a list or
  a pattern) read with these reader arguments (extra `load_dataset` arguments are
  accepted and ignored). Scans the files in order (all of them, or the first
  `max_files`) until it finds a record the reader rejects. If none is found, the
  UserError says so and repeats the first line of the tf error.
  """
  if isinstance(error, UserError):
    return error
  try:
    files = list_files(files)  # patterns and globs in a list are expanded too
  except UserError as listing_error:
    return listing_error
  if max_files is not None:
    files = files[:max_files]
  kwargs = dict(frame_features=frame_features, feature_names=feature_names,
                feature_sizes=feature_sizes, num_classes=num_classes,
                segment_labels=segment_labels, max_frames=max_frames)
  framing_only = isinstance(error, tf.errors.DataLossError)
  _LOG.info("Scanning %d file(s) for the record behind: %s", len(files), short_tf_message(error))
  for path in files:
    if _file_size(path) == 0:
      continue  # holds no records; reading it raises nothing
    try:
      for index, raw in enumerate(records_lib.iterate_records(path)):
        if framing_only:
          continue
        problem, video_id = validate_record(raw, **kwargs)
        if problem is not None:
          return _record_error(path, index, video_id, problem)
    except tf.errors.OpError as read_error:
      return _unreadable_error(path, read_error)
  return UserError(
      f"reading {describe_pattern(files)} failed ({short_tf_message(error)}) but no bad record "
      f"was found by scanning {len(files)} file(s) with frame_features={bool(frame_features)}, "
      f"feature_names={','.join(feature_names)}, feature_sizes="
      f"{','.join(map(str, feature_sizes))}, num_classes={num_classes}")
