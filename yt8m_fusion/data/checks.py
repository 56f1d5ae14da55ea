"""Finding input files and explaining bad input as one-line UserErrors.

- `list_files(pattern)`: a glob, comma-separated globs, or a list -> sorted files;
  UserError naming the pattern that matches nothing.
- `check_files(files, spec)`: a cheap look at the container (plain, GZIP, ZLIB) and the
  first record of every file before training starts: not a TFRecord file, video- vs
  frame-level (and the two mixed), feature keys and sizes, labels (missing in the test
  split, or out of range). Most flag and pattern mistakes show up here.
- `explain_read_error(error, files, spec)`: after a tf error while iterating a
  dataset, scans the files in Python for the culprit and returns a UserError naming
  the file, the record, the feature and what was expected, e.g.

      try:
        model.fit(dataset, ...)
      except tf.errors.OpError as error:
        raise explain_read_error(error, files, spec) from error

What a valid record is (and the one-line message of an invalid one) is defined once, in
`yt8m_fusion.core.validation`; `spec` is the reader's DataSpec.
"""

import concurrent.futures
import dataclasses
import functools
import logging
import os
import re

import tensorflow as tf

from yt8m_fusion import io_utils
from yt8m_fusion.core import files as core_files
from yt8m_fusion.core import records as core_records
from yt8m_fusion.core.validation import CONFIG_CATEGORIES
from yt8m_fusion.core.validation import validate_record
from yt8m_fusion.core.validation import where_in_file
from yt8m_fusion.data import records as records_lib
from yt8m_fusion.errors import UserError

_LOG = logging.getLogger("yt8m_fusion.data")

describe_pattern = core_files.describe_pattern
# Files matching a glob, comma-separated globs or a list of them, through tf.io.gfile (gs://
# works); UserError naming the pattern that is empty, a directory or matches nothing.
list_files = functools.partial(core_files.list_files, filesystem=io_utils.GFILE)


def short_tf_message(error):
  """The first line of a tf error's message without the function-node noise."""
  return re.sub(r"\s+name:\s*$", "", io_utils.describe_error(error))


def _record_error(path, index, video_id, problem):
  return UserError(f"{where_in_file(path, index, video_id)}: {problem.message}")


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
    record = core_records.parse_record(raw)
  except core_records.DECODE_ERRORS:
    return None
  return "frame" if record.feature_lists.feature_list else "video"


def _has_labels(raw, key):
  try:
    feature = core_records.parse_record(raw).context.feature.get(key)
  except core_records.DECODE_ERRORS:
    return True  # not a label question: the record checks report it
  return feature is not None and bool(core_records.feature_values(feature)[1])


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


def _check_first_records(path, compression, num_records, spec, skip_corrupt_records, info):
  """Reads the first `num_records` records of one file with tf.data and checks them."""
  try:
    for index, raw in enumerate(records_lib.iterate_records(
        path, batch_size=num_records, compression_type=compression)):
      if index >= num_records:
        break
      problem, video_id = validate_record(raw, spec)
      if problem is None:
        if spec.frame_features and info["first_record_frames"] is None:
          info["first_record_frames"] = len(core_records.parse_record(raw).feature_lists
                                            .feature_list[spec.feature_names[0]].feature)
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


def check_files(files, spec, *, num_files=1, num_records=1, skip_corrupt_records=False,
                require_labels=False):
  """Checks every file's container and first record, and the first `num_records` records
  of the first `num_files` files, before any reading, against `spec` (a DataSpec).

  Returns {"first_record_frames": frames of the first feature in the first good record
  (frame-level; None otherwise or if no record could be read)}.

  Raises a UserError naming the file (and the record and feature) for an empty file, a
  file that is not a TFRecord file (text, or compressed data without TFRecords) or is not
  readable, video- and frame-level files mixed in one pattern (naming the odd file),
  video- vs frame-level records that do not match the spec, and records that break its rules
  (`yt8m_fusion.core.validation`: missing features, wrong sizes or types, label ids >=
  num_classes, NaN/Inf values, videos without frames, bad segment fields),
  and, with `require_labels` (training, evaluation), files whose records hold no labels
  (the test split; `segment_labels` in segment mode). GZIP/ZLIB-compressed TFRecord files
  are accepted (the readers decompress them). With `skip_corrupt_records` only mistakes
  that come from the flags or the pattern raise; corrupt data is logged and left to the
  reader to skip.
  """
  if isinstance(files, (str, os.PathLike)):
    files = list_files(files)
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
  unwanted = "video" if spec.frame_features else "frame"
  odd = [path for path in files if kinds.get(path) == unwanted]
  num_known = sum(kind is not None for kind in kinds.values())
  if odd and len(odd) < num_known:
    raise _mixed_kinds_error(odd[0], len(odd), num_known, spec.frame_features)

  info = {"first_record_frames": None}
  for index, peek in enumerate(peeks):
    if peek.size == 0:
      if skip_corrupt_records:
        _LOG.warning("%s is empty (0 bytes)", peek.path)
        continue
      raise _empty_file_error(peek.path)
    if index < max(1, num_files):
      _check_first_records(peek.path, peek.compression, num_records, spec,
                           skip_corrupt_records, info)
      continue
    # Other files: the first record read in Python; tf.data reads the file again only
    # when something is wrong, for the same message as for the first file.
    if peek.first_record is None or validate_record(peek.first_record, spec)[0] is not None:
      _check_first_records(peek.path, peek.compression, 1, spec, skip_corrupt_records, info)

  if require_labels:
    key = "segment_labels" if spec.segment_labels else "labels"
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


def explain_read_error(error, files, spec, *, max_files=None):
  """A UserError naming the file, record, feature and expectation behind a tf read error.

  `error` is a tf.errors.OpError raised while iterating a dataset of `files` (a list or
  a pattern) read with `spec` (the reader's DataSpec). Scans the files in order (all of
  them, or the first `max_files`) until it finds a record the reader rejects. If none is
  found, the UserError says so and repeats the first line of the tf error.
  """
  if isinstance(error, UserError):
    return error
  try:
    files = list_files(files)  # patterns and globs in a list are expanded too
  except UserError as listing_error:
    return listing_error
  if max_files is not None:
    files = files[:max_files]
  framing_only = isinstance(error, tf.errors.DataLossError)
  _LOG.info("Scanning %d file(s) for the record behind: %s", len(files), short_tf_message(error))
  for path in files:
    if _file_size(path) == 0:
      continue  # holds no records; reading it raises nothing
    try:
      for index, raw in enumerate(records_lib.iterate_records(path)):
        if framing_only:
          continue
        problem, video_id = validate_record(raw, spec)
        if problem is not None:
          return _record_error(path, index, video_id, problem)
    except tf.errors.OpError as read_error:
      return _unreadable_error(path, read_error)
  return UserError(
      f"reading {describe_pattern(files)} failed ({short_tf_message(error)}) but no bad record "
      f"was found by scanning {len(files)} file(s) with {spec.describe()}")


def check_readable(data_pattern, spec, *, require_labels=False, skip_corrupt_records=False):
  """Checks, without building a tf.data pipeline, that `data_pattern` can be read as `spec`
  says: the files exist, are TFRecord files of the spec's record kind and their first
  records are valid (`check_files`, with the same `require_labels` and
  `skip_corrupt_records`). A program calls it to fail before hours of work; returns the
  files."""
  files = list_files(data_pattern)
  check_files(files, spec, skip_corrupt_records=skip_corrupt_records,
              require_labels=require_labels)
  return files
