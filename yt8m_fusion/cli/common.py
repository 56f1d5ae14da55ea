"""Pieces the command-line programs share: logging, the demo data, flag parsing."""

import logging
import os

from absl import logging as absl_logging

from yt8m_fusion import data as yt8m_data
from yt8m_fusion.errors import UserError
from yt8m_fusion.models.config import parse_bool



class _QuietLibraries(logging.Filter):
  """Drops TensorFlow's and Keras' own INFO lines (savers, signature names, fingerprints)."""

  def filter(self, record):
    if record.levelno >= logging.WARNING:
      return True
    path = record.pathname.replace(os.sep, "/")
    return "/tensorflow/" not in path and "/keras/" not in path


def setup_logging():
  """Our INFO lines on stderr; TensorFlow's own only from WARNING up."""
  absl_logging.set_verbosity(max(absl_logging.get_verbosity(), absl_logging.INFO))
  if absl_logging.get_verbosity() <= absl_logging.INFO:  # --verbosity=1 shows everything
    absl_logging.get_absl_handler().addFilter(_QuietLibraries())
  logging.getLogger("tensorflow").setLevel(logging.ERROR)


def demo_patterns(frame_features):
  """The demo dataset's train/validate/test patterns, generating it on first use."""
  demo = yt8m_data.demo.ensure_demo_dataset()
  return demo.patterns(frame_features)


def parse_jit_compile(value):
  if str(value).strip().lower() == "auto":
    return "auto"
  try:
    return parse_bool(value)
  except ValueError:
    raise UserError(f"--jit_compile={value}: expected auto, true or false") from None
