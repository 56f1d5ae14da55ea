"""The one exception type for user mistakes, and how entry points report it.

Anything the user can fix (a flag, a file, a directory) raises `UserError` with a
one-line message that names the input at fault and what was expected. Entry points
print that line and exit non-zero instead of showing a traceback.
"""

import logging
import os
import re
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


def parse_flags(argv):
  """absl `flags_parser` for `app.run`: a bad flag ends the program with one ERROR line.

  absl's own parser prints "FATAL Flags parsing error" and a usage hint and exits 1;
  this prints `ERROR: --name=value: expected <type and range>` and exits 2, like a
  `UserError`.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  try:
    return flags.FLAGS(argv)
  except flags.Error as error:
    print(f"ERROR: {describe_flag_error(error, flags.FLAGS)}", file=sys.stderr, flush=True)
    sys.exit(UserError.exit_code)


def describe_flag_error(error, flag_values):
  """One line naming the flag at fault and what it expects."""
  text = " ".join(str(error).split())
  match = re.match(r"flag --([\w.-]+)=(.*?): ", text)
  if match and match.group(1) in flag_values:
    name, value = match.groups()
    expected = _expected_flag_value(flag_values[name])
    if expected:
      return f"--{name}={value}: expected {expected}"
    return f"--{name}={value}: {text[match.end():]}"
  if text.startswith("Unknown command line flag"):
    return f"{text} (--helpfull lists the flags)"
  return text


def _expected_flag_value(flag):
  parser = flag.parser
  kind = parser.flag_type()
  if kind == "bool":
    return f"true or false (or --{flag.name} / --no{flag.name})"
  if "enum" in kind and getattr(parser, "enum_values", None):
    return "one of " + ", ".join(map(str, parser.enum_values))
  noun = {"int": "an integer", "float": "a number"}.get(kind)
  if noun is None:
    return None
  lower, upper = getattr(parser, "lower_bound", None), getattr(parser, "upper_bound", None)
  if lower is not None and upper is not None:
    return f"{noun} in [{lower}, {upper}]"
  if lower is not None:
    return f"{noun} >= {lower}"
  if upper is not None:
    return f"{noun} <= {upper}"
  return noun
