"""LiteRT (TFLite) files of a trained model: LiteRT built-in ops only, quantized or not.

    export_litert(model, config, "model.tflite", quantization="dynamic_int8")

The file has one signature, `probabilities`: the model's raw features in (video-level float32
[B, D] per feature; frame-level uint8 [B, max_frames, D] per feature and num_frames int32
[B]), the class probabilities float32 [B, num_classes] out (the SavedModel's `probabilities`
signature with the frames fixed at max_frames). The batch size is free unless fixed.
Dequantization, masking and the input L2 normalization are inside, as in the Keras model.

It is converted by tf.lite.TFLiteConverter with LiteRT built-in ops only: no Flex /
SELECT_TF_OPS, so it runs on the Android, iOS and embedded runtimes. Quantizations:

  none           float32.
  float16        float16 weights, dequantized to float32 when loaded; float32 compute.
  dynamic_int8   int8 weights; the fully connected kernels quantize their activations on
                 the fly (dynamic range); everything else computes in float32.
  int8           full integer: int8 weights and activations with ranges calibrated on
                 `calibration_examples` (frame-level: on their real frames only, see
                 _without_padding); float32 in and out (QUANTIZE / DEQUANTIZE at the edges).
                 The few operators the converter leaves in float32 (the input normalization's
                 SQUARE and the frame mask's SELECT_V2, for instance) are listed in the
                 file's metadata (float_ops).

What LiteRT built-ins cannot express, and what the export does instead:
  - Models with recurrent layers (LstmModel): the LSTM loop's tensor lists need static
    shapes, so the batch size is fixed (1 unless `batch_size` is given; the runtime cuts and
    pads batches to it). Their int8 export is refused: the calibrator cannot run the loop.
  - Full-integer masked attention (frame-level AttendFusion at int8): a masked key's logit
    (-2.4e38) has no int8 value, and clamped to the smallest real logit it keeps a share of
    the softmax that grows with the padding (a 3-frame video in 30 slots lost most of its
    attention). The masked softmax (SELECT_V2, SOFTMAX) stays float32; everything else,
    the attention's matmuls included, is int8 (selective quantization with
    tf.lite.experimental.QuantizationDebugger's denylist).

The model flags, vocabulary, inputs and quantization travel in the file's metadata
(yt8m_fusion.litert.model_file), which also holds a checksum of the whole file.
"""

import logging
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf

from yt8m_fusion import io_utils
from yt8m_fusion.errors import UserError
from yt8m_fusion.export.saved_model import feature_signature
from yt8m_fusion.litert import model_file
from yt8m_fusion.models import layers as zoo_layers

QUANTIZATIONS = model_file.QUANTIZATIONS
SIGNATURE = model_file.SIGNATURE
OUTPUT = model_file.OUTPUT


def _has_layer(model, layer_type):
  """True when the functional `model` has a layer of `layer_type` (the zoo's recurrent and
  attention layers are layers of the model itself, not nested)."""
  return any(isinstance(layer, layer_type) for layer in model.layers)


def float_ops_at_int8(model, config):
  """Operators kept in float32 by an int8 export (see the module docstring)."""
  if config.frame_features and _has_layer(model, zoo_layers.SelfAttentionBlock):
    return ["SELECT_V2", "SOFTMAX"]  # the masked softmax over the frames
  return []


def export_litert(model, config, output_file, *, quantization="none", max_frames=300,
                  batch_size=None, calibration_examples=None, vocabulary=None,
                  checkpoint=None, step=None):
  """Converts `model` and writes `output_file` whole or not at all.

  Args:
    model: the Keras model built from `config`, with its trained weights.
    config: its ModelConfig (stored in the file).
    output_file: the .tflite file to write (a temporary file renamed on success).
    quantization: one of QUANTIZATIONS.
    max_frames: frame-level models: the frames per video of the inputs.
    batch_size: a fixed batch size, or None for any (recurrent models: 1 by default).
    calibration_examples: int8: a list of {input name: array [1, ...]}, the model inputs
      of real videos.
    vocabulary: {class index: name} stored in the file (may be None).
    checkpoint, step: where the weights came from (stored in the file).

  Returns:
    The file's metadata (see yt8m_fusion.litert.model_file), plus "bytes".

  Raises:
    UserError: an unknown quantization, int8 without calibration examples or on a recurrent
      model, a model that needs ops outside LiteRT's built-ins, or an unwritable path.
  """
  if quantization not in QUANTIZATIONS:
    raise UserError(f"--quantization={quantization}: expected one of {', '.join(QUANTIZATIONS)}")
  recurrent = _has_layer(model, keras.layers.RNN)
  if quantization == "int8":
    if recurrent:
      raise UserError(f"--quantization=int8 is not available for {config.model}: its LSTM loop "
                      "(a LiteRT WHILE) cannot be calibrated for full-integer inference; use "
                      "--quantization=dynamic_int8 (int8 weights) or float16")
    if not calibration_examples:
      raise UserError("--quantization=int8 needs calibration data: give "
                      "--calibration_data_pattern (TFRecords like the training data; a few "
                      "hundred videos are enough)")
  if recurrent and not batch_size:
    batch_size = 1
    logging.info("%s: exported with a fixed batch size of 1 (the LSTM loop needs static "
                 "shapes in LiteRT built-ins; --litert_batch_size sets another)", config.model)
  if quantization == "int8" and config.frame_features:
    calibration_examples = [_without_padding(example, config, max_frames)
                            for example in calibration_examples]
  content, float_ops = _convert(model, config, quantization, max_frames, batch_size,
                                calibration_examples)
  specs = feature_signature(config, batch_size=batch_size, max_frames=max_frames)
  info = {
      "signature": SIGNATURE, "output": OUTPUT,
      "inputs": [{"name": spec.name, "dtype": spec.dtype.name,
                  "shape": [-1 if size is None else int(size) for size in spec.shape]}
                 for spec in specs],
      "batch_size": batch_size, "max_frames": max_frames if config.frame_features else None,
      "quantization": quantization, "float_ops": float_ops,
      "model_flags": config.to_json_dict(),
      "vocabulary": {str(index): name for index, name in sorted((vocabulary or {}).items())},
      "checkpoint": checkpoint, "step": step, "converter": f"tensorflow {tf.__version__}",
  }
  content = model_file.embed(content, info)
  with io_utils.atomic_output(output_file, "wb") as handle:
    handle.write(content)
  logging.info("Wrote %s: %s, %s, %.1f MB", output_file, config.model, quantization,
               len(content) / 1e6)
  return dict(info, bytes=len(content))


def _without_padding(example, config, max_frames):
  """A frame-level calibration example with its frames repeated up to max_frames.

  int8 ranges are calibrated on real frames only: a padded (zero) frame L2-normalizes
  through rsqrt(epsilon) = 1e6, which, calibrated, would take the whole int8 range of that
  tensor and leave no resolution for real frames. Left out of the calibration, padded values
  are clamped at inference, which changes nothing: they are zeros (times any scale), masked
  out of the attention (whose masked softmax stays float32: float_ops_at_int8) and skipped
  by the pooling.
  """
  count = max(int(np.asarray(example["num_frames"]).reshape(-1)[0]), 1)
  frames = np.arange(max_frames) % count
  repeated = {name: np.asarray(example[name])[:, frames] for name in config.feature_names}
  repeated["num_frames"] = np.full_like(np.asarray(example["num_frames"]), max_frames)
  return repeated


def _convert(model, config, quantization, max_frames, batch_size, calibration_examples):
  """(flatbuffer bytes, operators left in float32 by int8) of the model's probabilities."""
  names = config.data_spec(max_frames=max_frames).model_input_names
  archive = keras.export.ExportArchive()
  archive.track(model)

  def probabilities(*features):
    return {OUTPUT: tf.cast(model(dict(zip(names, features)), training=False), tf.float32)}

  archive.add_endpoint(SIGNATURE, probabilities, input_signature=feature_signature(
      config, batch_size=batch_size, max_frames=max_frames))
  with tempfile.TemporaryDirectory(prefix="yt8m-litert-") as saved_model:
    # Through a SavedModel: its variables become constants without the 2 GB GraphDef limit.
    archive.write_out(saved_model, verbose=False)
    denylist = float_ops_at_int8(model, config) if quantization == "int8" else []
    if denylist:
      logging.warning("--quantization=int8: %s keeps its masked softmax (%s) in float32: a "
                      "masked frame's logit has no int8 value; the rest is int8",
                      config.model, ", ".join(denylist))
    content = _run_converter(saved_model, config, quantization, calibration_examples, names,
                             int8_only=True, denylist=denylist)
    float_ops = []
    if quantization == "int8":
      float_ops = model_file.float_operators(content)
  custom = [name for name in model_file.operator_names(content) if name.startswith("CUSTOM:")]
  if custom:  # the converter was told built-ins only; a guard for what the file promises
    raise UserError(f"the LiteRT conversion of {config.model} produced non-built-in operators "
                    f"({', '.join(custom)}); nothing was written")
  return content, float_ops


def _run_converter(saved_model, config, quantization, calibration_examples, names, int8_only,
                   denylist=()):
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[SIGNATURE])
  # TensorFlow's conversion metadata costs a second copy of the model (GBs at paper size);
  # the file carries ours instead (model_file.embed).
  converter.exclude_conversion_metadata = True
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if quantization != "none":
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantization == "float16":
    converter.target_spec.supported_types = [tf.float16]
  if quantization == "int8":
    converter.representative_dataset = lambda: (
        {name: np.asarray(example[name]) for name in names} for example in calibration_examples)
    converter.target_spec.supported_ops = (
        [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] if int8_only
        else [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS])
  try:
    if not denylist:
      return converter.convert()
    # Selective quantization: calibrates, then quantizes all but the denylisted operators.
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=list(denylist)))
    return debugger.get_nondebug_quantized_model()
  except Exception as error:  # pylint: disable=broad-except
    # The converter raises its own ConverterError (not public), ValueError or RuntimeError.
    text = str(error)
    if quantization == "int8" and int8_only and "quantiz" in text.lower():
      logging.warning("--quantization=int8: some operators of %s have no int8 kernel (%s); "
                      "they stay float32 between DEQUANTIZE and QUANTIZE", config.model,
                      ", ".join(_tf_ops(text)) or _first_line(text))
      return _run_converter(saved_model, config, quantization, calibration_examples, names,
                            int8_only=False, denylist=denylist)
    ops = _tf_ops(text)
    detail = f"TensorFlow ops without a LiteRT built-in: {', '.join(ops)}" if ops else \
        _first_line(text)
    raise UserError(f"cannot convert {config.model} to LiteRT built-in ops at "
                    f"--quantization={quantization} ({detail}); Flex ops (SELECT_TF_OPS) are not "
                    "used so that the file runs on every LiteRT runtime; nothing was written") \
        from None


def _tf_ops(text):
  return sorted(set(re.findall(r"'tf\.(\w+)'", text)))


def _first_line(text):
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  return (lines[0] if lines else "unknown error")[:300]
