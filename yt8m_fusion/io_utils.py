"""File helpers: atomic writes (temp path, then rename) and writability checks.

Everything a user keeps (CSV submissions, JSON reports, exports) appears whole or not
at all: we write to a temporary name in the same folder and rename it into place.
All paths go through tf.io.gfile, so gs:// works too.
"""

import contextlib
import os
import re
import uuid

import tensorflow as tf

from yt8m_fusion.errors import DISK_FULL
from yt8m_fusion.errors import UserError


def temporary_sibling(path):
  """A hidden temporary name next to `path` (same folder, so the rename is atomic)."""
  folder, name = os.path.split(path)
  return os.path.join(folder, f".{name}.tmp-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_output(path, mode="w"):
  """Opens a temporary file; renames it to `path` only if the block ends without error."""
  folder = os.path.dirname(path)
  try:
    if folder:
      tf.io.gfile.makedirs(folder)
    temp_path = temporary_sibling(path)
    handle = tf.io.gfile.GFile(temp_path, mode)
  except (tf.errors.OpError, OSError) as error:
    raise UserError(f"cannot write {path}: {describe_error(error)}; choose a writable path") \
        from None
  try:
    try:
      yield _CheckedFile(handle, path)
    except BaseException:
      with contextlib.suppress(Exception):
        handle.close()
      raise
    try:
      handle.close()  # a full disk often shows only here, when the buffer is flushed
      tf.io.gfile.rename(temp_path, path, overwrite=True)
    except (tf.errors.OpError, OSError) as error:
      raise UserError(f"cannot write {path}: {describe_error(error)}") from None
  except BaseException:
    with contextlib.suppress(Exception):
      tf.io.gfile.remove(temp_path)
    raise


class _CheckedFile:
  """A GFile whose write errors (a full disk...) are UserErrors naming the final path."""

  def __init__(self, handle, path):
    self._handle = handle
    self._path = path

  def write(self, data):
    try:
      return self._handle.write(data)
    except (tf.errors.OpError, OSError) as error:
      raise UserError(f"cannot write {self._path}: {describe_error(error)}") from None

  def __getattr__(self, name):
    return getattr(self._handle, name)


def write_text_atomic(path, text):
  with atomic_output(path) as handle:
    handle.write(text)


def unexpanded_home_error(path, flag_name):
  """A UserError for a path that starts with '~' (else None): the shell expands '~' only at
  the start of a word, not after --flag=, so it would name a folder called '~'."""
  if not str(path).startswith("~"):
    return None
  return UserError(f"{flag_name}={path} starts with '~', which the shell does not expand after "
                   f"'='; expected the full path, e.g. {flag_name}={os.path.expanduser(path)}")


def check_writable_file(path, flag_name):
  """Fails early, before hours of work, when `path` cannot be written."""
  if not path:
    raise UserError(f"{flag_name} is empty; give the path of the file to write")
  if unexpanded_home_error(path, flag_name):
    raise unexpanded_home_error(path, flag_name)
  folder = os.path.dirname(path) or "."
  try:
    tf.io.gfile.makedirs(folder)
    probe = temporary_sibling(path)
    with tf.io.gfile.GFile(probe, "w") as handle:
      handle.write("")
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as error:
    raise UserError(f"{flag_name}={path} cannot be written: {describe_error(error)}") from None
  if tf.io.gfile.isdir(path):
    raise UserError(f"{flag_name}={path} is a directory; give a file path")


def check_writable_dir(path, flag_name):
  """Fails early when the folder `path` cannot be created or written."""
  if unexpanded_home_error(path, flag_name):
    raise unexpanded_home_error(path, flag_name)
  try:
    tf.io.gfile.makedirs(path)
    probe = os.path.join(path, f".write-test-{uuid.uuid4().hex[:8]}")
    with tf.io.gfile.GFile(probe, "w") as handle:
      handle.write("")
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as error:
    raise UserError(f"{flag_name}={path} cannot be written: {describe_error(error)}; expected a "
                    "writable folder") from None


def describe_error(error):
  """The first line of an I/O or TensorFlow error, without TensorFlow's op decorations."""
  text = getattr(error, "message", None) or str(error) or type(error).__name__
  if "No space left on device" in text:
    return DISK_FULL
  text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
  text = re.sub(r"\s*\[Op:[^\]]*\]", "", text)
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  return lines[0] if lines else type(error).__name__
