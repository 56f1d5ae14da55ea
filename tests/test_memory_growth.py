"""Memory stays flat over long runs: tests that fail on a real leak, measured per step.

- eval.py without --run_once (a real process) watching a train_dir through 12 checkpoints:
  its RSS slope over the last 8 is far below the size of the model it restores each time
  (a model, a traced function holding its weights, or a results buffer kept per checkpoint
  would show as one model's size per checkpoint).
- training.run called again and again in one process (as the paper experiment does): it
  keeps no model (no live keras.Model, no custom gradient left registered, and the RSS slope
  far below the ~55 MB that each LogisticModel with its Adam slots used to add).

benchmarks/memory_growth.py measures the same at full size (docs/RELIABILITY.md).
"""

import gc
import os
import sys

import keras
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import memory_growth  # noqa: E402  pylint: disable=wrong-import-position
from yt8m_fusion import data as yt8m_data  # noqa: E402
from yt8m_fusion import keras_compat  # noqa: E402
from yt8m_fusion import models  # noqa: E402
from yt8m_fusion import training  # noqa: E402

# LogisticModel over 1152 inputs and 3862 classes: 4.45M weights, 17.8 MB (53 MB with
# Adam's two slots): one model kept per step is far above the noise.
NUM_CLASSES = 3862
MODEL_MB = 4.45e6 * 4 / 2**20


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  return yt8m_data.generate_dataset(str(tmp_path_factory.mktemp("memory_data")),
                                    num_videos=160, num_classes=NUM_CLASSES, seed=5,
                                    num_shards=2)


def _config():
  return models.ModelConfig(model="LogisticModel", feature_names=["mean_rgb", "mean_audio"],
                            feature_sizes=[1024, 128], num_classes=NUM_CLASSES)


def _train(train_dir, dataset, max_steps, eval_pattern=None):
  options = training.TrainOptions.for_model("LogisticModel", batch_size=16, verbose=0,
                                            max_steps=max_steps)
  return training.run(_config(), train_dir, dataset["video"]["train"], options=options,
                      eval_data_pattern=eval_pattern, export=False,
                      reading=training.ReadOptions(num_readers=2))


def test_slope_is_per_step_after_the_warm_up():
  assert memory_growth.slope([1, 2, 3, 4]) == pytest.approx(1.0)
  assert memory_growth.growth_per_step([100, 50, 10, 10, 10, 10]) == pytest.approx(0.0)
  assert memory_growth.growth_per_step([900, 0, 5, 10, 15, 20]) == pytest.approx(5.0)


def test_eval_watching_checkpoints_stays_flat(dataset, tmp_path):
  train_dir = str(tmp_path / "train")
  _train(train_dir, dataset, 1)
  rows = []
  memory_growth.watch_checkpoints(train_dir, 12, dataset["video"]["validate"],
                                  lambda **row: rows.append(row), batch_size=32)
  assert [row["checkpoint"] for row in rows] == list(range(1, 13))
  assert all(os.path.exists(os.path.join(train_dir, "eval", f"metrics-{step}.json"))
             for step in range(1, 13))
  rss = [row["rss_mb"] for row in rows]
  growth = memory_growth.growth_per_step(rss)
  assert growth < MODEL_MB / 3, f"eval.py grew {growth:.1f} MB per checkpoint: {rss}"


def test_training_runs_keep_no_model(dataset, tmp_path):
  registry = keras_compat.gradient_registry()

  def custom_gradients():
    return {name for name in registry if name.startswith(keras_compat.CUSTOM_GRADIENT_PREFIX)}

  def live_models():
    return sum(isinstance(thing, keras.Model) for thing in gc.get_objects())

  rss = []
  for run in range(6):
    before = (custom_gradients(), live_models())
    result = _train(str(tmp_path / f"run{run}"), dataset, 3, dataset["video"]["validate"])
    assert result.train.step == 3 and result.eval_results is not None
    # No collect here: run() must free its model by itself.
    assert (custom_gradients(), live_models()) == before
    rss.append(memory_growth.rss_bytes() / 2**20)
  growth = memory_growth.growth_per_step(rss)
  assert growth < MODEL_MB, f"training.run grew {growth:.1f} MB per run: {rss}"


def test_the_registry_we_release_is_where_tensorflow_registers(tmp_path):
  """keras_compat.custom_gradients_released relies on TensorFlow's gradient registry: a
  tf.custom_gradient traced in a tf.function registers there, and the context removes it."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  registry = keras_compat.gradient_registry()

  @tf.custom_gradient
  def identity(x):
    return tf.identity(x), lambda dy: dy

  before = set(registry)
  with keras_compat.custom_gradients_released():
    tf.function(identity).get_concrete_function(tf.TensorSpec([2], tf.float32))
    added = set(registry) - before
    assert added and all(name.startswith(keras_compat.CUSTOM_GRADIENT_PREFIX)
                         for name in added)
  assert set(registry) == before
