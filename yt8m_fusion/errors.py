"""The one exception type for user mistakes, and how entry points report it.

Anything the user can fix (a flag, a file, a directory) raises `UserError` with a
one-line message that names the input at fault and what was expected. Entry points
print that line and exit non-zero instead of showing a traceback (a bad flag value:
`cli.parsing.parse_flags`).
"""

import logging
import os
import sys


# How every program says that a write failed for lack of space.
DISK_FULL = "the disk is full (No space left on device)"


class UserError(Exception):
  """A mistake in the user's input: reported as one line, never as a traceback."""

  exit_code = 2
  # True: end the process at once after the error line (os._exit), skipping interpreter
  # shutdown, for states that Python's finalizers cannot tear down cleanly.
  exit_immediately = False


def exit_on_user_error(main):
  """Wraps an absl `main(argv)` so that a `UserError` ends the program with one line."""

  def wrapped(argv):
    try:
      return main(argv)
    except UserError as error:
      # Full details are available at debug verbosity (--verbosity=1).
      logging.debug("Traceback of the error below:", exc_info=True)
      print(f"ERROR: {error}", file=sys.stderr, flush=True)
      if error.exit_immediately:
        _flush_output()
        os._exit(error.exit_code)  # pylint: disable=protected-access
      sys.exit(error.exit_code)

  return wrapped


def _flush_output():
  for handler in logging.getLogger().handlers + logging.getLogger("absl").handlers:
    handler.flush()
  sys.stdout.flush()
  sys.stderr.flush()
