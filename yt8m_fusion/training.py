"""The training loop: Keras `fit` with the starter code's optimizer, learning-rate and
checkpoint behaviour, made resumable and safe against faults.

- Global step = `optimizer.iterations`, saved in every checkpoint, so a rerun of the
  same command resumes and the step count continues.
- Checkpoints `train_dir/model.ckpt-<step>` every `checkpoint_steps` steps or
  `checkpoint_secs` seconds, at the end, and on SIGTERM (preemption); a checkpoint is
  written only when every weight is finite.
- A NaN or Inf loss stops training and names the step; the last good checkpoint stays.
- Every `log_every_n_steps`: the starter's log line, TensorBoard scalars in train_dir
  and a row of train_log.csv.
"""

import dataclasses
import logging
import math
import os
import re
import signal
import time
import warnings

import keras
import tensorflow as tf

from yt8m_fusion import losses
from yt8m_fusion import metrics as yt8m_metrics
from yt8m_fusion import optimizers
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.errors import UserError

# The starter passed tf.train class names; Keras names work too.
OPTIMIZERS = {
    "adamoptimizer": "adam", "adam": "adam",
    "adamw": "adamw", "adamwoptimizer": "adamw",
    "sgd": "sgd", "gradientdescentoptimizer": "sgd",
    "momentumoptimizer": "momentum", "momentum": "momentum",
    "rmspropoptimizer": "rmsprop", "rmsprop": "rmsprop",
    "adagradoptimizer": "adagrad", "adagrad": "adagrad",
}

TRAIN_LOG_COLUMNS = ("step", "epoch", "loss", "hit_at_one", "perr", "gap",
                     "examples_per_second", "learning_rate", "wall_time")


@dataclasses.dataclass
class TrainOptions:
  """How to train (the train.py flags that are not about the model or the data)."""

  batch_size: int = 1024  # per replica, as in the starter
  num_epochs: int = 5
  max_steps: int | None = None
  base_learning_rate: float = 0.01
  learning_rate_decay: float = 0.95
  learning_rate_decay_examples: float = 4_000_000
  optimizer: str = "AdamOptimizer"
  weight_decay: float = 0.004  # AdamW only
  momentum: float = 0.9  # MomentumOptimizer only
  clip_gradient_norm: float = 1.0
  checkpoint_steps: int = 1000
  checkpoint_secs: float = 900
  max_checkpoints_to_keep: int = 5
  log_every_n_steps: int = 10
  jit_compile: object = "auto"
  steps_per_execution: int = 1
  verbose: int | str = "auto"


@dataclasses.dataclass
class TrainResult:
  step: int
  epoch: int
  checkpoint_path: str | None
  interrupted: bool = False  # stopped by SIGTERM
  examples_per_second: float | None = None


class TrainingDiverged(UserError):
  """The loss became NaN or Inf."""


def learning_rate_schedule(options, num_replicas=1):
  """The starter's exponential decay by examples seen, with a staircase."""
  global_batch = options.batch_size * num_replicas
  if options.learning_rate_decay >= 1.0 or options.learning_rate_decay_examples <= 0:
    return options.base_learning_rate
  return keras.optimizers.schedules.ExponentialDecay(
      initial_learning_rate=options.base_learning_rate,
      decay_steps=options.learning_rate_decay_examples / global_batch,
      decay_rate=options.learning_rate_decay, staircase=True)


def build_optimizer(options, num_replicas=1):
  kind = OPTIMIZERS.get(options.optimizer.lower())
  if kind is None:
    raise UserError(f"--optimizer={options.optimizer} is not supported; use one of "
                    "AdamOptimizer (Adam), AdamW, SGD (GradientDescentOptimizer), "
                    "MomentumOptimizer, RMSPropOptimizer, AdagradOptimizer")
  learning_rate = learning_rate_schedule(options, num_replicas)
  # The starter clips each gradient tensor by its own norm (clip_by_norm), which is
  # what Keras' `clipnorm` does; 0 or less turns clipping off.
  clip = {"clipnorm": options.clip_gradient_norm} if options.clip_gradient_norm > 0 else {}
  if kind == "adam":
    # Keras' Adam with one fused update kernel per variable (same variables and formula).
    return optimizers.FusedAdam(learning_rate, **clip)
  if kind == "adamw":
    return keras.optimizers.AdamW(learning_rate, weight_decay=options.weight_decay, **clip)
  if kind == "sgd":
    return keras.optimizers.SGD(learning_rate, **clip)
  if kind == "momentum":
    return keras.optimizers.SGD(learning_rate, momentum=options.momentum, **clip)
  if kind == "rmsprop":
    return keras.optimizers.RMSprop(learning_rate, **clip)
  return keras.optimizers.Adagrad(learning_rate, **clip)


def current_learning_rate(optimizer):
  rate = optimizer.learning_rate
  return float(keras.ops.convert_to_numpy(rate))


def training_metrics():
  return [yt8m_metrics.HitAtOne(), yt8m_metrics.PrecisionAtEqualRecallRate(),
          yt8m_metrics.GlobalAveragePrecision(top_k=20)]


class CheckpointKeeper:
  """Model + optimizer + epoch in `train_dir/model.ckpt-<step>`; restore and save."""

  def __init__(self, train_dir, model, optimizer, max_to_keep=5):
    self.train_dir = train_dir
    self.model = model
    self.optimizer = optimizer
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self.epoch)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, train_dir, max_to_keep=max_to_keep,
        checkpoint_name=train_dir_lib.CHECKPOINT_PREFIX)
    self.last_saved_step = None

  @property
  def step(self):
    return int(self.optimizer.iterations.numpy())

  def restore_latest(self):
    """Restores the newest checkpoint; returns its path or None."""
    path = self.manager.latest_checkpoint
    if path is None:
      return None
    # Optimizer slots must exist before a restore can fill them.
    self.optimizer.build(self.model.trainable_variables)
    try:
      self.checkpoint.restore(path).assert_existing_objects_matched()
    except (AssertionError, ValueError) as error:
      raise UserError(f"cannot restore {path}: it does not fit the model in model_flags.json "
                      f"({str(error).splitlines()[0]}); pass --start_new_model to start over") \
          from None
    except (tf.errors.OpError, IndexError) as error:  # IndexError: a data file cut short
      raise UserError(f"cannot read the checkpoint {path} ({_short_reason(error)}); expected a "
                      "complete checkpoint: remove it (and its line in the 'checkpoint' file) to "
                      "resume from the one before, or pass --start_new_model") from None
    self.last_saved_step = self.step
    return path

  def weights_are_finite(self):
    return all(bool(tf.reduce_all(tf.math.is_finite(v.value)).numpy())
               for v in self.model.weights if "float" in str(v.dtype))

  def save(self):
    """Saves at the current step unless already saved; returns the path."""
    step = self.step
    if self.last_saved_step == step and self.manager.latest_checkpoint:
      return self.manager.latest_checkpoint
    if not self.weights_are_finite():
      logging.error("Not saving a checkpoint at step %d: some weights are NaN or Inf", step)
      return self.manager.latest_checkpoint
    try:
      path = self.manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as error:
      # The 'checkpoint' file still names the previous checkpoint (TensorFlow updates it
      # only after a complete save); remove what the failed save left, to free the space.
      self._remove_partial_save(step)
      raise UserError(f"could not save a checkpoint in {self.train_dir} at step {step}: "
                      f"{_short_reason(error)}; {self._describe_previous()}") from None
    self.last_saved_step = step
    logging.info("Saved checkpoint %s", path)
    return path

  def _remove_partial_save(self, step):
    prefix = os.path.join(self.train_dir, f"{train_dir_lib.CHECKPOINT_PREFIX}-{step}")
    if prefix in self.manager.checkpoints:
      return
    for path in tf.io.gfile.glob(prefix + "_temp*") + tf.io.gfile.glob(prefix + ".*"):
      try:
        if tf.io.gfile.isdir(path):
          tf.io.gfile.rmtree(path)
        else:
          tf.io.gfile.remove(path)
      except tf.errors.OpError:
        logging.warning("Could not remove %s, left by the failed save", path)

  def _describe_previous(self):
    previous = self.manager.latest_checkpoint
    if previous is None:
      return "no earlier checkpoint exists"
    try:
      tf.train.load_checkpoint(previous)
    except (tf.errors.OpError, ValueError) as error:
      return f"the previous checkpoint {previous} cannot be read either ({_short_reason(error)})"
    return (f"the previous checkpoint {previous} is intact: free space or choose another "
            "--train_dir, then rerun the same command to resume from it")


def _short_reason(error):
  """The first line of an error without TensorFlow's op and function-node decorations."""
  text = getattr(error, "message", None) or str(error) or type(error).__name__
  if "No space left on device" in text:
    return "the disk is full (No space left on device)"
  text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
  text = re.sub(r"\s*\[Op:[^\]]*\]", "", text)
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  return lines[0] if lines else type(error).__name__


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
      self.model.stop_training = True

  def on_epoch_end(self, epoch, logs=None):
    if self.nan_step is None and not self.interrupted:
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
                        _short_reason(error))


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


def compile_model(model, config, options, num_replicas=1):
  optimizer = build_optimizer(options, num_replicas)
  model.compile(optimizer=optimizer, loss=losses.get_loss(config.label_loss),
                metrics=training_metrics(), jit_compile=options.jit_compile,
                steps_per_execution=options.steps_per_execution)
  return optimizer


def fit(model, dataset, keeper, options, *, global_batch_size, is_chief=True,
        summary_dir=None, agree=None):
  """Trains until num_epochs or max_steps; returns a TrainResult.

  `model` must be compiled and `keeper` restored (if resuming) by the caller. `agree`:
  see TrainingMonitor (multi-worker; `distribute.ClusterSetup.agreement()`).
  """
  initial_epoch = int(keeper.epoch.numpy())
  start_step = keeper.step
  if options.max_steps is not None and start_step >= options.max_steps:
    logging.info("Already at step %d >= --max_steps=%d: nothing to train", start_step,
                 options.max_steps)
    return TrainResult(step=start_step, epoch=initial_epoch,
                       checkpoint_path=keeper.manager.latest_checkpoint)
  if initial_epoch >= options.num_epochs:
    logging.info("Already trained %d epoch(s) >= --num_epochs=%d: nothing to train",
                 initial_epoch, options.num_epochs)
    return TrainResult(step=start_step, epoch=initial_epoch,
                       checkpoint_path=keeper.manager.latest_checkpoint)
  with SigtermFlag() as sigterm:
    monitor = TrainingMonitor(keeper, options, global_batch_size, sigterm, is_chief=is_chief,
                              summary_dir=summary_dir, agree=agree)
    with warnings.catch_warnings():
      # An epoch ends when the data does (its length is unknown up front), which is
      # how the starter worked; Keras warns about it every epoch.
      warnings.filterwarnings("ignore", message="Your input ran out of data")
      model.fit(dataset, epochs=options.num_epochs, initial_epoch=initial_epoch,
                callbacks=[monitor], verbose=options.verbose, shuffle=False)
  if monitor.nan_step is not None:
    raise TrainingDiverged(
        f"the training loss became NaN or Inf at step {monitor.nan_step}; stopped without "
        f"saving; the last good checkpoint is {keeper.manager.latest_checkpoint or 'none'} "
        "(lower --base_learning_rate or check the input data)")
  path = keeper.save()
  return TrainResult(step=keeper.step, epoch=int(keeper.epoch.numpy()), checkpoint_path=path,
                     interrupted=monitor.interrupted,
                     examples_per_second=monitor.examples_per_second)

