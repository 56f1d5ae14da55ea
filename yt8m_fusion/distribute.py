"""tf.distribute set-up for train.py: which strategy, who is chief, where each writes.

    --strategy=default       one device
    --strategy=mirrored      all local GPUs (MirroredStrategy)
    --strategy=multi_worker  MultiWorkerMirroredStrategy, cluster from TF_CONFIG
    --strategy=tpu           TPUStrategy on --tpu

`--batch_size` is per replica, as in the starter: the global batch is
batch_size x replicas, and the learning-rate decay counts global examples.
Only the chief writes checkpoints, summaries, model_flags.json and exports; other
workers save into a temporary folder (MultiWorkerMirroredStrategy needs every worker
to take part in a save) that is removed when training ends.
"""

import json
import logging
import os
import shutil
import tempfile

import tensorflow as tf
from absl import flags

from yt8m_fusion.errors import UserError

FLAGS = flags.FLAGS

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def define_flags(define):
  define(flags.DEFINE_enum, "strategy", "default", list(STRATEGIES),
         "tf.distribute strategy: default (one device), mirrored (local GPUs), multi_worker "
         "(TF_CONFIG cluster) or tpu.")
  define(flags.DEFINE_string, "tpu", "", "TPU name or grpc:// address for --strategy=tpu.")
  define(flags.DEFINE_integer, "collective_timeout_secs", 600,
         "multi_worker: fail instead of waiting forever when a worker stops answering.",
         lower_bound=1)


class ClusterSetup:
  """A strategy plus the chief/worker facts that decide who writes what."""

  def __init__(self, strategy, is_chief=True, task_id=0):
    self.strategy = strategy
    self.is_chief = is_chief
    self.task_id = task_id
    self._temp_dirs = []

  @property
  def needs_static_batches(self):
    # TPUs need fixed shapes; multi-replica steps split the batch evenly.
    return isinstance(self.strategy, tf.distribute.TPUStrategy)

  def working_dir(self, train_dir):
    """train_dir for the chief; a temporary folder for other workers."""
    if self.is_chief:
      return train_dir
    temp_dir = tempfile.mkdtemp(prefix=f"yt8m_worker{self.task_id}_")
    self._temp_dirs.append(temp_dir)
    return temp_dir

  def distribute_dataset(self, dataset_fn):
    """dataset_fn(input_context) -> dataset; sharded by file across input pipelines."""
    if self.strategy.num_replicas_in_sync == 1 and not isinstance(
        self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
      return dataset_fn(None)
    return self.strategy.distribute_datasets_from_function(dataset_fn)

  def cleanup(self):
    for temp_dir in self._temp_dirs:
      shutil.rmtree(temp_dir, ignore_errors=True)
    self._temp_dirs = []


def _tf_config():
  raw = os.environ.get("TF_CONFIG", "")
  if not raw:
    return {}
  try:
    return json.loads(raw)
  except json.JSONDecodeError as error:
    raise UserError(f"TF_CONFIG is not valid JSON ({error})") from None


def create_strategy(name=None):
  name = name or FLAGS.strategy
  if name == "default":
    return ClusterSetup(tf.distribute.get_strategy())
  if name == "mirrored":
    strategy = tf.distribute.MirroredStrategy()
    logging.info("MirroredStrategy over %d device(s)", strategy.num_replicas_in_sync)
    return ClusterSetup(strategy)
  if name == "multi_worker":
    config = _tf_config()
    if not config.get("cluster") or not config.get("task"):
      raise UserError("--strategy=multi_worker needs TF_CONFIG with 'cluster' and 'task' "
                      "(see README: Scale out), or use python -m yt8m_fusion.local_cluster")
    task = config["task"]
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=FLAGS.collective_timeout_secs)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    task_type, task_id = task.get("type"), int(task.get("index", 0))
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0
                                        and "chief" not in config["cluster"])
    logging.info("MultiWorkerMirroredStrategy: task %s/%d of %d worker(s)%s", task_type,
                 task_id, len(config["cluster"].get("worker", [])) +
                 len(config["cluster"].get("chief", [])), " (chief)" if is_chief else "")
    return ClusterSetup(strategy, is_chief=is_chief, task_id=task_id)
  if name == "tpu":
    try:
      resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=FLAGS.tpu or None)
      tf.config.experimental_connect_to_cluster(resolver)
      tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as error:
      raise UserError(f"--strategy=tpu: cannot reach the TPU {FLAGS.tpu!r} "
                      f"({str(error).splitlines()[0]})") from None
    return ClusterSetup(tf.distribute.TPUStrategy(resolver))
  raise UserError(f"--strategy={name}: expected one of {', '.join(STRATEGIES)}")
