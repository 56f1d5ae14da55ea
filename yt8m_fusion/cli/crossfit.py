"""python -m yt8m_fusion.crossfit: cross-fitted teacher predictions for distillation.

    python -m yt8m_fusion.crossfit --model=AttendFusion --folds=5 \
        --train_data_pattern='/data/train*.tfrecord' --output_dir=/tmp/crossfit \
        [--unlabelled_data_pattern='/data/test*.tfrecord']
    python train.py --model=AttendFusion --train_data_pattern='/data/train*.tfrecord' \
        --teacher_predictions=/tmp/crossfit/teacher_predictions.npz --train_dir=/tmp/student

Splits the training videos into --folds folds by a stable hash of their id, trains one
teacher per fold (per --model and --seeds: several are averaged) on the other folds into
output_dir/fold-<i>[/<model>[-seed<S>]], predicts each fold with the teacher that did not see it and
writes output_dir/teacher_predictions.npz. Takes train.py's model and training flags (the
same for every teacher). Rerunning the same command resumes (docs/DISTILLATION.md).
"""

import logging
import sys

from absl import app
from absl import flags

from yt8m_fusion import distillation
from yt8m_fusion import training
from yt8m_fusion.cli import common
from yt8m_fusion.cli import flags as yt8m_flags
from yt8m_fusion.cli import train as train_cli
from yt8m_fusion.cli.parsing import parse_flags
from yt8m_fusion.errors import UserError, exit_on_user_error

FLAGS = flags.FLAGS


def define_flags():
  train_cli.define_flags()
  define = yt8m_flags.define_once
  define(flags.DEFINE_integer, "folds", 5, "Folds of the training videos (teachers per model).",
         lower_bound=2)
  define(flags.DEFINE_string, "output_dir", None,
         "Where the teachers' train_dirs and teacher_predictions.npz are written.")
  define(flags.DEFINE_list, "seeds", [],
         "One teacher per seed (and per --model) in each fold, averaged: an ensemble of "
         "seeds as the teacher. Empty: --seed alone.")
  define(flags.DEFINE_string, "unlabelled_data_pattern", "",
         "Records without labels (e.g. the test split) to predict with every teacher, "
         "averaged, into the same file.")


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  common.setup_logging()
  if not FLAGS.output_dir:
    raise UserError("--output_dir is required: where the teachers and their predictions go")
  if not FLAGS.train_data_pattern:
    raise UserError("--train_data_pattern is required: the labelled training records")
  if FLAGS.teacher or FLAGS.teacher_predictions:
    raise UserError("--teacher and --teacher_predictions are train.py's: the cross-fitted "
                    "teachers are trained here")
  configs = []
  for model in yt8m_flags.split_list(FLAGS.model):  # several models: an ensemble teacher
    FLAGS["model"].value = model
    configs.append(yt8m_flags.model_config_from_flags())
  # Each model with its own training defaults; the flags given apply to every model.
  options = [train_cli.train_options(config, on_demo=False) for config in configs]
  reading = training.ReadOptions(max_frames=FLAGS.max_frames,
                                 num_readers=FLAGS.num_readers,
                                 skip_corrupt_records=FLAGS.skip_corrupt_records,
                                 shuffle=FLAGS.shuffle)
  try:
    seeds = [int(seed) for seed in FLAGS.seeds]
  except ValueError:
    raise UserError(f"--seeds={','.join(FLAGS.seeds)}: expected comma-separated integers") \
        from None
  result = distillation.cross_fit(
      configs, FLAGS.output_dir, FLAGS.train_data_pattern, folds=FLAGS.folds, options=options,
      reading=reading, unlabelled_data_pattern=FLAGS.unlabelled_data_pattern or None,
      top_k=FLAGS.distill_top_k or distillation.DEFAULT_TOP_K, batch_size=FLAGS.batch_size,
      seeds=seeds)
  if result.interrupted:
    logging.warning("Received SIGTERM: rerun the same command to resume")
    sys.exit(train_cli.EXIT_PREEMPTED)
  logging.info("Cross-fitted teacher predictions: %s (train.py --teacher_predictions=%s)",
               result.predictions_path, result.predictions_path)


def run():
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
