"""Kaggle submission files, in the starter code's formats (the video-level lines and top-k
are in core.submission_format, which the LiteRT runtime shares without TensorFlow).

Video level (2017/2018 challenges):
    VideoId,LabelConfidencePairs
    <id>,<class> <score> <class> <score> ...     top_k pairs, highest first, "%i %g"
Segment level (2019 challenge, --segment_labels):
    Class,Segments
    <class>,<id>:<start> <id>:<start> ...        segments by score, highest first
"""

import heapq
import io
import tarfile
import zlib

import tensorflow as tf

from yt8m_fusion import io_utils
from yt8m_fusion.core import submission_format
from yt8m_fusion.core.spec import SEGMENT_SIZE
from yt8m_fusion.errors import UserError

SEGMENT_HEADER = "Class,Segments\n"


class VideoSubmissionWriter(submission_format.VideoSubmissionWriter):
  """Writes the video-level CSV to a temporary file; `commit()` renames it into place."""

  filesystem = io_utils.GFILE

  def __init__(self, output_file):
    super().__init__(output_file, io_utils.atomic_output)


class SegmentRanking:
  """Per class, the top `max_per_class` segments by score (min-heaps)."""

  def __init__(self, max_per_class=100000, whitelist=None):
    self.max_per_class = max_per_class
    self.whitelist = whitelist
    self._heaps = {}  # class -> [(score, segment_id)], in first-seen order (dicts keep it)

  def add(self, segment_ids, class_indexes, scores):
    for segment_id, indexes, values in zip(segment_ids, class_indexes, scores):
      if isinstance(segment_id, bytes):
        segment_id = segment_id.decode("utf-8")
      for index, score in zip(indexes, values):
        index = int(index)
        if self.whitelist is not None and index not in self.whitelist:
          continue
        heap = self._heaps.setdefault(index, [])
        item = (float(score), segment_id)
        if len(heap) < self.max_per_class:
          heapq.heappush(heap, item)
        elif item > heap[0]:
          heapq.heapreplace(heap, item)

  def lines(self):
    for index, heap in self._heaps.items():
      ranked = sorted(heap, key=lambda item: -item[0])
      yield "%d,%s\n" % (index, " ".join(segment_id for _, segment_id in ranked))

  def write(self, output_file):
    with io_utils.atomic_output(output_file) as handle:
      handle.write(SEGMENT_HEADER)
      for line in self.lines():
        handle.write(line)


def read_segment_whitelist(path):
  """Class ids from a CSV with the header 'Index' (the 2019 segment_label_ids.csv)."""
  if not path:
    return None
  if not tf.io.gfile.exists(path):
    raise UserError(f"--segment_label_ids_file={path} does not exist")
  with tf.io.gfile.GFile(path) as handle:
    rows = [line.strip() for line in handle if line.strip()]
  if not rows or rows[0].split(",")[0].strip() != "Index":
    raise UserError(f"--segment_label_ids_file={path}: expected a header line 'Index' "
                    "followed by one class id per line")
  try:
    return {int(row.split(",")[0]) for row in rows[1:]}
  except ValueError:
    raise UserError(f"--segment_label_ids_file={path}: class ids must be integers") from None


def split_into_segments(batch, feature_names):
  """A frame-level batch -> every 5-frame segment of every video (the starter's get_segments).

  Segments start at 0, 5, 10, ... over ceil(num_frames/5)*5 frames; the last one is
  zero-padded and its num_frames is the remainder. Ids are "<video_id>:<start>".
  """
  num_frames = tf.cast(batch["num_frames"], tf.int32)
  first = batch[feature_names[0]]
  max_frames = tf.shape(first)[1]
  num_slots = max_frames // SEGMENT_SIZE
  starts = tf.range(num_slots) * SEGMENT_SIZE  # [S]
  valid = starts[tf.newaxis, :] < num_frames[:, tf.newaxis]  # [B, S]
  segments = {}
  for name in feature_names:
    frames = batch[name][:, :num_slots * SEGMENT_SIZE]
    shape = tf.shape(frames)
    frames = tf.reshape(frames, [shape[0], num_slots, SEGMENT_SIZE, shape[2]])
    segments[name] = tf.boolean_mask(frames, valid)
  segment_frames = tf.clip_by_value(num_frames[:, tf.newaxis] - starts[tf.newaxis, :], 0,
                                    SEGMENT_SIZE)
  segments["num_frames"] = tf.boolean_mask(segment_frames, valid)
  ids = tf.strings.join([
      tf.repeat(batch["video_ids"][:, tf.newaxis], num_slots, axis=1), ":",
      tf.strings.as_string(tf.broadcast_to(starts[tf.newaxis, :], tf.shape(valid)))])
  segments["video_ids"] = tf.boolean_mask(ids, valid)
  return segments


def write_model_tgz(output_path, train_dir, checkpoint_path):
  """model_flags.json + the checkpoint at the archive root, written atomically."""
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
    files = ["model_flags.json"] + [
        name for name in tf.io.gfile.listdir(train_dir)
        if name.startswith(checkpoint_path.rsplit("/", 1)[-1] + ".")]
    for name in files:
      with tf.io.gfile.GFile(f"{train_dir.rstrip('/')}/{name}", "rb") as handle:
        content = handle.read()
      info = tarfile.TarInfo(name)
      info.size = len(content)
      archive.addfile(info, io.BytesIO(content))
    state = f'model_checkpoint_path: "{checkpoint_path.rsplit("/", 1)[-1]}"\n'.encode()
    info = tarfile.TarInfo("checkpoint")
    info.size = len(state)
    archive.addfile(info, io.BytesIO(state))
  with io_utils.atomic_output(output_path, "wb") as handle:
    handle.write(buffer.getvalue())


def extract_model_tgz(tgz_path, output_dir):
  if not tf.io.gfile.exists(tgz_path):
    raise UserError(f"--input_model_tgz={tgz_path} does not exist")
  if tf.io.gfile.isdir(tgz_path):
    raise UserError(f"--input_model_tgz={tgz_path} is a folder; expected an archive written by "
                    "inference.py --output_model_tgz (a train_dir goes to --train_dir)")
  with tf.io.gfile.GFile(tgz_path, "rb") as handle:
    content = handle.read()
  try:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
      names = archive.getnames()
      if "model_flags.json" not in names:
        raise UserError(f"--input_model_tgz={tgz_path} holds no model_flags.json; expected an "
                        "archive written by inference.py --output_model_tgz")
      tf.io.gfile.makedirs(output_dir)
      archive.extractall(output_dir, filter="data")
  except tarfile.TarError as error:
    raise UserError(f"--input_model_tgz={tgz_path} is not a .tgz archive ({error})") from None
  except (EOFError, zlib.error) as error:  # gzip's own errors for a file cut short
    raise UserError(f"--input_model_tgz={tgz_path} is cut short or corrupt ({error}); expected "
                    "a complete archive written by inference.py --output_model_tgz") from None
  return output_dir
