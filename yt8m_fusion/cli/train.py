"""train.py: trains a model on YouTube-8M TFRecords, then evaluates and exports it.

The starter code's command lines work unchanged, e.g.

    python train.py --model=AttendFusion --feature_names=mean_rgb,mean_audio \
        --feature_sizes=1024,128 --train_data_pattern='/data/train*.tfrecord' \
        --train_dir=/tmp/attend_fusion

With no --train_data_pattern it trains on the demo dataset (generated once).
"""

import dataclasses
import logging
import sys

import tensorflow as tf
from absl import app
from absl import flags

from yt8m_fusion import distillation
from yt8m_fusion import distribute
from yt8m_fusion import io_utils
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion import training
from yt8m_fusion.cli import common
from yt8m_fusion.cli import flags as yt8m_flags
from yt8m_fusion.cli.parsing import parse_flags
from yt8m_fusion.errors import UserError, exit_on_user_error
from yt8m_fusion.models.config import ModelConfig

FLAGS = flags.FLAGS

# Exit code after a SIGTERM: the checkpoint is saved, the run is not finished.
EXIT_PREEMPTED = 143
# TrainOptions fields set by a flag of another name.
FLAG_OF_OPTION = {"checkpoint_steps": "export_model_steps"}


def define_flags():
  yt8m_flags.define_model_flags()
  yt8m_flags.define_data_flags()
  define = yt8m_flags.define_once
  defaults = training.TrainOptions
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
  define(flags.DEFINE_integer, "batch_size", defaults.batch_size,
         "Examples per replica per step.", lower_bound=1, upper_bound=yt8m_flags.MAX_BATCH_SIZE)
  define(flags.DEFINE_float, "base_learning_rate", defaults.base_learning_rate,
         "Initial learning rate (the model's own default where it has one).", lower_bound=0.0)
  define(flags.DEFINE_float, "learning_rate_decay", defaults.learning_rate_decay,
         "Multiplies the learning rate every --learning_rate_decay_examples examples.",
         lower_bound=0.0)
  define(flags.DEFINE_float, "learning_rate_decay_examples",
         defaults.learning_rate_decay_examples, "Examples between learning-rate decays.",
         lower_bound=0.0)
  define(flags.DEFINE_integer, "num_epochs", defaults.num_epochs,
         "Passes over the training data.", lower_bound=1)
  define(flags.DEFINE_integer, "max_steps", None,
         "Stop once the global step reaches this (across resumes).", lower_bound=1)
  define(flags.DEFINE_integer, "export_model_steps", defaults.checkpoint_steps,
         "Save a checkpoint every this many steps (the starter's flag).", lower_bound=1)
  define(flags.DEFINE_float, "checkpoint_secs", defaults.checkpoint_secs,
         "Also save a checkpoint when this many seconds passed since the last one.",
         lower_bound=1.0)
  define(flags.DEFINE_integer, "max_checkpoints_to_keep", defaults.max_checkpoints_to_keep,
         "Checkpoints kept.", lower_bound=1)
  define(flags.DEFINE_string, "optimizer", defaults.optimizer,
         "AdamOptimizer (Adam), AdamW, SGD (GradientDescentOptimizer), MomentumOptimizer, "
         "RMSPropOptimizer or AdagradOptimizer.")
  define(flags.DEFINE_float, "weight_decay", defaults.weight_decay, "Weight decay of AdamW.",
         lower_bound=0.0)
  define(flags.DEFINE_float, "clip_gradient_norm", defaults.clip_gradient_norm,
         "Clip each gradient tensor to this norm (as the starter); <= 0 turns it off.")
  define(flags.DEFINE_float, "regularization_penalty", defaults.regularization_penalty,
         "Weight of the models' L2 regularization losses (the starter's flag).",
         lower_bound=0.0)
  define(flags.DEFINE_float, "label_smoothing", defaults.label_smoothing,
         "Train against labels y (1 - s) + s / 2, as Keras' BinaryCrossentropy "
         "(--label_loss=CrossEntropyLoss only); 0 turns it off.", lower_bound=0.0,
         upper_bound=0.999)
  define(flags.DEFINE_integer, "log_every_n_steps", defaults.log_every_n_steps,
         "Log line, TensorBoard scalars and train_log.csv row every this many steps.",
         lower_bound=1)
  define(flags.DEFINE_string, "mixed_precision", defaults.mixed_precision,
         "float32, mixed_bfloat16 (CPUs, TPUs, recent GPUs) or mixed_float16 (GPUs).")
  define(flags.DEFINE_string, "jit_compile", "auto", "XLA compilation: auto, true or false.")
  define(flags.DEFINE_integer, "steps_per_execution", defaults.steps_per_execution,
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
  define(flags.DEFINE_enum, "strategy", "default", list(distribute.STRATEGIES),
         "tf.distribute strategy: default (one device), mirrored (all local GPUs), "
         "multi_worker (MultiWorkerMirroredStrategy, cluster from TF_CONFIG) or tpu.")
  define(flags.DEFINE_string, "tpu", "",
         "--strategy=tpu: TPU name or grpc:// address; 'local' on a TPU VM; empty: $TPU_NAME.")
  define(flags.DEFINE_integer, "collective_timeout_secs", 600,
         "multi_worker: how long a worker waits for the others (to join at start-up, or in "
         "a step) before it stops with an error naming the missing worker.", lower_bound=1)
  define_distillation_flags()
  define(flags.DEFINE_enum, "learning_rate_scaling", defaults.learning_rate_scaling,
         list(training.LEARNING_RATE_SCALING),
         "How --base_learning_rate changes with the number of replicas R (global batch = "
         "batch_size x R): none (the starter's rule: unchanged), linear (x R) or sqrt "
         "(x sqrt(R)).")


def define_distillation_flags():
  """Distillation (docs/DISTILLATION.md): train a student against teachers' probabilities."""
  define = yt8m_flags.define_once
  define(flags.DEFINE_list, "teacher", None,
         "Distill from these teachers (train_dirs, exports, .tflite files or model .tgz "
         "files, comma-separated; several are averaged): their probabilities of the training "
         "videos are predicted once into train_dir/" + distillation.PREDICTIONS_FILE + ".")
  define(flags.DEFINE_list, "teacher_weights", None,
         "Weights of the --teacher paths in their average (default equal).")
  define(flags.DEFINE_string, "teacher_predictions", None,
         "Distill from a teacher predictions file made beforehand (python -m "
         "yt8m_fusion.crossfit, or another run's train_dir/" + distillation.PREDICTIONS_FILE +
         ").")
  define(flags.DEFINE_float, "distill_weight", None,
         f"Share w of the teachers' soft targets in the loss of labelled videos: (1 - w) x "
         f"label loss + w x soft loss (default {distillation.DEFAULT_WEIGHT:g}, or the resumed "
         "run's). Videos without labels use the soft loss alone.", lower_bound=0.0,
         upper_bound=1.0)
  define(flags.DEFINE_float, "distill_temperature", None,
         "Temperature T of the soft loss: both probabilities softened to sigmoid(logit / T), "
         f"the term scaled by T^2 (default {distillation.DEFAULT_TEMPERATURE:g}: plain "
         "cross-entropy against the teachers' probabilities).", lower_bound=1e-3)
  define(flags.DEFINE_enum, "distill_missing", None, list(distillation.ON_MISSING),
         "A training video missing from the teacher predictions: error (default) stops with "
         "its id; labels trains it on its labels alone.")
  define(flags.DEFINE_integer, "distill_top_k", None,
         "--teacher: classes kept per video in the predictions file, the others counting as 0 "
         f"(default {distillation.DEFAULT_TOP_K}, or the resumed run's).", lower_bound=1)


def distillation_options(train_dir, train_pattern, is_chief):
  """The DistillationOptions of the flags (or of a resumed distilled run), or None."""
  teachers = (distillation.parse_teachers(FLAGS.teacher, FLAGS.teacher_weights)
              if FLAGS.teacher else None)
  if FLAGS.teacher_weights and not FLAGS.teacher:
    raise UserError("--teacher_weights needs --teacher")
  if teachers and FLAGS.strategy == "multi_worker":
    raise UserError("--teacher with --strategy=multi_worker: predict the teachers first "
                    "(e.g. python -m yt8m_fusion.crossfit) and pass --teacher_predictions")
  return distillation.prepare(
      train_dir, train_pattern, teachers=teachers, predictions_path=FLAGS.teacher_predictions,
      weight=FLAGS.distill_weight, temperature=FLAGS.distill_temperature,
      on_missing=FLAGS.distill_missing, top_k=FLAGS.distill_top_k,
      batch_size=FLAGS.batch_size, max_frames=FLAGS.max_frames, is_chief=is_chief)


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
  """TrainOptions of a ModelConfig: its model's defaults, the demo's batch, then the flags
  given."""
  model_name = config.model
  options = training.TrainOptions.for_model(model_name, config.label_loss)
  for field in dataclasses.fields(options):
    flag = FLAG_OF_OPTION.get(field.name, field.name)
    if flag not in FLAGS:
      continue
    if yt8m_flags.explicitly_set(flag):
      setattr(options, field.name, FLAGS[flag].value)
    elif getattr(options, field.name) != FLAGS[flag].default:
      logging.info("--%s=%s: %s's default", flag, getattr(options, field.name), model_name)
  if on_demo and not yt8m_flags.explicitly_set("batch_size"):
    options.batch_size = training.DEMO_BATCH_SIZE
    logging.info("--batch_size=%d: the demo dataset's default", options.batch_size)
  options.jit_compile = common.parse_jit_compile(FLAGS.jit_compile)
  options.verbose = "auto" if sys.stdout.isatty() else 2
  return options


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  common.setup_logging()
  tf.debugging.set_log_device_placement(FLAGS.log_device_placement)
  train_pattern, eval_pattern = FLAGS.train_data_pattern, FLAGS.eval_data_pattern
  if not train_pattern:
    demo = common.demo_patterns(FLAGS.frame_features)
    train_pattern = demo["train"]
    eval_pattern = eval_pattern or demo["validate"]

  cluster = distribute.create_strategy(FLAGS.strategy, tpu=FLAGS.tpu,
                                       collective_timeout_secs=FLAGS.collective_timeout_secs)
  if cluster.is_chief:
    train_dir_lib.check_not_export(FLAGS.train_dir)
    io_utils.check_writable_dir(FLAGS.train_dir, "--train_dir")
  # One trainer per train_dir, held before anything in it is written or removed
  # (--start_new_model, stale temporaries); training.run holds the same hold.
  with training.lock.hold(FLAGS.train_dir, enabled=cluster.is_chief):
    train(cluster, train_pattern, eval_pattern)


def train(cluster, train_pattern, eval_pattern):
  """The rest of main, with the train_dir held."""
  # Multi-worker: the chief resolves the config and sends it to the other workers.
  config = cluster.config_from_chief(lambda: resolve_config(FLAGS.train_dir, cluster.is_chief),
                                     ModelConfig.from_json)
  options = train_options(config, on_demo=not FLAGS.train_data_pattern)
  options.distillation = distillation_options(FLAGS.train_dir, train_pattern, cluster.is_chief)
  reading = training.ReadOptions(max_frames=FLAGS.max_frames,
                                 segment_labels=FLAGS.segment_labels,
                                 num_readers=FLAGS.num_readers,
                                 skip_corrupt_records=FLAGS.skip_corrupt_records,
                                 shuffle=FLAGS.shuffle)
  result = training.run(config, FLAGS.train_dir, train_pattern, options=options,
                        eval_data_pattern=eval_pattern or None, reading=reading,
                        cluster=cluster, export=FLAGS.export, top_k=FLAGS.top_k,
                        f1_threshold=FLAGS.f1_threshold)
  if result.train.interrupted:
    # Multi-worker: every worker stops when any of them receives SIGTERM; the chief's
    # checkpoint is the one to resume from (other workers' copies are temporary).
    logging.warning("Received SIGTERM: saved %s; rerun the same command to resume",
                    result.train.checkpoint_path if cluster.is_chief else
                    f"{FLAGS.train_dir} (the chief's checkpoint)")
    sys.exit(EXIT_PREEMPTED)
  if not result.is_chief:
    return
  outputs = [("checkpoints and model_flags.json", FLAGS.train_dir)]
  if result.eval_results is not None:
    outputs.append(("evaluation (JSON, TensorBoard)", train_dir_lib.eval_dir(FLAGS.train_dir)))
  if result.export_path:
    outputs.append(("SavedModel for TF Serving", result.export_path))
  outputs.append(("TensorBoard", f"tensorboard --logdir={FLAGS.train_dir}"))
  for what, where in outputs:
    logging.info("%-32s %s", what + ":", where)


def run():
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
