"""The one place that relies on Keras and TensorFlow internals.

Everything else uses their public APIs. What is here is checked by
tests/test_keras_compat.py, which fails loudly when an upgrade changes it.
"""

import contextlib

import keras

# Keras' TensorFlow trainer method that `SkipSymbolicBuild` replaces, with its parameters.
SYMBOLIC_BUILD_METHOD = "_maybe_symbolic_build"
SYMBOLIC_BUILD_PARAMETERS = ("self", "iterator", "data_batch")


class SkipSymbolicBuild(keras.Model):
  """A keras.Model that builds its optimizer and metrics itself, before `fit`.

  When a model is created under a tf.distribute strategy, Keras 3's TensorFlow trainer
  builds the compiled loss and metrics from an all-reduced copy of the first batch
  (`_maybe_symbolic_build`). MultiWorkerMirroredStrategy cannot all-reduce dict inputs with
  uint8 frames or strings (keras-team/keras#20585), and a model that compiles no loss and
  no metrics has nothing to build from the batch, so the step is skipped.
  """

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    del iterator, data_batch  # nothing to build: see the class docstring


# tf.custom_gradient, traced in graph mode, registers its gradient function under a new name
# with this prefix in TensorFlow's process-wide gradient registry, and never removes it.
CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def gradient_registry():
  """TensorFlow's registry of graph-mode gradient functions: {name: {"type": fn, ...}}."""
  from tensorflow.python.framework import ops  # pylint: disable=import-outside-toplevel
  return ops._gradient_registry._registry  # pylint: disable=protected-access


@contextlib.contextmanager
def custom_gradients_released():
  """Removes the custom gradients registered while the block ran, when it ends.

  Keras' TensorFlow optimizer all-reduces the gradients even on one device, and
  `ReplicaContext.all_reduce` wraps them in a tf.custom_gradient: each traced training step
  registers a gradient function that holds the traced graph and, through it, every variable
  the step captured (the model's weights and the optimizer's slots). So a process kept the
  memory of every model it trained (about 300 MB per MoeModel run). Once the step is traced
  these functions are never called again (its gradients are part of the traced graph and
  nothing differentiates through the optimizer's update): wrap `Model.fit` in this.
  """
  registry = gradient_registry()
  before = {name for name in registry if name.startswith(CUSTOM_GRADIENT_PREFIX)}
  try:
    yield
  finally:
    for name in [name for name in registry
                 if name.startswith(CUSTOM_GRADIENT_PREFIX) and name not in before]:
      registry.pop(name, None)
