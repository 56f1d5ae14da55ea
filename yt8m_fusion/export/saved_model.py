"""SavedModels that TF Serving loads as they are (yt8m_fusion.export re-exports this module).

    export/<step>/                numeric version folder (TF Serving's layout)
      saved_model.pb, variables/
      assets.extra/model_flags.json   the ModelConfig (TF Serving ignores assets.extra)
      assets.extra/ensemble.json      an ensemble's members (model_flags, checkpoint) and
                                      weights; its model_flags.json then holds the union of
                                      the members' features (the records it reads)

Signatures:
  serving_default   example_bytes: string [N] serialized tf.Example (video-level) or
                    tf.SequenceExample (frame-level) -> video_id [N], class_indexes int32
                    [N, 20], predictions float32 [N, 20], sorted by score.
  probabilities     raw features (one input per feature name, frame-level uint8 plus
                    num_frames) -> probabilities float32 [N, num_classes].
Parsing, dequantization and normalization are inside the graph: no Python is needed to
serve, and no yt8m_fusion import to load it.
"""

import dataclasses
import json
import logging
import os
import uuid

import keras
import tensorflow as tf

from yt8m_fusion import data as yt8m_data
from yt8m_fusion import inputs as model_inputs
from yt8m_fusion import io_utils
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.core.spec import FRAME_NAMES
from yt8m_fusion.errors import UserError

TOP_PREDICTIONS_IN_OUTPUT = 20
SERVING_SIGNATURE = "serving_default"
PROBABILITIES_SIGNATURE = "probabilities"


def feature_signature(config, *, batch_size=None, max_frames=None):
  """TensorSpecs of the model's raw inputs, in input order (None: any batch size, any
  number of frames)."""
  specs = []
  for name, size in zip(config.feature_names, config.feature_sizes):
    if config.frame_features:
      specs.append(tf.TensorSpec([batch_size, max_frames, size], tf.uint8, name=name))
    else:
      specs.append(tf.TensorSpec([batch_size, size], tf.float32, name=name))
  if config.frame_features:
    specs.append(tf.TensorSpec([batch_size], tf.int32, name="num_frames"))
  return specs


def build_export_archive(model, config, max_frames=300):
  """An ExportArchive with the two signatures above."""
  top_k = min(TOP_PREDICTIONS_IN_OUTPUT, config.num_classes)
  spec = config.data_spec(max_frames=max_frames)
  input_names = spec.model_input_names
  archive = keras.export.ExportArchive()
  archive.track(model)

  def serve_examples(example_bytes):
    batch = yt8m_data.parse_serialized(example_bytes, spec, dequantize=False)
    probabilities = model(model_inputs.select_model_inputs(batch, spec), training=False)
    scores, indexes = tf.math.top_k(tf.cast(probabilities, tf.float32), k=top_k)
    return {"video_id": batch["video_ids"], "class_indexes": tf.cast(indexes, tf.int32),
            "predictions": scores}

  def serve_features(*features):
    probabilities = model(dict(zip(input_names, features)), training=False)
    return {"probabilities": tf.cast(probabilities, tf.float32)}

  archive.add_endpoint(SERVING_SIGNATURE, serve_examples, input_signature=[
      tf.TensorSpec([None], tf.string, name="example_bytes")])
  archive.add_endpoint(PROBABILITIES_SIGNATURE, serve_features,
                       input_signature=feature_signature(config))
  return archive


ENSEMBLE_FILE = "ensemble.json"


def ensemble_config(configs):
  """The ModelConfig an ensemble export reads records with: the first member's (the first
  frame-level member's when there is one), with the union of the members' features
  (`prediction.union_spec` checks they can be read together; a video-level member's
  mean_rgb is read as rgb from frame-level records)."""
  frame_configs = [config for config in configs if config.frame_features]
  sizes = {}
  for config in configs:
    for name, size in zip(config.feature_names, config.feature_sizes):
      if frame_configs and not config.frame_features:
        name = FRAME_NAMES[name]
      sizes.setdefault(name, size)
  return dataclasses.replace(frame_configs[0] if frame_configs else configs[0],
                             feature_names=tuple(sizes), feature_sizes=tuple(sizes.values()))


def build_ensemble_model(models, configs, weights):
  """One functional Keras model over the union of the members' inputs whose output is the
  weighted sum of the members' probabilities (`weights` already sum to 1). Each member is
  wrapped as the sub-model `member_<index>` so that equal layer names cannot clash. With
  frame-level members, a video-level member takes the means of the frames."""
  union = ensemble_config(configs)
  from yt8m_fusion.models import common  # pylint: disable=import-outside-toplevel
  inputs = common.build_inputs(union)
  video_names = {name for config in configs if union.frame_features and
                 not config.frame_features for name in config.feature_names}
  source = {**inputs, **common.frame_means(inputs, sorted(video_names))}
  total = None
  for index, (model, config, weight) in enumerate(zip(models, configs, weights)):
    member = keras.Model(model.input, model.output, name=f"member_{index}")
    names = config.data_spec().model_input_names
    probabilities = keras.ops.cast(member({name: source[name] for name in names}), "float32")
    part = keras.ops.multiply(probabilities, float(weight))
    total = part if total is None else keras.ops.add(total, part)
  return keras.Model(inputs, total, name="ensemble"), union


def export_ensemble_saved_model(models, configs, weights, export_base, step, *, max_frames=300,
                                members=None):
  """Writes one SavedModel of the weighted mean of `models` (Keras models with their
  ModelConfigs) to export_base/<step>/, with the contract of a single model's export;
  `members`: a description per member recorded in assets.extra/ensemble.json (e.g.
  {"source": train_dir, "checkpoint": path}). Returns its path."""
  model, union = build_ensemble_model(models, configs, weights)
  described = members or [{} for _ in models]
  info = {"format": "yt8m-fusion-ensemble", "weights": [float(w) for w in weights],
          "members": [{**extra, "model_flags": config.to_json_dict()}
                      for extra, config in zip(described, configs)]}
  return export_saved_model(model, union, export_base, step, max_frames=max_frames,
                            extra_assets={ENSEMBLE_FILE: json.dumps(info, indent=2) + "\n"})


def read_ensemble_info(saved_model_dir):
  """The assets.extra/ensemble.json of an ensemble export (members, weights), or None."""
  path = os.path.join(saved_model_dir, "assets.extra", ENSEMBLE_FILE)
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path) as handle:
      return json.load(handle)
  except (tf.errors.OpError, ValueError) as error:
    raise UserError(f"{path} cannot be read ({error}); expected the ensemble.json "
                    "python -m yt8m_fusion.export wrote") from None


def export_saved_model(model, config, export_base, step, max_frames=300, *, extra_assets=None):
  """Writes export_base/<step>/ whole or not at all; returns its path. `extra_assets`:
  {file name: text} also written to assets.extra/."""
  final_path = os.path.join(export_base, str(int(step)))
  temp_path = os.path.join(export_base, f".tmp-{int(step)}-{uuid.uuid4().hex[:8]}")
  try:
    tf.io.gfile.makedirs(export_base)
  except tf.errors.OpError as error:
    raise UserError(f"cannot create the export folder {export_base}: {error.message}") from None
  _remove_leftovers(export_base, step)
  try:
    archive = build_export_archive(model, config, max_frames=max_frames)
    archive.write_out(temp_path, verbose=False)
    extra = os.path.join(temp_path, "assets.extra")
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, "model_flags.json"), "w") as handle:
      handle.write(config.to_json())
    for name, text in (extra_assets or {}).items():
      with tf.io.gfile.GFile(os.path.join(extra, name), "w") as handle:
        handle.write(text)
    if tf.io.gfile.exists(final_path):
      # Re-exporting a step: move the old version aside first, so a version folder
      # is always complete.
      old_path = os.path.join(export_base, f".old-{int(step)}-{uuid.uuid4().hex[:8]}")
      tf.io.gfile.rename(final_path, old_path)
      tf.io.gfile.rename(temp_path, final_path)
      tf.io.gfile.rmtree(old_path)
    else:
      tf.io.gfile.rename(temp_path, final_path)
  except BaseException as error:
    try:
      if tf.io.gfile.exists(temp_path):
        tf.io.gfile.rmtree(temp_path)
    except tf.errors.OpError:
      logging.warning("Could not remove the partial export %s", temp_path)
    if isinstance(error, (tf.errors.OpError, OSError)):
      raise UserError(f"cannot write the SavedModel {final_path}: "
                      f"{io_utils.describe_error(error)}; nothing was exported (the "
                      "checkpoints are saved: rerun the same command to export)") from None
    raise
  logging.info("Exported a SavedModel for TF Serving to %s", final_path)
  return final_path


def _remove_leftovers(export_base, step):
  """Removes the hidden folders an earlier export of this step left when it was killed
  (TF Serving ignores them: it loads numeric folders only, but they take space)."""
  for name in tf.io.gfile.listdir(export_base):
    name = name.rstrip("/")
    if name.startswith((f".tmp-{int(step)}-", f".old-{int(step)}-")):
      try:
        tf.io.gfile.rmtree(os.path.join(export_base, name))
        logging.info("Removed %s, left by an interrupted export", name)
      except tf.errors.OpError:
        pass


def read_export_config(saved_model_dir):
  """The ModelConfig stored beside a SavedModel by export_saved_model."""
  path = os.path.join(saved_model_dir, "assets.extra", "model_flags.json")
  flag = f"--saved_model_dir={saved_model_dir}"
  expected = "expected an export folder train_dir/export/<step> written by train.py"
  if not tf.io.gfile.exists(saved_model_dir):
    raise UserError(f"{flag} does not exist; {expected}")
  if not tf.io.gfile.isdir(saved_model_dir):
    raise UserError(f"{flag} is a file; {expected}")
  if not tf.io.gfile.exists(path):
    if tf.io.gfile.exists(train_dir_lib.model_flags_path(saved_model_dir)):
      latest = train_dir_lib.latest_export(saved_model_dir)
      raise UserError(f"{flag} is a train_dir, not an export; {expected} (here "
                      f"{latest or 'none yet'}), or give it as --train_dir={saved_model_dir}")
    versions = train_dir_lib.export_versions(saved_model_dir)
    if versions:
      raise UserError(f"{flag} holds the exports {', '.join(versions)}; {expected}: give one, "
                      f"e.g. --saved_model_dir={os.path.join(saved_model_dir, versions[-1])}")
    raise UserError(f"{flag} is not a SavedModel exported by yt8m-fusion ({path} is missing); "
                    f"{expected}")
  return train_dir_lib.read_config_file(path)
