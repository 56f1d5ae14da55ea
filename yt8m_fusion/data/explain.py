"""A TensorFlow error met while reading records, as a one-line UserError."""

import logging

import tensorflow as tf

from yt8m_fusion.data import checks
from yt8m_fusion.errors import UserError

# What reading bad data raises: a tf error, or a UnicodeDecodeError when TensorFlow's
# eager runtime cannot decode an error message that quotes a record's raw bytes.
DATA_ERRORS = (tf.errors.OpError, UnicodeDecodeError)


def explain_data_error(error, data_pattern, spec, flag_name):
  """A UserError naming `flag_name`, the file and the feature at fault (`spec`: the DataSpec
  the data was read with, segment_labels and max_frames included)."""
  try:
    files = checks.list_files(data_pattern)
  except UserError as pattern_error:
    return pattern_error
  explained = checks.explain_read_error(error, files, spec)
  if isinstance(explained, UserError):
    return UserError(f"{flag_name}: {explained}")
  return UserError(f"{flag_name}={data_pattern}: reading the data failed: {error}")


def log_skipped(counter, flag_name):
  """With skip_corrupt_records: one log line saying what was skipped (a SkipCounter)."""
  if counter is None:
    return
  if counter.skipped_anything:
    logging.warning("--skip_corrupt_records: %s: %s", flag_name, counter.summary())
  else:
    logging.info("--skip_corrupt_records: %s: nothing was skipped", flag_name)
