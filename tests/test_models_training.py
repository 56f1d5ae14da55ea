"""Every model, at a tiny size, fits a small fixed batch with the starter's loss."""

import keras
import numpy as np
import pytest

from test_models_util import (ALL_MODELS, NUM_CLASSES, VIDEO_MODELS, frame_batch, tiny_config,
                              video_batch)
from yt8m_fusion import models
from yt8m_fusion.losses import get_loss

BATCH = 16
STEPS = 40
# Linear models (and the MoE) on unit-norm inputs need large weights to memorize, hence a
# larger step; DBoF samples random frames in training, so its loss is noisier.
LEARNING_RATES = {"LogisticModel": 0.3, "FrameLevelLogisticModel": 0.3, "MoeModel": 0.3,
                  "DbofModel": 0.05}

# Video-level input for every video-level model; frame-level input for every model
# (FCEarlyFusion = FCModel's graph: once is enough).
CASES = ([(name, False) for name in VIDEO_MODELS]
         + [(name, True) for name in ALL_MODELS if name != "FCEarlyFusion"])


@pytest.mark.parametrize("model,frame_features", CASES)
def test_tiny_model_fits_a_fixed_batch(model, frame_features):
  keras.utils.set_random_seed(0)
  net = models.build_model(tiny_config(model, frame_features=frame_features))
  rng = np.random.default_rng(1)
  labels = (rng.random((BATCH, NUM_CLASSES)) < 0.3).astype(np.float32)
  if frame_features:
    batch = frame_batch(rng.integers(1, 9, BATCH), 8, seed=2)
  else:
    batch = video_batch(BATCH, seed=2)
  net.compile(optimizer=keras.optimizers.Adam(LEARNING_RATES.get(model, 0.02)),
              loss=get_loss("CrossEntropyLoss"))
  history = net.fit(batch, labels, batch_size=BATCH, epochs=STEPS, verbose=0, shuffle=False)
  losses = history.history["loss"]
  assert np.all(np.isfinite(losses))
  assert losses[-1] < 0.5 * losses[0], f"{model}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
