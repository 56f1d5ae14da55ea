"""Training as a Python API: `run` puts a whole training job together.

    from yt8m_fusion import models, training

    config = models.ModelConfig(model="AttendFusion", feature_names=["mean_rgb", "mean_audio"],
                                feature_sizes=[1024, 128])
    result = training.run(config, "/tmp/attend_fusion", "/data/train*.tfrecord",
                          eval_data_pattern="/data/validate*.tfrecord",
                          options=training.TrainOptions.for_model("AttendFusion"))

`run` builds the model under the strategy, resumes from the train_dir's newest checkpoint,
trains (`fit`), then on the chief evaluates and exports. train.py, the experiments, the
benchmarks and the tests all train through it.
"""

import dataclasses
import gc
import logging
import time
import warnings

import keras
import tensorflow as tf

from yt8m_fusion import distillation
from yt8m_fusion import distribute
from yt8m_fusion import evaluation
from yt8m_fusion import export as export_lib
from yt8m_fusion import inputs as model_inputs
from yt8m_fusion import io_utils
from yt8m_fusion import keras_compat
from yt8m_fusion import losses
from yt8m_fusion import models
from yt8m_fusion import prediction
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.data import check_readable
from yt8m_fusion.data.explain import DATA_ERRORS
from yt8m_fusion.data.explain import explain_data_error
from yt8m_fusion.data.explain import log_skipped
from yt8m_fusion.errors import UserError
from yt8m_fusion.training import lock as train_dir_lock
from yt8m_fusion.training.checkpoints import CheckpointKeeper
from yt8m_fusion.training.monitor import SigtermFlag
from yt8m_fusion.training.monitor import TrainingMonitor
from yt8m_fusion.training.options import ReadOptions
from yt8m_fusion.training.options import TrainOptions
from yt8m_fusion.training.options import build_optimizer
from yt8m_fusion.training.step import TrainingModel


@dataclasses.dataclass
class TrainResult:
  step: int
  epoch: int
  checkpoint_path: str | None
  interrupted: bool = False  # stopped by SIGTERM
  examples_per_second: float | None = None


@dataclasses.dataclass
class RunResult:
  """What `run` did: the training, and on the chief the evaluation and export."""

  train: TrainResult
  is_chief: bool = True
  num_parameters: int | None = None
  eval_results: dict | None = None  # evaluate's metrics (evaluation.compute_metrics)
  export_path: str | None = None
  seconds: float = 0.0


class TrainingDiverged(UserError):
  """The loss became NaN or Inf."""


def out_of_memory_error(error, batch_size):
  """A UserError for a TensorFlow out-of-memory error (else None): it is not a data problem."""
  if not isinstance(error, tf.errors.ResourceExhaustedError):
    return None
  detail = " ".join(str(getattr(error, "message", error)).split())[:200]
  return UserError(f"out of memory at --batch_size={batch_size} ({detail}); lower --batch_size, "
                   "or use --mixed_precision=mixed_bfloat16 (CPU) / mixed_float16 (GPU), or a "
                   "smaller model")


def run(config, train_dir, train_data_pattern, *, options=None, eval_data_pattern=None,
        reading=None, cluster=None, export=True, top_k=20, f1_threshold=0.5):
  """Trains `config`'s model into `train_dir`, then evaluates and exports it.

  Args:
    config: a `ModelConfig` (the model, its features and hyper-parameters).
    train_dir: checkpoints, model_flags.json, TensorBoard summaries, train_log.csv, eval/
      and export/ go here. With checkpoints already there, training resumes (the saved
      model_flags.json must describe `config`).
    train_data_pattern: glob(s) of the training TFRecords.
    options: a `TrainOptions`; default `TrainOptions.for_model(config.model, config.label_loss)`.
    eval_data_pattern: glob(s) evaluated after training (None: no evaluation).
    reading: a `ReadOptions` (frames, segments, readers, corrupt records, shuffling);
      default `ReadOptions()`.
    cluster: a `distribute.ClusterSetup`; default one device.
    export: write a SavedModel for TF Serving into train_dir/export after training.
    top_k, f1_threshold: of the evaluation (GAP@top_k; F1 at the threshold).

  Returns:
    A `RunResult`. When SIGTERM stopped training, `result.train.interrupted` is True and
    there is no evaluation or export: the same call resumes.

  Raises:
    UserError: a mistake the user can fix (bad data, a full disk, a diverged loss, ...),
      in one line.
  """
  started = time.time()
  options = (options or TrainOptions.for_model(config.model, config.label_loss)).validate()
  reading = reading or ReadOptions()
  if options.seed is not None:
    keras.utils.set_random_seed(options.seed)
  # The policy is global: restored after, so that models built later in the process (an
  # experiment's evaluations) are not built in this run's precision.
  policy = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(options.mixed_precision)
  try:
    cluster = cluster or distribute.create_strategy("default")
    if cluster.is_chief:
      io_utils.check_writable_dir(train_dir, "--train_dir")
    # One writer per train_dir: the chief holds it from here to the end (training/lock.py).
    with train_dir_lock.hold(train_dir, enabled=cluster.is_chief):
      report = _run_holding(config, train_dir, train_data_pattern, options, eval_data_pattern,
                            reading, cluster, export, top_k, f1_threshold, started)
  finally:
    keras.mixed_precision.set_global_policy(policy)
  # The model, its optimizer and their traced functions are garbage now, in reference
  # cycles that only Python's cyclic collector frees, and it seldom runs its full pass: a
  # process that trains many models (the experiments) would hold several of them.
  gc.collect()
  return report


def _run_holding(config, train_dir, train_data_pattern, options, eval_data_pattern, reading,
                 cluster, export, top_k, f1_threshold, started):
  """`run` once the train_dir is held."""
  working_dir = cluster.working_dir(train_dir)
  if cluster.is_chief:
    _check_saved_config(train_dir, config)
  spec = config.data_spec(max_frames=reading.max_frames, segment_labels=reading.segment_labels)
  strategy = cluster.strategy
  global_batch = cluster.global_batch_size(options.batch_size)
  rate, rate_text = cluster.scale_learning_rate(options.base_learning_rate,
                                                options.learning_rate_scaling)
  options = dataclasses.replace(options, base_learning_rate=rate)
  logging.info("Training %s on %s with %s: %d replica(s), batch %d per replica, global batch "
               "%d; learning rate %s, decay %g every %g global examples", config.model,
               ",".join(config.feature_names), _describe_device(),
               strategy.num_replicas_in_sync, options.batch_size, global_batch, rate_text,
               options.learning_rate_decay, options.learning_rate_decay_examples)

  with strategy.scope():
    network = models.build_model(config)
    trainer = build_trainer(network, config, options, strategy.num_replicas_in_sync)
    # The checkpoint holds the optimizer itself (under mixed_float16, the loss-scale
    # optimizer's inner one), as it always has.
    optimizer = getattr(trainer.optimizer, "inner_optimizer", trainer.optimizer)
    keeper = CheckpointKeeper(working_dir, network, optimizer, options.max_checkpoints_to_keep)
    cluster.prepare_training(trainer, keeper)
    restored = keeper.restore_latest()
    cluster.sync_training_state(network, optimizer, keeper)
  if restored:
    logging.info("Resuming from %s (step %d, epoch %d)", restored, keeper.step,
                 int(keeper.epoch.numpy()))
  if cluster.is_chief:
    train_dir_lib.save_config(train_dir, config)
    if eval_data_pattern:  # fail now, not after training, on evaluation data that is bad
      check_readable(eval_data_pattern, spec, require_labels=True,
                     skip_corrupt_records=reading.skip_corrupt_records)

  skip_counters = []
  # Distillation: the teachers' targets are looked up per video; records without labels
  # train on those targets alone.
  teacher = (distillation.load_targets(options.distillation, config.num_classes)
             if options.distillation else None)

  def training_batches(input_context):
    batches = model_inputs.load_batches(
        train_data_pattern, spec, batch_size=options.batch_size, shuffle=reading.shuffle,
        num_epochs=1, num_readers=reading.num_readers,
        skip_corrupt_records=reading.skip_corrupt_records, input_context=input_context,
        drop_remainder=cluster.needs_static_batches, seed=options.seed,
        require_labels=teacher is None)
    skip_counters.append(batches.skip_counter)
    dataset = batches.dataset
    if reading.keep_videos is not None:
      dataset = distillation.filter_videos(dataset, reading.keep_videos, options.batch_size,
                                           drop_remainder=cluster.needs_static_batches)
    if teacher is not None:
      return teacher.training_triples(dataset, spec)
    return model_inputs.training_pairs(dataset, spec)

  try:
    dataset = cluster.distribute_dataset(training_batches)
    result = fit(trainer, dataset, keeper, options, global_batch_size=global_batch,
                 is_chief=cluster.is_chief, summary_dir=train_dir if cluster.is_chief else None,
                 agree=cluster.agreement())
  except DATA_ERRORS as error:
    raise (cluster.explain_error(error)  # multi-worker: another worker stopped
           or (teacher and teacher.explain_error(error))  # a video without teacher targets
           or out_of_memory_error(error, options.batch_size)
           or explain_data_error(error, train_data_pattern, spec, "--train_data_pattern")) \
        from None
  finally:
    cluster.cleanup()
  for counter in skip_counters:
    log_skipped(counter, "--train_data_pattern")
  report = RunResult(train=result, is_chief=cluster.is_chief)
  if result.interrupted or not cluster.is_chief:
    report.seconds = time.time() - started
    return report
  logging.info("Trained to step %d (epoch %d) in %.1f s", result.step, result.epoch,
               time.time() - started)

  # Multi-worker: the other workers are gone; evaluate and export a local copy.
  network = cluster.model_for_chief(network, lambda: models.build_model(config))
  report.num_parameters = int(network.count_params())
  if eval_data_pattern:
    report.eval_results = evaluate(network, config, eval_data_pattern, train_dir, result.step,
                                   batch_size=options.batch_size, reading=reading, top_k=top_k,
                                   f1_threshold=f1_threshold,
                                   extra={"epoch": result.epoch,
                                          "train_examples_per_second":
                                          result.examples_per_second})
  if export:
    report.export_path = export_lib.export_saved_model(
        network, config, train_dir_lib.export_dir(train_dir), result.step,
        max_frames=reading.max_frames)
  report.seconds = time.time() - started
  return report


def build_trainer(network, config, options, num_replicas=1):
  """`network` in a compiled `TrainingModel`, as `run` trains it (call in the strategy's
  scope)."""
  label_loss = losses.get_loss(config.label_loss, options.label_smoothing)
  distilling = options.distillation
  distillation_loss = None if distilling is None else losses.DistillationLoss(
      label_loss, distilling.weight, distilling.temperature)
  trainer = TrainingModel(network, label_loss,
                          clip_gradient_norm=options.clip_gradient_norm,
                          regularization_penalty=options.regularization_penalty,
                          distillation=distillation_loss)
  trainer.compile(optimizer=build_optimizer(options, num_replicas),
                  jit_compile=options.jit_compile,
                  steps_per_execution=options.steps_per_execution)
  # Every variable exists before the step is traced (a strategy cannot create one inside
  # the traced step's control flow).
  trainer.optimizer.build(trainer.trainable_variables)
  return trainer


def evaluate(network, config, data_pattern, train_dir, step, *, batch_size=1024,
             reading=None, top_k=20, f1_threshold=0.5, extra=None, predictor=None):
  """Evaluates `network` on `data_pattern`; writes train_dir/eval/metrics-<step>.json.

  `predictor`: `prediction.from_keras_model(network, ...)` made once by a caller that
  evaluates many checkpoints (eval.py), so that its prediction function is traced once
  rather than once per checkpoint (docs/RELIABILITY.md, memory over long runs).
  """
  reading = reading or ReadOptions()
  if predictor is None:
    predictor = prediction.from_keras_model(network, config, max_frames=reading.max_frames)
  batches = predictor.predictions(data_pattern, batch_size=batch_size, labels=True,
                                  segment_labels=reading.segment_labels,
                                  num_readers=reading.num_readers,
                                  skip_corrupt_records=reading.skip_corrupt_records,
                                  data_flag="--eval_data_pattern")
  results = evaluation.compute_metrics(
      batches, config.num_classes, losses.get_loss(config.label_loss), top_k=top_k,
      f1_threshold=f1_threshold, segment_labels=reading.segment_labels)
  evaluation.write_results(
      train_dir, step, results, segment_labels=reading.segment_labels,
      extra={"model": config.model, "data_pattern": data_pattern,
             "num_parameters": int(network.count_params()), **(extra or {})})
  logging.info(evaluation.summary_line(step, results))
  return results


def _check_saved_config(train_dir, config):
  saved = train_dir_lib.config_to_resume(train_dir)  # None until a checkpoint exists
  # Every earlier format of the file resumes: it is compared where it holds a value.
  differences = [] if saved is None else train_dir_lib.describes_another_model(saved, config)
  if differences:
    details = "; ".join(f"{key}: saved {old!r}, given {new!r}" for key, old, new in differences)
    raise UserError(f"{train_dir_lib.model_flags_path(train_dir)} describes another model than "
                    f"the one to train ({details}); resume with the saved config, or start a "
                    "new model in an empty train_dir")


def _describe_device():
  gpus = tf.config.list_physical_devices("GPU")
  return f"{len(gpus)} GPU(s)" if gpus else "CPU"


def fit(model, dataset, keeper, options, *, global_batch_size, is_chief=True,
        summary_dir=None, agree=None):
  """Trains until num_epochs or max_steps; returns a TrainResult.

  `model` (a TrainingModel) must be compiled and `keeper` restored (if resuming) by the
  caller. `agree`: see TrainingMonitor (multi-worker; `ClusterSetup.agreement()`).
  """
  initial_epoch = int(keeper.epoch.numpy())
  start_step = keeper.step
  if options.max_steps is not None and start_step >= options.max_steps:
    logging.info("Already at step %d >= --max_steps=%d: nothing to train", start_step,
                 options.max_steps)
    return TrainResult(step=start_step, epoch=initial_epoch,
                       checkpoint_path=keeper.manager.latest_checkpoint)
  if initial_epoch >= options.num_epochs:
    logging.info("Already trained %d epoch(s) >= --num_epochs=%d: nothing to train",
                 initial_epoch, options.num_epochs)
    return TrainResult(step=start_step, epoch=initial_epoch,
                       checkpoint_path=keeper.manager.latest_checkpoint)
  with SigtermFlag() as sigterm:
    monitor = TrainingMonitor(keeper, options, global_batch_size, sigterm, is_chief=is_chief,
                              summary_dir=summary_dir, agree=agree)
    # (custom_gradients_released: else the process keeps every model it trained.)
    with warnings.catch_warnings(), keras_compat.custom_gradients_released():
      # An epoch ends when the data does (its length is unknown up front), which is
      # how the starter worked; Keras warns about it every epoch.
      warnings.filterwarnings("ignore", message="Your input ran out of data")
      model.fit(dataset, epochs=options.num_epochs, initial_epoch=initial_epoch,
                callbacks=[monitor], verbose=options.verbose, shuffle=False)
  if monitor.nan_step is not None:
    raise TrainingDiverged(
        f"the training loss became NaN or Inf at step {monitor.nan_step}; stopped without "
        f"saving; the last good checkpoint is {keeper.manager.latest_checkpoint or 'none'} "
        "(lower --base_learning_rate or check the input data)")
  path = keeper.save()
  return TrainResult(step=keeper.step, epoch=int(keeper.epoch.numpy()), checkpoint_path=path,
                     interrupted=monitor.interrupted,
                     examples_per_second=monitor.examples_per_second)

