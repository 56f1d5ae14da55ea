"""The training step, written out: forward, loss, gradients, clipping, update, metrics.

`TrainingModel` wraps a model built by `yt8m_fusion.models.build_model` for `keras.Model.fit`.
Its `train_step` does what the starter's training graph did, under any tf.distribute
strategy:

- loss = label loss + regularization_penalty x the model's L2 regularization losses;
  with `distillation` (a `losses.DistillationLoss`) and batches that carry the teachers'
  targets, the label loss is that loss's mix of labels and soft targets;
- each gradient tensor is clipped by its own norm *after* the cross-replica sum, i.e. the
  gradient of the global batch is clipped, as on one device (Keras' own `clipnorm` clips
  each replica's share before the sum);
- the step's logs are the training loss and the in-graph Hit@1, PERR and GAP.

The wrapped model is what checkpoints, evaluation and export use; the wrapper adds no
variables of its own besides its metrics.
"""

import keras
import tensorflow as tf

from yt8m_fusion import keras_compat
from yt8m_fusion import metrics as yt8m_metrics


class TrainingModel(keras_compat.SkipSymbolicBuild):
  """`network` (a built YouTube-8M model) with an explicit training step."""

  def __init__(self, network, label_loss, *, clip_gradient_norm=1.0,
               regularization_penalty=1.0, top_k=20, distillation=None, **kwargs):
    super().__init__(name=f"{network.name}_training", **kwargs)
    self.network = network
    self.label_loss = label_loss
    self.clip_gradient_norm = float(clip_gradient_norm)
    self.regularization_penalty = float(regularization_penalty)
    self.distillation = distillation
    self.loss_tracker = keras.metrics.Mean(name="loss")
    self.step_metrics = [yt8m_metrics.HitAtOne(), yt8m_metrics.PrecisionAtEqualRecallRate(),
                         yt8m_metrics.GlobalAveragePrecision(top_k=top_k)]

  def call(self, inputs, training=False):
    return self.network(inputs, training=training)

  @property
  def metrics(self):
    return [self.loss_tracker, *self.step_metrics]

  def train_step(self, data):
    # (inputs, labels), or with distillation (inputs, labels, teacher targets: a dict of
    # "probabilities" [B, C] and "found" [B], see distillation.TeacherTargets).
    inputs, labels, *teacher = data
    replicas = self.distribute_strategy.num_replicas_in_sync
    with tf.GradientTape() as tape:
      probabilities = self.network(inputs, training=True)
      # The mean over this replica's examples (Loss.call: one value per example; calling
      # the Loss itself would also divide by the number of replicas).
      if teacher and self.distillation is not None:
        per_example = self.distillation(labels, probabilities, teacher[0]["probabilities"],
                                        teacher[0]["found"])
      else:
        per_example = self.label_loss.call(labels, probabilities)
      loss = tf.reduce_mean(per_example)
      if self.network.losses:
        loss += self.regularization_penalty * tf.add_n(
            [tf.cast(term, loss.dtype) for term in self.network.losses])
      # The replicas' gradients are summed: each contributes its share of the mean.
      scaled_loss = self.optimizer.scale_loss(loss / replicas)
    variables = self.trainable_variables
    gradients = self._clip(tape.gradient(scaled_loss, variables), replicas)
    self.optimizer.apply(gradients, variables)

    self.loss_tracker.update_state(loss)
    for metric in self.step_metrics:
      metric.update_state(labels, probabilities)
    logs = {metric.name: metric.result() for metric in self.metrics}
    if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
      # Keras averages the step's logs over all replicas with
      # strategy.reduce(MEAN, value, axis=0), which needs an axis: pass [1] vectors.
      logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs

  def _clip(self, gradients, replicas):
    """Each gradient clipped by its own norm, after the cross-replica sum."""
    if self.clip_gradient_norm <= 0:
      return gradients
    threshold = self.clip_gradient_norm
    if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
      # The gradients are still multiplied by the loss scale (the optimizer divides it
      # out): clip_by_norm(s * g, s * c) == s * clip_by_norm(g, c).
      threshold = threshold * tf.cast(self.optimizer.dynamic_scale, tf.float32)
    if replicas > 1:
      context = tf.distribute.get_replica_context()
      present = [g for g in gradients if g is not None]
      summed = iter(context.all_reduce(tf.distribute.ReduceOp.SUM, present))
      # The optimizer sums the replicas' gradients again: each passes 1/replicas of the
      # clipped global gradient, so the sum is that gradient.
      return [None if g is None else
              tf.clip_by_norm(next(summed), threshold) / tf.cast(replicas, g.dtype)
              for g in gradients]
    return [None if g is None else tf.clip_by_norm(g, threshold) for g in gradients]
