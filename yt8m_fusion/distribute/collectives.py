"""Agreement between the workers of a MultiWorkerMirroredStrategy job.

The chief's state is the source of truth: the other workers train the chief's model
(`config_from_chief`) from the chief's variables (`sync_training_state`), so a restarted job
resumes from the chief's last checkpoint even when the other workers cannot read
--train_dir. Decisions that are not a function of the step alone (a time-based checkpoint,
a SIGTERM) are agreed on by all workers (`agreement`), so that every worker saves and stops
at the same step. Every exchange is one small all-reduce.
"""

import json
import logging
import zlib

import numpy as np
import tensorflow as tf

from yt8m_fusion.distribute.errors import explain_collective_error
from yt8m_fusion.errors import UserError

# SIGTERM and time-based checkpoints are agreed on every this many steps.
AGREE_EVERY_N_STEPS = 10
# dtypes the collective ops reduce; others travel as int32 (or float32).
_COLLECTIVE_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int32, tf.int64)


class Collectives:
  """All-reduce based exchanges between the workers (replica 0 is on the chief)."""

  def __init__(self, strategy, *, is_chief, name, timeout_secs=None):
    self.strategy = strategy
    self.is_chief = is_chief
    self.name = name
    self.timeout_secs = timeout_secs

  def config_from_chief(self, resolve_fn, from_json):
    """The chief's `resolve_fn()` (a ModelConfig) on every worker.

    Non-chief workers do not read --train_dir/model_flags.json themselves (it may not be
    on a file system they share): the chief sends its config as JSON.
    """
    config = resolve_fn() if self.is_chief else None
    text = self.broadcast_text(config.to_json() if config is not None else "")
    if self.is_chief:
      return config
    return from_json(text, source=f"the chief's model config ({self.name})")

  def sync_from_chief(self, variables):
    """Sets `variables` on every worker to the chief's values.

    Call inside `strategy.scope()` once every worker has created the same variables
    (model, optimizer slots, counters) and the chief has restored its checkpoint. The
    variable shapes are compared first: a different model on some worker is an error
    on every worker, not a hang.
    """
    variables = list(variables)
    signature = zlib.crc32(json.dumps(
        [[list(v.shape), tf.as_dtype(v.dtype).name] for v in variables]).encode("utf-8"))
    chief_signature = int(self.broadcast([tf.constant([signature], tf.int64)])[0].numpy()[0])
    mismatch = self.sum([tf.constant([0 if chief_signature == signature else 1], tf.int32)])
    different = int(mismatch[0].numpy()[0])
    if different:
      raise UserError(
          f"{self.name or 'this worker'}: {different} worker(s) built a model whose variables "
          f"differ from the chief's ({len(variables)} here); every worker must run the same "
          "yt8m_fusion version with the same flags")
    values = self.broadcast([_read(v) for v in variables])
    for variable, value in zip(variables, values):
      variable.assign(value)

  def sync_training_state(self, model, optimizer, keeper):
    """Every worker continues from the chief's model, optimizer and epoch.

    Call inside `strategy.scope()` after the chief's `keeper.restore_latest()`. The
    optimizer is built first on every worker (its slots are variables too), and every
    worker then counts checkpoint periods from the same step.
    """
    if not optimizer.built:
      optimizer.build(model.trainable_variables)
    variables = list(model.variables) + list(optimizer.variables) + [keeper.epoch]
    self.sync_from_chief(variables)
    keeper.last_saved_step = keeper.step
    if not self.is_chief:
      logging.info("%s: took the chief's training state at step %d, epoch %d (%d variables)",
                   self.name, keeper.step, int(keeper.epoch.numpy()), len(variables))

  def agreement(self, every_n_steps=AGREE_EVERY_N_STEPS):
    """agree(step, flags) -> the flags OR-ed over all workers.

    The flags are exchanged once every `every_n_steps` steps (between exchanges the
    result is all False, so a local flag waits for the next exchange). Every worker
    sees the same steps, so every worker exchanges at the same steps.
    """
    last = {"step": None}

    def agree(step, flags_):
      if last["step"] is not None and step - last["step"] < every_n_steps:
        return tuple(False for _ in flags_)
      last["step"] = step
      total = self.sum([tf.constant([1 if f else 0 for f in flags_], tf.int32)])[0].numpy()
      return tuple(bool(t > 0) for t in total)

    return agree

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
      raise explain_collective_error(error, self.name or "this worker", self.timeout_secs) \
          or error from None
    return [strategy.experimental_local_results(value)[0] for value in result]

  def sum(self, tensors):
    return self._replica_sum(tensors, source_only=False)

  def broadcast(self, tensors):
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

  def broadcast_text(self, text):
    data = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
    length = int(self.broadcast([tf.constant([data.size], tf.int32)])[0].numpy()[0])
    padded = np.zeros([max(length, 1)], np.int32)
    if self.is_chief:
      padded[:data.size] = data
    received = self.broadcast([tf.constant(padded)])[0].numpy()[:length]
    return received.astype(np.uint8).tobytes().decode("utf-8")


def _read(variable):
  """The value of a Keras variable (`.value` property) or a tf.Variable."""
  value = getattr(variable, "value", None)
  if value is not None and not callable(value):
    return tf.convert_to_tensor(value)
  return tf.convert_to_tensor(variable)
