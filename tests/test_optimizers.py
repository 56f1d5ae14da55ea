"""FusedAdam: the same updates and slots as keras.optimizers.Adam, with the fused kernel."""

import keras
import numpy as np
import tensorflow as tf

from yt8m_fusion import training
from yt8m_fusion.optimizers import FusedAdam


def _train(optimizer_class, steps=4):
  rng = np.random.default_rng(0)
  shapes = [(50, 30), (30,), (7, 3)]
  variables = [keras.Variable(rng.standard_normal(shape).astype(np.float32))
               for shape in shapes]
  schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 2, 0.9, staircase=True)
  optimizer = optimizer_class(schedule, clipnorm=1.0)

  @tf.function
  def step(gradients):
    optimizer.apply(gradients, variables)

  for _ in range(steps):
    step([tf.constant(rng.standard_normal(shape).astype(np.float32)) for shape in shapes])
  return optimizer, variables, step


def test_fused_adam_matches_keras_adam():
  keras_optimizer, keras_variables, _ = _train(keras.optimizers.Adam)
  fused_optimizer, fused_variables, step = _train(FusedAdam)
  for expected, actual in zip(keras_variables, fused_variables):
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=1e-5)
  for expected, actual in zip(keras_optimizer.variables, fused_optimizer.variables):
    np.testing.assert_allclose(np.asarray(actual.numpy()), np.asarray(expected.numpy()),
                               atol=1e-5)
  assert int(fused_optimizer.iterations.numpy()) == 4
  # The traced update runs the fused kernel.
  graph = step.get_concrete_function(
      [tf.TensorSpec(v.shape, tf.float32) for v in fused_variables]).graph
  assert any(op.type == "ResourceApplyAdam" for op in graph.get_operations()) or any(
      "ResourceApplyAdam" in node.op for function in graph.as_graph_def().library.function
      for node in function.node_def)


def test_training_uses_fused_adam_and_checkpoints_interchange(tmp_path):
  optimizer = training.build_optimizer(training.TrainOptions())
  assert isinstance(optimizer, FusedAdam) and isinstance(optimizer, keras.optimizers.Adam)
  variables = [keras.Variable(np.ones((3, 2), np.float32))]
  optimizer.build(variables)
  optimizer.apply([tf.ones((3, 2))], variables)
  path = tf.train.Checkpoint(optimizer=optimizer).save(str(tmp_path / "ckpt"))
  plain = keras.optimizers.Adam(training.learning_rate_schedule(training.TrainOptions()),
                                clipnorm=1.0)
  plain.build(variables)
  tf.train.Checkpoint(optimizer=plain).restore(path).assert_existing_objects_matched()
  assert int(plain.iterations.numpy()) == 1
  for expected, actual in zip(optimizer.variables, plain.variables):
    np.testing.assert_array_equal(np.asarray(actual.numpy()), np.asarray(expected.numpy()))
