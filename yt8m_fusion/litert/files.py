"""Atomic writes of local files without TensorFlow (yt8m_fusion.io_utils' twin for the LiteRT
runtime: io_utils goes through tf.io.gfile).

A file appears whole or not at all: it is written under a hidden temporary name in the same
folder and renamed into place.
"""

import contextlib
import os
import uuid

from yt8m_fusion.errors import DISK_FULL
from yt8m_fusion.errors import UserError


def temporary_sibling(path):
  folder, name = os.path.split(path)
  return os.path.join(folder, f".{name}.tmp-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_output(path, mode="w"):
  """Opens a temporary file; renames it to `path` only if the block ends without error."""
  folder = os.path.dirname(path)
  temp_path = temporary_sibling(path)
  try:
    if folder:
      os.makedirs(folder, exist_ok=True)
    handle = open(temp_path, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
  except OSError as error:
    raise UserError(f"cannot write {path}: {_reason(error)}; choose a writable path") from None
  try:
    with handle:
      yield _CheckedFile(handle, path)
    try:
      os.replace(temp_path, path)
    except OSError as error:
      raise UserError(f"cannot write {path}: {_reason(error)}") from None
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(temp_path)
    raise


class _CheckedFile:
  """A file whose write errors (a full disk...) are UserErrors naming the final path."""

  def __init__(self, handle, path):
    self._handle = handle
    self._path = path

  def write(self, data):
    try:
      return self._handle.write(data)
    except OSError as error:
      raise UserError(f"cannot write {self._path}: {_reason(error)}") from None

  def __getattr__(self, name):
    return getattr(self._handle, name)


def check_writable_file(path, flag_name):
  """Fails early, before the work, when `path` cannot be written."""
  if not path:
    raise UserError(f"{flag_name} is empty; give the path of the file to write")
  if os.path.isdir(path):
    raise UserError(f"{flag_name}={path} is a directory; give a file path")
  probe = temporary_sibling(path)
  try:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(probe, "w", encoding="utf-8"):
      pass
    os.remove(probe)
  except OSError as error:
    raise UserError(f"{flag_name}={path} cannot be written: {_reason(error)}") from None


def _reason(error):
  if getattr(error, "errno", None) == 28:  # ENOSPC
    return DISK_FULL
  return error.strerror or str(error) or type(error).__name__
