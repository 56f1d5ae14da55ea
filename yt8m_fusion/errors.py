"""The one exception type for user mistakes, and how entry points report it.

Anything the user can fix (a flag, a file, a directory) raises `UserError` with a
one-line message that names the input at fault and what was expected. Entry points
print that line and exit non-zero instead of showing a traceback.
"""

import logging
import sys


class UserError(Exception):
  """A mistake in the user's input: reported as one line, never as a traceback."""

  exit_code = 2


def exit_on_user_error(main):
  """Wraps an absl `main(argv)` so that a `UserError` ends the program with one line."""

  def wrapped(argv):
    try:
      return main(argv)
    except UserError as error:
      # Full details are available at debug verbosity (--verbosity=1).
      logging.debug("Traceback of the error below:", exc_info=True)
      print(f"ERROR: {error}", file=sys.stderr, flush=True)
      sys.exit(error.exit_code)

  return wrapped
