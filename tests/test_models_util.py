"""Helpers shared by the model tests: tiny configurations and input batches."""

import numpy as np

from yt8m_fusion import models
from yt8m_fusion.models import ModelConfig

NUM_CLASSES = 7
VIDEO_FEATURES = (("mean_rgb", 12), ("mean_audio", 6))
FRAME_FEATURES = (("rgb", 12), ("audio", 6))

# Every model at a size that builds and trains in well under a second: the small sizes
# each model's definition declares.
TINY = {name: value for definition in models.REGISTRY.values()
        for name, value in definition.small_params.items()}

ALL_MODELS = models.list_models()
VIDEO_MODELS = [name for name in ALL_MODELS if not models.is_frame_only(name)]
FRAME_ONLY_MODELS = [name for name in ALL_MODELS if models.is_frame_only(name)]


def tiny_config(model, frame_features=False, features=None, **params):
  features = features or (FRAME_FEATURES if frame_features else VIDEO_FEATURES)
  return ModelConfig(model=model, feature_names=[n for n, _ in features],
                     feature_sizes=[s for _, s in features], frame_features=frame_features,
                     num_classes=NUM_CLASSES, params={**TINY, **params})


def video_batch(batch=4, seed=0, features=VIDEO_FEATURES):
  rng = np.random.default_rng(seed)
  return {name: rng.normal(size=(batch, size)).astype(np.float32) for name, size in features}


def frame_batch(num_frames, max_frames, seed=0, features=FRAME_FEATURES, padding="random"):
  """uint8 frames [B, max_frames, D] with num_frames valid frames; padding random or zeros."""
  rng = np.random.default_rng(seed)
  num_frames = np.asarray(num_frames, np.int32)
  batch = {}
  for name, size in features:
    frames = rng.integers(0, 256, size=(len(num_frames), max_frames, size), dtype=np.uint8)
    if padding == "zeros":
      for row, count in enumerate(num_frames):
        frames[row, count:] = 0
    batch[name] = frames
  batch["num_frames"] = num_frames
  return batch


def repad(batch, max_frames, seed=1, features=FRAME_FEATURES):
  """The same videos padded to another length, with different garbage in the padding."""
  rng = np.random.default_rng(seed)
  out = {"num_frames": batch["num_frames"]}
  for name, size in features:
    frames = rng.integers(0, 256, size=(len(batch["num_frames"]), max_frames, size),
                          dtype=np.uint8)
    for row, count in enumerate(batch["num_frames"]):
      frames[row, :count] = batch[name][row, :count]
    out[name] = frames
  return out


def starter_dequantize(quantized):
  """The starter's formula in float32: q * float32(4/255) + float32(4/512 - 2)."""
  return (np.asarray(quantized).astype(np.float32) * np.float32(4.0 / 255.0)
          + np.float32(4.0 / 512.0 - 2.0))
