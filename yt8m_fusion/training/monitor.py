"""What happens between training steps: logging, summaries, periodic checkpoints, stops.

- Every `log_every_n_steps`: the starter's log line, TensorBoard scalars in train_dir and a
  row of train_log.csv.
- Checkpoints every `checkpoint_steps` steps or `checkpoint_secs` seconds.
- A NaN or Inf loss stops training and names the step; the last good checkpoint stays.
- SIGTERM (preemption) stops at the next step with a checkpoint.
"""

import logging
import math
import os
import signal
import time

import keras
import tensorflow as tf

from yt8m_fusion import io_utils
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.training.options import current_learning_rate

TRAIN_LOG_COLUMNS = ("step", "epoch", "loss", "hit_at_one", "perr", "gap",
                     "examples_per_second", "learning_rate", "wall_time")


class SigtermFlag:
  """Turns SIGTERM (preemption) into a flag that the training loop checks each step."""

  def __init__(self):
    self.received = False
    self._previous = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # Not the main thread: leave signals alone.
      self._previous = None
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    self.received = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


class TrainingMonitor(keras.callbacks.Callback):
  """Logging, summaries, periodic checkpoints, max_steps, NaN and SIGTERM handling."""

  def __init__(self, keeper, options, global_batch_size, sigterm, is_chief=True,
               summary_dir=None, agree=None):
    super().__init__()
    # Multi-worker: agree(step, flags) -> flags OR-ed over the workers, so that a SIGTERM
    # or a time-based checkpoint stops or saves every worker at the same step.
    self.agree = agree
    self.keeper = keeper
    self.options = options
    self.global_batch_size = global_batch_size
    self.sigterm = sigterm
    self.is_chief = is_chief
    self.nan_step = None
    self.interrupted = False
    self.stopped_at_max_steps = False
    self.examples_per_second = None
    self._epoch = 0
    self._last_log = (None, None)
    self._last_save_time = time.time()
    self._writer = tf.summary.create_file_writer(summary_dir) if summary_dir else None
    self._log_path = (os.path.join(keeper.train_dir, train_dir_lib.TRAIN_LOG_FILE)
                      if summary_dir else None)

  def on_train_begin(self, logs=None):
    self._last_log = (self.keeper.step, time.time())

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch

  def on_train_batch_end(self, batch, logs=None):
    logs = logs or {}
    step = self.keeper.step
    loss = logs.get("loss")
    if loss is not None and not math.isfinite(float(loss)):
      self.nan_step = step
      self.model.stop_training = True
      return
    self._maybe_log(step, logs)
    stop = self.sigterm.received
    due_time = time.time() - self._last_save_time >= self.options.checkpoint_secs
    if self.agree is not None:
      stop, due_time = self.agree(step, (stop, due_time))
    if stop:
      self.interrupted = True
      self.model.stop_training = True
      return
    due_steps = step - (self.keeper.last_saved_step or 0) >= self.options.checkpoint_steps
    if due_steps or due_time:
      self._save()
    if self.options.max_steps is not None and step >= self.options.max_steps:
      self.stopped_at_max_steps = True
      self.model.stop_training = True

  def on_epoch_end(self, epoch, logs=None):
    # An epoch cut short (NaN, SIGTERM, --max_steps) is not complete: a run resumed with a
    # larger --max_steps or --num_epochs trains it again rather than skipping it. (When
    # --max_steps falls on the epoch's last batch, the epoch is trained once more.)
    if self.nan_step is None and not self.interrupted and not self.stopped_at_max_steps:
      self.keeper.epoch.assign(epoch + 1)

  def _save(self):
    self.keeper.save()
    self._last_save_time = time.time()

  def _maybe_log(self, step, logs):
    last_step, last_time = self._last_log
    now = time.time()
    if step - last_step < self.options.log_every_n_steps:
      return
    self.examples_per_second = (step - last_step) * self.global_batch_size / max(now - last_time,
                                                                                 1e-9)
    self._last_log = (step, now)
    row = {
        "step": step, "epoch": self._epoch + 1,
        "loss": float(logs.get("loss", float("nan"))),
        "hit_at_one": float(logs.get("hit_at_one", float("nan"))),
        "perr": float(logs.get("perr", float("nan"))),
        "gap": float(logs.get("gap", float("nan"))),
        "examples_per_second": self.examples_per_second,
        "learning_rate": current_learning_rate(self.model.optimizer),
        "wall_time": now,
    }
    if not self.is_chief:
      return
    logging.info("training step %d | Loss: %.2f Examples/sec: %.2f | Hit@1: %.2f PERR: %.2f "
                 "GAP: %.2f", step, row["loss"], row["examples_per_second"], row["hit_at_one"],
                 row["perr"], row["gap"])
    if self._writer is not None:
      with self._writer.as_default(step=step):
        tf.summary.scalar("model/Training_Hit@1", row["hit_at_one"])
        tf.summary.scalar("model/Training_Perr", row["perr"])
        tf.summary.scalar("model/Training_GAP", row["gap"])
        tf.summary.scalar("global_step/Examples/Second", row["examples_per_second"])
        tf.summary.scalar("learning_rate", row["learning_rate"])
        tf.summary.scalar("label_loss", row["loss"])
      self._writer.flush()
    if self._log_path:
      try:
        _append_csv_row(self._log_path, row)
      except (tf.errors.OpError, OSError) as error:
        # The log is not worth stopping for; a checkpoint that cannot be saved is.
        logging.warning("Could not append to %s (%s); training continues", self._log_path,
                        io_utils.describe_error(error))


def _append_csv_row(path, row):
  new_file = not tf.io.gfile.exists(path)
  with tf.io.gfile.GFile(path, "a") as handle:
    if new_file:
      handle.write(",".join(TRAIN_LOG_COLUMNS) + "\n")
    handle.write(",".join(_format_value(row[column]) for column in TRAIN_LOG_COLUMNS) + "\n")


def _format_value(value):
  if isinstance(value, float):
    return f"{value:.6g}"
  return str(value)
