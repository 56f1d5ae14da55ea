"""Writing and reading YouTube-8M records with TensorFlow (tests, the synthetic generator,
checks). The record layout is described, and records are parsed, in `yt8m_fusion.core.records`.

TFRecord files may be GZIP- or ZLIB-compressed (e.g. `train0000.tfrecord.gz`):
`detect_compression` tells them apart by their first bytes (a plain file starts with a
record header whose checksum it verifies), and the readers here and in readers.py pass
the result to `tf.data.TFRecordDataset(compression_type=...)`.
"""

import concurrent.futures
import zlib

import numpy as np
import tensorflow as tf

from yt8m_fusion.core import records as core_records
from yt8m_fusion.core.framing import HEADER_BYTES
from yt8m_fusion.core.framing import is_record_header

GZIP, ZLIB = "GZIP", "ZLIB"
_GZIP_MAGIC = b"\x1f\x8b"
_PEEK_BYTES = 1 << 16


def bytes_feature(values):
  if isinstance(values, (bytes, str)):
    values = [values]
  values = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def int64_feature(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def float_feature(values):
  return tf.train.Feature(float_list=tf.train.FloatList(
      value=np.asarray(values, dtype=np.float32).ravel().tolist()))


def _context(video_id, labels, id_key, extra=None):
  feature = {}
  if video_id is not None:
    feature[id_key] = bytes_feature(video_id)
  if labels is not None:
    feature["labels"] = int64_feature(labels)
  feature.update(extra or {})
  return feature


def make_video_example(video_id, labels, features, *, id_key="id"):
  """A video-level `tf.train.Example`.

  Args:
    video_id: str/bytes, or None to leave the id out.
    labels: class ids, or None to leave the key out (as in the test split).
    features: {name: float vector}.
    id_key: "id" (2018+) or "video_id" (2017 data).
  """
  feature = _context(video_id, labels, id_key)
  for name, values in features.items():
    feature[name] = float_feature(values)
  return tf.train.Example(features=tf.train.Features(feature=feature))


def make_frame_example(video_id, labels, frames, *, id_key="id", segments=None, context=None):
  """A frame-level `tf.train.SequenceExample`.

  Args:
    video_id: str/bytes, or None to leave the id out.
    labels: class ids, or None to leave the key out.
    frames: {name: uint8 array [num_frames, D]} (one bytes value per frame), or
      {name: list of bytes} to write arbitrary frame strings.
    segments: optional dict with "segment_labels", "segment_start_times",
      "segment_scores" (and optionally "segment_end_times"), as in the 2019 data.
    context: optional extra context features {key: tf.train.Feature}.
  """
  extra = dict(context or {})
  if segments:
    for key in ("segment_labels", "segment_start_times", "segment_end_times"):
      if key in segments:
        extra[key] = int64_feature(segments[key])
    if "segment_scores" in segments:
      extra["segment_scores"] = float_feature(segments["segment_scores"])
  feature_lists = {}
  for name, values in frames.items():
    if isinstance(values, np.ndarray):
      rows = [np.ascontiguousarray(row, dtype=np.uint8).tobytes() for row in values]
    else:
      rows = [bytes(row) for row in values]
    feature_lists[name] = tf.train.FeatureList(feature=[
        tf.train.Feature(bytes_list=tf.train.BytesList(value=[row])) for row in rows])
  return tf.train.SequenceExample(
      context=tf.train.Features(feature=_context(video_id, labels, id_key, extra)),
      feature_lists=tf.train.FeatureLists(feature_list=feature_lists))


def serialize(record):
  return record if isinstance(record, bytes) else record.SerializeToString()


def write_tfrecord(path, records):
  """Writes protos or serialized bytes to a TFRecord file; returns the count."""
  count = 0
  with tf.io.TFRecordWriter(str(path)) as writer:
    for record in records:
      writer.write(serialize(record))
      count += 1
  return count


def iterate_records(path, batch_size=256, compression_type=None):
  """Yields the serialized records of one TFRecord file (eager; raises tf.errors.DataLossError).

  `compression_type` "", "GZIP" or "ZLIB"; None detects it (`detect_compression`).
  """
  if compression_type is None:
    compression_type = detect_compression(path) or ""
  dataset = tf.data.TFRecordDataset(str(path), compression_type=compression_type)
  for batch in dataset.batch(batch_size):
    for raw in batch.numpy():
      yield raw


def record_dataset(files, compression_types=None):
  """A dataset of the serialized records of `files`, in order, each file read with its
  compression ("", "GZIP" or "ZLIB"; default: detected)."""
  if compression_types is None:
    compression_types = detect_compressions(files)
  files = tf.data.Dataset.from_tensor_slices((list(files), list(compression_types)))
  return files.flat_map(lambda path, compression: tf.data.TFRecordDataset(
      path, compression_type=compression))


# ----------------------------------------------------------------------------------------
# The container: plain, GZIP or ZLIB
# ----------------------------------------------------------------------------------------

def read_prefix(path, size, compression_type=""):
  """The first `size` bytes of a file's content (decompressed), fewer if it ends first or
  its compressed stream breaks."""
  decoder = None
  if compression_type:
    decoder = zlib.decompressobj(31 if compression_type == GZIP else 15)  # 31: gzip header
  content = bytearray()
  with tf.io.gfile.GFile(str(path), "rb") as handle:
    while len(content) < size:
      chunk = handle.read(_PEEK_BYTES)
      if not chunk:
        break
      if decoder is None:
        content += chunk
        continue
      try:
        content += decoder.decompress(chunk)
      except zlib.error:
        break
      if decoder.eof:
        break
  return bytes(content[:size])


def detect_compression(path, head=None):
  """"" for a plain TFRecord file, "GZIP" or "ZLIB" for a compressed one; None when the
  file is none of these (not a TFRecord file, or its first record header is corrupted).

  Reliable: a plain file must start with a record header whose checksum matches, and a
  compressed one must decompress to such a header. `head`: the file's first bytes, if read.
  """
  head = read_prefix(path, HEADER_BYTES) if head is None else head
  if is_record_header(head):
    return ""
  candidates = []
  if head[:2] == _GZIP_MAGIC:
    candidates.append(GZIP)
  if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
    candidates.append(ZLIB)  # RFC 1950 header: deflate, check bits
  for compression in candidates:
    if is_record_header(read_prefix(path, HEADER_BYTES, compression)):
      return compression
  return None


def detect_compressions(files, max_workers=16):
  """`detect_compression` of each file ("" where undetectable: the reader reports it)."""
  def detect(path):
    try:
      return detect_compression(path) or ""
    except (tf.errors.OpError, OSError):
      return ""
  if len(files) <= 1:
    return [detect(path) for path in files]
  with concurrent.futures.ThreadPoolExecutor(min(max_workers, len(files))) as pool:
    return list(pool.map(detect, files))


def scan_compressed(path, compression_type):
  """(bytes of decompressed content, intact) of a GZIP or ZLIB file, decompressed to its end.

  `intact` is False when the stream is cut short or corrupt. TensorFlow's reader does not
  always say so: on the same cut file it sometimes raises DataLossError and sometimes just
  ends the file early, after the last complete record; so compressed files are checked
  here (once per file version: see `compressed_stream`).
  """
  decoder = zlib.decompressobj(31 if compression_type == GZIP else 15)
  total = 0
  with tf.io.gfile.GFile(str(path), "rb") as handle:
    while not decoder.eof:
      chunk = handle.read(1 << 20)
      if not chunk:
        break
      try:
        total += len(decoder.decompress(chunk))
      except zlib.error:
        return total, False
  return total, decoder.eof


_SCANNED = {}  # (path, size, mtime) -> scan_compressed(path, ...)


def compressed_stream(path, compression_type):
  """`scan_compressed`, remembered while the file (its size and mtime) does not change."""
  stat = tf.io.gfile.stat(str(path))
  key = (str(path), compression_type, stat.length, stat.mtime_nsec)
  if key not in _SCANNED:
    _SCANNED[key] = scan_compressed(path, compression_type)
  return _SCANNED[key]


def content_size(path, compression_type=""):
  """Bytes of a file's TFRecord content (-1 when it cannot be read), for counting what
  `--skip_corrupt_records` could not read: the file's size, or its decompressed size plus
  one byte standing for the unreadable rest of a broken compressed stream."""
  try:
    if not compression_type:
      return tf.io.gfile.stat(str(path)).length
    size, intact = compressed_stream(path, compression_type)
    return size if intact else size + 1
  except (tf.errors.OpError, OSError):
    return -1


def read_records_python(path):
  """All records of a file as plain Python dicts (for tests and debugging):

  {"context": {key: values}, "frames": {name: uint8 array [num_frames, D]}}.
  """
  result = []
  for raw in iterate_records(path):
    record = core_records.parse_record(raw)
    context = {key: core_records.feature_values(value)[1]
               for key, value in record.context.feature.items()}
    frames = {}
    for name, feature_list in record.feature_lists.feature_list.items():
      rows = [np.frombuffer(f.bytes_list.value[0], dtype=np.uint8) for f in feature_list.feature]
      frames[name] = np.stack(rows) if rows else np.zeros((0, 0), np.uint8)
    result.append({"context": context, "frames": frames})
  return result
