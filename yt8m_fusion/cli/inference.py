"""inference.py: writes a Kaggle submission CSV from a trained model.

    python inference.py --train_dir=/tmp/attend_fusion \
        --input_data_pattern='/data/test*.tfrecord' --output_file=predictions.csv

The model comes from --train_dir (model_flags.json + latest checkpoint), from
--input_model_tgz, from an exported SavedModel (--saved_model_dir), or from a LiteRT file
(--litert_model, written by python -m yt8m_fusion.export --format=litert). With
--segment_labels it writes the 2019 segment format (Class,Segments). Each is a predictor of
yt8m_fusion.prediction (the Python API); this program only turns flags into one and its
predictions into the CSV. The CSV is written to a temporary file and renamed: no half-written CSV remains.
With --vocabulary_file it also writes the predictions with class names for a person to read
(yt8m_fusion.core.vocabulary; docs/REPORTS.md).

An ensemble: --train_dir=A,B, --saved_model_dir=X,Y or --litert_model=P,Q (one kind per
command) writes the CSV of the weighted mean of the models' probabilities
(--ensemble_weights=0.6,0.4; default equal), docs/ENSEMBLES.md.

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
from yt8m_fusion.cli.parsing import describe_flag_error, parse_flags
from yt8m_fusion.errors import UserError, exit_on_user_error

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
  yt8m_flags.define_ensemble_weights_flag()
  define(flags.DEFINE_integer, "litert_num_threads", 0,
         "--litert_model: interpreter threads; 0: one per CPU core.", lower_bound=0)
  define(flags.DEFINE_string, "vocabulary_file", "",
         "A vocabulary CSV (Index,Name: the 2018 vocabulary.csv): also write the predictions "
         "with class names, 'index:name:score', to --names_output_file (the Kaggle CSV is "
         "unchanged). Classes it does not name show as 'class <index>'.")
  define(flags.DEFINE_string, "names_output_file", "",
         "--vocabulary_file: the names file to write; empty: --output_file with .csv "
         "replaced by .names.csv.")


def check_one_model_source():
  given = [name for name in MODEL_SOURCE_FLAGS if getattr(FLAGS, name)]
  if len(given) != 1:
    raise UserError("give exactly one of --train_dir, --input_model_tgz, --saved_model_dir and "
                    "--litert_model"
                    + (f" (got {', '.join('--' + name for name in given)})" if given else ""))


def ensemble_paths():
  """(flag name, [paths]) of the model source flag given several comma-separated models, or
  (None, []) for one model; --ensemble_weights without an ensemble is an error."""
  for name in MODEL_SOURCE_FLAGS:
    paths = [path.strip() for path in getattr(FLAGS, name).split(",") if path.strip()]
    if len(paths) > 1:
      if name == "input_model_tgz":
        raise UserError("--input_model_tgz takes one archive; an ensemble is given as "
                        "--train_dir=A,B, --saved_model_dir=X,Y or --litert_model=P,Q")
      return name, paths
  if FLAGS.ensemble_weights:
    raise UserError("--ensemble_weights is for an ensemble: give several models, e.g. "
                    "--train_dir=A,B")
  return None, []


def load_ensemble(flag, paths):
  """The EnsemblePredictor of --<flag>=A,B,..."""
  from yt8m_fusion import prediction
  if FLAGS.segment_labels and flag != "train_dir":
    raise UserError(f"--segment_labels works with --train_dir, not --{flag}")
  if FLAGS.output_model_tgz:
    raise UserError("--output_model_tgz writes one model; it cannot hold an ensemble")
  if flag == "train_dir":
    yt8m_flags.check_no_model_flags_for_ensemble()
  for path in paths:
    check_source_kind(flag, path)
  return prediction.ensemble(paths, FLAGS.ensemble_weights, max_frames=FLAGS.max_frames,
                             num_threads=FLAGS.litert_num_threads or None)


def check_source_kind(flag, path):
  """A member of --<flag>=A,B is of that flag's kind (a UserError says what it is)."""
  from yt8m_fusion import prediction
  expected = {"train_dir": "train_dir", "saved_model_dir": "saved_model",
              "litert_model": "litert"}[flag]
  kind = prediction.source_kind(path)
  if kind != expected:
    raise UserError(f"--{flag}: {path} is a {kind}, not a {expected}; an ensemble's models "
                    "are all given with one flag")


def load_predictor():
  """The predictor of --train_dir, --input_model_tgz or --saved_model_dir (several
  comma-separated: their ensemble)."""
  from yt8m_fusion import export
  from yt8m_fusion import prediction
  from yt8m_fusion import train_dir as train_dir_lib
  check_one_model_source()
  flag, paths = ensemble_paths()
  if paths:
    return load_ensemble(flag, paths)
  if FLAGS.saved_model_dir:
    export.read_export_config(FLAGS.saved_model_dir)  # a UserError names what it is instead
    if FLAGS.segment_labels:
      raise UserError("--segment_labels works with --train_dir, not --saved_model_dir")
    return prediction.from_saved_model(FLAGS.saved_model_dir, max_frames=FLAGS.max_frames)

  def with_model_flags(train_dir):
    return lambda saved: train_dir_lib.merge_config(
        saved, yt8m_flags.model_config_from_flags(base=saved), yt8m_flags.explicit_model_flags(),
        train_dir)

  if FLAGS.input_model_tgz:
    return prediction.from_model_tgz(FLAGS.input_model_tgz, FLAGS.untar_model_dir,
                                     max_frames=FLAGS.max_frames,
                                     configure=with_model_flags(FLAGS.untar_model_dir))
  return prediction.from_train_dir(FLAGS.train_dir, max_frames=FLAGS.max_frames,
                                   configure=with_model_flags(FLAGS.train_dir))


def write_video_csv(predictor, pattern, writer):
  """The video-level CSV of `pattern`'s records, committed whole or not at all."""
  from yt8m_fusion import prediction
  start = time.time()
  if FLAGS.vocabulary_file:  # the names file beside the CSV (core: no TensorFlow)
    from yt8m_fusion.core import vocabulary
    writer = vocabulary.with_class_names(writer, FLAGS.vocabulary_file,
                                         FLAGS.names_output_file or None)
  top_k = min(FLAGS.top_k, predictor.num_classes)
  batches = predictor.predictions(pattern, batch_size=FLAGS.batch_size, top_k=top_k,
                                  skip_corrupt_records=FLAGS.skip_corrupt_records,
                                  num_readers=FLAGS.num_readers)
  num_videos = prediction.write_top_k(batches, writer, source=f" ({pattern})")
  logging.info("Wrote %s: %d videos, top %d classes each, with %s, in %.1f s",
               FLAGS.output_file, num_videos, top_k, predictor.description,
               time.time() - start)


def write_segment_csv(predictor, pattern):
  """The 2019 segment CSV: each class's segments ranked by score."""
  from yt8m_fusion import submission
  if FLAGS.vocabulary_file:
    raise UserError("--vocabulary_file names the video-level predictions; drop it with "
                    "--segment_labels")
  start = time.time()
  rated = None
  if FLAGS.segment_label_ids_file:
    rated = submission.read_segment_whitelist(FLAGS.segment_label_ids_file)
  ranking = submission.SegmentRanking(max_per_class=FLAGS.segment_max_pred)
  count = 0
  for batch in predictor.predictions(pattern, batch_size=FLAGS.batch_size,
                                     top_k=min(FLAGS.top_k, predictor.num_classes),
                                     top_k_classes=rated, split_segments=True,
                                     skip_corrupt_records=FLAGS.skip_corrupt_records,
                                     num_readers=FLAGS.num_readers):
    ranking.add(batch.video_ids, batch.top_indexes, batch.top_scores)
    count += len(batch)
  ranking.write(FLAGS.output_file)
  logging.info("Wrote %s: %d segments ranked, in %.1f s", FLAGS.output_file, count,
               time.time() - start)


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  if FLAGS.litert_model:
    litert_main()
    return
  from yt8m_fusion import io_utils
  from yt8m_fusion import submission
  from yt8m_fusion.cli import common
  common.setup_logging()
  io_utils.check_writable_file(FLAGS.output_file, "--output_file")
  if FLAGS.output_model_tgz:
    io_utils.check_writable_file(FLAGS.output_model_tgz, "--output_model_tgz")
  with load_predictor() as predictor:
    pattern = (FLAGS.input_data_pattern or
               common.demo_patterns(predictor.spec.frame_features)["test"])
    logging.info("Predicting with %s", predictor.description)
    if FLAGS.segment_labels:
      write_segment_csv(predictor, pattern)
    else:
      write_video_csv(predictor, pattern, submission.VideoSubmissionWriter(FLAGS.output_file))
    if FLAGS.output_model_tgz:
      if getattr(predictor, "checkpoint", None) is None:
        raise UserError("--output_model_tgz needs --train_dir or --input_model_tgz")
      submission.write_model_tgz(FLAGS.output_model_tgz, predictor.train_dir,
                                 predictor.checkpoint)
      logging.info("Wrote the model to %s", FLAGS.output_model_tgz)


def litert_main():
  """--litert_model: the video-level CSV through the ai_edge_litert interpreter."""
  from yt8m_fusion import prediction
  from yt8m_fusion.core import files
  from yt8m_fusion.core import submission_format
  absl_logging.set_verbosity(max(absl_logging.get_verbosity(), absl_logging.INFO))
  check_one_model_source()
  if FLAGS.segment_labels:
    raise UserError("--segment_labels works with --train_dir, not --litert_model")
  if FLAGS.output_model_tgz:
    raise UserError("--output_model_tgz needs --train_dir or --input_model_tgz")
  files.check_writable_file(FLAGS.output_file, "--output_file")
  _, paths = ensemble_paths()
  for path in paths:
    check_source_kind("litert_model", path)
  with prediction.ensemble(paths or [FLAGS.litert_model], FLAGS.ensemble_weights,
                           num_threads=FLAGS.litert_num_threads or None) as predictor:
    max_frames = predictor.spec.max_frames
    if predictor.spec.frame_features and FLAGS["max_frames"].present and \
        FLAGS.max_frames != max_frames:
      raise UserError(f"--max_frames={FLAGS.max_frames}: {FLAGS.litert_model} was exported "
                      f"with --max_frames={max_frames}; drop the flag or export again")
    pattern = FLAGS.input_data_pattern
    if not pattern:  # the demo data: locating (or generating) it imports TensorFlow
      from yt8m_fusion.cli import common
      pattern = common.demo_patterns(predictor.spec.frame_features)["test"]
    logging.info("Predicting with %s", predictor.description)
    write_video_csv(predictor, pattern, submission_format.VideoSubmissionWriter(
        FLAGS.output_file, files.atomic_output))


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
