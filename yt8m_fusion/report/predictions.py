"""Predictions of trained runs on a few videos, their attention, and the eval set's labels.

A run's predictor is its model rebuilt from model_flags.json with its latest checkpoint
(`prediction.from_train_dir`, as eval.py and inference.py). Videos are read with the run's own input config, so
models on different features (audio only, visual only, both; video- or frame-level) are
compared on the same video ids.
"""

import numpy as np
import tensorflow as tf

from yt8m_fusion import inputs as model_inputs
from yt8m_fusion import models
from yt8m_fusion import prediction
from yt8m_fusion.core import submission_format
from yt8m_fusion.errors import UserError

READ_BATCH = 64


def load_predictor(run):
  """The run's predictor (its Keras model, with the latest checkpoint's weights, is
  `.model`)."""
  return prediction.from_train_dir(run.train_dir, configure=lambda saved: run.config)


def read_videos(data_pattern, config, *, count=6, video_ids=None, max_frames=300,
                require_labels=True):
  """The first `count` videos of `data_pattern` (with labels), or those of `video_ids`.

  Returns {"video_ids": [str], "inputs": {name: np.ndarray}, "labels": np.ndarray [N, C]},
  in the order of `video_ids` when given.
  """
  spec = config.data_spec(max_frames=max_frames)
  dataset = model_inputs.load_batches(data_pattern, spec, batch_size=READ_BATCH,
                                      num_readers=1).dataset
  wanted = list(video_ids) if video_ids else None
  found = {}
  order = []
  for batch in dataset:
    ids = [v.decode("utf-8", "replace") for v in batch["video_ids"].numpy()]
    labels = batch["labels"].numpy()
    features = {name: batch[name].numpy() for name in spec.model_input_names}
    for row, video_id in enumerate(ids):
      if wanted is not None and video_id not in wanted:
        continue
      if wanted is None and require_labels and not labels[row].any():
        continue
      if video_id in found:
        continue
      found[video_id] = ({name: value[row] for name, value in features.items()}, labels[row])
      order.append(video_id)
    if (wanted is not None and all(v in found for v in wanted)) or \
        (wanted is None and len(found) >= count):
      break
  if wanted is not None:
    missing = [v for v in wanted if v not in found]
    if missing:
      raise UserError(f"video id(s) {', '.join(missing)} not found in {data_pattern}")
    order = wanted
  order = order[:count] if wanted is None else order
  if not order:
    raise UserError(f"no labelled videos in {data_pattern}: the qualitative figure needs "
                    "ground truth (use the validate split; test records carry no labels)")
  return {"video_ids": order,
          "inputs": {name: _stack([found[v][0][name] for v in order]) for name in
                     spec.model_input_names},
          "labels": np.stack([found[v][1] for v in order])}


def _stack(values):
  """Stacks rows; frame-level rows of different lengths are zero-padded (as the reader does)."""
  if values[0].ndim >= 2:
    length = max(v.shape[0] for v in values)
    values = [np.pad(v, [(0, length - v.shape[0])] + [(0, 0)] * (v.ndim - 1)) for v in values]
  return np.stack(values)


def predict(predictor, videos):
  """Class probabilities [N, C] (numpy) of `read_videos`' videos."""
  return predictor.predict_batch(videos["inputs"])


def top_k(probabilities, k=3):
  """[(class index, score)] * k per row, highest first."""
  indexes, scores = submission_format.top_k_numpy(probabilities, k)
  return [[(int(c), float(score)) for c, score in zip(row_indexes, row_scores)]
          for row_indexes, row_scores in zip(indexes, scores)]


def attention_received(model, videos):
  """{modality: [N, T] attention each token/frame receives, averaged over heads and queries}.

  Frame-level: only the valid frames' queries count, the values are multiplied by the
  video's frames (1 = uniform attention), padded frames are NaN (masked keys), and frames
  past the longest video are dropped.
  Also returns {modality: [T, T]} the first video's full map (mean over heads).
  """
  scorer = models.attention_scores_model(model)
  inputs = {name: tf.convert_to_tensor(value) for name, value in videos["inputs"].items()}
  scores = scorer(inputs, training=False)
  received, first_map = {}, {}
  num_frames = videos["inputs"].get("num_frames")
  for name, value in scores.items():
    value = np.asarray(value, dtype=np.float64).mean(axis=1)  # [N, T(query), T(key)]
    if num_frames is not None:
      frames = np.maximum(np.asarray(num_frames), 1)
      length = int(frames.max())  # the reader pads to --max_frames: drop the all-padding tail
      value = value[:, :length, :length]
      valid = (np.arange(length)[None, :] < frames[:, None]).astype(float)
      mean = (value * valid[:, :, None]).sum(axis=1) / valid.sum(axis=1, keepdims=True)
      # x the video's frames: 1 = uniform, comparable between videos of different lengths.
      received[name] = np.where(valid > 0, mean * frames[:, None], np.nan)
      first_map[name] = value[0, :frames[0], :frames[0]]
    else:
      received[name] = value.mean(axis=1)
      first_map[name] = value[0]
  return received, first_map


def label_counts(data_pattern, config, max_frames=300):
  """Positives per class over the whole data pattern (numpy [C]) and the number of videos."""
  spec = config.data_spec(max_frames=max_frames)
  dataset = model_inputs.load_batches(data_pattern, spec, batch_size=512).dataset
  counts = np.zeros(config.num_classes, np.int64)
  videos = 0
  for batch in dataset:
    labels = batch["labels"].numpy()
    counts += (labels > 0).sum(axis=0)
    videos += labels.shape[0]
  return counts, videos
