"""train.py: trains a model on YouTube-8M TFRecords, then evaluates and exports it.

The starter code's command lines work unchanged, e.g.

    python train.py --model=AttendFusion --feature_names=mean_rgb,mean_audio \
        --feature_sizes=1024,128 --train_data_pattern='/data/train*.tfrecord' \
        --train_dir=/tmp/attend_fusion

With no --train_data_pattern it trains on the demo dataset (generated once).
"""

import logging
import os
import sys
import time

import tensorflow as tf
from absl import app
from absl import flags

from yt8m_fusion import data as yt8m_data
from yt8m_fusion import distribute
from yt8m_fusion import evaluation
from yt8m_fusion import export
from yt8m_fusion import flags as yt8m_flags
from yt8m_fusion import inputs as model_inputs
from yt8m_fusion import io_utils
from yt8m_fusion import losses
from yt8m_fusion import models
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion import training
from yt8m_fusion.cli import common
from yt8m_fusion.errors import UserError, exit_on_user_error, parse_flags
from yt8m_fusion.models.config import ModelConfig

FLAGS = flags.FLAGS

# Exit code after a SIGTERM: the checkpoint is saved, the run is not finished.
EXIT_PREEMPTED = 143
# On the demo dataset (3000 training videos) the starter's batch of 1024 makes 3 steps an
# epoch; 128 gives the main job enough steps to learn in a few minutes.
DEMO_BATCH_SIZE = 128


def define_flags():
  yt8m_flags.define_model_flags()
  yt8m_flags.define_data_flags()
  define = yt8m_flags._define_once  # pylint: disable=protected-access
  define(flags.DEFINE_string, "train_dir", "/tmp/yt8m_model/",
         "Where checkpoints, model_flags.json, TensorBoard summaries, evaluation results and "
         "exports are written.")
  define(flags.DEFINE_string, "train_data_pattern", "",
         "Glob of training TFRecords (comma-separated globs allowed). Empty: the demo dataset.")
  define(flags.DEFINE_string, "eval_data_pattern", "",
         "Glob of validation TFRecords evaluated after training. Empty: the demo dataset's "
         "validation split when training on the demo dataset, else no evaluation.")
  define(flags.DEFINE_bool, "start_new_model", False,
         "Start from scratch: removes this project's files (checkpoints, model_flags.json, "
         "summaries, eval/, export/) from --train_dir, and nothing else.")
  define(flags.DEFINE_integer, "batch_size", 1024, "Examples per replica per step.",
         lower_bound=1, upper_bound=yt8m_flags.MAX_BATCH_SIZE)
  define(flags.DEFINE_float, "base_learning_rate", 0.01, "Initial learning rate.",
         lower_bound=0.0)
  define(flags.DEFINE_float, "learning_rate_decay", 0.95,
         "Multiplies the learning rate every --learning_rate_decay_examples examples.",
         lower_bound=0.0)
  define(flags.DEFINE_float, "learning_rate_decay_examples", 4000000,
         "Examples between learning-rate decays.", lower_bound=0.0)
  define(flags.DEFINE_integer, "num_epochs", 5, "Passes over the training data.",
         lower_bound=1)
  define(flags.DEFINE_integer, "max_steps", None,
         "Stop once the global step reaches this (across resumes).", lower_bound=1)
  define(flags.DEFINE_integer, "export_model_steps", 1000,
         "Save a checkpoint every this many steps (the starter's flag).", lower_bound=1)
  define(flags.DEFINE_float, "checkpoint_secs", 900,
         "Also save a checkpoint when this many seconds passed since the last one.",
         lower_bound=1.0)
  define(flags.DEFINE_integer, "max_checkpoints_to_keep", 5, "Checkpoints kept.",
         lower_bound=1)
  define(flags.DEFINE_string, "optimizer", "AdamOptimizer",
         "AdamOptimizer (Adam), AdamW, SGD (GradientDescentOptimizer), MomentumOptimizer, "
         "RMSPropOptimizer or AdagradOptimizer.")
  define(flags.DEFINE_float, "weight_decay", 0.004, "Weight decay of AdamW.", lower_bound=0.0)
  define(flags.DEFINE_float, "clip_gradient_norm", 1.0,
         "Clip each gradient tensor to this norm (as the starter); <= 0 turns it off.")
  define(flags.DEFINE_float, "regularization_penalty", 1.0,
         "Weight of the models' L2 regularization losses (the starter's flag).",
         lower_bound=0.0)
  define(flags.DEFINE_integer, "log_every_n_steps", 10,
         "Log line, TensorBoard scalars and train_log.csv row every this many steps.",
         lower_bound=1)
  define(flags.DEFINE_string, "mixed_precision", "float32",
         "float32, mixed_bfloat16 (CPUs, TPUs, recent GPUs) or mixed_float16 (GPUs).")
  define(flags.DEFINE_string, "jit_compile", "auto", "XLA compilation: auto, true or false.")
  define(flags.DEFINE_integer, "steps_per_execution", 1,
         "Training steps run per call into the compiled graph.", lower_bound=1)
  define(flags.DEFINE_bool, "export", True, "Export a SavedModel after training.")
  define(flags.DEFINE_integer, "top_k", 20, "Top predictions per video fed to GAP / mAP.",
         lower_bound=1)
  define(flags.DEFINE_float, "f1_threshold", 0.5,
         "Score at or above which a class counts as predicted, for F1.", lower_bound=0.0,
         upper_bound=1.0)
  define(flags.DEFINE_integer, "seed", None, "Random seed (weights, shuffling).")
  define(flags.DEFINE_bool, "shuffle", True,
         "Shuffle the training files and records; --noshuffle reads them in order "
         "(reproducible runs and comparisons).")
  # Starter flags accepted for compatibility.
  define(flags.DEFINE_integer, "num_gpu", 1,
         "Accepted for the starter's command lines: with more than one GPU use "
         "--strategy=mirrored.", lower_bound=0)
  define(flags.DEFINE_bool, "log_device_placement", False, "Log the device of each op.")
  distribute.define_flags(define)


def resolve_config(train_dir, is_chief):
  """The ModelConfig to train: from the flags, checked against model_flags.json."""
  train_dir_lib.check_not_export(train_dir)
  train_dir_lib.remove_stale_temporaries(train_dir)
  if FLAGS.start_new_model:
    if is_chief:
      removed = train_dir_lib.remove_own_files(train_dir)
      if removed:
        logging.info("--start_new_model: removed %s from %s", ", ".join(removed), train_dir)
    return yt8m_flags.model_config_from_flags()
  saved = train_dir_lib.config_to_resume(train_dir)
  if saved is None:
    return yt8m_flags.model_config_from_flags()
  requested = yt8m_flags.model_config_from_flags(base=saved)
  return train_dir_lib.merge_config(saved, requested, yt8m_flags.explicit_model_flags(), train_dir)


def train_options(config, on_demo):
  """TrainOptions from the flags; model and demo defaults for flags not given."""
  base_learning_rate, batch_size = FLAGS.base_learning_rate, FLAGS.batch_size
  model_rate = models.default_learning_rate(config.model)
  if model_rate is not None and not yt8m_flags.explicitly_set("base_learning_rate"):
    base_learning_rate = model_rate
    logging.info("--base_learning_rate=%g: %s's default (the starter's 0.01 makes it diverge)",
                 model_rate, config.model)
  if on_demo and not yt8m_flags.explicitly_set("batch_size"):
    batch_size = DEMO_BATCH_SIZE
    logging.info("--batch_size=%d: the demo dataset's default", batch_size)
  return training.TrainOptions(
      batch_size=batch_size, num_epochs=FLAGS.num_epochs, max_steps=FLAGS.max_steps,
      base_learning_rate=base_learning_rate, learning_rate_decay=FLAGS.learning_rate_decay,
      learning_rate_decay_examples=FLAGS.learning_rate_decay_examples, optimizer=FLAGS.optimizer,
      weight_decay=FLAGS.weight_decay, clip_gradient_norm=FLAGS.clip_gradient_norm,
      checkpoint_steps=FLAGS.export_model_steps, checkpoint_secs=FLAGS.checkpoint_secs,
      max_checkpoints_to_keep=FLAGS.max_checkpoints_to_keep,
      log_every_n_steps=FLAGS.log_every_n_steps,
      jit_compile=common.parse_jit_compile(FLAGS.jit_compile),
      steps_per_execution=FLAGS.steps_per_execution,
      verbose="auto" if sys.stdout.isatty() else 2)


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  common.setup_logging()
  if FLAGS.seed is not None:
    import keras  # pylint: disable=import-outside-toplevel
    keras.utils.set_random_seed(FLAGS.seed)
  tf.debugging.set_log_device_placement(FLAGS.log_device_placement)

  train_pattern, eval_pattern = FLAGS.train_data_pattern, FLAGS.eval_data_pattern
  if not train_pattern:
    demo = common.demo_patterns(FLAGS.frame_features)
    train_pattern = demo["train"]
    eval_pattern = eval_pattern or demo["validate"]

  cluster = distribute.create_strategy()
  train_dir = cluster.working_dir(FLAGS.train_dir)
  if cluster.is_chief:
    io_utils.check_writable_dir(FLAGS.train_dir, "--train_dir")
  # Multi-worker: the chief resolves the config and sends it to the other workers.
  config = cluster.config_from_chief(lambda: resolve_config(FLAGS.train_dir, cluster.is_chief),
                                     ModelConfig.from_json)
  common.set_precision_policy(FLAGS.mixed_precision)
  options = train_options(config, on_demo=not FLAGS.train_data_pattern)
  strategy = cluster.strategy
  global_batch = cluster.global_batch_size(options.batch_size)
  options.base_learning_rate, rate_text = cluster.scale_learning_rate(
      options.base_learning_rate, FLAGS.learning_rate_scaling)
  logging.info("Training %s on %s with %s: %d replica(s), batch %d per replica, global batch "
               "%d; learning rate %s, decay %g every %g global examples", config.model,
               ",".join(config.feature_names), common.describe_device(),
               strategy.num_replicas_in_sync, options.batch_size, global_batch,
               rate_text, options.learning_rate_decay, options.learning_rate_decay_examples)

  with strategy.scope():
    model = models.build_model(config)
    optimizer = training.compile_model(model, config, options,
                                       strategy.num_replicas_in_sync)
    keeper = training.CheckpointKeeper(train_dir, model, optimizer,
                                       options.max_checkpoints_to_keep)
    cluster.prepare_training(model, keeper)
    restored = keeper.restore_latest()
    cluster.sync_training_state(model, optimizer, keeper)
  if restored:
    logging.info("Resuming from %s (step %d, epoch %d)", restored, keeper.step,
                 int(keeper.epoch.numpy()))
  if cluster.is_chief:
    tf.io.gfile.makedirs(FLAGS.train_dir)
    train_dir_lib.save_config(FLAGS.train_dir, config)

  skip_counter = yt8m_data.SkipCounter() if FLAGS.skip_corrupt_records else None
  dataset = cluster.distribute_dataset(
      lambda input_context: model_inputs.training_pairs(model_inputs.load_batches(
          train_pattern, config, batch_size=options.batch_size, max_frames=FLAGS.max_frames,
          segment_labels=FLAGS.segment_labels, shuffle=FLAGS.shuffle, num_epochs=1,
          num_readers=FLAGS.num_readers, skip_corrupt_records=FLAGS.skip_corrupt_records,
          input_context=input_context, drop_remainder=cluster.needs_static_batches,
          seed=FLAGS.seed, skip_counter=skip_counter, require_labels=True), config))
  if eval_pattern and cluster.is_chief:  # fail now, not after training, on bad eval data
    model_inputs.load_batches(eval_pattern, config, batch_size=options.batch_size,
                              max_frames=FLAGS.max_frames, segment_labels=FLAGS.segment_labels,
                              skip_corrupt_records=FLAGS.skip_corrupt_records,
                              require_labels=True)
  start = time.time()
  try:
    result = training.fit(model, dataset, keeper, options, global_batch_size=global_batch,
                          is_chief=cluster.is_chief,
                          summary_dir=FLAGS.train_dir if cluster.is_chief else None,
                          agree=cluster.agreement())
  except common.DATA_ERRORS as error:
    lost = cluster.explain_error(error)  # multi-worker: another worker stopped
    if lost is not None:
      raise lost from None
    memory = common.out_of_memory_error(error, FLAGS.batch_size)
    if memory is not None:
      raise memory from None
    raise common.explain_data_error(error, train_pattern, config, "--train_data_pattern") \
        from None
  finally:
    cluster.cleanup()
  common.log_skipped(skip_counter, "--train_data_pattern")
  if result.interrupted:
    # Multi-worker: every worker stops when any of them receives SIGTERM; the chief's
    # checkpoint is the one to resume from (other workers' copies are temporary).
    logging.warning("Received SIGTERM: saved %s; rerun the same command to resume",
                    result.checkpoint_path if cluster.is_chief else
                    f"{FLAGS.train_dir} (the chief's checkpoint)")
    sys.exit(EXIT_PREEMPTED)
  logging.info("Trained to step %d (epoch %d) in %.1f s", result.step, result.epoch,
               time.time() - start)
  if not cluster.is_chief:
    return
  # Multi-worker: the other workers are gone; evaluate and export a local copy.
  model = cluster.model_for_chief(model, lambda: models.build_model(config))

  outputs = [("checkpoints and model_flags.json", FLAGS.train_dir)]
  if eval_pattern:
    eval_dataset = model_inputs.load_batches(
        eval_pattern, config, batch_size=options.batch_size, max_frames=FLAGS.max_frames,
        segment_labels=FLAGS.segment_labels, num_readers=FLAGS.num_readers,
        skip_corrupt_records=FLAGS.skip_corrupt_records, require_labels=True)
    results = evaluation.evaluate(
        model, eval_dataset, config, losses.get_loss(config.label_loss), top_k=FLAGS.top_k,
        f1_threshold=FLAGS.f1_threshold, segment_labels=FLAGS.segment_labels,
        error_handler=lambda error: common.explain_data_error(
            error, eval_pattern, config, "--eval_data_pattern"))
    common.log_skipped(getattr(eval_dataset, "skip_counter", None), "--eval_data_pattern")
    evaluation.write_results(
        FLAGS.train_dir, result.step, results, segment_labels=FLAGS.segment_labels,
        extra={"model": config.model, "data_pattern": eval_pattern,
               "num_parameters": int(model.count_params()),
               "train_examples_per_second": result.examples_per_second})
    logging.info(evaluation.summary_line(result.step, results))
    outputs.append(("evaluation (JSON, TensorBoard)", train_dir_lib.eval_dir(FLAGS.train_dir)))
  if FLAGS.export:
    path = export.export_saved_model(model, config, train_dir_lib.export_dir(FLAGS.train_dir),
                                     result.step, max_frames=FLAGS.max_frames)
    outputs.append(("SavedModel for TF Serving", path))
  outputs.append(("TensorBoard", f"tensorboard --logdir={FLAGS.train_dir}"))
  for what, where in outputs:
    logging.info("%-32s %s", what + ":", where)


def run():
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
