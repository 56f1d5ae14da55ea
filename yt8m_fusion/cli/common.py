"""Pieces the command-line programs share: logging, demo data, precision, data errors."""

import logging
import os

import keras
import tensorflow as tf
from absl import flags
from absl import logging as absl_logging

from yt8m_fusion import data as yt8m_data
from yt8m_fusion.errors import UserError

FLAGS = flags.FLAGS

PRECISION_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
# What reading bad data raises: a tf error, or a UnicodeDecodeError when TensorFlow's
# eager runtime cannot decode an error message that quotes a record's raw bytes.
DATA_ERRORS = (tf.errors.OpError, UnicodeDecodeError)


class _QuietLibraries(logging.Filter):
  """Drops TensorFlow's and Keras' own INFO lines (savers, signature names, fingerprints)."""

  def filter(self, record):
    if record.levelno >= logging.WARNING:
      return True
    path = record.pathname.replace(os.sep, "/")
    return "/tensorflow/" not in path and "/keras/" not in path


def setup_logging():
  """Our INFO lines on stderr; TensorFlow's own only from WARNING up."""
  absl_logging.set_verbosity(max(absl_logging.get_verbosity(), absl_logging.INFO))
  if absl_logging.get_verbosity() <= absl_logging.INFO:  # --verbosity=1 shows everything
    absl_logging.get_absl_handler().addFilter(_QuietLibraries())
  logging.getLogger("tensorflow").setLevel(logging.ERROR)


def demo_patterns(frame_features):
  """The demo dataset's train/validate/test patterns, generating it on first use."""
  demo = yt8m_data.demo.ensure_demo_dataset()
  return demo.patterns(frame_features)


def set_precision_policy(policy):
  if policy not in PRECISION_POLICIES:
    raise UserError(f"--mixed_precision={policy}: expected one of {', '.join(PRECISION_POLICIES)}")
  keras.mixed_precision.set_global_policy(policy)


def out_of_memory_error(error, batch_size):
  """A UserError for a TensorFlow out-of-memory error (else None): it is not a data problem."""
  if not isinstance(error, tf.errors.ResourceExhaustedError):
    return None
  detail = " ".join(str(getattr(error, "message", error)).split())[:200]
  return UserError(f"out of memory at --batch_size={batch_size} ({detail}); lower --batch_size, "
                   "or use --mixed_precision=mixed_bfloat16 (CPU) / mixed_float16 (GPU), or a "
                   "smaller model")


def explain_data_error(error, data_pattern, config, flag_name):
  """A TensorFlow error met while reading data -> a UserError naming file and feature."""
  try:
    files = yt8m_data.list_files(data_pattern)
  except UserError as pattern_error:
    return pattern_error
  explained = yt8m_data.explain_read_error(
      error, files, frame_features=config.frame_features, feature_names=config.feature_names,
      feature_sizes=config.feature_sizes, num_classes=config.num_classes)
  if isinstance(explained, UserError):
    return UserError(f"{flag_name}: {explained}")
  return UserError(f"{flag_name}={data_pattern}: reading the data failed: {error}")


def parse_jit_compile(value):
  lowered = str(value).strip().lower()
  if lowered in ("auto",):
    return "auto"
  if lowered in ("1", "true", "yes"):
    return True
  if lowered in ("0", "false", "no"):
    return False
  raise UserError(f"--jit_compile={value}: expected auto, true or false")


def describe_device():
  gpus = tf.config.list_physical_devices("GPU")
  return f"{len(gpus)} GPU(s)" if gpus else "CPU"


def log_skipped(counter, flag_name):
  """With --skip_corrupt_records: one log line with what was skipped (SkipCounter)."""
  if counter is None:
    return
  if counter.skipped_anything:
    logging.warning("--skip_corrupt_records: %s: %s", flag_name, counter.summary())
  else:
    logging.info("--skip_corrupt_records: %s: nothing was skipped", flag_name)
