"""MirroredStrategy over 2 logical CPU devices gives the weights of the default strategy.

Logical devices must be configured before TensorFlow initializes its devices, so the
comparison runs in a subprocess. It goes through the code train.py uses
(distribute.create_strategy, ClusterSetup.distribute_dataset / prepare_training,
training.fit) on a tiny AttendFusion: one step with global batch 8 (2 replicas x 4,
or 1 x 8), from the same initial weights, on the same records (no shuffling).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from programs import REPO
from yt8m_fusion import data as yt8m_data

SCRIPT = textwrap.dedent("""
    import json, sys, tempfile
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from yt8m_fusion import distribute, inputs, models, training
    from yt8m_fusion.models.config import ModelConfig

    pattern, clip = sys.argv[1], float(sys.argv[2])
    config = ModelConfig(model="AttendFusion", feature_names=("mean_rgb", "mean_audio"),
                         feature_sizes=(1024, 128), num_classes=10,
                         params={"attend_hidden_size": 64, "attend_token_size": 16,
                                 "attend_num_heads": 2, "attend_key_dim": 8})

    def train_one_step(cluster, initial):
      options = training.TrainOptions(batch_size=8 // cluster.num_replicas, max_steps=1,
                                      num_epochs=1, log_every_n_steps=1, verbose=0,
                                      clip_gradient_norm=clip, jit_compile=False)
      with cluster.strategy.scope():
        keras.utils.set_random_seed(1)
        model = models.build_model(config)
        if initial is not None:
          model.set_weights(initial)
        start = [np.array(w) for w in model.get_weights()]
        optimizer = training.compile_model(model, config, options, cluster.num_replicas)
        keeper = training.CheckpointKeeper(tempfile.mkdtemp(), model, optimizer)
        cluster.prepare_training(model, keeper)
      dataset = cluster.distribute_dataset(lambda context: inputs.training_pairs(
          inputs.load_batches(pattern, config, batch_size=options.batch_size,
                              input_context=context), config))
      result = training.fit(model, dataset, keeper, options,
                            global_batch_size=cluster.global_batch_size(options.batch_size))
      return start, [np.array(w) for w in model.get_weights()], result.step

    default = distribute.create_strategy("default")
    start, single, single_step = train_one_step(default, None)
    mirrored = distribute.create_strategy("mirrored")
    _, multi, multi_step = train_one_step(mirrored, start)
    print("RESULT " + json.dumps({
        "replicas": mirrored.num_replicas,
        "devices": list(mirrored.strategy.extended.worker_devices),
        "steps": [single_step, multi_step],
        "max_change": max(float(np.max(np.abs(a - b))) for a, b in zip(single, start)),
        "max_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(single, multi)),
    }))
    """)


@pytest.fixture(scope="module")
def pattern(tmp_path_factory):
  folder = tmp_path_factory.mktemp("mirrored_data")
  info = yt8m_data.generate_dataset(str(folder), num_videos=24, num_classes=10, seed=2,
                                    num_shards=2, split_fractions=(2 / 3, 1 / 6, 1 / 6))
  return info["video"]["train"]


def run_comparison(pattern, clip):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run([sys.executable, "-c", SCRIPT, pattern, str(clip)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
  lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
  assert result.returncode == 0 and lines, result.stderr[-6000:]
  return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.parametrize("clip", [1.0, 0.05], ids=["default_clip", "clipping_active"])
def test_mirrored_over_two_cpus_matches_the_default_strategy(pattern, clip):
  result = run_comparison(pattern, clip)
  assert result["replicas"] == 2 and len(result["devices"]) == 2
  assert result["steps"] == [1, 1]
  assert result["max_change"] > 1e-4  # the step did train
  # Gradient clipping happens after the cross-replica sum, as on one device.
  assert result["max_diff"] < 1e-5, result
