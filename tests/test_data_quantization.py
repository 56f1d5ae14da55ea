"""Dequantization is the starter's formula bit for bit; quantize is the writer side."""

import numpy as np
import tensorflow as tf

from yt8m_fusion import data
from yt8m_fusion.data import quantization


def _reference(q):
  # float32(q) * float32(4/255), rounded, then + float32(4/512 - 2), rounded.
  return (np.float32(q) * np.float32(4.0 / 255.0)).astype(np.float32) + np.float32(-1.9921875)


def test_constants():
  assert data.MAX_QUANTIZED_VALUE == 2.0 and data.MIN_QUANTIZED_VALUE == -2.0
  assert quantization.DEQUANTIZE_BIAS == np.float32(-1.9921875)
  assert quantization.DEQUANTIZE_SCALE == np.float32(4.0 / 255.0)


def test_dequantize_all_bytes_bit_exact_eager_and_graph():
  q = np.arange(256, dtype=np.uint8)
  expected = _reference(q)
  eager = data.dequantize(tf.constant(q)).numpy()
  graph = tf.function(data.dequantize)(tf.constant(q)).numpy()
  for values in (eager, graph, data.dequantize_numpy(q)):
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values.view(np.uint32), expected.view(np.uint32))
  assert eager[0] == np.float32(-1.9921875)
  assert eager[255] == np.float32(2.0078125)


def test_quantize_writer_formula():
  x = np.array([-5.0, -2.0, 0.0, 1.0, 2.0, 9.0, 0.0078125], np.float32)
  expected = [0, 0, 128, 191, 255, 255, 128]  # round((clip(x)+2)*255/4), half to even
  np.testing.assert_array_equal(data.quantize(x), expected)
  assert data.quantize(x).dtype == np.uint8
  # Round trip stays within one quantization step (the reader adds a bias of 4/512).
  values = np.linspace(-2, 2, 1001, dtype=np.float32)
  np.testing.assert_allclose(data.dequantize_numpy(data.quantize(values)), values,
                             atol=4 / 255 / 2 + 4 / 512 + 1e-6)
