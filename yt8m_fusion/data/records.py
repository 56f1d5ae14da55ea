"""Writing and reading YouTube-8M records in Python (tests, the synthetic generator, checks).

Video-level records are `tf.train.Example`s:
  "id" (bytes), "labels" (int64 list), one float list per feature ("mean_rgb" 1024,
  "mean_audio" 128). The 2017 data names the id "video_id".
Frame-level records are `tf.train.SequenceExample`s:
  context "id", "labels" (+ "segment_labels", "segment_start_times", "segment_end_times",
  "segment_scores" in the 2019 segment data); feature lists "rgb" and "audio", one bytes
  value per frame holding D uint8 quantized values.
"""

import numpy as np
import tensorflow as tf


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


def iterate_records(path, batch_size=256):
  """Yields the serialized records of one TFRecord file (eager; raises tf.errors.DataLossError)."""
  dataset = tf.data.TFRecordDataset(str(path)).batch(batch_size)
  for batch in dataset:
    for raw in batch.numpy():
      yield raw


def parse_record(raw):
  """Serialized Example or SequenceExample -> tf.train.SequenceExample.

  An Example parses as a SequenceExample whose context holds the Example's features
  (both store them in field 1), so one parser serves both formats. Raises
  google.protobuf.message.DecodeError for bytes that are not such a proto.
  """
  return tf.train.SequenceExample.FromString(raw)


def feature_values(feature):
  """(kind, values) of a tf.train.Feature: kind in {"bytes", "float", "int64", None}."""
  kind = feature.WhichOneof("kind")
  if kind == "bytes_list":
    return "bytes", list(feature.bytes_list.value)
  if kind == "float_list":
    return "float", list(feature.float_list.value)
  if kind == "int64_list":
    return "int64", list(feature.int64_list.value)
  return None, []


def read_records_python(path):
  """All records of a file as plain Python dicts (for tests and debugging):

  {"context": {key: values}, "frames": {name: uint8 array [num_frames, D]}}.
  """
  result = []
  for raw in iterate_records(path):
    record = parse_record(raw)
    context = {key: feature_values(value)[1] for key, value in record.context.feature.items()}
    frames = {}
    for name, feature_list in record.feature_lists.feature_list.items():
      rows = [np.frombuffer(f.bytes_list.value[0], dtype=np.uint8) for f in feature_list.feature]
      frames[name] = np.stack(rows) if rows else np.zeros((0, 0), np.uint8)
    result.append({"context": context, "frames": frames})
  return result
