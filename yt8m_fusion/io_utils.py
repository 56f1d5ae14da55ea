"""Files through tf.io.gfile (so gs:// works too): atomic writes and writability checks.

The logic lives in `yt8m_fusion.core.files` (TensorFlow-free, shared with the LiteRT
runtime); this module gives it `GFILE`, a file system over tf.io.gfile, and adds
`describe_error` (one line of a TensorFlow error).
"""

import functools
import re

import tensorflow as tf

from yt8m_fusion.core import files as core_files
from yt8m_fusion.errors import DISK_FULL

temporary_sibling = core_files.temporary_sibling
unexpanded_home_error = core_files.unexpanded_home_error


def describe_error(error):
  """The first line of an I/O or TensorFlow error, without TensorFlow's op decorations."""
  text = getattr(error, "message", None) or str(error) or type(error).__name__
  if "No space left on device" in text:
    return DISK_FULL
  text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
  text = re.sub(r"\s*\[Op:[^\]]*\]", "", text)
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  return lines[0] if lines else type(error).__name__


class GFileSystem:
  """`core.files`' file system over tf.io.gfile (local paths, gs://, ...)."""

  remote = True
  errors = (tf.errors.OpError, OSError)

  def open(self, path, mode):
    return tf.io.gfile.GFile(path, mode)

  def makedirs(self, path):
    tf.io.gfile.makedirs(path)

  def rename(self, source, target):
    tf.io.gfile.rename(source, target, overwrite=True)

  def remove(self, path):
    tf.io.gfile.remove(path)

  def glob(self, pattern):
    return tf.io.gfile.glob(pattern)

  def isdir(self, path):
    return tf.io.gfile.isdir(path)

  def exists(self, path):
    return tf.io.gfile.exists(path)

  def listdir(self, path):
    return [name.rstrip("/") for name in tf.io.gfile.listdir(path)]

  def describe(self, error):
    return describe_error(error)


GFILE = GFileSystem()

atomic_output = functools.partial(core_files.atomic_output, filesystem=GFILE)
write_text_atomic = functools.partial(core_files.write_text_atomic, filesystem=GFILE)
check_writable_file = functools.partial(core_files.check_writable_file, filesystem=GFILE)
check_writable_dir = functools.partial(core_files.check_writable_dir, filesystem=GFILE)
