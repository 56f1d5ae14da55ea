"""The layout of a training directory, and reading and writing what it holds.

    train_dir/
      model_flags.json          every flag needed to rebuild the model (ModelConfig): the
                                starter's five keys, num_classes and the model's
                                hyper-parameters
      checkpoint                TensorFlow's pointer to the latest checkpoint
      model.ckpt-<step>.*       checkpoints (model, optimizer, epoch)
      events.out.tfevents.*     TensorBoard summaries of training
      train_log.csv             one row per logged step (report and plots read it)
      eval/                     evaluation JSON and TensorBoard summaries
      export/<step>/            SavedModels for TF Serving (numeric version folders)
"""

import dataclasses
import json
import logging
import os
import re

import tensorflow as tf

from yt8m_fusion import io_utils
from yt8m_fusion.errors import UserError
from yt8m_fusion.models.config import ModelConfig

MODEL_FLAGS_FILE = "model_flags.json"
CHECKPOINT_PREFIX = "model.ckpt"
CHECKPOINT_INDEX_FILE = "checkpoint"
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
    re.compile(r"^distillation\.json$"),  # train.py --teacher (yt8m_fusion.distillation)
    re.compile(r"^teacher_predictions\.npz$"),
)
_OWN_DIRS = (EVAL_DIR, EXPORT_DIR)
# What a train.py killed while writing leaves: TensorFlow's checkpoint temporaries (a
# `<prefix>_temp` folder, then the renamed files; `checkpoint.tmp<hex>` while updating the
# index) and our own atomic writes' hidden temporaries.
_STALE_TEMPORARY_PATTERNS = (
    re.compile(r"^model\.ckpt-\d+_temp$"),
    re.compile(r"^checkpoint\.tmp[0-9a-f]{32}$"),
    re.compile(r"^\.model_flags\.json\.tmp-.*$"),
)


def model_flags_path(train_dir):
  return os.path.join(train_dir, MODEL_FLAGS_FILE)


def eval_dir(train_dir):
  return os.path.join(train_dir, EVAL_DIR)


def export_dir(train_dir):
  return os.path.join(train_dir, EXPORT_DIR)


def _is_saved_model(path):
  return tf.io.gfile.exists(os.path.join(path, "saved_model.pb"))


def export_versions(path):
  """Numeric version folders holding a SavedModel (an export/ folder's content)."""
  try:
    names = [name.rstrip("/") for name in tf.io.gfile.listdir(path)]
  except tf.errors.OpError:
    return []
  return sorted((name for name in names if name.isdigit() and
                 _is_saved_model(os.path.join(path, name))), key=int)


def export_folder_error(path, flag="--train_dir"):
  """A UserError when `path` is an export (export/<step>) or a train_dir's export/ folder."""
  path = path.rstrip("/") or path
  if _is_saved_model(path):
    parent = os.path.dirname(os.path.dirname(path)) or "."
    return UserError(f"{flag}={path} is an exported SavedModel (train_dir/export/<step>), not a "
                     f"train_dir; expected the folder train.py wrote checkpoints to (here "
                     f"{parent}), or give the export to inference.py --saved_model_dir={path}")
  versions = export_versions(path)
  if versions:
    parent = os.path.dirname(path) or "."
    return UserError(f"{flag}={path} is a train_dir's export folder (SavedModels "
                     f"{', '.join(versions)}), not a train_dir; expected the folder train.py "
                     f"wrote checkpoints to (here {parent}), or give an export to inference.py "
                     f"--saved_model_dir={os.path.join(path, versions[-1])}")
  return None


def check_not_export(train_dir):
  """train.py: refuses to write checkpoints into an export folder."""
  error = export_folder_error(train_dir)
  if error is not None:
    raise error


def _not_a_train_dir_error(train_dir):
  """Why `train_dir` (which has no model_flags.json) is not a train_dir."""
  if not tf.io.gfile.exists(train_dir):
    return io_utils.unexpanded_home_error(train_dir, "--train_dir") or UserError(
        f"--train_dir={train_dir} does not exist; expected a folder written by train.py (did "
        "you run train.py with this --train_dir?)")
  if not tf.io.gfile.isdir(train_dir):
    return UserError(f"--train_dir={train_dir} is a file; expected a folder written by train.py "
                     "(model_flags.json and model.ckpt-<step> checkpoints)")
  export_error = export_folder_error(train_dir)
  if export_error is not None:
    return export_error
  parent = os.path.dirname(os.path.normpath(train_dir))
  if parent != os.path.normpath(train_dir) and tf.io.gfile.exists(model_flags_path(parent)):
    return UserError(f"--train_dir={train_dir} is a folder inside the train_dir {parent}; "
                     f"expected the train_dir itself (--train_dir={parent})")
  return UserError(f"{model_flags_path(train_dir)} does not exist: --train_dir must be a folder "
                   "written by train.py (did you run train.py with this --train_dir?)")


def load_config(train_dir, required=True):
  """The ModelConfig saved by train.py, or None when there is none and not required.

  A UserError names the folder or file at fault when train_dir is not a train_dir (a
  file, an export folder), or model_flags.json cannot be read, is not valid JSON, lacks
  keys, holds values of the wrong type, or names an unknown model, loss or invalid
  hyper-parameter value.
  """
  path = model_flags_path(train_dir)
  if not tf.io.gfile.exists(path):
    if required:
      raise _not_a_train_dir_error(train_dir)
    return None
  return read_config_file(path)


def read_config_file(path):
  """The ModelConfig in a model_flags.json file (a train_dir's, or an export's); a UserError
  names the file when it cannot be read or does not describe a model this version builds."""
  written_by = "expected the model_flags.json train.py wrote"
  try:
    with tf.io.gfile.GFile(path, "rb") as handle:
      text = handle.read().decode("utf-8")
  except (tf.errors.OpError, OSError) as error:
    reason = (getattr(error, "message", None) or str(error)).strip().splitlines()[0][:200]
    raise UserError(f"{path} cannot be read ({reason}); {written_by}") from None
  except UnicodeDecodeError:
    raise UserError(f"{path} is not a text file (not UTF-8); {written_by}") from None
  config = ModelConfig.from_json(text, source=path)
  _check_config_names(config, path)
  return config


def _check_config_names(config, path):
  """The model, loss and hyper-parameter values of a saved config exist and are valid."""
  from yt8m_fusion import losses  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.models import registry  # pylint: disable=import-outside-toplevel
  if config.model not in registry.REGISTRY:
    raise UserError(f"{path}: 'model' is {config.model!r}, not a known model (known: "
                    f"{', '.join(registry.REGISTRY)}); expected the model_flags.json train.py "
                    "wrote (a newer yt8m-fusion, or edited by hand?)")
  if config.label_loss not in losses.LOSSES:
    raise UserError(f"{path}: 'label_loss' is {config.label_loss!r}, not a known loss (known: "
                    f"{', '.join(losses.LOSSES)}); expected the model_flags.json train.py wrote")
  try:
    registry.hparams_of(config)
  except UserError as error:
    raise UserError(f"{path}: 'model_params': {error} (edited by hand?)") from None


def config_to_resume(train_dir):
  """train.py: the saved ModelConfig the command line must agree with, or None.

  model_flags.json binds only once a checkpoint exists: a run that stopped before its
  first checkpoint (e.g. on bad data) leaves one that the next command line replaces.
  Checks the checkpoint index first (see `latest_checkpoint`).
  """
  if latest_checkpoint(train_dir) is None:
    if tf.io.gfile.exists(model_flags_path(train_dir)):
      logging.info("%s: no checkpoint yet, so the command line's model flags replace it",
                   model_flags_path(train_dir))
    return None
  return load_config(train_dir, required=False)


def save_config(train_dir, config):
  """Writes model_flags.json: the model's hyper-parameters all there (defaults filled in)."""
  from yt8m_fusion.models import registry  # pylint: disable=import-outside-toplevel
  complete = dataclasses.replace(
      config, params=registry.complete_params(config.model, config.params))
  io_utils.write_text_atomic(model_flags_path(train_dir), complete.to_json())


def config_mismatches(saved, requested, explicit_flags):
  """Flags in `explicit_flags` whose values in `requested` differ from the saved model's.

  Hyper-parameters are compared where the saved file holds them: every earlier format is
  accepted (a file written before a hyper-parameter existed, the starter's five keys that
  hold none, which is why the starter's eval.py was given them again).
  """
  from yt8m_fusion.models import registry  # pylint: disable=import-outside-toplevel
  saved_json, requested_json = saved.to_json_dict(), requested.to_json_dict()
  mismatches = []
  for key in ("model", "feature_names", "feature_sizes", "frame_features", "label_loss",
              "num_classes"):
    if key in explicit_flags and saved_json[key] != requested_json[key]:
      mismatches.append((key, saved_json[key], requested_json[key]))
  if saved.model != requested.model:
    return mismatches
  saved_params = registry.complete_params(saved.model, saved.params)
  requested_params = registry.complete_params(requested.model, requested.params)
  for key in saved_params:
    if (key in explicit_flags and key in saved.params
        and saved_params[key] != requested_params[key]):
      mismatches.append((key, saved_params[key], requested_params[key]))
  return mismatches


def describes_another_model(saved, config):
  """What differs between a saved config and `config` (as `config_mismatches` compares every
  key): [] when `config` resumes the saved model."""
  every_key = {"model", "feature_names", "feature_sizes", "frame_features", "label_loss",
               "num_classes", *saved.params}
  return config_mismatches(saved, config, every_key)


def merge_config(saved, requested, explicit_flags, train_dir):
  """The saved config, after checking that explicit flags agree with it.

  Flags left at their defaults take the saved values, so `eval.py --train_dir=X` and a
  resumed `train.py --train_dir=X` rebuild exactly the trained model. Its params are the
  model's hyper-parameters as trained (`models.params_as_trained`), where an explicit flag
  the file lacks (e.g. the starter's files) gives its value.
  """
  from yt8m_fusion.models import registry  # pylint: disable=import-outside-toplevel
  mismatches = config_mismatches(saved, requested, explicit_flags)
  if mismatches:
    details = "; ".join(f"--{key}: saved {old!r}, given {new!r}" for key, old, new in mismatches)
    raise UserError(f"{model_flags_path(train_dir)} does not match the command line ({details}); "
                    "drop those flags to use the saved model, or pass --start_new_model or "
                    "another --train_dir to train a new one")
  params = registry.params_as_trained(saved.model, saved.params)
  params.update({key: value for key, value in requested.params.items()
                 if key in explicit_flags and key in params})
  return dataclasses.replace(saved, params=registry.complete_params(saved.model, params))


_STATE_LINE = re.compile(r'^\s*(model_checkpoint_path|all_model_checkpoint_paths)\s*:\s*'
                         r'"((?:[^"\\]|\\.)*)"\s*$')
_STATE_OTHER_KEYS = ("all_model_checkpoint_timestamps", "last_preserved_timestamp")


def _read_checkpoint_index(train_dir):
  """(latest, listed) checkpoint paths from train_dir/checkpoint as written; None if absent.

  Parsed here rather than by tf.train.latest_checkpoint, which treats an unparsable file
  as "no checkpoint" and logs its own ERROR lines.
  """
  path = os.path.join(train_dir, CHECKPOINT_INDEX_FILE)
  if not tf.io.gfile.exists(path):
    return None
  expected = ("expected the index TensorFlow writes beside the model.ckpt-<step> files "
              '(model_checkpoint_path: "model.ckpt-<step>")')
  try:
    with tf.io.gfile.GFile(path, "rb") as handle:
      text = handle.read().decode("utf-8")
  except (tf.errors.OpError, OSError, UnicodeDecodeError) as error:
    reason = (getattr(error, "message", None) or str(error)).strip().splitlines()[0][:200]
    raise UserError(f"{path} cannot be read ({reason}); {expected}") from None
  latest, listed = None, []
  for number, line in enumerate(text.splitlines(), 1):
    match = _STATE_LINE.match(line)
    if match:
      value = match.group(2).encode("utf-8").decode("unicode_escape")
      if match.group(1) == "model_checkpoint_path":
        latest = value
      else:
        listed.append(value)
    elif line.strip() and not line.strip().startswith(_STATE_OTHER_KEYS):
      raise UserError(f"{path} line {number} is not part of a checkpoint index "
                      f"({line.strip()[:60]!r}); {expected}")
  if not latest:
    raise UserError(f"{path} names no checkpoint; {expected}")
  return latest, listed


def _checkpoint_files_missing(prefix):
  """The files of checkpoint `prefix` that do not exist (the index, or data shards)."""
  index = prefix + ".index"
  if not tf.io.gfile.exists(index):
    return [os.path.basename(index)]
  shards = tf.io.gfile.glob(prefix + ".data-*-of-*")
  match = re.search(r"-of-(\d+)$", shards[0]) if shards else None
  if match is None:
    return [os.path.basename(prefix) + ".data-00000-of-00001"]
  total = int(match.group(1))
  names = {os.path.basename(shard) for shard in shards}
  return [name for name in (f"{os.path.basename(prefix)}.data-{i:05d}-of-{total:05d}"
                            for i in range(total)) if name not in names]


def _intact_checkpoints(train_dir):
  """Checkpoints in train_dir whose files are all there, oldest first."""
  prefixes = [path[:-len(".index")] for path in
              tf.io.gfile.glob(os.path.join(train_dir, CHECKPOINT_PREFIX + "-*.index"))]
  return sorted((p for p in prefixes if not _checkpoint_files_missing(p)), key=checkpoint_step)


def latest_checkpoint(train_dir):
  """The newest checkpoint of train_dir (its path prefix), or None when it has none.

  Checks what `train_dir/checkpoint` names before anything restores it: a UserError
  names the file at fault when that index is unreadable, names no checkpoint, names
  checkpoints outside train_dir (a restore would read another run's weights, and
  train.py's clean-up of old checkpoints would delete that run's files), or names a
  checkpoint whose files are gone; and when model.ckpt-<step> files are there without
  the index.
  """
  state = _read_checkpoint_index(train_dir)
  index_path = os.path.join(train_dir, CHECKPOINT_INDEX_FILE)
  if state is None:
    orphans = _intact_checkpoints(train_dir) if tf.io.gfile.isdir(train_dir) else []
    if orphans:
      raise UserError(
          f"{train_dir} holds {', '.join(os.path.basename(p) for p in orphans)} but no "
          f"'{CHECKPOINT_INDEX_FILE}' file (TensorFlow's index of them); expected it beside them: "
          "copy it too, or write one line into it: "
          f'model_checkpoint_path: "{os.path.basename(orphans[-1])}"')
    return None
  latest, listed = state
  folder = os.path.normpath(train_dir)
  resolved = {}
  for name in [latest, *listed]:
    path = name if os.path.isabs(name) or "://" in name else os.path.join(train_dir, name)
    if os.path.dirname(os.path.normpath(path)) != folder:
      raise UserError(
          f"{index_path} names {name}, outside {train_dir}; expected checkpoints of this "
          f"train_dir: if it was copied from elsewhere, copy the model.ckpt-<step> files too and "
          f'write the names without a folder (model_checkpoint_path: "{os.path.basename(name)}")')
    resolved[name] = path
  path = resolved[latest]
  missing = _checkpoint_files_missing(path)
  if missing:
    intact = [os.path.basename(p) for p in _intact_checkpoints(train_dir)]
    way_out = (f"edit it to name an intact one ({', '.join(intact)})" if intact else
               "start over with train.py --start_new_model")
    raise UserError(f"{index_path} names {latest}, but {', '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} missing from {train_dir} (deleted, or "
                    f"not copied); expected every file of the checkpoint it names: restore them, "
                    f"or {way_out}")
  return path


def checkpoint_step(path):
  """model.ckpt-1234 -> 1234."""
  match = re.search(r"-(\d+)$", path or "")
  return int(match.group(1)) if match else 0


def remove_own_files(train_dir):
  """--start_new_model: removes this project's files from train_dir, nothing else."""
  if not tf.io.gfile.isdir(train_dir):
    return []
  removed = remove_stale_temporaries(train_dir)
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


def remove_checkpoints(train_dir, keep_latest=False):
  """Removes train_dir's checkpoints (all, or all but the latest); returns the removed prefixes.

  For finished runs whose export and evaluations are what is kept: a paper-size FC model's
  checkpoint holds Adam's two slots beside the weights: 4 GB for FC Late Fusion. With `keep_latest` the index
  is rewritten to name only that one; without, the index goes too.
  """
  checkpoints = _intact_checkpoints(train_dir)
  kept = checkpoints[-1:] if keep_latest else []
  index_path = os.path.join(train_dir, CHECKPOINT_INDEX_FILE)
  if kept:
    name = os.path.basename(kept[0])
    io_utils.write_text_atomic(index_path, f'model_checkpoint_path: "{name}"\n'
                               f'all_model_checkpoint_paths: "{name}"\n')
  elif tf.io.gfile.exists(index_path):
    tf.io.gfile.remove(index_path)
  removed = [prefix for prefix in checkpoints if prefix not in kept]
  for prefix in removed:
    for path in tf.io.gfile.glob(prefix + ".*"):
      tf.io.gfile.remove(path)
  return removed


def remove_stale_temporaries(train_dir):
  """Removes what a killed train.py left half-written in train_dir; returns the names.

  Only names that nothing but an interrupted write of train.py leaves are removed (see
  _STALE_TEMPORARY_PATTERNS); call it before training writes anything.
  """
  if not tf.io.gfile.isdir(train_dir):
    return []
  removed = []
  for name in sorted(tf.io.gfile.listdir(train_dir)):
    name = name.rstrip("/")
    if any(pattern.match(name) for pattern in _STALE_TEMPORARY_PATTERNS):
      path = os.path.join(train_dir, name)
      if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
      else:
        tf.io.gfile.remove(path)
      removed.append(name)
  if removed:
    logging.info("Removed %s from %s: left half-written by an interrupted run",
                 ", ".join(removed), train_dir)
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
  except (tf.errors.OpError, IndexError) as error:
    # IndexError: TensorFlow's reader on a data file cut short ("Read less bytes than
    # requested").
    reason = (getattr(error, "message", None) or str(error) or type(error).__name__)
    reason = reason.strip().splitlines()[0][:200]
    raise UserError(f"cannot read the checkpoint {checkpoint_path} ({reason}); expected a "
                    "complete checkpoint written by train.py (a file cut short by a copy?)") \
        from None


def require_checkpoint(train_dir):
  path = latest_checkpoint(train_dir)
  if path is None:
    raise UserError(f"no checkpoint in {train_dir}: train a model there first "
                    "(python train.py --train_dir=...)")
  return path
