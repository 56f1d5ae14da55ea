"""Adam with TensorFlow's fused update kernel (same variables, same formula as Keras' Adam).

`keras.optimizers.Adam.update_step` updates each variable with about ten separate
element-wise ops (each reading and writing a full-size temporary). `FusedAdam` makes the same
update with one `ResourceApplyAdam` kernel per variable, which reads the gradient, the
variable and both moments once and writes them back once; on a CPU this cuts the optimizer's
share of a paper-size AttendFusion step (72.9M parameters) by about half
(benchmarks/run.py). The formula is Keras' (and tf.compat.v1's):

    alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2)
    var -= m * alpha / (sqrt(v) + epsilon)

It is a subclass of keras.optimizers.Adam with the same slot variables, so checkpoints are
interchangeable. It falls back to Keras' update (the same numbers) where the fused kernel does
not apply: another backend, amsgrad, sparse (IndexedSlices) gradients, non-float32
variables, and inside a tf.distribute strategy (whose variable updates Keras routes itself).
"""

import keras


def _tensorflow():
  if keras.backend.backend() != "tensorflow":
    return None
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf


def _resource(variable):
  """The tf.Variable behind a Keras variable (or the variable itself)."""
  return getattr(variable, "value", variable) if isinstance(variable, keras.Variable) \
      else variable


class FusedAdam(keras.optimizers.Adam):
  """keras.optimizers.Adam whose dense float32 updates run as one fused kernel."""

  def _can_fuse(self, tf, gradient, variable):
    if self.amsgrad or tf.distribute.has_strategy() or isinstance(gradient, tf.IndexedSlices):
      return False
    resource = _resource(variable)
    return getattr(resource, "dtype", None) == tf.float32 and hasattr(resource, "handle")

  def update_step(self, gradient, variable, learning_rate):
    tf = _tensorflow()
    if tf is None or not self._can_fuse(tf, gradient, variable):
      return super().update_step(gradient, variable, learning_rate)
    index = self._get_variable_index(variable)
    m = _resource(self._momentums[index])
    v = _resource(self._velocities[index])
    if not (hasattr(m, "handle") and hasattr(v, "handle")):
      return super().update_step(gradient, variable, learning_rate)
    dtype = tf.float32
    local_step = tf.cast(self.iterations + 1, dtype)
    beta_1 = tf.cast(self.beta_1, dtype)
    beta_2 = tf.cast(self.beta_2, dtype)
    return tf.raw_ops.ResourceApplyAdam(
        var=_resource(variable).handle, m=m.handle, v=v.handle,
        beta1_power=tf.pow(beta_1, local_step), beta2_power=tf.pow(beta_2, local_step),
        lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
        epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype),
        use_locking=False)
