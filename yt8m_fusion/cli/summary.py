"""Prints a model's Keras summary (with its `Total params:` line) and its forward FLOPs.

    python -m yt8m_fusion.summary --model=AttendFusion
    python -m yt8m_fusion.summary --model=DbofModel --frame_features --feature_names=rgb,audio
    python -m yt8m_fusion.summary --list

Takes the same model flags as train.py (--model, --feature_names, --feature_sizes,
--frame_features, --num_classes and every model hyper-parameter flag). FLOPs are counted
per example from the layer shapes (matrix products, 2 x multiply-adds; frame-level models at
--max_frames frames, 300 by default); see yt8m_fusion/models/flops.py.
"""

import os
import sys

from absl import app
from absl import flags

from yt8m_fusion.cli import flags as yt8m_flags
from yt8m_fusion.cli.parsing import parse_flags
from yt8m_fusion.errors import exit_on_user_error
from yt8m_fusion.models.flops import DEFAULT_MAX_FRAMES
from yt8m_fusion.models.flops import format_flops
from yt8m_fusion.models.flops import forward_flops

FLAGS = flags.FLAGS

def _define_flags():
  yt8m_flags.define_model_flags()
  if "list" not in FLAGS:
    flags.DEFINE_bool("list", False, "Print the registered model names and exit.")
  if "max_frames" not in FLAGS:
    flags.DEFINE_integer("max_frames", DEFAULT_MAX_FRAMES,
                         "Frames per video assumed for the FLOPs of frame-level models.",
                         lower_bound=1)


def main(argv):
  del argv
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  if FLAGS.list:
    for name, spec in models.REGISTRY.items():
      level = "frame-level" if spec.frame_only else "video- or frame-level"
      print(f"{name:<24} {level:<22} {spec.description}")
    return 0
  config = yt8m_flags.model_config_from_flags()
  model = models.build_model(config)
  if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
    # Off a terminal, rich (which Keras prints the table with) cuts it at 80 columns.
    os.environ["COLUMNS"] = "132"
  model.summary()
  frames = f" (at {FLAGS.max_frames} frames)" if config.frame_features else ""
  print(f"Forward FLOPs per example{frames}: "
        f"{format_flops(forward_flops(model, max_frames=FLAGS.max_frames))}")
  print(f"Model: {config.model}  features: {','.join(config.feature_names)} "
        f"({','.join(map(str, config.feature_sizes))})  frame_features: {config.frame_features}"
        f"  num_classes: {config.num_classes}")
  return 0


def run():
  _define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
