"""eval.py: evaluates the checkpoints of a train_dir (GAP@k, Hit@1, PERR, mAP, F1, loss).

    python eval.py --train_dir=/tmp/attend_fusion --eval_data_pattern='/data/validate*' \
        --run_once

Rebuilds the model from train_dir/model_flags.json, so no model flag needs repeating.
Without --run_once it evaluates each new checkpoint as training writes it. Results go to
train_dir/eval/metrics-<step>.json (and metrics.json, the latest) and TensorBoard.

An ensemble: --train_dir=A,B [--ensemble_weights=0.6,0.4] --ensemble_output_dir=DIR
--run_once evaluates the weighted mean of the latest checkpoints' probabilities and writes
DIR/metrics-<step>.json (step: the members' highest) and DIR/metrics.json (docs/ENSEMBLES.md).
"""

import logging

import tensorflow as tf
from absl import app
from absl import flags

from yt8m_fusion import data as yt8m_data
from yt8m_fusion import io_utils
from yt8m_fusion import models
from yt8m_fusion import prediction
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
  yt8m_flags.define_ensemble_weights_flag()
  define(flags.DEFINE_string, "ensemble_output_dir", "",
         "--train_dir=A,B,...: the folder that gets the ensemble's metrics JSON and "
         "TensorBoard scalars (required for an ensemble).")
  define(flags.DEFINE_integer, "eval_timeout_secs", None,
         "Without --run_once: stop after this many seconds without a new checkpoint "
         "(default: wait forever).", lower_bound=1)


def load_config():
  saved = train_dir_lib.load_config(FLAGS.train_dir)
  return train_dir_lib.merge_config(saved, yt8m_flags.model_config_from_flags(base=saved),
                                    yt8m_flags.explicit_model_flags(), FLAGS.train_dir)


def ensemble_train_dirs():
  """The train_dirs of --train_dir=A,B,... (one: a single model, [])."""
  train_dirs = [path.strip() for path in FLAGS.train_dir.split(",") if path.strip()]
  return train_dirs if len(train_dirs) > 1 else []


def evaluate_ensemble(train_dirs):
  """--train_dir=A,B,... --run_once: the metrics of the weighted mean of the members'
  probabilities at their latest checkpoints, written to --ensemble_output_dir."""
  from yt8m_fusion import evaluation  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import losses  # pylint: disable=import-outside-toplevel
  if not FLAGS.run_once:
    raise UserError("--train_dir with several train_dirs (an ensemble) needs --run_once: "
                    "evaluate the ensemble once its members have finished training")
  if not FLAGS.ensemble_output_dir:
    raise UserError("--train_dir with several train_dirs (an ensemble) needs "
                    "--ensemble_output_dir: the folder that gets the ensemble's metrics")
  yt8m_flags.check_no_model_flags_for_ensemble()
  io_utils.check_writable_dir(FLAGS.ensemble_output_dir, "--ensemble_output_dir")
  with prediction.ensemble(train_dirs, FLAGS.ensemble_weights,
                           max_frames=FLAGS.max_frames) as ensemble:
    pattern = (FLAGS.eval_data_pattern or
               common.demo_patterns(ensemble.spec.frame_features)["validate"])
    logging.info("Evaluating the %s", ensemble.description)
    batches = ensemble.predictions(pattern, batch_size=FLAGS.batch_size, labels=True,
                                   segment_labels=FLAGS.segment_labels,
                                   num_readers=FLAGS.num_readers,
                                   skip_corrupt_records=FLAGS.skip_corrupt_records,
                                   data_flag="--eval_data_pattern")
    label_loss = ensemble.members[0].config.label_loss
    results = evaluation.compute_metrics(
        batches, ensemble.num_classes, losses.get_loss(label_loss), top_k=FLAGS.top_k,
        f1_threshold=FLAGS.f1_threshold, segment_labels=FLAGS.segment_labels)
    checkpoints = [member.checkpoint for member in ensemble.members]
    step = max(train_dir_lib.checkpoint_step(path) for path in checkpoints)
    evaluation.write_results(
        FLAGS.ensemble_output_dir, step, results, segment_labels=FLAGS.segment_labels,
        folder=FLAGS.ensemble_output_dir,
        extra={"model": "ensemble", "data_pattern": pattern, "label_loss": label_loss,
               "members": [{"train_dir": path, "checkpoint": checkpoint,
                            "model": member.config.model, "weight": weight}
                           for path, checkpoint, member, weight in
                           zip(train_dirs, checkpoints, ensemble.members, ensemble.weights)]})
  logging.info(evaluation.summary_line(step, results))
  logging.info("Wrote %s", FLAGS.ensemble_output_dir)


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  common.setup_logging()
  train_dirs = ensemble_train_dirs()
  if train_dirs:
    evaluate_ensemble(train_dirs)
    return
  for flag in ("ensemble_weights", "ensemble_output_dir"):
    if FLAGS[flag].present:
      raise UserError(f"--{flag} is for an ensemble: give several --train_dir=A,B,...")
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

  # One predictor for every checkpoint: its prediction function is traced once.
  predictor = prediction.from_keras_model(model, config, max_frames=FLAGS.max_frames)

  def evaluate_checkpoint(path):
    train_dir_lib.restore_weights(model, path)
    step = train_dir_lib.checkpoint_step(path)
    training.evaluate(model, config, pattern, FLAGS.train_dir, step, batch_size=FLAGS.batch_size,
                      reading=reading, top_k=FLAGS.top_k, f1_threshold=FLAGS.f1_threshold,
                      predictor=predictor)
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
