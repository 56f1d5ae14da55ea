"""inference.py: writes a Kaggle submission CSV from a trained model.

    python inference.py --train_dir=/tmp/attend_fusion \
        --input_data_pattern='/data/test*.tfrecord' --output_file=predictions.csv

The model comes from --train_dir (model_flags.json + latest checkpoint), from
--input_model_tgz, from an exported SavedModel (--saved_model_dir), or from a LiteRT file
(--litert_model, written by python -m yt8m_fusion.export --format=litert). With
--segment_labels it writes the 2019 segment format (Class,Segments).
The CSV is written to a temporary file and renamed: no half-written CSV remains.

With --litert_model the program never imports TensorFlow (nor Keras): the ai_edge_litert
interpreter predicts and yt8m_fusion.litert reads the records, so it runs where only
ai-edge-litert is installed. The other paths import TensorFlow when they run.
"""

import logging
import sys
import time

from absl import app
from absl import flags
from absl import logging as absl_logging

from yt8m_fusion.cli import flags as yt8m_flags
from yt8m_fusion.errors import UserError, describe_flag_error, exit_on_user_error, parse_flags

FLAGS = flags.FLAGS
# Imported in the functions that use them, so that --litert_model never loads TensorFlow.
# pylint: disable=import-outside-toplevel

MODEL_SOURCE_FLAGS = ("train_dir", "input_model_tgz", "saved_model_dir", "litert_model")


def define_flags():
  yt8m_flags.define_model_flags()
  define_program_flags()


def define_program_flags():
  """Every flag but the model's (those import Keras; --litert_model's file holds them)."""
  yt8m_flags.define_data_flags()
  define = yt8m_flags.define_once
  define(flags.DEFINE_string, "train_dir", "", "The folder train.py wrote.")
  define(flags.DEFINE_string, "saved_model_dir", "",
         "Use this exported SavedModel (train_dir/export/<step>) instead of a checkpoint.")
  define(flags.DEFINE_string, "input_data_pattern", "",
         "Glob of TFRecords to predict. Empty: the demo dataset's test split.")
  define(flags.DEFINE_string, "input_model_tgz", "",
         "A model archive written by --output_model_tgz, used instead of --train_dir.")
  define(flags.DEFINE_string, "untar_model_dir", "/tmp/yt8m-model",
         "Where --input_model_tgz is extracted.")
  define(flags.DEFINE_string, "output_file", "", "The CSV file to write.")
  define(flags.DEFINE_string, "output_model_tgz", "",
         "Also write the model (model_flags.json + checkpoint) to this .tgz.")
  define(flags.DEFINE_integer, "top_k", 20, "Predictions per video (or segment).",
         lower_bound=1)
  define(flags.DEFINE_integer, "batch_size", 512, "Examples per batch.", lower_bound=1,
         upper_bound=yt8m_flags.MAX_BATCH_SIZE)
  define(flags.DEFINE_integer, "segment_max_pred", 100000,
         "--segment_labels: segments kept per class.", lower_bound=1)
  define(flags.DEFINE_string, "segment_label_ids_file", "",
         "--segment_labels: CSV of the rated class ids (header 'Index'); empty: all classes.")
  define(flags.DEFINE_string, "litert_model", "",
         "Use this LiteRT file (python -m yt8m_fusion.export --format=litert) instead of a "
         "checkpoint: predicts with the ai_edge_litert interpreter, without TensorFlow.")
  define(flags.DEFINE_integer, "litert_num_threads", 0,
         "--litert_model: interpreter threads; 0: one per CPU core.", lower_bound=0)


def check_one_model_source():
  given = [name for name in MODEL_SOURCE_FLAGS if getattr(FLAGS, name)]
  if len(given) != 1:
    raise UserError("give exactly one of --train_dir, --input_model_tgz, --saved_model_dir and "
                    "--litert_model"
                    + (f" (got {', '.join('--' + name for name in given)})" if given else ""))


def model_source():
  """(train_dir or None, saved_model_dir or None), after checking the flags."""
  from yt8m_fusion import export
  from yt8m_fusion import submission
  check_one_model_source()
  if FLAGS.input_model_tgz:
    return submission.extract_model_tgz(FLAGS.input_model_tgz, FLAGS.untar_model_dir), None
  if FLAGS.saved_model_dir:
    export.read_export_config(FLAGS.saved_model_dir)  # a UserError names what it is instead
    return None, FLAGS.saved_model_dir
  return FLAGS.train_dir, None


def predictions_from_checkpoint(train_dir, pattern):
  """Yields (ids, class_indexes, scores) batches from the latest checkpoint."""
  import tensorflow as tf
  from yt8m_fusion import inputs as model_inputs
  from yt8m_fusion import models
  from yt8m_fusion import submission
  from yt8m_fusion import train_dir as train_dir_lib
  from yt8m_fusion.data.explain import DATA_ERRORS, explain_data_error, log_skipped
  saved = train_dir_lib.load_config(train_dir)
  config = train_dir_lib.merge_config(saved, yt8m_flags.model_config_from_flags(base=saved),
                                      yt8m_flags.explicit_model_flags(), train_dir)
  checkpoint = train_dir_lib.require_checkpoint(train_dir)
  model = models.build_model(config)
  train_dir_lib.restore_weights(model, checkpoint)
  logging.info("Predicting with %s (%s)", checkpoint, config.model)
  spec = config.data_spec(max_frames=FLAGS.max_frames)
  dataset, skip_counter, _ = model_inputs.load_batches(
      pattern, spec, batch_size=FLAGS.batch_size, num_readers=FLAGS.num_readers,
      skip_corrupt_records=FLAGS.skip_corrupt_records)
  if FLAGS.segment_labels:
    if not config.frame_features:
      raise UserError("--segment_labels needs a frame-level model (trained with "
                      "--frame_features)")
    dataset = dataset.map(lambda batch: submission.split_into_segments(batch,
                                                                       config.feature_names))
  whitelist = None
  if FLAGS.segment_labels and FLAGS.segment_label_ids_file:
    whitelist_ids = submission.read_segment_whitelist(FLAGS.segment_label_ids_file)
    mask = [1.0 if index in whitelist_ids else 0.0 for index in range(config.num_classes)]
    whitelist = tf.constant(mask, tf.float32)
  top_k = min(FLAGS.top_k, config.num_classes)

  @tf.function
  def predict(batch):
    probabilities = tf.cast(model(model_inputs.select_model_inputs(batch, spec),
                                  training=False), tf.float32)
    if whitelist is not None:
      probabilities = probabilities * whitelist
    scores, indexes = tf.math.top_k(probabilities, k=top_k)
    return batch["video_ids"], indexes, scores

  def batches():
    iterator = iter(dataset)
    while True:
      try:
        batch = next(iterator)
      except StopIteration:
        log_skipped(skip_counter, "--input_data_pattern")
        return
      except DATA_ERRORS as error:
        raise explain_data_error(error, pattern, spec, "--input_data_pattern") \
            from None
      ids, indexes, scores = predict(batch)
      yield ids.numpy(), indexes.numpy(), scores.numpy()

  return config, checkpoint, batches()


def predictions_from_saved_model(saved_model_dir, pattern):
  """Yields (ids, class_indexes, scores) through the SavedModel's serving_default."""
  import tensorflow as tf
  from yt8m_fusion import data as yt8m_data
  from yt8m_fusion import export
  from yt8m_fusion.data.explain import DATA_ERRORS, explain_data_error
  config = export.read_export_config(saved_model_dir)
  if FLAGS.segment_labels:
    raise UserError("--segment_labels works with --train_dir, not --saved_model_dir")
  if FLAGS.top_k > export.TOP_PREDICTIONS_IN_OUTPUT:
    raise UserError(f"--top_k={FLAGS.top_k}: an exported model returns the top "
                    f"{export.TOP_PREDICTIONS_IN_OUTPUT}; use --train_dir for more")
  try:
    signatures = tf.saved_model.load(saved_model_dir).signatures
  except (tf.errors.OpError, OSError, ValueError) as error:
    reason = (getattr(error, "message", None) or str(error)).strip().splitlines()[0][:200]
    raise UserError(f"--saved_model_dir={saved_model_dir} cannot be loaded ({reason}); "
                    "expected a complete export folder train_dir/export/<step>") from None
  if FLAGS.skip_corrupt_records:
    return config, None, _skipping_saved_model_batches(signatures, config, pattern)
  serve = signatures[export.SERVING_SIGNATURE]
  files = yt8m_data.list_files(pattern)
  spec = config.data_spec(max_frames=FLAGS.max_frames)
  yt8m_data.check_files(files, spec)
  records = yt8m_data.records.record_dataset(files).batch(FLAGS.batch_size).prefetch(2)

  def batches():
    iterator = iter(records)
    while True:
      try:
        serialized = next(iterator)
        outputs = serve(example_bytes=serialized)
      except StopIteration:
        return
      except DATA_ERRORS as error:
        raise explain_data_error(error, pattern, spec, "--input_data_pattern") \
            from None
      yield (outputs["video_id"].numpy(), outputs["class_indexes"].numpy()[:, :FLAGS.top_k],
             outputs["predictions"].numpy()[:, :FLAGS.top_k])

  return config, None, batches()


def _skipping_saved_model_batches(signatures, config, pattern):
  """--skip_corrupt_records with --saved_model_dir: the data layer reads, checks and skips
  (counting what it drops); the export's `probabilities` signature predicts."""
  import tensorflow as tf
  from yt8m_fusion import export
  from yt8m_fusion import inputs as model_inputs
  from yt8m_fusion.data.explain import DATA_ERRORS, explain_data_error, log_skipped
  probabilities_fn = signatures[export.PROBABILITIES_SIGNATURE]
  spec = config.data_spec(max_frames=FLAGS.max_frames)
  dataset, skip_counter, _ = model_inputs.load_batches(
      pattern, spec, batch_size=FLAGS.batch_size, num_readers=FLAGS.num_readers,
      skip_corrupt_records=True)
  top_k = min(FLAGS.top_k, config.num_classes)
  iterator = iter(dataset)
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      log_skipped(skip_counter, "--input_data_pattern")
      return
    except DATA_ERRORS as error:
      raise explain_data_error(error, pattern, spec, "--input_data_pattern") from None
    inputs = model_inputs.select_model_inputs(batch, spec)
    probabilities = probabilities_fn(**inputs)["probabilities"]
    scores, indexes = tf.math.top_k(probabilities, k=top_k)
    yield batch["video_ids"].numpy(), indexes.numpy(), scores.numpy()


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  if FLAGS.litert_model:
    litert_main()
    return
  from yt8m_fusion import export
  from yt8m_fusion import io_utils
  from yt8m_fusion import submission
  from yt8m_fusion import train_dir as train_dir_lib
  from yt8m_fusion.cli import common
  common.setup_logging()
  io_output = FLAGS.output_file
  io_utils.check_writable_file(io_output, "--output_file")
  if FLAGS.output_model_tgz:
    io_utils.check_writable_file(FLAGS.output_model_tgz, "--output_model_tgz")
  train_dir, saved_model_dir = model_source()
  pattern = FLAGS.input_data_pattern
  if not pattern:
    if saved_model_dir:
      frame_features = export.read_export_config(saved_model_dir).frame_features
    else:
      frame_features = train_dir_lib.load_config(train_dir).frame_features
    pattern = common.demo_patterns(frame_features)["test"]

  start = time.time()
  if saved_model_dir:
    config, checkpoint, batches = predictions_from_saved_model(saved_model_dir, pattern)
  else:
    config, checkpoint, batches = predictions_from_checkpoint(train_dir, pattern)

  if FLAGS.segment_labels:
    ranking = submission.SegmentRanking(max_per_class=FLAGS.segment_max_pred)
    count = 0
    for ids, indexes, scores in batches:
      ranking.add(ids, indexes, scores)
      count += len(ids)
    ranking.write(io_output)
    logging.info("Wrote %s: %d segments ranked, in %.1f s", io_output, count,
                 time.time() - start)
  else:
    writer = submission.VideoSubmissionWriter(io_output)
    try:
      for ids, indexes, scores in batches:
        writer.add_batch(ids, indexes, scores, source=f" ({pattern})")
    except BaseException as error:
      writer.abort(error)
      raise
    writer.commit()
    logging.info("Wrote %s: %d videos, top %d classes each, in %.1f s", io_output,
                 writer.num_videos, min(FLAGS.top_k, config.num_classes), time.time() - start)
  if FLAGS.output_model_tgz:
    if checkpoint is None:
      raise UserError("--output_model_tgz needs --train_dir or --input_model_tgz")
    submission.write_model_tgz(FLAGS.output_model_tgz, train_dir, checkpoint)
    logging.info("Wrote the model to %s", FLAGS.output_model_tgz)


def litert_main():
  """--litert_model: the video-level CSV through the ai_edge_litert interpreter."""
  from yt8m_fusion import litert
  from yt8m_fusion.core import files
  absl_logging.set_verbosity(max(absl_logging.get_verbosity(), absl_logging.INFO))
  check_one_model_source()
  if FLAGS.segment_labels:
    raise UserError("--segment_labels works with --train_dir, not --litert_model")
  if FLAGS.output_model_tgz:
    raise UserError("--output_model_tgz needs --train_dir or --input_model_tgz")
  files.check_writable_file(FLAGS.output_file, "--output_file")
  model = litert.LiteRTModel(FLAGS.litert_model, num_threads=FLAGS.litert_num_threads or None)
  max_frames = model.spec.max_frames
  if model.spec.frame_features and FLAGS["max_frames"].present and \
      FLAGS.max_frames != max_frames:
    raise UserError(f"--max_frames={FLAGS.max_frames}: {FLAGS.litert_model} was exported "
                    f"with --max_frames={max_frames}; drop the flag or export again")
  pattern = FLAGS.input_data_pattern
  if not pattern:  # the demo data: locating (or generating) it imports TensorFlow
    from yt8m_fusion.cli import common
    pattern = common.demo_patterns(model.spec.frame_features)["test"]
  logging.info("Predicting with %s (%s, %s)", FLAGS.litert_model, model.model_name,
               model.quantization)
  litert.write_submission(model, pattern, FLAGS.output_file, top_k=FLAGS.top_k,
                          batch_size=FLAGS.batch_size,
                          skip_corrupt_records=FLAGS.skip_corrupt_records)


def litert_requested(argv):
  return any(arg.split("=", 1)[0] in ("--litert_model", "-litert_model") for arg in argv[1:])


def parse_litert_flags(argv):
  """parse_flags for the TensorFlow-free program: a model flag gets a one-line reason."""
  try:
    return FLAGS(argv)
  except flags.UnrecognizedFlagError as error:
    print(f"ERROR: --{error.flagname} is not used with --litert_model: the .tflite file holds "
          "the model and its flags", file=sys.stderr, flush=True)
  except flags.Error as error:
    print(f"ERROR: {describe_flag_error(error, FLAGS)}", file=sys.stderr, flush=True)
  sys.exit(UserError.exit_code)


def run():
  if litert_requested(sys.argv):
    # Only the flags that need no Keras: the LiteRT program runs without TensorFlow.
    define_program_flags()
    app.run(exit_on_user_error(main), flags_parser=parse_litert_flags)
    return
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
