"""The layout of a training directory, and reading and writing what it holds.

    train_dir/
      model_flags.json          every flag needed to rebuild the model (ModelConfig)
      checkpoint                TensorFlow's pointer to the latest checkpoint
      model.ckpt-<step>.*       checkpoints (model, optimizer, epoch)
      events.out.tfevents.*     TensorBoard summaries of training
      train_log.csv             one row per logged step (report and plots read it)
      eval/                     evaluation JSON and TensorBoard summaries
      export/<step>/            SavedModels for TF Serving (numeric version folders)
"""

import json
import os
import re

import tensorflow as tf

from yt8m_fusion import io_utils
from yt8m_fusion.errors import UserError
from yt8m_fusion.models import hparams
from yt8m_fusion.models.config import ModelConfig

MODEL_FLAGS_FILE = "model_flags.json"
CHECKPOINT_PREFIX = "model.ckpt"
TRAIN_LOG_FILE = "train_log.csv"
EVAL_DIR = "eval"
EXPORT_DIR = "export"

# What --start_new_model removes: only files this project writes, never anything else.
_OWN_FILE_PATTERNS = (
    re.compile(r"^model_flags\.json$"),
    re.compile(r"^checkpoint$"),
    re.compile(r"^model\.ckpt-\d+\.(index|data-\d+-of-\d+)$"),
    re.compile(r"^events\.out\.tfevents\..*$"),
    re.compile(r"^train_log\.csv$"),
    re.compile(r"^\.model_flags\.json\.tmp-.*$"),
)
_OWN_DIRS = (EVAL_DIR, EXPORT_DIR)


def model_flags_path(train_dir):
  return os.path.join(train_dir, MODEL_FLAGS_FILE)


def eval_dir(train_dir):
  return os.path.join(train_dir, EVAL_DIR)


def export_dir(train_dir):
  return os.path.join(train_dir, EXPORT_DIR)


def load_config(train_dir, required=True):
  """The ModelConfig saved by train.py, or None when there is none and not required."""
  path = model_flags_path(train_dir)
  if not tf.io.gfile.exists(path):
    if required:
      raise UserError(f"{path} does not exist: --train_dir must be a folder written by train.py "
                      "(did you run train.py with this --train_dir?)")
    return None
  with tf.io.gfile.GFile(path) as handle:
    return ModelConfig.from_json(handle.read(), source=path)


def save_config(train_dir, config):
  io_utils.write_text_atomic(model_flags_path(train_dir), config.to_json())


def config_mismatches(saved, requested, explicit_flags):
  """Flags given on the command line whose values differ from the saved model's."""
  saved_json, requested_json = saved.to_json_dict(), requested.to_json_dict()
  mismatches = []
  for key in ("model", "feature_names", "feature_sizes", "frame_features", "label_loss",
              "num_classes"):
    if key in explicit_flags and saved_json[key] != requested_json[key]:
      mismatches.append((key, saved_json[key], requested_json[key]))
  for key, value in requested_json["model_params"].items():
    if key in explicit_flags and saved_json["model_params"].get(key, value) != value:
      mismatches.append((key, saved_json["model_params"][key], value))
  return mismatches


def merge_config(saved, requested, explicit_flags, train_dir):
  """The saved config, after checking that explicit flags agree with it.

  Flags left at their defaults take the saved values, so `eval.py --train_dir=X` and a
  resumed `train.py --train_dir=X` rebuild exactly the trained model.
  """
  mismatches = config_mismatches(saved, requested, explicit_flags)
  if mismatches:
    details = "; ".join(f"--{key}: saved {old!r}, given {new!r}" for key, old, new in mismatches)
    raise UserError(f"{model_flags_path(train_dir)} does not match the command line ({details}); "
                    "drop those flags to use the saved model, or pass --start_new_model or "
                    "another --train_dir to train a new one")
  # Hyper-parameters added since the model was saved take their current defaults, or the
  # value that reproduces the old behaviour where the default changed it.
  params = dict(requested.params)
  if saved.params:  # our format (the starter's five-key files have no hyper-parameters)
    params.update({key: value for key, value in hparams.VALUES_BEFORE_FLAG_EXISTED.items()
                   if key in params and key not in explicit_flags})
  params.update(saved.params)
  saved.params = params
  return saved


def latest_checkpoint(train_dir):
  return tf.train.latest_checkpoint(train_dir)


def checkpoint_step(path):
  """model.ckpt-1234 -> 1234."""
  match = re.search(r"-(\d+)$", path or "")
  return int(match.group(1)) if match else 0


def remove_own_files(train_dir):
  """--start_new_model: removes this project's files from train_dir, nothing else."""
  if not tf.io.gfile.isdir(train_dir):
    return []
  removed = []
  for name in tf.io.gfile.listdir(train_dir):
    name = name.rstrip("/")
    path = os.path.join(train_dir, name)
    if name in _OWN_DIRS and tf.io.gfile.isdir(path):
      tf.io.gfile.rmtree(path)
      removed.append(name + "/")
    elif any(pattern.match(name) for pattern in _OWN_FILE_PATTERNS):
      tf.io.gfile.remove(path)
      removed.append(name)
  return removed


def write_json(path, data):
  io_utils.write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def latest_export(train_dir):
  """The newest numeric version folder under train_dir/export, or None."""
  base = export_dir(train_dir)
  if not tf.io.gfile.isdir(base):
    return None
  versions = [int(name.rstrip("/")) for name in tf.io.gfile.listdir(base)
              if name.rstrip("/").isdigit()]
  return os.path.join(base, str(max(versions))) if versions else None


def restore_weights(model, checkpoint_path):
  """Loads the model's weights from a training checkpoint (optimizer state is skipped)."""
  try:
    status = tf.train.Checkpoint(model=model).restore(checkpoint_path).expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError) as error:
    # A shape mismatch raises ValueError, missing variables AssertionError: either way
    # model_flags.json describes another model than the one trained (e.g. it was copied
    # from another train_dir).
    raise UserError(f"{checkpoint_path} does not hold the weights of the model described in "
                    f"{model_flags_path(os.path.dirname(checkpoint_path))} "
                    f"({str(error).splitlines()[0][:200]}); model_flags.json and the "
                    "checkpoints must come from the same training run") from None
  except tf.errors.OpError as error:
    reason = (error.message or type(error).__name__).strip().splitlines()[0][:200]
    raise UserError(f"cannot read the checkpoint {checkpoint_path} ({reason}); expected a "
                    "complete checkpoint written by train.py") from None


def require_checkpoint(train_dir):
  path = latest_checkpoint(train_dir)
  if path is None:
    raise UserError(f"no checkpoint in {train_dir}: train a model there first "
                    "(python train.py --train_dir=...)")
  return path
