"""What yt8m_fusion.keras_compat relies on in Keras: these fail loudly when an upgrade changes it."""

import inspect

import keras

from yt8m_fusion import keras_compat
from yt8m_fusion.training import TrainingModel


def test_keras_still_has_the_symbolic_build_we_replace():
  method = getattr(keras.Model, keras_compat.SYMBOLIC_BUILD_METHOD, None)
  assert method is not None, (
      f"keras {keras.__version__} has no Model.{keras_compat.SYMBOLIC_BUILD_METHOD}: "
      "review keras_compat.SkipSymbolicBuild (it may no longer be needed)")
  parameters = tuple(inspect.signature(method).parameters)
  assert parameters == keras_compat.SYMBOLIC_BUILD_PARAMETERS, parameters


def test_fit_still_calls_it():
  source = inspect.getsource(keras.Model.fit)
  assert f"self.{keras_compat.SYMBOLIC_BUILD_METHOD}(" in source


def test_the_training_model_uses_the_override():
  override = getattr(TrainingModel, keras_compat.SYMBOLIC_BUILD_METHOD)
  assert override is keras_compat.SkipSymbolicBuild._maybe_symbolic_build  # pylint: disable=protected-access
  assert inspect.signature(override).parameters.keys() == set(
      keras_compat.SYMBOLIC_BUILD_PARAMETERS)
