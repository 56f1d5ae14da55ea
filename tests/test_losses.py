"""The starter's losses against hand-computed values."""

import math

import keras
import numpy as np
import pytest

from yt8m_fusion import losses
from yt8m_fusion.errors import UserError

LABELS = np.array([[1, 0, 1], [0, 0, 0]], np.float32)
PREDICTIONS = np.array([[0.9, 0.2, 0.5], [0.1, 0.3, 0.6]], np.float32)


def test_cross_entropy_by_hand():
  log = math.log
  eps = 1e-5
  first = -(log(0.9 + eps) + log(1 - 0.2 + eps) + log(0.5 + eps))
  second = -(log(1 - 0.1 + eps) + log(1 - 0.3 + eps) + log(1 - 0.6 + eps))
  expected = (first + second) / 2  # summed over classes, averaged over the batch
  assert expected == pytest.approx(1.19994, abs=1e-5)
  value = float(losses.get_loss("CrossEntropyLoss")(LABELS, PREDICTIONS))
  assert value == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_is_finite_at_zero_and_one():
  value = float(losses.CrossEntropyLoss()(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])))
  assert value == pytest.approx(-2 * math.log(1e-5), rel=1e-5)


def test_hinge_by_hand():
  # max(0, 1 - (2y - 1) p): row 1: 0.1 + 1.2 + 0.5; row 2: 1.1 + 1.3 + 1.6.
  expected = ((0.1 + 1.2 + 0.5) + (1.1 + 1.3 + 1.6)) / 2
  value = float(losses.get_loss("HingeLoss")(LABELS, PREDICTIONS))
  assert value == pytest.approx(expected, rel=1e-6)


def _logit(p):
  return math.log(p) - math.log(1 - p)


def test_softmax_by_hand():
  logits = [_logit(p) for p in PREDICTIONS[0]]
  normalizer = math.log(sum(math.exp(z) for z in logits))
  # Labels [1, 0, 1] normalized to [.5, 0, .5]; the label-less row contributes 0.
  first = -(0.5 * (logits[0] - normalizer) + 0.5 * (logits[2] - normalizer))
  expected = (first + 0.0) / 2
  value = float(losses.get_loss("SoftmaxLoss")(LABELS, PREDICTIONS))
  assert value == pytest.approx(expected, rel=1e-5)


def test_softmax_on_probabilities_like_the_starter():
  row = PREDICTIONS[0].astype(np.float64)
  normalizer = math.log(np.exp(row).sum())
  expected = -(0.5 * (row[0] - normalizer) + 0.5 * (row[2] - normalizer)) / 2
  value = float(losses.SoftmaxLoss(recover_logits=False)(LABELS, PREDICTIONS))
  assert value == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["CrossEntropyLoss", "HingeLoss", "SoftmaxLoss"])
def test_losses_under_mixed_precision_and_serialization(name):
  loss = losses.get_loss(name)
  bf16 = keras.ops.cast(PREDICTIONS, "bfloat16")
  value = loss(LABELS, bf16)
  assert value.dtype == "float32"
  reference = float(loss(LABELS, np.asarray(keras.ops.cast(bf16, "float32"))))
  assert float(value) == pytest.approx(reference, rel=1e-6)
  restored = keras.losses.deserialize(keras.losses.serialize(loss))
  assert type(restored) is type(loss)
  assert float(restored(LABELS, PREDICTIONS)) == pytest.approx(float(loss(LABELS, PREDICTIONS)))


def test_sample_weights_average_over_the_batch():
  loss = losses.get_loss("HingeLoss")
  weighted = float(loss(LABELS, PREDICTIONS, sample_weight=np.array([1.0, 0.0])))
  assert weighted == pytest.approx((0.1 + 1.2 + 0.5) / 2, rel=1e-6)


def test_unknown_loss_lists_the_valid_ones():
  with pytest.raises(UserError, match="CrossEntropyLoss, HingeLoss, SoftmaxLoss"):
    losses.get_loss("FocalLoss")
  assert losses.list_losses() == ["CrossEntropyLoss", "HingeLoss", "SoftmaxLoss"]


def test_label_smoothing_squeezes_the_targets_towards_one_half():
  smoothing, eps = 0.1, 1e-5
  targets = LABELS * (1 - smoothing) + smoothing / 2
  expected = -np.sum(targets * np.log(PREDICTIONS + eps)
                     + (1 - targets) * np.log(1 - PREDICTIONS + eps), axis=-1).mean()
  value = float(losses.get_loss("CrossEntropyLoss", smoothing)(LABELS, PREDICTIONS))
  assert value == pytest.approx(expected, rel=1e-6)
  assert value > float(losses.get_loss("CrossEntropyLoss")(LABELS, PREDICTIONS))


def test_label_smoothing_is_refused_where_it_means_nothing():
  with pytest.raises(UserError, match="--label_smoothing=0.1 applies to --label_loss="
                     "CrossEntropyLoss, not HingeLoss"):
    losses.get_loss("HingeLoss", 0.1)
  with pytest.raises(UserError, match=r"--label_smoothing=1.5: expected a value in \[0, 1\)"):
    losses.get_loss("CrossEntropyLoss", 1.5)
