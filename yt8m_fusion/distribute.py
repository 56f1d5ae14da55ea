"""tf.distribute set-up for train.py: which strategy, who is chief, where each writes.

    --strategy=default       one device
    --strategy=mirrored      all local GPUs (MirroredStrategy; the logical CPU devices
                             when there is no GPU)
    --strategy=multi_worker  MultiWorkerMirroredStrategy, cluster from TF_CONFIG
    --strategy=tpu           TPUStrategy on --tpu

`--batch_size` is per replica, as in the starter: the global batch is
batch_size x replicas. The learning rate follows `--learning_rate_scaling` (none, the
starter's rule: the same rate whatever the number of replicas; linear; sqrt) and its
decay counts global examples.

Multi-worker contract (see docs/SCALE_OUT.md):
- Only the chief (task "chief", else worker 0) writes checkpoints, summaries,
  model_flags.json, evaluation results and exports into --train_dir. Other workers
  take part in every checkpoint save (a MultiWorkerMirroredStrategy requirement) but
  save into a temporary folder that `cleanup()` removes.
- The chief's state is the source of truth: non-chief workers train the chief's model
  (`config_from_chief`) and start from the chief's variables (`sync_from_chief`), so a
  restarted job resumes from the chief's last checkpoint even when the other workers
  cannot read --train_dir.
- Decisions that are not a function of the step alone (a time-based checkpoint, a
  SIGTERM) are agreed on by all workers (`agreement`) so that every worker saves and
  stops at the same step.
- Nothing waits forever: a worker that does not join within --collective_timeout_secs
  at start-up, or that stops answering during training, makes the others exit non-zero
  with one line naming it (`explain_error`).
"""

import atexit
import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import tensorflow as tf
from absl import flags

from yt8m_fusion.errors import UserError

FLAGS = flags.FLAGS

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
LEARNING_RATE_SCALING = ("none", "linear", "sqrt")
TEMP_DIR_PREFIX = "yt8m_fusion_worker"
# Multi-worker: SIGTERM and time-based checkpoints are agreed on every this many steps
# (one small all-reduce; the step count is the same on every worker).
AGREE_EVERY_N_STEPS = 10
# dtypes the collective ops reduce; others travel as int32 (or float32).
_COLLECTIVE_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int32, tf.int64)


def define_flags(define):
  define(flags.DEFINE_enum, "strategy", "default", list(STRATEGIES),
         "tf.distribute strategy: default (one device), mirrored (all local GPUs), "
         "multi_worker (MultiWorkerMirroredStrategy, cluster from TF_CONFIG) or tpu.")
  define(flags.DEFINE_string, "tpu", "",
         "--strategy=tpu: TPU name or grpc:// address; 'local' on a TPU VM; empty: $TPU_NAME.")
  define(flags.DEFINE_integer, "collective_timeout_secs", 600,
         "multi_worker: how long a worker waits for the others (to join at start-up, or in "
         "a step) before it stops with an error naming the missing worker.", lower_bound=1)
  define(flags.DEFINE_enum, "learning_rate_scaling", "none", list(LEARNING_RATE_SCALING),
         "How --base_learning_rate changes with the number of replicas R (global batch = "
         "batch_size x R): none (the starter's rule: unchanged), linear (x R) or sqrt "
         "(x sqrt(R)).")


class WorkerLost(UserError):
  """Another worker of a multi-worker job stopped, crashed or never joined."""

  exit_code = 1
  # After a failed collective, TensorFlow's eager all-reduce leaves a ThreadPool open
  # (cross_device_ops: pool.map raised before pool.close()); at interpreter shutdown its
  # __del__ may write to an already-closed pipe and print a traceback, and collective
  # threads can still be blocked. Checkpoints are written synchronously by then, so the
  # process ends at once after the error line.
  exit_immediately = True


class ClusterSetup:
  """A strategy plus the chief/worker facts that decide who writes what."""

  def __init__(self, strategy, is_chief=True, task_id=0, *, task_type=None, num_workers=1,
               timeout_secs=None):
    self.strategy = strategy
    self.is_chief = is_chief
    self.task_id = task_id
    self.task_type = task_type
    self.num_workers = num_workers
    self.timeout_secs = timeout_secs
    self._temp_dirs = []

  # -- facts ---------------------------------------------------------------------------

  @property
  def multi_worker(self):
    return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

  @property
  def num_replicas(self):
    return self.strategy.num_replicas_in_sync

  @property
  def name(self):
    """'worker 1', 'chief 0'; empty for a single process."""
    return f"{self.task_type} {self.task_id}" if self.task_type else ""

  @property
  def strategy_flag(self):
    if self.multi_worker:
      return "multi_worker"
    if isinstance(self.strategy, tf.distribute.TPUStrategy):
      return "tpu"
    if isinstance(self.strategy, tf.distribute.MirroredStrategy):
      return "mirrored"
    return "default"

  @property
  def needs_static_batches(self):
    # TPUs need fixed shapes; multi-replica steps split the batch evenly.
    return isinstance(self.strategy, tf.distribute.TPUStrategy)

  def global_batch_size(self, batch_size):
    return batch_size * self.num_replicas

  def scale_learning_rate(self, base_learning_rate, rule="none"):
    """(learning rate, a phrase explaining it) under `rule` for this many replicas."""
    replicas = self.num_replicas
    if rule == "none" or replicas == 1:
      return base_learning_rate, (f"{base_learning_rate:g} (--learning_rate_scaling={rule}: "
                                  f"not scaled with the {replicas} replica(s))")
    if rule == "linear":
      factor, how = float(replicas), f"x {replicas} replicas"
    elif rule == "sqrt":
      factor, how = math.sqrt(replicas), f"x sqrt({replicas} replicas)"
    else:
      raise UserError(f"--learning_rate_scaling={rule}: expected one of "
                      f"{', '.join(LEARNING_RATE_SCALING)}")
    rate = base_learning_rate * factor
    return rate, (f"{rate:g} (--learning_rate_scaling={rule}: --base_learning_rate="
                  f"{base_learning_rate:g} {how})")

  # -- where each worker writes --------------------------------------------------------

  def working_dir(self, train_dir):
    """train_dir for the chief; a temporary folder for other workers."""
    if self.is_chief:
      return train_dir
    temp_dir = tempfile.mkdtemp(prefix=f"{TEMP_DIR_PREFIX}{self.task_id}_")
    if not self._temp_dirs:
      atexit.register(self.cleanup)  # also when the program stops on an error
    self._temp_dirs.append(temp_dir)
    return temp_dir

  def cleanup(self):
    for temp_dir in self._temp_dirs:
      shutil.rmtree(temp_dir, ignore_errors=True)
    self._temp_dirs = []

  # -- input ---------------------------------------------------------------------------

  def distribute_dataset(self, dataset_fn):
    """dataset_fn(input_context) -> per-replica batches; sharded by file across workers.

    With one replica the plain dataset (dataset_fn(None)); otherwise
    `distribute_datasets_from_function`: one input pipeline per worker, reading every
    num_workers-th file; each replica takes the next batch of its worker's pipeline.
    """
    if self.num_replicas == 1 and not self.multi_worker:
      return dataset_fn(None)
    return self.strategy.distribute_datasets_from_function(dataset_fn)

  # -- the model -----------------------------------------------------------------------

  def prepare_training(self, model, keeper):
    """Adjusts a compiled model to this strategy; call in `strategy.scope()` before
    `keeper.restore_latest()` (keeper: a training.CheckpointKeeper).

    Multi-worker: every variable is also created now, in the same order on every worker
    (creating one is a collective broadcast): the optimizer's slots and the checkpoint's
    save counter, which the chief would otherwise create while restoring and the other
    workers at their first save.
    """
    self.prepare_model(model)
    if self.multi_worker:
      if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
      keeper.checkpoint.save_counter  # pylint: disable=pointless-statement  # created on access
    return model

  def prepare_model(self, model):
    """Adjusts a compiled Keras model to this strategy (call after `model.compile`).

    - More than one replica: gradient clipping after the cross-replica sum, as the
      starter clipped the combined gradients (Keras 3 clips each replica's share).
    - Multi-worker: Keras 3 builds its metrics from an all-reduced copy of the first
      batch, and averages the step's logs over the replicas with a reduction, both of
      which MultiWorkerMirroredStrategy cannot do (dict inputs, scalar logs:
      keras-team/keras#20585). The model is built from the first batch's shapes instead,
      and the step's scalar logs are passed as [1] vectors, which Keras averages over all
      replicas: every worker logs, and decides on (NaN loss), the same global values.
    """
    steps_per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
    if steps_per_execution > 1 and self.num_replicas > 1 and not self.needs_static_batches:
      # Keras 3's multi-step loop over a distributed dataset fails in TF 2.21 ("You must
      # feed a value for placeholder tensor 'while/.../cond/Placeholder'"), with or
      # without the adjustments below.
      raise UserError(f"--steps_per_execution={steps_per_execution} does not work with "
                      f"{self.num_replicas} replicas (--strategy={self.strategy_flag}) in "
                      "Keras 3; leave it at 1")
    if self.num_replicas > 1:
      _clip_after_all_reduce(model.optimizer)
    if self.multi_worker:
      _build_from_local_batch(model, self.strategy)
      _average_logs_in_step(model)
    return model

  def model_for_chief(self, model, build_fn):
    """The trained model for chief-only work (evaluation, export) after training.

    Multi-worker: a copy outside the strategy (`build_fn()` -> an unbuilt model of the
    same config, weights copied), since the other workers no longer take part in
    collectives. Otherwise `model` itself.
    """
    if not self.multi_worker:
      return model
    copy = build_fn()
    copy.set_weights([np.asarray(w) for w in model.get_weights()])
    return copy

  # -- agreeing with the chief ---------------------------------------------------------

  def config_from_chief(self, resolve_fn, from_json):
    """The chief's `resolve_fn()` (a ModelConfig) on every worker.

    Non-chief workers do not read --train_dir/model_flags.json themselves (it may not be
    on a file system they share): the chief sends its config as JSON.
    """
    if not self.multi_worker:
      return resolve_fn()
    config = resolve_fn() if self.is_chief else None
    text = self._broadcast_text(config.to_json() if config is not None else "")
    if self.is_chief:
      return config
    return from_json(text, source=f"the chief's model config ({self.name})")

  def sync_from_chief(self, variables):
    """Multi-worker: sets `variables` on every worker to the chief's values.

    Call inside `strategy.scope()` once every worker has created the same variables
    (model, optimizer slots, counters) and the chief has restored its checkpoint. The
    variable shapes are compared first: a different model on some worker is an error
    on every worker, not a hang. Returns True when values were copied.
    """
    if not self.multi_worker:
      return False
    variables = list(variables)
    signature = zlib.crc32(json.dumps(
        [[list(v.shape), tf.as_dtype(v.dtype).name] for v in variables]).encode("utf-8"))
    chief_signature = int(self._broadcast([tf.constant([signature], tf.int64)])[0].numpy()[0])
    mismatch = self._sum([tf.constant([0 if chief_signature == signature else 1], tf.int32)])
    different = int(mismatch[0].numpy()[0])
    if different:
      raise UserError(
          f"{self.name or 'this worker'}: {different} worker(s) built a model whose variables "
          f"differ from the chief's ({len(variables)} here); every worker must run the same "
          "yt8m_fusion version with the same flags")
    values = self._broadcast([_read(v) for v in variables])
    for variable, value in zip(variables, values):
      variable.assign(value)
    return True

  def sync_training_state(self, model, optimizer, keeper):
    """Multi-worker: every worker continues from the chief's model, optimizer and epoch.

    Call inside `strategy.scope()` after the chief's `keeper.restore_latest()`. The
    optimizer is built first on every worker (its slots are variables too), and every
    worker then counts checkpoint periods from the same step.
    """
    if not self.multi_worker:
      return False
    if not optimizer.built:
      optimizer.build(model.trainable_variables)
    variables = list(model.variables) + list(optimizer.variables) + [keeper.epoch]
    synced = self.sync_from_chief(variables)
    keeper.last_saved_step = keeper.step
    if not self.is_chief:
      logging.info("%s: took the chief's training state at step %d, epoch %d (%d variables)",
                   self.name, keeper.step, int(keeper.epoch.numpy()), len(variables))
    return synced

  def agreement(self, every_n_steps=AGREE_EVERY_N_STEPS):
    """None for one worker; else agree(step, flags) -> flags OR-ed over all workers.

    The flags are exchanged once every `every_n_steps` steps (between exchanges the
    result is all False, so a local flag waits for the next exchange). Every worker
    sees the same steps, so every worker exchanges at the same steps.
    """
    if not self.multi_worker:
      return None
    last = {"step": None}

    def agree(step, flags_):
      if last["step"] is not None and step - last["step"] < every_n_steps:
        return tuple(False for _ in flags_)
      last["step"] = step
      total = self._sum([tf.constant([1 if f else 0 for f in flags_], tf.int32)])[0].numpy()
      return tuple(bool(t > 0) for t in total)

    return agree

  # -- errors --------------------------------------------------------------------------

  def explain_error(self, error):
    """A WorkerLost naming the lost worker for a collective failure; None otherwise."""
    if not self.multi_worker or not isinstance(error, tf.errors.OpError):
      return None
    return explain_collective_error(error, self.name or "this worker", self.timeout_secs)

  # -- collectives ---------------------------------------------------------------------

  def _replica_sum(self, tensors, source_only):
    """All-reduce SUM of `tensors` (list); with source_only, replica 0 alone contributes.

    Replica 0 is on the chief: MultiWorkerMirroredStrategy numbers the replicas by the
    task's rank in the cluster, chief (or worker 0) first.
    """
    strategy = self.strategy

    def replica_fn():
      context = tf.distribute.get_replica_context()
      values = []
      for tensor in tensors:
        value = tf.identity(tensor)
        if source_only:
          value = tf.where(tf.equal(context.replica_id_in_sync_group, 0), value,
                           tf.zeros_like(value))
        values.append(value)
      return context.all_reduce(tf.distribute.ReduceOp.SUM, values)

    try:
      result = strategy.run(replica_fn)
    except tf.errors.OpError as error:
      raise self.explain_error(error) or error from None
    return [strategy.experimental_local_results(value)[0] for value in result]

  def _sum(self, tensors):
    return self._replica_sum(tensors, source_only=False)

  def _broadcast(self, tensors):
    """The chief's values of `tensors` on every worker (exact: x + 0 + ... + 0 = x)."""
    casts = []
    converted = []
    for tensor in tensors:
      tensor = tf.convert_to_tensor(tensor)
      dtype = tensor.dtype
      if dtype not in _COLLECTIVE_DTYPES:
        tensor = tf.cast(tensor, tf.float32 if dtype.is_floating else tf.int32)
      casts.append(dtype)
      converted.append(tensor)
    values = self._replica_sum(converted, source_only=True)
    return [tf.cast(value, dtype) if value.dtype != dtype else value
            for value, dtype in zip(values, casts)]

  def _broadcast_text(self, text):
    data = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
    length = int(self._broadcast([tf.constant([data.size], tf.int32)])[0].numpy()[0])
    padded = np.zeros([max(length, 1)], np.int32)
    if self.is_chief:
      padded[:data.size] = data
    received = self._broadcast([tf.constant(padded)])[0].numpy()[:length]
    return received.astype(np.uint8).tobytes().decode("utf-8")


def _read(variable):
  """The value of a Keras variable (`.value` property) or a tf.Variable."""
  value = getattr(variable, "value", None)
  if value is not None and not callable(value):
    return tf.convert_to_tensor(value)
  return tf.convert_to_tensor(variable)


# ----------------------------------------------------------------------------------------
# Keras 3 adjustments
# ----------------------------------------------------------------------------------------

def _clip_after_all_reduce(optimizer):
  """Moves the optimizer's gradient clipping after the cross-replica gradient sum."""
  # mixed_float16: a LossScaleOptimizer applies the gradients with its inner optimizer.
  optimizer = getattr(optimizer, "inner_optimizer", optimizer)
  clips = any(getattr(optimizer, name, None) for name in ("clipnorm", "global_clipnorm",
                                                          "clipvalue"))
  if not clips or getattr(optimizer, "_yt8m_clip_after_all_reduce", False):
    return
  clip = getattr(optimizer, "_clip_gradients", None)
  all_reduce = getattr(optimizer, "_all_reduce_sum_gradients", None)
  if clip is None or all_reduce is None:
    logging.warning("This Keras version clips each replica's gradient share before the "
                    "cross-replica sum; clipping may differ from one device")
    return

  def reduce_then_clip(grads_and_vars):
    reduced = list(all_reduce(grads_and_vars))
    clipped = clip([grad for grad, _ in reduced])
    return [(grad, var) for grad, (_, var) in zip(clipped, reduced)]

  optimizer._clip_gradients = lambda grads: grads  # pylint: disable=protected-access
  optimizer._all_reduce_sum_gradients = reduce_then_clip  # pylint: disable=protected-access
  optimizer._yt8m_clip_after_all_reduce = True  # pylint: disable=protected-access


def _average_logs_in_step(model):
  """Scalar logs of the train step as [1] vectors: Keras' multi-worker "mean" reduction
  (`strategy.reduce(MEAN, value, axis=0)`) then averages them over all replicas (a scalar
  has no axis 0 and fails)."""
  if getattr(model, "_yt8m_average_logs", False):
    return
  train_step = model.train_step

  def train_step_with_vector_logs(data):
    logs = train_step(data)
    if not isinstance(logs, dict):
      return logs
    return {key: (tf.reshape(value, [1]) if tf.is_tensor(value) and value.shape.rank == 0
                  else value) for key, value in logs.items()}

  model.train_step = train_step_with_vector_logs
  model._yt8m_average_logs = True  # pylint: disable=protected-access


def _build_from_local_batch(model, strategy):
  """Replaces Keras' `_maybe_symbolic_build` (an all-reduce of a whole batch)."""
  if not hasattr(model, "_maybe_symbolic_build") or not hasattr(model, "_symbolic_build"):
    return
  import keras  # pylint: disable=import-outside-toplevel

  def symbolic_input(value):
    if isinstance(value, tf.distribute.DistributedValues):
      value = strategy.experimental_local_results(value)[0]
    shape = (None,) + tuple(value.shape[1:])
    return keras.KerasTensor(shape, dtype=value.dtype.name)

  def maybe_symbolic_build(iterator=None, data_batch=None):
    if data_batch is None and iterator is not None:
      for _, _, batches in iterator:
        data_batch = next(batches)
        break
    if data_batch is None:
      return
    data_batch = tf.nest.map_structure(symbolic_input, data_batch)
    with strategy.scope():
      model._symbolic_build(data_batch=data_batch)  # pylint: disable=protected-access

  model._maybe_symbolic_build = maybe_symbolic_build  # pylint: disable=protected-access


# ----------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------

_TASK = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")


def _tasks_named(text):
  names = []
  for job, index in _TASK.findall(text):
    name = f"{job} {index}"
    if name not in names:
      names.append(name)
  return names


def explain_collective_error(error, who, timeout_secs=None):
  """WorkerLost for a collective/coordination failure met by worker `who`, else None."""
  text = getattr(error, "message", None) or str(error)
  timeout = f"--collective_timeout_secs={timeout_secs:g}" if timeout_secs else \
      "--collective_timeout_secs"
  resume = "fix or restart it, then rerun every worker's command: training resumes from the " \
           "chief's last checkpoint"
  if isinstance(error, tf.errors.DeadlineExceededError) or "timed out" in text:
    return WorkerLost(f"{who}: no answer from the other workers within {timeout} s: one of "
                      f"them stopped or is stuck (its log says why); {resume}")
  unhealthy = re.search(r"unhealthy \(stopped sending heartbeats\):(.*?)(The tasks|$)", text,
                        re.S)
  if unhealthy:
    lost = _tasks_named(unhealthy.group(1))
    return WorkerLost(f"{who}: {' and '.join(lost) or 'a worker'} stopped answering (it ended "
                      f"on an error, crashed, or was killed or preempted: its log says why); "
                      f"{resume}")
  collective = ("Collective ops is aborted" in text or "CoordinationService" in text
                or "coordination service" in text.lower())
  if collective or isinstance(error, (tf.errors.UnavailableError, tf.errors.AbortedError)):
    lost = [name for name in _tasks_named(text) if name != who]
    reason = " ".join(re.sub(r"\{\{.*?\}\}", "", text.split("\n")[0]).split())[:200]
    return WorkerLost(f"{who}: lost the connection to {' and '.join(lost) or 'another worker'} "
                      f"({reason}); {resume}")
  return None


# ----------------------------------------------------------------------------------------
# Creating the strategy
# ----------------------------------------------------------------------------------------

def _tf_config():
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
  cluster, task_type, task_id, is_chief, num_workers = parse_tf_config(_tf_config())
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
    setup._sum([tf.constant([1], tf.int32)])  # pylint: disable=protected-access  # a barrier
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


def create_strategy(name=None):
  """The ClusterSetup for --strategy (or `name`)."""
  name = name or FLAGS.strategy
  if name == "default":
    return ClusterSetup(tf.distribute.get_strategy())
  if name == "mirrored":
    return _mirrored_strategy()
  if name == "multi_worker":
    return _multi_worker_strategy(FLAGS.collective_timeout_secs)
  if name == "tpu":
    return _tpu_strategy(FLAGS.tpu)
  raise UserError(f"--strategy={name}: expected one of {', '.join(STRATEGIES)}")
