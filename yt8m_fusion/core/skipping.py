"""What `skip_corrupt_records` dropped, counted the same way by both readers."""

import logging


class SkipCounter:
  """Counts of skipped data, for one log line.

  - `invalid_records`: records read but dropped (not an Example/SequenceExample, a missing
    or wrongly sized feature, a label id out of range, NaN/Inf values, a video without
    frames, ...).
  - `unreadable_files` / `unreadable_bytes`: files where the TFRecord framing broke (bad
    checksum, truncation, not a TFRecord file). A reader cannot resynchronise inside such a
    file, so the rest of it is skipped; its records cannot be counted, only its bytes.

  The LiteRT reader counts in Python (`add_invalid_record`, `add_unreadable_file`); the
  tf.data reader's subclass (`yt8m_fusion.data.SkipCounter`) counts in graph variables.
  """

  def __init__(self):
    self._counts = {"invalid_records": 0, "unreadable_files": 0, "unreadable_bytes": 0}
    self.first = None  # the first skipped thing, "path: why" (where the reader knows it)

  @property
  def invalid_records(self):
    return self._counts["invalid_records"]

  @property
  def unreadable_files(self):
    return self._counts["unreadable_files"]

  @property
  def unreadable_bytes(self):
    return self._counts["unreadable_bytes"]

  def add_invalid_record(self, where):
    self._counts["invalid_records"] += 1
    self.first = self.first or where

  def add_unreadable_file(self, where, lost_bytes=0):
    self._counts["unreadable_files"] += 1
    self._counts["unreadable_bytes"] += max(0, int(lost_bytes))
    self.first = self.first or where

  @property
  def skipped_anything(self):
    return bool(self.invalid_records or self.unreadable_files)

  def summary(self):
    text = f"skipped {self.invalid_records} invalid record(s)"
    if self.unreadable_files:
      text += (f" and the unreadable rest of {self.unreadable_files} file(s) "
               f"({self.unreadable_bytes} bytes)")
    if self.first:
      text += f"; first: {self.first}"
    return text

  def log(self, logger=None):
    """Logs one warning line when something was skipped; returns the summary."""
    text = self.summary()
    if self.skipped_anything:
      (logger or logging.getLogger("yt8m_fusion.data")).warning("Corrupt input: %s", text)
    return text

  def __repr__(self):
    return f"SkipCounter({self.summary()})"
