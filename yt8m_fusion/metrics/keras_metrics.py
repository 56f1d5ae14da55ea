"""In-graph Keras metrics for the training log: Hit@1, PERR and the per-batch GAP.

They compute, with TensorFlow ops, what the starter's train.py computes in numpy on each
training batch (``calculate_hit_at_one``, ``calculate_precision_at_equal_recall_rate``,
``calculate_gap(top_k=20)``), and average over the batches seen since the last reset,
weighted by batch size (Hit@1 and PERR: per example, so the result is the mean over all
examples; GAP: each batch's GAP weighted by its size). They run under ``tf.function`` and
XLA (all shapes static), accept float32 or bfloat16 predictions (computed in float32) and
labels of any numeric/bool dtype, and are registered as Keras serializables.

Values agree with the numpy functions in ``eval_util`` up to float32 rounding when no two
scores of a video (Hit@1, PERR) or of the batch's top-k items (GAP) are equal. On exact ties
the order differs: here the lower class index (``tf.math.top_k`` / ``argmax``) or the
``tf.argsort`` stable order wins, where the starter uses ``argpartition`` order and a seed-0
shuffle.
"""

import keras
import tensorflow as tf

__all__ = ["GlobalAveragePrecision", "HitAtOne", "PrecisionAtEqualRecallRate"]

# PERR takes the top-k with this static k when no video has more labels, else a full sort.
_PERR_STATIC_K = 32


def _inputs(y_true, y_pred):
  y_pred = tf.cast(tf.convert_to_tensor(y_pred), tf.float32)
  y_true = tf.cast(tf.convert_to_tensor(y_true), tf.float32)
  return tf.reshape(y_true, tf.shape(y_pred)), y_pred


def _example_weights(sample_weight, y_pred):
  if sample_weight is None:
    return tf.ones(tf.shape(y_pred)[:1], tf.float32)
  weights = tf.cast(tf.convert_to_tensor(sample_weight), tf.float32)
  return tf.reshape(weights, tf.shape(y_pred)[:1])


class _MeanOverExamples(keras.metrics.Metric):
  """Weighted mean of a per-example value."""

  def __init__(self, name, dtype=None):
    super().__init__(name=name, dtype=dtype)
    self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="total")
    self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

  def _per_example(self, y_true, y_pred):
    raise NotImplementedError

  def update_state(self, y_true, y_pred, sample_weight=None):
    y_true, y_pred = _inputs(y_true, y_pred)
    weights = _example_weights(sample_weight, y_pred)
    values = self._per_example(y_true, y_pred)
    self.total.assign_add(tf.reduce_sum(values * weights))
    self.count.assign_add(tf.reduce_sum(weights))

  def result(self):
    return tf.math.divide_no_nan(self.total, self.count)


@keras.saving.register_keras_serializable(package="yt8m_fusion")
class HitAtOne(_MeanOverExamples):
  """Hit@1: the label of each video's top-scored class (ties: lowest class index).

  ``update_state(y_true, y_pred, sample_weight=None)``; ``sample_weight`` weights videos.
  """

  def __init__(self, name="hit_at_one", dtype=None):
    super().__init__(name=name, dtype=dtype)

  def _per_example(self, y_true, y_pred):
    top = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
    return tf.gather(y_true, top, axis=1, batch_dims=1)


def _precision_from_top(y_true, y_pred, num_labels, k):
  """Starter PERR per video for videos with 1..k labels, from the static top-k."""
  values, indices = tf.math.top_k(y_pred, k=k)
  labels = tf.gather(y_true, indices, axis=1, batch_dims=1)
  inside = tf.range(k)[None, :] < num_labels[:, None]
  hits = tf.reduce_sum(tf.where(inside & (values > 0), labels, 0.0), axis=-1)
  return tf.math.divide_no_nan(hits, tf.cast(num_labels, tf.float32))


@keras.saving.register_keras_serializable(package="yt8m_fusion")
class PrecisionAtEqualRecallRate(_MeanOverExamples):
  """PERR: per video, the precision of its top-k classes with k = its number of labels.

  As in the starter: k = int(sum of labels); only scores > 0 count; a video without labels
  scores sum(labels where score > 0) / num_classes (0 for 0/1 labels).
  ``sample_weight`` weights videos.
  """

  def __init__(self, name="perr", dtype=None):
    super().__init__(name=name, dtype=dtype)

  def _per_example(self, y_true, y_pred):
    num_labels = tf.cast(tf.reduce_sum(y_true, axis=-1), tf.int32)  # truncates like int()
    num_classes = y_pred.shape[-1]
    if num_classes is None:  # unknown at trace time: full sort
      num_classes_t = tf.shape(y_pred)[-1]
      labeled = _precision_from_top(y_true, y_pred, num_labels, num_classes_t)
    else:
      small_k = min(_PERR_STATIC_K, num_classes)
      labeled = tf.cond(
          tf.reduce_max(num_labels) <= small_k,
          lambda: _precision_from_top(y_true, y_pred, num_labels, small_k),
          lambda: _precision_from_top(y_true, y_pred, num_labels, num_classes))
      num_classes_t = num_classes
    unlabeled = tf.reduce_sum(tf.where(y_pred > 0, y_true, 0.0), axis=-1) / tf.cast(
        num_classes_t, tf.float32)
    return tf.where(num_labels == 0, unlabeled, labeled)


@keras.saving.register_keras_serializable(package="yt8m_fusion")
class GlobalAveragePrecision(keras.metrics.Metric):
  """GAP of each batch as the starter's train.py logs it, averaged over batches.

  Per batch: every video's ``top_k`` (score, label) items are ranked together by score and
  ``AP = sum over positive items (label > 0) of (positives so far / rank) / num_positives``,
  where ``num_positives`` is the sum of all labels of the batch (also outside the top-k).
  The result is the mean of the batch GAPs weighted by batch size. ``sample_weight`` is not
  used.
  """

  def __init__(self, top_k=20, name="gap", dtype=None):
    super().__init__(name=name, dtype=dtype)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0:
      raise ValueError(f"top_k must be a positive integer, got {top_k!r}.")
    self.top_k = top_k
    self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="total")
    self.count = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="count")

  def update_state(self, y_true, y_pred, sample_weight=None):
    del sample_weight  # The starter's batch GAP has no per-example weights.
    y_true, y_pred = _inputs(y_true, y_pred)
    num_classes = y_pred.shape[-1]
    k = self.top_k if num_classes is None else min(self.top_k, num_classes)
    values, indices = tf.math.top_k(y_pred, k=k)
    labels = tf.gather(y_true, indices, axis=1, batch_dims=1)
    order = tf.argsort(tf.reshape(values, [-1]), direction="DESCENDING", stable=True)
    positive = tf.cast(tf.gather(tf.reshape(labels, [-1]), order) > 0, tf.float32)
    ranks = tf.range(1, tf.size(positive) + 1, dtype=tf.float32)
    precision_sum = tf.reduce_sum(positive * tf.math.cumsum(positive) / ranks)
    gap = tf.math.divide_no_nan(precision_sum, tf.reduce_sum(y_true))
    batch = tf.cast(tf.shape(y_pred)[0], tf.float32)
    self.total.assign_add(gap * batch)
    self.count.assign_add(batch)

  def result(self):
    return tf.math.divide_no_nan(self.total, self.count)

  def get_config(self):
    config = super().get_config()
    config["top_k"] = self.top_k
    return config
