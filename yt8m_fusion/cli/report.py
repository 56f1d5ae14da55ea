"""python -m yt8m_fusion.report --train_dirs=DIR1,DIR2,... --output_dir=reports/"""

import glob
import logging
import os

from absl import app
from absl import flags

from yt8m_fusion.cli.parsing import parse_flags
from yt8m_fusion.errors import UserError, exit_on_user_error

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("train_dirs", "", "Comma-separated train_dirs written by train.py "
                      "(globs allowed), one row of the table each.")
  flags.DEFINE_string("labels", "", "Comma-separated display names, one per train_dir "
                      "(default: the folder names).")
  flags.DEFINE_string("output_dir", "reports/", "Where the table, figures and report.md go.")
  flags.DEFINE_string("compare", "", "Two labels (or train_dirs) for the qualitative figure. "
                      "Default: Attend-Fusion and FC Late Fusion when both are there, else the "
                      "two runs with the best GAP.")
  flags.DEFINE_integer("num_videos", 6, "Videos in the qualitative and attention figures.",
                       lower_bound=1, upper_bound=40)
  flags.DEFINE_string("video_ids", "", "Comma-separated video ids for those figures "
                      "(default: the first labelled videos of the evaluation data).")
  flags.DEFINE_string("vocabulary_file", "", "A vocabulary CSV with the columns Index and "
                      "Name (TrainVideoCount if any) for class names and frequencies: the "
                      "2018 vocabulary.csv names all 3,862 classes; the 2019 segment "
                      "vocabulary names 1,000 (classes a file does not name show as "
                      "'class <index>'). Default: vocabulary.csv beside the evaluation data "
                      "or one folder up, else another *vocabulary*.csv there.")
  flags.DEFINE_alias("vocabulary", "vocabulary_file")  # its name before issue 21
  flags.DEFINE_string("eval_data_pattern", "", "Labelled data for the qualitative figure "
                      "(default: the data in the runs' eval JSON, i.e. the validate split).")
  flags.DEFINE_string("train_data_pattern", "", "The runs' training data: per-class AP is "
                      "then drawn against each class's training positives counted there "
                      "(default: the vocabulary's TrainVideoCount, else the evaluation "
                      "data's counts).")
  flags.DEFINE_string("title", "Model comparison", "Title of report.md.")
  flags.DEFINE_integer("max_frames", 300, "Frames read per video (frame-level runs).",
                       lower_bound=1)


def _split(value):
  return [item.strip() for item in value.split(",") if item.strip()]


def _expand(patterns):
  """Globs expanded; local folders checked before TensorFlow is imported (a fast error)."""
  dirs = []
  for pattern in patterns:
    remote = "://" in pattern
    if any(ch in pattern for ch in "*?["):
      if remote:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        matches = sorted(tf.io.gfile.glob(pattern))
      else:
        matches = sorted(glob.glob(pattern))
      if not matches:
        raise UserError(f"--train_dirs: {pattern} matches nothing")
      dirs.extend(matches)
    else:
      if not remote and not os.path.isdir(pattern):
        raise UserError(f"--train_dirs: {pattern} is not a folder; give folders written by "
                        "train.py (each holds model_flags.json)")
      dirs.append(pattern)
  return dirs


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  train_dirs = _expand(_split(FLAGS.train_dirs))
  if not train_dirs:
    raise UserError("--train_dirs is empty; give one or more folders written by train.py, "
                    "e.g. --train_dirs=runs/attend_fusion,runs/fc_late_fusion")
  compare = _split(FLAGS.compare) or None
  if compare is not None and len(compare) not in (1, 2):
    raise UserError(f"--compare={FLAGS.compare}: give one or two labels")
  from yt8m_fusion.cli import common  # pylint: disable=import-outside-toplevel
  common.setup_logging()
  from yt8m_fusion import report  # pylint: disable=import-outside-toplevel
  result = report.write_report(
      train_dirs, FLAGS.output_dir, labels=_split(FLAGS.labels) or None, compare=compare,
      num_videos=FLAGS.num_videos, video_ids=_split(FLAGS.video_ids) or None,
      vocabulary=FLAGS.vocabulary_file or None,
      eval_data_pattern=FLAGS.eval_data_pattern or None,
      train_data_pattern=FLAGS.train_data_pattern or None, title=FLAGS.title,
      max_frames=FLAGS.max_frames)
  logging.info("\n%s", report.to_markdown(result.table))
  for name, path in result.files.items():
    logging.info("%-20s %s", name + ":", path)


def run():
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
