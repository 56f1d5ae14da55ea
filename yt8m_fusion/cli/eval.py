"""eval.py: evaluates the checkpoints of a train_dir (GAP@k, Hit@1, PERR, mAP, F1, loss).

    python eval.py --train_dir=/tmp/attend_fusion --eval_data_pattern='/data/validate*' \
        --run_once

Rebuilds the model from train_dir/model_flags.json, so no model flag needs repeating.
Without --run_once it evaluates each new checkpoint as training writes it. Results go to
train_dir/eval/metrics-<step>.json (and metrics.json, the latest) and TensorBoard.
"""

import logging

import tensorflow as tf
from absl import app
from absl import flags

from yt8m_fusion import data as yt8m_data
from yt8m_fusion import io_utils
from yt8m_fusion import models
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion import training
from yt8m_fusion.cli import common
from yt8m_fusion.cli import flags as yt8m_flags
from yt8m_fusion.cli.parsing import parse_flags
from yt8m_fusion.errors import UserError, exit_on_user_error

FLAGS = flags.FLAGS


def define_flags():
  yt8m_flags.define_model_flags()
  yt8m_flags.define_data_flags()
  define = yt8m_flags.define_once
  define(flags.DEFINE_string, "train_dir", "/tmp/yt8m_model/",
         "The folder train.py wrote (model_flags.json and checkpoints).")
  define(flags.DEFINE_string, "eval_data_pattern", "",
         "Glob of TFRecords to evaluate on. Empty: the demo dataset's validation split.")
  define(flags.DEFINE_integer, "batch_size", 1024, "Examples per batch.", lower_bound=1,
         upper_bound=yt8m_flags.MAX_BATCH_SIZE)
  define(flags.DEFINE_bool, "run_once", False,
         "Evaluate the latest checkpoint once; else evaluate each new checkpoint.")
  define(flags.DEFINE_integer, "top_k", 20, "Top predictions per video fed to GAP / mAP.",
         lower_bound=1)
  define(flags.DEFINE_float, "f1_threshold", 0.5,
         "Score at or above which a class counts as predicted, for F1.", lower_bound=0.0,
         upper_bound=1.0)
  define(flags.DEFINE_integer, "eval_interval_secs", 60,
         "Without --run_once: seconds between looks for a new checkpoint.", lower_bound=1)
  define(flags.DEFINE_integer, "eval_timeout_secs", None,
         "Without --run_once: stop after this many seconds without a new checkpoint "
         "(default: wait forever).", lower_bound=1)


def load_config():
  saved = train_dir_lib.load_config(FLAGS.train_dir)
  return train_dir_lib.merge_config(saved, yt8m_flags.model_config_from_flags(base=saved),
                                    yt8m_flags.explicit_model_flags(), FLAGS.train_dir)


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  common.setup_logging()
  config = load_config()
  io_utils.check_writable_dir(FLAGS.train_dir, "--train_dir")  # results go to train_dir/eval
  pattern = FLAGS.eval_data_pattern or common.demo_patterns(config.frame_features)["validate"]
  model = models.build_model(config)
  reading = training.ReadOptions(max_frames=FLAGS.max_frames,
                                 segment_labels=FLAGS.segment_labels,
                                 num_readers=FLAGS.num_readers,
                                 skip_corrupt_records=FLAGS.skip_corrupt_records)
  # Fail now, before waiting for checkpoints, when the data cannot be read.
  yt8m_data.check_readable(pattern, config.data_spec(max_frames=FLAGS.max_frames,
                                                     segment_labels=FLAGS.segment_labels),
                           require_labels=True, skip_corrupt_records=FLAGS.skip_corrupt_records)

  def evaluate_checkpoint(path):
    train_dir_lib.restore_weights(model, path)
    step = train_dir_lib.checkpoint_step(path)
    training.evaluate(model, config, pattern, FLAGS.train_dir, step, batch_size=FLAGS.batch_size,
                      reading=reading, top_k=FLAGS.top_k, f1_threshold=FLAGS.f1_threshold)
    logging.info("Wrote %s", train_dir_lib.eval_dir(FLAGS.train_dir))
    return step

  if FLAGS.run_once:
    evaluate_checkpoint(train_dir_lib.require_checkpoint(FLAGS.train_dir))
    return
  last_step = None
  logging.info("Waiting for checkpoints in %s (every %d s)", FLAGS.train_dir,
               FLAGS.eval_interval_secs)
  for path in tf.train.checkpoints_iterator(FLAGS.train_dir,
                                            min_interval_secs=FLAGS.eval_interval_secs,
                                            timeout=FLAGS.eval_timeout_secs):
    step = train_dir_lib.checkpoint_step(path)
    if step == last_step:
      continue
    last_step = evaluate_checkpoint(path)
  logging.info("No new checkpoint for %d s: done", FLAGS.eval_timeout_secs)


def run():
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
