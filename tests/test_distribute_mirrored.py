"""MirroredStrategy over 2 logical CPU devices gives the weights of the default strategy.

Logical devices must be configured before TensorFlow initializes its devices, so the
comparison runs in a subprocess. It goes through the code train.py uses
(distribute.create_strategy, ClusterSetup.distribute_dataset / prepare_training,
training.build_trainer and training.fit: the explicit training step) on a tiny AttendFusion: one step with global batch 8 (2 replicas x 4,
or 1 x 8), from the same initial weights, on the same records (no shuffling): replica
0 takes records 0-3 and replica 1 records 4-7 of the one input pipeline.
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
    import json, os, sys, tempfile
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from yt8m_fusion import distribute, inputs, models, training
    from yt8m_fusion.data import DataSpec
    from yt8m_fusion.models.config import ModelConfig

    pattern, cases = sys.argv[1], [case.split(":") for case in sys.argv[2:]]
    config = ModelConfig(model="AttendFusion", feature_names=("mean_rgb", "mean_audio"),
                         feature_sizes=(1024, 128), num_classes=10,
                         params={"attend_hidden_size": 64, "attend_token_size": 16,
                                 "attend_num_heads": 2, "attend_key_dim": 8})

    def train_one_step(cluster, initial, optimizer, clip):
      options = training.TrainOptions(batch_size=8 // cluster.num_replicas, max_steps=1,
                                      num_epochs=1, log_every_n_steps=1, verbose=0,
                                      optimizer=optimizer, base_learning_rate=0.1,
                                      clip_gradient_norm=float(clip), jit_compile=False)
      with cluster.strategy.scope():
        keras.utils.set_random_seed(1)
        model = models.build_model(config)
        if initial is not None:
          model.set_weights(initial)
        start = [np.array(w) for w in model.get_weights()]
        trainer = training.build_trainer(model, config, options, cluster.num_replicas)
        keeper = training.CheckpointKeeper(tempfile.mkdtemp(), model, trainer.optimizer)
        cluster.prepare_training(trainer, keeper)
      spec = config.data_spec()
      dataset = cluster.distribute_dataset(lambda context: inputs.training_pairs(
          inputs.load_batches(pattern, spec, batch_size=options.batch_size,
                              input_context=context).dataset, spec))
      result = training.fit(trainer, dataset, keeper, options,
                            global_batch_size=cluster.global_batch_size(options.batch_size))
      return start, [np.array(w) for w in model.get_weights()], result.step

    default = distribute.create_strategy("default")
    mirrored = distribute.create_strategy("mirrored")
    for optimizer, clip in cases:
      start, single, single_step = train_one_step(default, None, optimizer, clip)
      _, multi, multi_step = train_one_step(mirrored, start, optimizer, clip)
      print("RESULT " + json.dumps({
          "optimizer": optimizer, "clip": clip, "replicas": mirrored.num_replicas,
          "devices": list(mirrored.strategy.extended.worker_devices),
          "steps": [single_step, multi_step],
          "max_change": max(float(np.max(np.abs(a - b))) for a, b in zip(single, start)),
          "max_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(single, multi)),
      }), flush=True)
    os._exit(0)  # skip TensorFlow's slow teardown
    """)


@pytest.fixture(scope="module")
def pattern(tmp_path_factory):
  folder = tmp_path_factory.mktemp("mirrored_data")
  info = yt8m_data.generate_dataset(str(folder), num_videos=24, num_classes=10, seed=2,
                                    num_shards=2, split_fractions=(2 / 3, 1 / 6, 1 / 6))
  return info["video"]["train"]


def run_comparisons(pattern, cases):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run([sys.executable, "-c", SCRIPT, pattern, *cases], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
  lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
  assert result.returncode == 0 and len(lines) == len(cases), result.stderr[-6000:]
  return [json.loads(line[len("RESULT "):]) for line in lines]


def test_mirrored_over_two_cpus_matches_the_default_strategy(pattern):
  # optimizer:clip_gradient_norm: Adam with the default clipping, and SGD (whose step
  # shows any clipping difference) with a norm that clips every gradient. Keras' own
  # clipnorm clips each replica's share before the sum and misses by far here; the
  # training step clips after the sum, as on one device.
  for result in run_comparisons(pattern, ["AdamOptimizer:1.0", "SGD:0.05"]):
    assert result["replicas"] == 2 and len(result["devices"]) == 2, result
    assert result["steps"] == [1, 1], result
    assert result["max_change"] > 1e-3, result  # the step did train
    assert result["max_diff"] < 1e-3 * result["max_change"], result
