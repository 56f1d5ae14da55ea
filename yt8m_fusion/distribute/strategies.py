"""Creating the tf.distribute strategy: default, mirrored, multi_worker (TF_CONFIG), tpu."""

import json
import logging
import os
import subprocess
import sys

import tensorflow as tf

from yt8m_fusion.distribute.cluster import ClusterSetup
from yt8m_fusion.errors import UserError

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def read_tf_config():
  raw = os.environ.get("TF_CONFIG", "")
  if not raw:
    return {}
  try:
    config = json.loads(raw)
  except json.JSONDecodeError as error:
    raise UserError(f"TF_CONFIG is not valid JSON ({error})") from None
  if not isinstance(config, dict):
    raise UserError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
  return config


def parse_tf_config(config):
  """(cluster, task_type, task_id, is_chief, num_workers) from a TF_CONFIG dict."""
  cluster, task = config.get("cluster"), config.get("task")
  if not cluster or not task or not isinstance(cluster, dict) or not isinstance(task, dict):
    raise UserError("--strategy=multi_worker needs TF_CONFIG with 'cluster' and 'task', e.g. "
                    '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": '
                    '"worker", "index": 0}} (see docs/SCALE_OUT.md), or use python -m '
                    "yt8m_fusion.local_cluster")
  unknown = sorted(set(cluster) - {"chief", "worker"})
  if unknown:
    raise UserError(f"TF_CONFIG cluster has job(s) {', '.join(unknown)}; "
                    "--strategy=multi_worker uses only 'chief' and 'worker'")
  for job, addresses in cluster.items():
    if not isinstance(addresses, list) or not addresses:
      raise UserError(f"TF_CONFIG cluster['{job}'] must be a non-empty list of host:port")
  if len(cluster.get("chief", [])) > 1:
    raise UserError("TF_CONFIG cluster['chief'] must hold one address")
  task_type = task.get("type")
  try:
    task_id = int(task.get("index", 0))
  except (TypeError, ValueError):
    raise UserError(f"TF_CONFIG task index {task.get('index')!r} is not an integer") from None
  if task_type not in cluster or not 0 <= task_id < len(cluster[task_type]):
    raise UserError(f"TF_CONFIG task {task_type}/{task_id} is not in the cluster "
                    f"({', '.join(f'{job}: {len(a)}' for job, a in cluster.items())})")
  is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0
                                      and "chief" not in cluster)
  num_workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
  return cluster, task_type, task_id, is_chief, num_workers


_WATCHDOG = """
import os, select, signal, sys
ready, _, _ = select.select([sys.stdin], [], [], float(sys.argv[1]))
if not ready:
  sys.stderr.write(sys.argv[3] + "\\n")
  sys.stderr.flush()
  os.kill(int(sys.argv[2]), signal.SIGKILL)
"""


class _Watchdog:
  """A helper process that prints `message` and kills this process unless cancelled in
  time. (TensorFlow holds the GIL while it waits for the cluster: a thread would not run,
  and it ignores SIGTERM.) If this process ends first, the helper sees its pipe close."""

  def __init__(self, timeout_secs, message):
    read_fd, self._write_fd = os.pipe()
    try:
      self._process = subprocess.Popen(
          [sys.executable, "-c", _WATCHDOG, str(timeout_secs), str(os.getpid()),
           f"ERROR: {message}"], stdin=read_fd, close_fds=True)
    finally:
      os.close(read_fd)

  def cancel(self):
    if self._write_fd is None:
      return
    os.close(self._write_fd)  # the helper reads EOF and exits
    self._write_fd = None
    try:
      self._process.wait(timeout=10)
    except subprocess.TimeoutExpired:
      self._process.kill()


def _multi_worker_strategy(timeout_secs):
  cluster, task_type, task_id, is_chief, num_workers = parse_tf_config(read_tf_config())
  name = f"{task_type} {task_id}"
  addresses = ", ".join(f"{job} {i}: {address}" for job in ("chief", "worker")
                        for i, address in enumerate(cluster.get(job, [])))
  logging.info("MultiWorkerMirroredStrategy: %s of %d worker(s)%s; waiting for the others "
               "(up to %d s)", name, num_workers, " (chief)" if is_chief else "", timeout_secs)
  # TensorFlow waits for missing workers without a limit: a watchdog ends the wait.
  watchdog = _Watchdog(timeout_secs, (
      f"{name}: not all {num_workers} workers joined within --collective_timeout_secs="
      f"{timeout_secs} s ({addresses}); start every worker with its own TF_CONFIG task"))
  try:
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_secs)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    setup = ClusterSetup(strategy, is_chief=is_chief, task_id=task_id, task_type=task_type,
                         num_workers=num_workers, timeout_secs=timeout_secs)
    setup.collectives.sum([tf.constant([1], tf.int32)])  # a barrier
  finally:
    watchdog.cancel()
  logging.info("%s: all %d workers joined; %d replica(s) in sync", name, num_workers,
               strategy.num_replicas_in_sync)
  return setup


def _mirrored_strategy():
  gpus = tf.config.list_logical_devices("GPU")
  if gpus:
    strategy = tf.distribute.MirroredStrategy()
  else:
    cpus = tf.config.list_logical_devices("CPU")
    strategy = tf.distribute.MirroredStrategy([device.name for device in cpus])
  logging.info("MirroredStrategy over %d device(s): %s", strategy.num_replicas_in_sync,
               ", ".join(strategy.extended.worker_devices))
  return ClusterSetup(strategy)


def _tpu_strategy(tpu):
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
    tf.config.experimental_connect_to_cluster(resolver)  # nothing to do for "local"
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ImportError, ValueError, RuntimeError, tf.errors.OpError) as error:
    which = repr(tpu) if tpu else "named by $TPU_NAME (no --tpu given)"
    reason = " ".join(str(error).split())[:200] or type(error).__name__
    raise UserError(f"--strategy=tpu: cannot reach the TPU {which} ({reason})") from None
  strategy = tf.distribute.TPUStrategy(resolver)
  logging.info("TPUStrategy: %d replica(s)", strategy.num_replicas_in_sync)
  return ClusterSetup(strategy)


def create_strategy(name="default", *, tpu="", collective_timeout_secs=600):
  """The ClusterSetup for a --strategy name (see the package docstring)."""
  if name == "default":
    return ClusterSetup(tf.distribute.get_strategy())
  if name == "mirrored":
    return _mirrored_strategy()
  if name == "multi_worker":
    return _multi_worker_strategy(collective_timeout_secs)
  if name == "tpu":
    return _tpu_strategy(tpu)
  raise UserError(f"--strategy={name}: expected one of {', '.join(STRATEGIES)}")
