"""The one place that relies on Keras internals.

Everything else uses Keras' public API. What is here is checked by
tests/test_keras_compat.py, which fails loudly when a Keras upgrade changes it.
"""

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
