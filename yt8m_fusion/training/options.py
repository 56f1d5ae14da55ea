"""How to train: `TrainOptions`, each model's defaults, the optimizer and its schedule;
how to read: `ReadOptions`.

The starter code's optimizer names, learning-rate decay (by examples seen, staircase) and
per-tensor gradient clipping are kept. `TrainOptions.for_model` gives the defaults a model
trains well with (see docs/TRAINING.md for how they were chosen); the programs override
only what the user gave on the command line.
"""

import dataclasses

import keras

from yt8m_fusion import models
from yt8m_fusion import optimizers
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
PRECISION_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
LEARNING_RATE_SCALING = ("none", "linear", "sqrt")
# On the demo dataset (3000 training videos) the starter's batch of 1024 makes 3 steps an
# epoch; 128 gives the main job enough steps to learn in a few minutes.
DEMO_BATCH_SIZE = 128


@dataclasses.dataclass(frozen=True)
class ReadOptions:
  """How the training and evaluation records are read."""

  max_frames: int = 300
  segment_labels: bool = False
  num_readers: int = 8
  skip_corrupt_records: bool = False
  shuffle: bool = True  # the training records (evaluation reads in order)
  # A function of video_ids [B] -> bool [B]: train on those videos only (cross-fitting's
  # folds, distillation.FoldFilter); None: all.
  keep_videos: object = None


@dataclasses.dataclass
class TrainOptions:
  """How to train (the train.py flags that are about neither the model nor the data)."""

  batch_size: int = 1024  # per replica, as in the starter
  num_epochs: int = 5
  max_steps: int | None = None
  base_learning_rate: float = 0.01
  learning_rate_decay: float = 0.95
  learning_rate_decay_examples: float = 4_000_000
  learning_rate_scaling: str = "none"  # with the number of replicas: none, linear, sqrt
  optimizer: str = "AdamOptimizer"
  weight_decay: float = 0.004  # AdamW only
  momentum: float = 0.9  # MomentumOptimizer only
  clip_gradient_norm: float = 1.0  # per gradient tensor; <= 0 turns clipping off
  regularization_penalty: float = 1.0  # weight of the models' L2 regularization losses
  label_smoothing: float = 0.0  # the training targets are y (1 - s) + s / 2
  mixed_precision: str = "float32"
  checkpoint_steps: int = 1000
  checkpoint_secs: float = 900
  max_checkpoints_to_keep: int = 5
  log_every_n_steps: int = 10
  jit_compile: object = "auto"
  steps_per_execution: int = 1
  seed: int | None = None
  verbose: int | str = "auto"
  # A distillation.DistillationOptions: train against teachers' predictions (None: labels).
  distillation: object = None

  @classmethod
  def for_model(cls, model_name, label_loss="CrossEntropyLoss", **overrides):
    """The defaults for `model_name` (its registry entry's), then `overrides`.

    A model's default label smoothing is a cross-entropy setting: with another
    `label_loss` (the ModelConfig's) it is left out, as the flag's own default would be.
    """
    defaults = dict(models.default_training(model_name))
    if label_loss != "CrossEntropyLoss":
      defaults.pop("label_smoothing", None)
    defaults.update(overrides)
    return cls(**defaults)

  def validate(self):
    """UserError naming the flag of the first value that cannot mean anything."""
    for name in ("batch_size", "num_epochs", "checkpoint_steps", "max_checkpoints_to_keep",
                 "log_every_n_steps", "steps_per_execution"):
      if int(getattr(self, name)) < 1:
        raise UserError(f"--{_flag_name(name)}={getattr(self, name)}: expected at least 1")
    if self.max_steps is not None and self.max_steps < 1:
      raise UserError(f"--max_steps={self.max_steps}: expected at least 1")
    if self.base_learning_rate < 0:
      raise UserError(f"--base_learning_rate={self.base_learning_rate}: expected >= 0")
    if not 0.0 <= self.label_smoothing < 1.0:
      raise UserError(f"--label_smoothing={self.label_smoothing}: expected a value in [0, 1)")
    if self.mixed_precision not in PRECISION_POLICIES:
      raise UserError(f"--mixed_precision={self.mixed_precision}: expected one of "
                      f"{', '.join(PRECISION_POLICIES)}")
    if self.learning_rate_scaling not in LEARNING_RATE_SCALING:
      raise UserError(f"--learning_rate_scaling={self.learning_rate_scaling}: expected one of "
                      f"{', '.join(LEARNING_RATE_SCALING)}")
    if self.optimizer.lower() not in OPTIMIZERS:
      raise UserError(f"--optimizer={self.optimizer} is not supported; use one of "
                      "AdamOptimizer (Adam), AdamW, SGD (GradientDescentOptimizer), "
                      "MomentumOptimizer, RMSPropOptimizer, AdagradOptimizer")
    if self.distillation is not None:
      self.distillation.validate()
    return self


def _flag_name(field):
  return {"checkpoint_steps": "export_model_steps"}.get(field, field)


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
  """The Keras optimizer named by `options.optimizer`, without clipping.

  Clipping is part of the training step (`TrainingModel`), where it can follow the
  cross-replica gradient sum.
  """
  options.validate()
  kind = OPTIMIZERS[options.optimizer.lower()]
  learning_rate = learning_rate_schedule(options, num_replicas)
  if kind == "adam":
    # Keras' Adam with one fused update kernel per variable (same variables and formula).
    optimizer = optimizers.FusedAdam(learning_rate)
  elif kind == "adamw":
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=options.weight_decay)
  elif kind == "sgd":
    optimizer = keras.optimizers.SGD(learning_rate)
  elif kind == "momentum":
    optimizer = keras.optimizers.SGD(learning_rate, momentum=options.momentum)
  elif kind == "rmsprop":
    optimizer = keras.optimizers.RMSprop(learning_rate)
  else:
    optimizer = keras.optimizers.Adagrad(learning_rate)
  # Under mixed_float16, `compile` wraps it in a LossScaleOptimizer.
  return optimizer


def current_learning_rate(optimizer):
  return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
