"""Checkpoints of a training run: model, optimizer and epoch in `train_dir/model.ckpt-<step>`.

The global step is `optimizer.iterations`, saved in every checkpoint, so a rerun of the same
command resumes and the step count continues. A checkpoint is written only when every
weight is finite, and a failed save (a full disk) removes what it left and says whether
the previous checkpoint is intact.
"""

import logging
import os

import tensorflow as tf

from yt8m_fusion import io_utils
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.errors import UserError


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
      raise UserError(f"cannot read the checkpoint {path} ({io_utils.describe_error(error)}); "
                      "expected a complete checkpoint: remove it (and its line in the 'checkpoint' file) to "
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
                      f"{io_utils.describe_error(error)}; {self._describe_previous()}") from None
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
      return (f"the previous checkpoint {previous} cannot be read either "
              f"({io_utils.describe_error(error)})")
    return (f"the previous checkpoint {previous} is intact: free space or choose another "
            "--train_dir, then rerun the same command to resume from it")
