"""python -m yt8m_fusion.export: a trained model as a LiteRT file or a SavedModel.

    python -m yt8m_fusion.export --train_dir=/tmp/attend_fusion --format=litert \
        --quantization=dynamic_int8 --output_file=attend_fusion.tflite
    python -m yt8m_fusion.export --train_dir=/tmp/attend_fusion --format=saved_model

Rebuilds the model from train_dir/model_flags.json and its latest checkpoint (as eval.py
does). --format=litert writes one .tflite file of LiteRT built-in ops, with the model flags
and vocabulary inside (run it with inference.py --litert_model, docs/ON_DEVICE.md);
--format=saved_model writes --export_dir/<step>/, the SavedModel train.py writes.

An ensemble: --train_dir=A,B [--ensemble_weights=0.6,0.4] --format=saved_model
--export_dir=DIR writes ONE SavedModel (DIR/<the members' highest step>/) of the weighted mean
of the members' probabilities, with the signatures of a single model's export
(docs/ENSEMBLES.md). LiteRT files of an ensemble are not written: export each member and give
them to inference.py --litert_model=P,Q.
"""

import itertools
import json
import logging
import os

import tensorflow as tf
from absl import app
from absl import flags

from yt8m_fusion import data as yt8m_data
from yt8m_fusion import export
from yt8m_fusion.cli import flags as yt8m_flags
from yt8m_fusion import inputs as model_inputs
from yt8m_fusion import io_utils
from yt8m_fusion import models
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.cli import common
from yt8m_fusion.cli.parsing import parse_flags
from yt8m_fusion.errors import UserError, exit_on_user_error
from yt8m_fusion.data.explain import DATA_ERRORS
from yt8m_fusion.data.explain import explain_data_error

FLAGS = flags.FLAGS
FORMATS = ("litert", "saved_model")


def define_flags():
  yt8m_flags.define_model_flags()
  yt8m_flags.define_data_flags()
  define = yt8m_flags.define_once
  define(flags.DEFINE_string, "train_dir", "",
         "The folder train.py wrote (model_flags.json and checkpoints).")
  define(flags.DEFINE_enum, "format", "litert", FORMATS,
         "litert: one .tflite file (--output_file) for LiteRT runtimes; saved_model: "
         "--export_dir/<step>/ for TF Serving (what train.py writes).")
  define(flags.DEFINE_enum, "quantization", "none", export.QUANTIZATIONS,
         "--format=litert: none (float32), float16 (float16 weights), dynamic_int8 (int8 "
         "weights, float activations) or int8 (full integer, calibrated on "
         "--calibration_data_pattern).")
  define(flags.DEFINE_string, "output_file", "", "--format=litert: the .tflite file to write.")
  define(flags.DEFINE_string, "export_dir", "",
         "--format=saved_model: the folder that gets <step>/. Empty: train_dir/export.")
  define(flags.DEFINE_string, "calibration_data_pattern", "",
         "--quantization=int8: glob of TFRecords (like the training data) whose videos "
         "calibrate the activation ranges.")
  define(flags.DEFINE_integer, "calibration_examples", 256,
         "--quantization=int8: videos read from --calibration_data_pattern.", lower_bound=1)
  define(flags.DEFINE_integer, "litert_batch_size", 0,
         "--format=litert: a fixed batch size for the file's inputs; 0: any (LstmModel: 1).",
         lower_bound=0)
  yt8m_flags.define_ensemble_weights_flag()
  define(flags.DEFINE_string, "vocabulary_file", "",
         "vocabulary.csv (Index,Name) stored in the .tflite file. Empty: the vocabulary.csv "
         "beside the data the model was evaluated on, if there is one.")


def load_config():
  if not FLAGS.train_dir:
    raise UserError("--train_dir is empty; give the folder train.py wrote")
  saved = train_dir_lib.load_config(FLAGS.train_dir)
  return train_dir_lib.merge_config(saved, yt8m_flags.model_config_from_flags(base=saved),
                                    yt8m_flags.explicit_model_flags(), FLAGS.train_dir)


def calibration_examples(config):
  """--calibration_data_pattern's first --calibration_examples videos as model inputs."""
  pattern = FLAGS.calibration_data_pattern
  spec = config.data_spec(max_frames=FLAGS.max_frames)
  try:
    dataset = model_inputs.load_batches(pattern, spec, batch_size=1, num_readers=1).dataset
    examples = [{name: value.numpy() for name, value in
                 model_inputs.select_model_inputs(batch, spec).items()}
                for batch in itertools.islice(dataset, FLAGS.calibration_examples)]
  except UserError as error:
    raise UserError(f"--calibration_data_pattern: {error}") from None
  except DATA_ERRORS as error:
    raise explain_data_error(error, pattern, spec, "--calibration_data_pattern") from None
  logging.info("Calibrating int8 ranges on %d videos of %s", len(examples), pattern)
  return examples


def vocabulary_for(config):
  """{class index: name} of --vocabulary_file, or of a vocabulary.csv found beside the
  calibration or evaluation data; {} when there is none."""
  path = FLAGS.vocabulary_file
  if not path:
    from yt8m_fusion.report import runs  # pylint: disable=import-outside-toplevel
    path = (runs.find_vocabulary(FLAGS.calibration_data_pattern)
            or runs.find_vocabulary(evaluated_data_pattern(FLAGS.train_dir)))
    if not path:
      logging.info("No --vocabulary_file (and no vocabulary.csv beside the evaluation data): "
                   "the file carries class indexes only")
      return {}
  vocabulary = yt8m_data.read_vocabulary(path)
  outside = [index for index in vocabulary if not 0 <= index < config.num_classes]
  if outside:
    raise UserError(f"--vocabulary_file={path} has the class index {outside[0]}; the model has "
                    f"{config.num_classes} classes (0..{config.num_classes - 1})")
  logging.info("Vocabulary: %d class names from %s", len(vocabulary), path)
  return vocabulary


def evaluated_data_pattern(train_dir):
  """The data pattern of train_dir's latest evaluation (eval/metrics.json), or ""."""
  path = os.path.join(train_dir_lib.eval_dir(train_dir), "metrics.json")
  try:
    with tf.io.gfile.GFile(path) as handle:
      return json.load(handle).get("data_pattern", "")
  except (tf.errors.OpError, ValueError, AttributeError):
    return ""


def export_ensemble(train_dirs):
  """--train_dir=A,B,...: one SavedModel of the members' weighted mean."""
  from yt8m_fusion import prediction  # pylint: disable=import-outside-toplevel
  if FLAGS.format != "saved_model":
    raise UserError("--train_dir with several train_dirs (an ensemble) is exported with "
                    "--format=saved_model; for LiteRT export each member and give the files "
                    "to inference.py --litert_model=P,Q")
  if not FLAGS.export_dir:
    raise UserError("--train_dir with several train_dirs (an ensemble) needs --export_dir: "
                    "no single train_dir owns the ensemble's SavedModel")
  for flag in ("output_file", "quantization"):
    if FLAGS[flag].present:
      raise UserError(f"--{flag} is for --format=litert; an ensemble is exported as a "
                      "SavedModel")
  yt8m_flags.check_no_model_flags_for_ensemble()
  weights = prediction.ensemble_weights(FLAGS.ensemble_weights, len(train_dirs))
  members = []
  try:
    for train_dir in train_dirs:
      members.append(prediction.from_train_dir(train_dir, max_frames=FLAGS.max_frames))
    ensemble = prediction.EnsemblePredictor(members, weights)  # checks they fit together
    steps = [train_dir_lib.checkpoint_step(member.checkpoint) for member in members]
    logging.info("Exporting the %s", ensemble.description)
    path = export.export_ensemble_saved_model(
        [member.model for member in members], [member.config for member in members],
        ensemble.weights, FLAGS.export_dir, max(steps), max_frames=FLAGS.max_frames,
        members=[{"train_dir": train_dir, "checkpoint": member.checkpoint} for
                 train_dir, member in zip(train_dirs, members)])
  finally:
    for member in members:
      member.close()
  print(f"SavedModel for TF Serving (an ensemble of {len(train_dirs)} models): {path}",
        flush=True)


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  common.setup_logging()
  train_dirs = [path.strip() for path in FLAGS.train_dir.split(",") if path.strip()]
  if len(train_dirs) > 1:
    export_ensemble(train_dirs)
    return
  if FLAGS.ensemble_weights:
    raise UserError("--ensemble_weights is for an ensemble: give several --train_dir=A,B,...")
  config = load_config()
  if FLAGS.format == "litert":
    io_utils.check_writable_file(FLAGS.output_file, "--output_file")
    if FLAGS.quantization == "int8" and not FLAGS.calibration_data_pattern:
      raise UserError("--quantization=int8 needs --calibration_data_pattern: TFRecords (like "
                      "the training data) whose videos calibrate the int8 activation ranges")
  elif FLAGS.output_file:
    raise UserError("--output_file is for --format=litert; --format=saved_model writes "
                    "--export_dir/<step>/ (default train_dir/export)")
  elif FLAGS.quantization != "none":
    raise UserError(f"--quantization={FLAGS.quantization} is for --format=litert; the "
                    "SavedModel keeps the trained float32 weights")
  checkpoint = train_dir_lib.require_checkpoint(FLAGS.train_dir)
  step = train_dir_lib.checkpoint_step(checkpoint)
  model = models.build_model(config)
  train_dir_lib.restore_weights(model, checkpoint)
  logging.info("Exporting %s (%s, %s parameters) from %s", config.model,
               ",".join(config.feature_names), f"{model.count_params():,}", checkpoint)

  if FLAGS.format == "saved_model":
    base = FLAGS.export_dir or train_dir_lib.export_dir(FLAGS.train_dir)
    path = export.export_saved_model(model, config, base, step, max_frames=FLAGS.max_frames)
    print(f"SavedModel for TF Serving: {path}", flush=True)
    return

  examples = calibration_examples(config) if FLAGS.quantization == "int8" else None
  info = export.export_litert(
      model, config, FLAGS.output_file, quantization=FLAGS.quantization,
      max_frames=FLAGS.max_frames, batch_size=FLAGS.litert_batch_size or None,
      calibration_examples=examples, vocabulary=vocabulary_for(config),
      checkpoint=os.path.basename(checkpoint), step=step)
  if info["float_ops"]:
    logging.info("int8: operators left in float32: %s", ", ".join(info["float_ops"]))
  print(f"LiteRT model ({FLAGS.quantization}, {info['bytes'] / 1e6:.1f} MB): "
        f"{FLAGS.output_file}\nRun it: python inference.py --litert_model={FLAGS.output_file} "
        "--input_data_pattern=... --output_file=predictions.csv", flush=True)


def run():
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
