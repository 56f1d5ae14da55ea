"""The video-level Kaggle CSV in plain Python and numpy (no TensorFlow): shared by
yt8m_fusion.submission and the LiteRT runtime (yt8m_fusion.litert), which runs without
TensorFlow.

    VideoId,LabelConfidencePairs
    <id>,<class> <score> <class> <score> ...     top_k pairs, highest first, "%i %g"
"""

import numpy as np

from yt8m_fusion.core.files import LOCAL
from yt8m_fusion.errors import UserError

VIDEO_HEADER = "VideoId,LabelConfidencePairs\n"


def format_video_line(video_id, class_indexes, scores):
  """One CSV line; `video_id` bytes are decoded as UTF-8 (the starter broke on Python 3)."""
  if isinstance(video_id, bytes):
    video_id = video_id.decode("utf-8")
  pairs = " ".join("%i %g" % (int(index), float(score))
                   for index, score in zip(class_indexes, scores))
  return f"{video_id},{pairs}\n"


def top_k_numpy(probabilities, k):
  """Indexes and scores of the k highest, highest first (ties: lower class index first)."""
  k = min(k, probabilities.shape[1])
  order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
  return order, np.take_along_axis(probabilities, order, axis=1)


class VideoSubmissionWriter:
  """Writes the video-level CSV through `atomic_output(path)` (a context manager that writes
  a temporary file and renames it on success); `commit()` renames it into place."""

  filesystem = LOCAL  # the files `atomic_output` writes (core.vocabulary writes beside them)

  def __init__(self, output_file, atomic_output):
    self.output_file = output_file
    self._context = atomic_output(output_file)
    self._handle = self._context.__enter__()
    self._handle.write(VIDEO_HEADER)
    self._seen = {}
    self.num_videos = 0

  def add_batch(self, video_ids, class_indexes, scores, source=""):
    lines = []
    for video_id, indexes, values in zip(video_ids, class_indexes, scores):
      if video_id in self._seen:
        shown = video_id.decode("utf-8", "replace") if isinstance(video_id, bytes) else video_id
        raise UserError(f"video id {shown!r} appears twice in the inference input{source}; "
                        "each video must appear once in a submission")
      self._seen[video_id] = True
      lines.append(format_video_line(video_id, indexes, values))
    self._handle.write("".join(lines))
    self.num_videos += len(lines)

  def commit(self):
    self._context.__exit__(None, None, None)

  def abort(self, error):
    try:
      self._context.__exit__(type(error), error, error.__traceback__)
    except BaseException:  # pylint: disable=broad-except
      pass
