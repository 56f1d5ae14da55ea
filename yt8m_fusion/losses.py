"""The starter code's label losses, as Keras losses on (labels, probabilities).

Every model outputs class probabilities [B, C] (sigmoid outputs, float32). Each loss returns
one value per example, which Keras averages over the batch (reduction
'sum_over_batch_size', sample weights applied), so the value is the starter's
`reduce_mean` over the batch of a per-example sum over classes. Predictions and labels are
cast to float32 first, so the losses behave the same under mixed precision.

- CrossEntropyLoss (default; the paper's equation 2):
  mean_batch(sum_classes(-[y log(p + 1e-5) + (1 - y) log(1 - p + 1e-5)])).
  The sum over classes (not a mean) makes values ~C times Keras' binary_crossentropy.
- HingeLoss: mean_batch(sum_classes(max(0, b - (2y - 1) p))), b = 1.
- SoftmaxLoss: labels normalized to sum 1 per example (divided by max(sum, 1e-7), so a
  label-less row contributes 0), cross-entropy against softmax(logits):
  mean_batch(-sum_classes(y_norm * log_softmax(logits))).
  The models output probabilities, so the logits are recovered as the sigmoid's inverse,
  logits = log(p) - log(1 - p), with p clipped to [1e-7, 1 - 1e-7]. (The starter applied
  the softmax to whatever the model returned, i.e. to its sigmoid probabilities;
  `SoftmaxLoss(recover_logits=False)` reproduces that literally.)
"""

import keras
from keras import ops

from yt8m_fusion.errors import UserError

_PACKAGE = "yt8m_fusion"


def _as_float32(labels, predictions):
  return ops.cast(labels, "float32"), ops.cast(predictions, "float32")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CrossEntropyLoss(keras.losses.Loss):
  """Binary cross-entropy summed over classes, averaged over the batch (starter)."""

  def __init__(self, epsilon=1e-5, name="CrossEntropyLoss", reduction="sum_over_batch_size",
               **kwargs):
    super().__init__(name=name, reduction=reduction, dtype="float32", **kwargs)
    self.epsilon = float(epsilon)

  def call(self, y_true, y_pred):
    labels, predictions = _as_float32(y_true, y_pred)
    cross_entropy = labels * ops.log(predictions + self.epsilon) + (
        1.0 - labels) * ops.log(1.0 - predictions + self.epsilon)
    return ops.sum(-cross_entropy, axis=-1)

  def get_config(self):
    config = super().get_config()
    config.update(epsilon=self.epsilon)
    config.pop("dtype", None)
    return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class HingeLoss(keras.losses.Loss):
  """Hinge loss on labels mapped to -1/+1, summed over classes, averaged over the batch."""

  def __init__(self, b=1.0, name="HingeLoss", reduction="sum_over_batch_size", **kwargs):
    super().__init__(name=name, reduction=reduction, dtype="float32", **kwargs)
    self.b = float(b)

  def call(self, y_true, y_pred):
    labels, predictions = _as_float32(y_true, y_pred)
    signs = 2.0 * labels - 1.0
    return ops.sum(ops.relu(self.b - signs * predictions), axis=-1)

  def get_config(self):
    config = super().get_config()
    config.update(b=self.b)
    config.pop("dtype", None)
    return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SoftmaxLoss(keras.losses.Loss):
  """Cross-entropy of the L1-normalized labels against the softmax of the logits."""

  def __init__(self, epsilon=1e-7, recover_logits=True, name="SoftmaxLoss",
               reduction="sum_over_batch_size", **kwargs):
    super().__init__(name=name, reduction=reduction, dtype="float32", **kwargs)
    self.epsilon = float(epsilon)
    self.recover_logits = bool(recover_logits)

  def call(self, y_true, y_pred):
    labels, predictions = _as_float32(y_true, y_pred)
    label_sums = ops.maximum(ops.sum(labels, axis=-1, keepdims=True), self.epsilon)
    normalized = labels / label_sums
    logits = predictions
    if self.recover_logits:
      clipped = ops.clip(predictions, self.epsilon, 1.0 - self.epsilon)
      logits = ops.log(clipped) - ops.log(1.0 - clipped)
    return -ops.sum(normalized * ops.log_softmax(logits, axis=-1), axis=-1)

  def get_config(self):
    config = super().get_config()
    config.update(epsilon=self.epsilon, recover_logits=self.recover_logits)
    config.pop("dtype", None)
    return config


def _logits(probabilities, epsilon):
  clipped = ops.clip(probabilities, epsilon, 1.0 - epsilon)
  return ops.log(clipped) - ops.log(1.0 - clipped)


class DistillationLoss:
  """The label loss mixed with the teachers' soft targets, per example.

  Args:
    label_loss: a keras Loss of (labels, probabilities) (`get_loss`).
    weight: w, the soft term's share for labelled examples, in [0, 1].
    temperature: T > 0; 1 is plain binary cross-entropy against the teachers' probabilities.
    epsilon: the student's probabilities are clipped to [epsilon, 1 - epsilon] to recover
      its logits.
  """

  def __init__(self, label_loss, weight=0.5, temperature=1.0, epsilon=1e-7):
    self.label_loss = label_loss
    self.weight = float(weight)
    self.temperature = float(temperature)
    self.epsilon = float(epsilon)

  def soft_loss(self, teacher_probabilities, predictions):
    """T^2 x sum over classes of BCE(sigmoid(logit(t) / T), sigmoid(logit(p) / T)) [B]."""
    teacher, predictions = _as_float32(teacher_probabilities, predictions)
    student_logits = _logits(predictions, self.epsilon) / self.temperature
    if self.temperature != 1.0:
      # sigmoid(logit(t) / T) without dividing infinities: t = 0 and 1 stay 0 and 1.
      powered = ops.power(teacher, 1.0 / self.temperature)
      teacher = powered / (powered + ops.power(1.0 - teacher, 1.0 / self.temperature))
    # BCE with logits z against targets t: softplus(z) - t z (= -t log p - (1-t) log(1-p)).
    cross_entropy = ops.softplus(student_logits) - teacher * student_logits
    return self.temperature ** 2 * ops.sum(cross_entropy, axis=-1)

  def __call__(self, labels, predictions, teacher_probabilities, found=None):
    """The loss of each example [B] (`found` [B]: 1 where the teachers predicted it)."""
    labels = ops.cast(labels, "float32")
    labelled = ops.cast(ops.max(labels, axis=-1) > 0, "float32")
    found = ops.ones_like(labelled) if found is None else ops.cast(found, "float32")
    soft_weight = found * (labelled * self.weight + (1.0 - labelled))
    label_weight = labelled * (1.0 - soft_weight)
    return (label_weight * self.label_loss.call(labels, predictions)
            + soft_weight * self.soft_loss(teacher_probabilities, predictions))


class SmoothedLabels(keras.losses.Loss):
  """`loss` against labels squeezed towards 1/2: y (1 - s) + s / 2.

  A regularizer for an over-fit model: a positive's target is 1 - s/2, a negative's s/2. With
  3,862 classes and about 3 labels a video, s/2 x 3,859 negatives is the expected number
  of extra positives, so useful values are small (0.001 adds about 2).
  """

  def __init__(self, loss, smoothing, **kwargs):
    super().__init__(name=f"{loss.name}_smoothed", reduction=loss.reduction, dtype="float32",
                     **kwargs)
    self.loss = loss
    self.smoothing = float(smoothing)

  def call(self, y_true, y_pred):
    labels = ops.cast(y_true, "float32")
    return self.loss.call(labels * (1.0 - self.smoothing) + 0.5 * self.smoothing, y_pred)


LOSSES = {
    "CrossEntropyLoss": CrossEntropyLoss,
    "HingeLoss": HingeLoss,
    "SoftmaxLoss": SoftmaxLoss,
}


def list_losses():
  return list(LOSSES)


def get_loss(name="CrossEntropyLoss", label_smoothing=0.0):
  """A keras.losses.Loss by its starter name (--label_loss); UserError if unknown.

  `label_smoothing` s > 0 (cross-entropy only) trains against y (1 - s) + s / 2, as
  keras.losses.BinaryCrossentropy(label_smoothing=s) does.
  """
  try:
    loss = LOSSES[name]()
  except KeyError:
    raise UserError(f"--label_loss={name!r} is not a known loss; choose one of: "
                    + ", ".join(LOSSES)) from None
  if not label_smoothing:
    return loss
  if not 0.0 < label_smoothing < 1.0:
    raise UserError(f"--label_smoothing={label_smoothing}: expected a value in [0, 1)")
  if name != "CrossEntropyLoss":
    raise UserError(f"--label_smoothing={label_smoothing} applies to "
                    f"--label_loss=CrossEntropyLoss, not {name}")
  return SmoothedLabels(loss, label_smoothing)
