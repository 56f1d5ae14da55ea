"""A yt8m-fusion LiteRT model, run by the ai_edge_litert interpreter (no TensorFlow).

    model = LiteRTModel("attend_fusion.tflite")
    probabilities = model.predict({"mean_rgb": rgb, "mean_audio": audio})  # [B, num_classes]
    write_submission(model, "/data/test*.tfrecord", "predictions.csv")
"""

import logging
import os
import threading
import time

import numpy as np
from ai_edge_litert import interpreter as litert_interpreter

from yt8m_fusion.core import files
from yt8m_fusion.core import submission_format
from yt8m_fusion.core.spec import DataSpec
from yt8m_fusion.errors import UserError
from yt8m_fusion.litert import model_file


class LiteRTModel:
  """A `.tflite` file written by `yt8m_fusion.export.export_litert`, checked and loaded.

  Attributes:
    path: the file.
    info: its "yt8m_fusion" metadata (see yt8m_fusion.litert.model_file).
    spec: the `DataSpec` of the records it reads (features, level, classes, max_frames).
    num_classes, batch_size (None: any), quantization, vocabulary ({index: name}).

  Thread-safe: concurrent `predict` calls take turns on the one interpreter (a LiteRT
  interpreter is not reentrant). Threads that should run in parallel each load their own.
  """

  def __init__(self, path, num_threads=None):
    """Checks the file (type, metadata, checksum) and loads it.

    Args:
      path: a .tflite file written by `python -m yt8m_fusion.export --format=litert`.
      num_threads: interpreter threads (None: one per CPU core).

    Raises:
      UserError: the file is missing, not ours or damaged (one line naming it).
    """
    self.path = path
    self.info = model_file.read_info(path)
    self.spec = DataSpec.from_model_flags(self.info["model_flags"],
                                          max_frames=self.info.get("max_frames"))
    self.num_classes = self.spec.num_classes
    self.batch_size = self.info.get("batch_size")
    self.quantization = self.info["quantization"]
    self.vocabulary = {int(index): name for index, name in self.info["vocabulary"].items()}
    self._call_lock = threading.Lock()
    try:
      self._interpreter = litert_interpreter.Interpreter(
          model_path=path, num_threads=num_threads or os.cpu_count() or 1)
      self._runner = self._interpreter.get_signature_runner(self.info["signature"])
    except (ValueError, RuntimeError) as error:
      reason = " ".join(str(error).split())[:200]
      raise UserError(f"{path} cannot be loaded by the LiteRT interpreter ({reason})") from None

  @property
  def model_name(self):
    return self.info["model_flags"]["model"]

  def predict(self, features):
    """Class probabilities float32 [B, num_classes] of a batch of model inputs.

    Args:
      features: {input name: array} (video-level float32 [B, D]; frame-level uint8
        [B, max_frames, D] and num_frames int32 [B]). A model exported with a fixed batch
        size takes any B: batches are cut and padded to its size.
    """
    features = {name: np.asarray(features[name]) for name in self.spec.model_input_names}
    count = len(features[self.spec.model_input_names[0]])
    if not self.batch_size:
      return self._run(features)
    parts = []
    for start in range(0, count, self.batch_size):
      part = {name: value[start:start + self.batch_size] for name, value in features.items()}
      missing = self.batch_size - len(part[self.spec.model_input_names[0]])
      if missing:  # pad the last part with copies of its first video
        part = {name: np.concatenate([value, np.repeat(value[:1], missing, axis=0)])
                for name, value in part.items()}
      parts.append(self._run(part)[:self.batch_size - missing])
    return np.concatenate(parts) if parts else np.zeros((0, self.num_classes), np.float32)

  def _run(self, features):
    arrays = {}
    for name, size in zip(self.spec.feature_names, self.spec.feature_sizes):
      dtype = np.uint8 if self.spec.frame_features else np.float32
      arrays[name] = np.ascontiguousarray(features[name], dtype=dtype)
      expected = ((self.spec.max_frames, size) if self.spec.frame_features else (size,))
      if arrays[name].shape[1:] != expected:
        raise UserError(f"input '{name}' has the shape {arrays[name].shape}; {self.path} takes "
                        f"[batch, {', '.join(map(str, expected))}]")
    if self.spec.frame_features:
      arrays["num_frames"] = np.ascontiguousarray(features["num_frames"], dtype=np.int32)
    # An interpreter runs one call at a time (its tensors are shared state): concurrent
    # callers take turns here; for parallel calls give each thread its own LiteRTModel.
    with self._call_lock:
      return np.array(self._runner(**arrays)[self.info["output"]], copy=True)


def write_submission(model, data_pattern, output_file, *, top_k=20, batch_size=512,
                     skip_corrupt_records=False):
  """Writes the video-level Kaggle CSV of every record matching `data_pattern`, atomically.

  Args:
    model: a LiteRTModel.
    data_pattern: a glob or comma-separated globs of local TFRecord files.
    output_file: the CSV to write (a temporary file renamed on success).
    top_k: classes per video.
    batch_size: videos per interpreter call.
    skip_corrupt_records: skip (and count in the log) records that cannot be used.

  Returns:
    The number of videos written.
  """
  from yt8m_fusion import prediction  # pylint: disable=import-outside-toplevel
  start = time.time()
  top_k = min(top_k, model.num_classes)
  batches = prediction.LiteRTPredictor(model).predictions(
      data_pattern, batch_size=batch_size, top_k=top_k, skip_corrupt_records=skip_corrupt_records)
  num_videos = prediction.write_top_k(
      batches, submission_format.VideoSubmissionWriter(output_file, files.atomic_output),
      source=f" ({data_pattern})")
  logging.info("Wrote %s: %d videos, top %d classes each, with %s (%s) in %.1f s", output_file,
               num_videos, top_k, model.path, model.quantization, time.time() - start)
  return num_videos
