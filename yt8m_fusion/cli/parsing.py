"""Flag parsing for the programs: a bad flag is one ERROR line, as a UserError is.

absl's own parser prints "FATAL Flags parsing error" and a usage hint and exits 1; these
print `ERROR: --name=value: expected <type and range>` and exit 2, like a `UserError`.
Imports absl only (inference.py --litert_model runs without TensorFlow).
"""

import re
import sys

from absl import flags

from yt8m_fusion.errors import UserError


def parse_flags(argv):
  """absl `flags_parser` for `app.run`: a bad flag ends the program with one ERROR line."""
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
