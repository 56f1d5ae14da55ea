"""YouTube-8M TFRecords read in plain Python and numpy, for running LiteRT models without
TensorFlow.

`read_batches(data_pattern, spec, batch_size=...)` yields dicts in the model's input format
(the same values `yt8m_fusion.data.load_dataset(..., dequantize=False)` gives):
  video_ids               list of bytes
  video-level features    float32 [B, D]
  frame-level features    uint8 [B, max_frames, D], zero-padded; `num_frames` int32 [B]
                          (frames of the first feature, at most max_frames)

Records are framed, parsed and validated by `yt8m_fusion.core` (the rules the tf.data reader
applies too), so a bad record is named with the same one-line message. Local, uncompressed
files only (no gs://).
"""

import logging

import numpy as np

from yt8m_fusion.core import files as core_files
from yt8m_fusion.core import framing
from yt8m_fusion.core import records
from yt8m_fusion.core import validation
from yt8m_fusion.errors import UserError


def read_batches(data_pattern, spec, *, batch_size, skip_corrupt_records=False,
                 skip_counter=None):
  """Yields batches (see the module docstring) of every record of the matching files.

  Args:
    data_pattern: a glob or comma-separated globs of TFRecord files.
    spec: the model's `DataSpec` (`DataSpec.from_model_flags` of the LiteRT file's info).
    batch_size: videos per batch (the last batch may be smaller).
    skip_corrupt_records: skip records that cannot be used (and the rest of a file whose
      framing is broken), counting them in `skip_counter`, instead of raising UserError.
    skip_counter: a `yt8m_fusion.core.skipping.SkipCounter` to fill.
  """
  files = core_files.list_files(data_pattern)
  logging.info("Reading %d file(s) matching %s", len(files), data_pattern)
  ids, rows = [], []
  for path in files:
    try:
      for index, serialized in enumerate(framing.iterate_local_records(path)):
        problem, video_id, values = _read_record(serialized, spec)
        if problem is not None:
          where = validation.where_in_file(path, index, video_id.decode("utf-8", "replace"))
          if not skip_corrupt_records:
            raise UserError(f"{where}: {problem.message}")
          if skip_counter is not None:
            skip_counter.add_invalid_record(f"{where}: {problem.message}")
          continue
        ids.append(video_id)
        rows.append(values)
        if len(rows) == batch_size:
          yield _stack(ids, rows, spec)
          ids, rows = [], []
    except framing.FramingError as error:
      if not skip_corrupt_records:
        raise UserError(f"{path}: {error}; expected a complete TFRecord file") from None
      if skip_counter is not None:
        skip_counter.add_unreadable_file(f"{path}: {error}")
    except OSError as error:
      raise UserError(f"cannot read {path}: {error.strerror or error}") from None
  if rows:
    yield _stack(ids, rows, spec)


def _read_record(serialized, spec):
  """(problem or None, video id bytes, model inputs or None) of one record."""
  try:
    record = records.parse_record(serialized)
  except records.DECODE_ERRORS:
    problem, _ = validation.validate_record(serialized, spec)
    return problem, b"", None
  video_id = records.video_id_of(record)
  problem = validation.check_record(record, spec)
  if problem is not None:
    return problem, video_id, None
  return None, video_id, validation.model_inputs_of(record, spec)


def _stack(ids, rows, spec):
  batch = {"video_ids": ids}
  for name in spec.model_input_names:
    batch[name] = np.stack([row[name] for row in rows])
  return batch
