"""Quantization of YouTube-8M frame features, exactly as the starter code does it.

Frame features are stored as uint8 (one byte per dimension). The reader turns a byte
`q` into a float with the starter's formula

    x = float32(q) * float32(R / 255) + float32(R / 512 + min),   R = max - min,

with `max = 2`, `min = -2`, so `q = 0 -> -1.9921875` and `q = 255 -> 2.0078125`.
The writer side (the feature extractor) is `q = round((clip(x, -2, 2) + 2) * 255 / 4)`.
The two are not exact inverses (the reader adds a bias of R/512); we keep both
bit for bit, as the data and the trained models expect.
"""

import numpy as np
import tensorflow as tf

MAX_QUANTIZED_VALUE = 2.0
MIN_QUANTIZED_VALUE = -2.0


def _scale_and_bias(max_quantized_value, min_quantized_value):
  """The starter computes both constants in Python (double), then TF stores them as float32."""
  quantized_range = max_quantized_value - min_quantized_value
  scale = np.float32(quantized_range / 255.0)
  bias = np.float32(quantized_range / 512.0 + min_quantized_value)
  return scale, bias


DEQUANTIZE_SCALE, DEQUANTIZE_BIAS = _scale_and_bias(MAX_QUANTIZED_VALUE, MIN_QUANTIZED_VALUE)


def dequantize(tensor, max_quantized_value=MAX_QUANTIZED_VALUE,
               min_quantized_value=MIN_QUANTIZED_VALUE):
  """uint8 (or any numeric) tensor -> float32 with the starter's formula (graph-safe).

  The multiplication and the addition are separate float32 operations, as in the
  starter's graph, so the results are bit-identical to `dequantize_numpy`.
  """
  scale, bias = _scale_and_bias(max_quantized_value, min_quantized_value)
  return tf.cast(tensor, tf.float32) * scale + bias


def dequantize_numpy(array, max_quantized_value=MAX_QUANTIZED_VALUE,
                     min_quantized_value=MIN_QUANTIZED_VALUE):
  """NumPy version of `dequantize` (same float32 rounding steps)."""
  scale, bias = _scale_and_bias(max_quantized_value, min_quantized_value)
  product = np.asarray(array).astype(np.float32) * scale
  return (product + bias).astype(np.float32, copy=False)


def quantize(features, max_quantized_value=MAX_QUANTIZED_VALUE,
             min_quantized_value=MIN_QUANTIZED_VALUE):
  """float features -> uint8, the feature extractor's writer-side formula.

  `round((clip(x, min, max) - min) * 255 / (max - min))`, computed in float32 with
  round-half-to-even (Python's `round`, which the extractor used, does the same).
  """
  features = np.asarray(features, dtype=np.float32)
  quantized_range = max_quantized_value - min_quantized_value
  clipped = np.clip(features, np.float32(min_quantized_value), np.float32(max_quantized_value))
  scaled = (clipped - np.float32(min_quantized_value)) * np.float32(255.0 / quantized_range)
  return np.rint(scaled).astype(np.uint8)
