"""Files without TensorFlow: atomic writes, writability checks and listing input files.

Everything a user keeps (CSV submissions, JSON reports, exports) appears whole or not at
all: it is written under a hidden temporary name in the same folder and renamed into place.

The functions take a `FileSystem`: `LOCAL` (os and glob, the default, what the LiteRT
runtime uses) or `yt8m_fusion.io_utils.GFILE` (tf.io.gfile, so gs:// works too), which the
TensorFlow stack uses through io_utils' and data's wrappers.
"""

import contextlib
import glob
import os
import re
import uuid

from yt8m_fusion.errors import DISK_FULL
from yt8m_fusion.errors import UserError

_GLOB_CHARS = re.compile(r"[*?\[]")
_EXAMPLE_GLOB = "'/data/yt8m/video/train*.tfrecord'"


class LocalFileSystem:
  """Local files through os and glob; a FileSystem is any object with these members."""

  remote = False  # False: paths with a scheme (gs://) are refused, not looked up
  errors = (OSError,)  # what its operations raise

  def open(self, path, mode):
    return open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"}))

  def makedirs(self, path):
    os.makedirs(path, exist_ok=True)

  def rename(self, source, target):
    os.replace(source, target)

  def remove(self, path):
    os.remove(path)

  def glob(self, pattern):
    return glob.glob(pattern)

  def isdir(self, path):
    return os.path.isdir(path)

  def exists(self, path):
    return os.path.exists(path)

  def listdir(self, path):
    return os.listdir(path)

  def describe(self, error):
    """One line of one of `errors`."""
    if getattr(error, "errno", None) == 28:  # ENOSPC
      return DISK_FULL
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


LOCAL = LocalFileSystem()


# ----------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------

def temporary_sibling(path):
  """A hidden temporary name next to `path` (same folder, so the rename is atomic)."""
  folder, name = os.path.split(path)
  return os.path.join(folder, f".{name}.tmp-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_output(path, mode="w", filesystem=LOCAL):
  """Opens a temporary file; renames it to `path` only if the block ends without error."""
  folder = os.path.dirname(path)
  temp_path = temporary_sibling(path)
  try:
    if folder:
      filesystem.makedirs(folder)
    handle = filesystem.open(temp_path, mode)
  except filesystem.errors as error:
    raise UserError(f"cannot write {path}: {filesystem.describe(error)}; choose a writable "
                    "path") from None
  try:
    try:
      yield _CheckedFile(handle, path, filesystem)
    except BaseException:
      with contextlib.suppress(Exception):
        handle.close()
      raise
    try:
      handle.close()  # a full disk often shows only here, when the buffer is flushed
      filesystem.rename(temp_path, path)
    except filesystem.errors as error:
      raise UserError(f"cannot write {path}: {filesystem.describe(error)}") from None
  except BaseException:
    with contextlib.suppress(Exception):
      filesystem.remove(temp_path)
    raise


class _CheckedFile:
  """A file whose write errors (a full disk...) are UserErrors naming the final path."""

  def __init__(self, handle, path, filesystem):
    self._handle = handle
    self._path = path
    self._filesystem = filesystem

  def write(self, data):
    try:
      return self._handle.write(data)
    except self._filesystem.errors as error:
      raise UserError(f"cannot write {self._path}: {self._filesystem.describe(error)}") \
          from None

  def __getattr__(self, name):
    return getattr(self._handle, name)


def write_text_atomic(path, text, filesystem=LOCAL):
  with atomic_output(path, filesystem=filesystem) as handle:
    handle.write(text)


def unexpanded_home_error(path, flag_name):
  """A UserError for a path that starts with '~' (else None): the shell expands '~' only at
  the start of a word, not after --flag=, so it would name a folder called '~'."""
  if not str(path).startswith("~"):
    return None
  return UserError(f"{flag_name}={path} starts with '~', which the shell does not expand after "
                   f"'='; expected the full path, e.g. {flag_name}={os.path.expanduser(path)}")


def _probe_folder(folder, probe, flag_name, path, filesystem, expected=""):
  try:
    filesystem.makedirs(folder)
    with filesystem.open(probe, "w") as handle:
      handle.write("")
    filesystem.remove(probe)
  except filesystem.errors as error:
    raise UserError(f"{flag_name}={path} cannot be written: {filesystem.describe(error)}"
                    f"{expected}") from None


def check_writable_file(path, flag_name, filesystem=LOCAL):
  """Fails early, before hours of work, when `path` cannot be written."""
  if not path:
    raise UserError(f"{flag_name} is empty; give the path of the file to write")
  if unexpanded_home_error(path, flag_name):
    raise unexpanded_home_error(path, flag_name)
  if filesystem.isdir(path):
    raise UserError(f"{flag_name}={path} is a directory; give a file path")
  # The probe's name is not the writer's temporary name (.<name>.tmp-*): a kill test
  # that waits for the CSV's temporary file must not mistake the probe for it.
  folder, name = os.path.split(path)
  probe = os.path.join(folder, f".{name}.write-test-{uuid.uuid4().hex[:8]}")
  _probe_folder(folder or ".", probe, flag_name, path, filesystem)


def check_writable_dir(path, flag_name, filesystem=LOCAL):
  """Fails early when the folder `path` cannot be created or written."""
  if unexpanded_home_error(path, flag_name):
    raise unexpanded_home_error(path, flag_name)
  _probe_folder(path, os.path.join(path, f".write-test-{uuid.uuid4().hex[:8]}"), flag_name,
                path, filesystem, "; expected a writable folder")


# ----------------------------------------------------------------------------------------
# Listing input files
# ----------------------------------------------------------------------------------------

def split_patterns(data_pattern):
  """A glob, comma-separated globs or a list of them -> the list of globs."""
  if isinstance(data_pattern, (str, bytes, os.PathLike)):
    text = os.fsdecode(data_pattern)
    return [p.strip() for p in text.split(",") if p.strip()]
  return [os.fsdecode(p).strip() for p in data_pattern if os.fsdecode(p).strip()]


def describe_pattern(data_pattern):
  """A short, quoted rendering of a pattern or file list for messages."""
  patterns = split_patterns(data_pattern)
  if len(patterns) == 1:
    return f"'{patterns[0]}'"
  if len(patterns) <= 3:
    return "'" + ",".join(patterns) + "'"
  return f"'{patterns[0]}' (and {len(patterns) - 1} more)"


def list_files(data_pattern, filesystem=LOCAL):
  """Files matching a glob, a comma-separated list of globs, or a list of paths/globs.

  Matches are sorted per pattern, duplicates dropped. Raises UserError when the pattern is
  empty, names a directory, matches nothing, or (LOCAL) names a remote path.
  """
  patterns = split_patterns(data_pattern)
  if not patterns:
    raise UserError(f"the data pattern is empty; expected a file glob such as {_EXAMPLE_GLOB}")
  files, seen = [], set()
  for pattern in patterns:
    if "://" in pattern and not filesystem.remote:
      raise UserError(f"'{pattern}': only local files can be read here (no TensorFlow to "
                      "read remote paths); copy the records to a local folder")
    if not _GLOB_CHARS.search(pattern) and filesystem.isdir(pattern):
      raise UserError(f"'{pattern}' is a directory; expected a file glob such as "
                      f"'{pattern.rstrip('/')}/train*.tfrecord'")
    try:
      matches = filesystem.glob(pattern)
    except filesystem.errors as error:
      raise UserError(f"cannot list '{pattern}': {filesystem.describe(error)}") from None
    if not matches:
      if pattern.startswith("~"):
        raise UserError(f"no files match '{pattern}': it starts with '~', which the shell does "
                        "not expand after --flag=; expected the full path, e.g. "
                        f"'{os.path.expanduser(pattern)}'")
      raise UserError(f"no files match '{pattern}'; expected a glob of TFRecord files such as "
                      f"{_EXAMPLE_GLOB}")
    for match in sorted(matches):
      if match not in seen:
        seen.add(match)
        files.append(match)
  return files
