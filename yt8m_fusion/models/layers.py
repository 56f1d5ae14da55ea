"""Custom Keras layers of the model zoo (keras.ops; ClassifierDense asks TensorFlow which
devices there are).

All are registered for serialization under the package 'yt8m_fusion', so
`model.save('x.keras')` / `keras.models.load_model('x.keras')` round-trip.
"""

import functools
import math

import keras
import numpy as np
from keras import ops

try:  # The data package owns the quantization constants when it exists.
  from yt8m_fusion.data.quantization import MAX_QUANTIZED_VALUE, MIN_QUANTIZED_VALUE
except ImportError:  # pragma: no cover - until yt8m_fusion.data.quantization is written.
  # The starter's defaults (S:utils.py Dequantize): features were quantized from [-2, 2].
  MAX_QUANTIZED_VALUE = 2.0
  MIN_QUANTIZED_VALUE = -2.0

_PACKAGE = "yt8m_fusion"
L2_EPSILON = 1e-12  # tf.nn.l2_normalize's default: x * rsqrt(max(sum(x^2), eps))
# The logit of a masked key: keras.ops.dot_product_attention's float32 value.
_LARGE_NEGATIVE = -0.7 * 3.38953e38


def dequantization_table(max_quantized_value=MAX_QUANTIZED_VALUE,
                         min_quantized_value=MIN_QUANTIZED_VALUE):
  """float32 [256]: the starter's dequantized value of each byte, bit for bit.

  x = float32(q) * float32(R/255) + float32(R/512 + min), R = max - min, each operation
  rounded to float32 (as the starter's graph computed it). A table lookup keeps the model's
  dequantization exact under any compiler (XLA may fuse a multiply-add into an FMA, which
  rounds once and can differ in the last bit).
  """
  value_range = max_quantized_value - min_quantized_value
  scale = np.float32(value_range / 255.0)
  bias = np.float32(value_range / 512.0 + min_quantized_value)
  return np.arange(256, dtype=np.float32) * scale + bias


def frame_mask(num_frames, num_steps):
  """bool [B, T]: True where the frame index < num_frames."""
  positions = ops.arange(num_steps, dtype="int32")
  return ops.less(ops.expand_dims(positions, 0),
                  ops.expand_dims(ops.cast(num_frames, "int32"), 1))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DequantizeFrames(keras.layers.Layer):
  """uint8 frames [B, T, D] (+ num_frames [B]) -> float32 [B, T, D].

  Dequantizes with the starter's formula (bit for bit) and then zeroes the padded frames
  (index >= num_frames), as the starter's reader padded after dequantization. Always float32,
  also under mixed-precision policies.
  """

  def __init__(self, max_quantized_value=MAX_QUANTIZED_VALUE,
               min_quantized_value=MIN_QUANTIZED_VALUE, **kwargs):
    kwargs["dtype"] = "float32"
    super().__init__(**kwargs)
    self.max_quantized_value = float(max_quantized_value)
    self.min_quantized_value = float(min_quantized_value)
    self._table = dequantization_table(self.max_quantized_value, self.min_quantized_value)

  def call(self, quantized, num_frames=None):
    table = ops.convert_to_tensor(self._table, dtype="float32")
    frames = ops.take(table, ops.cast(quantized, "int32"), axis=0)
    if num_frames is not None:
      mask = frame_mask(num_frames, ops.shape(frames)[1])
      frames = ops.where(ops.expand_dims(mask, -1), frames, ops.zeros_like(frames))
    return frames

  def compute_output_spec(self, quantized, num_frames=None):
    return keras.KerasTensor(quantized.shape, dtype="float32")

  def get_config(self):
    config = super().get_config()
    config.update(max_quantized_value=self.max_quantized_value,
                  min_quantized_value=self.min_quantized_value)
    config.pop("dtype", None)
    return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class L2Normalize(keras.layers.Layer):
  """L2-normalizes a list of features on their last axis (float32, eps 1e-12).

  mode='joint': one norm over all features together, i.e. the norm of their concatenation
  (the starter's `tf.nn.l2_normalize` of the 1152-d rgb+audio vector), without concatenating.
  mode='per_feature': each feature by its own norm. Zero vectors (padding) stay zero.
  """

  def __init__(self, mode="joint", epsilon=L2_EPSILON, **kwargs):
    kwargs["dtype"] = "float32"
    super().__init__(**kwargs)
    if mode not in ("joint", "per_feature"):
      raise ValueError(f"L2Normalize mode must be 'joint' or 'per_feature', not {mode!r}")
    self.mode = mode
    self.epsilon = float(epsilon)

  def call(self, features):
    features = [ops.cast(feature, "float32") for feature in features]
    squares = [ops.sum(ops.square(feature), axis=-1, keepdims=True) for feature in features]
    if self.mode == "joint":
      total = squares[0]
      for square in squares[1:]:
        total = total + square
      inverse = ops.rsqrt(ops.maximum(total, self.epsilon))
      return [feature * inverse for feature in features]
    return [feature * ops.rsqrt(ops.maximum(square, self.epsilon))
            for feature, square in zip(features, squares)]

  def compute_output_shape(self, input_shape):
    return [tuple(shape) for shape in input_shape]

  def get_config(self):
    config = super().get_config()
    config.update(mode=self.mode, epsilon=self.epsilon)
    config.pop("dtype", None)
    return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedPooling(keras.layers.Layer):
  """[B, T, D] + num_frames [B] -> [B, D]: mean or max over the valid frames only.

  The mean is sum(valid frames) / max(num_frames, 1) (the starter's frame-level average);
  the max ignores padding (a video without frames gives zeros). Sums accumulate in float32.
  """

  def __init__(self, method="mean", **kwargs):
    super().__init__(**kwargs)
    if method not in ("mean", "average", "max"):
      raise ValueError(f"MaskedPooling method must be 'mean' or 'max', not {method!r}")
    self.method = method

  def call(self, frames, num_frames):
    num_steps = ops.shape(frames)[1]
    mask = ops.expand_dims(frame_mask(num_frames, num_steps), -1)
    counts = ops.minimum(ops.cast(num_frames, "int32"), num_steps)
    if self.method == "max":
      lowest = ops.cast(-3.0e38 if frames.dtype == "float32" else -6.0e4, frames.dtype)
      pooled = ops.max(ops.where(mask, frames, lowest), axis=1)
      has_frames = ops.expand_dims(ops.greater(counts, 0), -1)
      return ops.where(has_frames, pooled, ops.zeros_like(pooled))
    frames32 = ops.cast(frames, "float32")
    total = ops.sum(ops.where(mask, frames32, ops.zeros_like(frames32)), axis=1)
    denominator = ops.cast(ops.maximum(counts, 1), "float32")
    return ops.cast(total / ops.expand_dims(denominator, -1), self.compute_dtype)

  def compute_output_shape(self, frames_shape, num_frames_shape=None):
    return (frames_shape[0], frames_shape[-1])

  def get_config(self):
    config = super().get_config()
    config.update(method=self.method)
    return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FrameSampler(keras.layers.Layer):
  """[B, T, D] + num_frames [B] -> [B, num_samples, D]: frames sampled among the valid ones.

  Training: `random_frames=True` draws num_samples frame indices uniformly (with replacement)
  in [0, num_frames), as the starter's SampleRandomFrames; `random_frames=False` takes a
  random contiguous sequence (wrapping around when the video is shorter), as its
  SampleRandomSequence. Inference (training falsy) is deterministic, unlike the starter
  (which sampled randomly in eval too): evenly spaced frames (frame floor((i+0.5)*n/K)) or the
  centred sequence, so predictions are reproducible.
  """

  def __init__(self, num_samples, random_frames=True, seed=None, **kwargs):
    super().__init__(**kwargs)
    self.num_samples = int(num_samples)
    self.random_frames = bool(random_frames)
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, frames, num_frames, training=None):
    num_steps = ops.shape(frames)[1]
    counts = ops.minimum(ops.cast(num_frames, "int32"), num_steps)
    safe_counts = ops.maximum(counts, 1)
    counts_f = ops.expand_dims(ops.cast(safe_counts, "float32"), 1)  # [B, 1]
    steps = ops.arange(self.num_samples, dtype="int32")
    batch = ops.shape(frames)[0]
    if training and self.random_frames:
      uniform = keras.random.uniform((batch, self.num_samples), seed=self.seed_generator)
      indices = ops.cast(ops.floor(uniform * counts_f), "int32")
    elif self.random_frames:
      positions = (ops.cast(steps, "float32") + 0.5) * counts_f / float(self.num_samples)
      indices = ops.cast(ops.floor(positions), "int32")
    else:
      room = ops.maximum(safe_counts - self.num_samples + 1, 1)  # possible start frames
      if training:
        uniform = keras.random.uniform((batch, 1), seed=self.seed_generator)
        start = ops.cast(ops.floor(uniform * ops.expand_dims(ops.cast(room, "float32"), 1)),
                         "int32")
      else:
        start = ops.expand_dims((room - 1) // 2, 1)
      indices = ops.mod(start + ops.expand_dims(steps, 0), ops.expand_dims(safe_counts, 1))
    indices = ops.minimum(indices, ops.expand_dims(safe_counts - 1, 1))
    return ops.take_along_axis(frames, ops.expand_dims(indices, -1), axis=1)

  def compute_output_shape(self, frames_shape, num_frames_shape=None):
    return (frames_shape[0], self.num_samples, frames_shape[-1])

  def get_config(self):
    config = super().get_config()
    config.update(num_samples=self.num_samples, random_frames=self.random_frames,
                  seed=self.seed)
    return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SelfAttentionBlock(keras.layers.Layer):
  """Multi-head self-attention + residual (+ LayerNorm) over tokens or frames.

  call(x [B, T, D], num_frames=None): with num_frames, padded frames are masked out as keys
  (padded query rows are computed but must be masked by the caller's pooling).
  `return_attention_scores=True` also returns the attention probabilities
  [B, heads, T, T] (used by `attention_scores_model`; training calls leave it off so the
  backend's fused dot-product attention can be used).
  """

  def __init__(self, num_heads, key_dim, dropout=0.0, layer_norm=True, modality=None,
               **kwargs):
    super().__init__(**kwargs)
    self.num_heads = int(num_heads)
    self.key_dim = int(key_dim)
    self.dropout = float(dropout)
    self.layer_norm = bool(layer_norm)
    self.modality = modality
    self.attention = keras.layers.MultiHeadAttention(
        num_heads=self.num_heads, key_dim=self.key_dim, dropout=self.dropout,
        dtype=self.dtype_policy, name="multi_head_attention")
    self.norm = (keras.layers.LayerNormalization(epsilon=1e-6, dtype=self.dtype_policy,
                                                 name="layer_norm")
                 if self.layer_norm else None)

  def build(self, input_shape):
    input_shape = tuple(input_shape)
    self.attention.build(input_shape, input_shape)
    if self.norm is not None:
      self.norm.build(input_shape)
    self.built = True

  def call(self, x, num_frames=None, training=None, return_attention_scores=False):
    attention_mask = None
    if num_frames is not None:
      # Keys: the valid frames (at least frame 0, so an empty video gives no NaN).
      valid = frame_mask(ops.maximum(ops.cast(num_frames, "int32"), 1), ops.shape(x)[1])
      attention_mask = ops.expand_dims(valid, 1)  # [B, 1, S]: broadcast over queries
    if return_attention_scores:
      attended, scores = self.attention(x, x, attention_mask=attention_mask, training=training,
                                        return_attention_scores=True)
    elif self._fast_path_ok(x, training):
      attended = self._attend_2d(x, attention_mask)
    else:
      attended = self.attention(x, x, attention_mask=attention_mask, training=training)
    outputs = x + attended
    if self.norm is not None:
      outputs = self.norm(outputs)
    if return_attention_scores:
      return outputs, scores
    return outputs

  def _fast_path_ok(self, x, training):
    attention = self.attention
    parts = (attention.query_dense, attention.key_dense, attention.value_dense,
             attention.output_dense)
    return ((self.dropout == 0.0 or not training) and len(x.shape) == 3
            and x.shape[-1] is not None
            and all(part is not None and getattr(part, "bias", None) is not None
                    for part in parts))

  def _attend_2d(self, x, attention_mask):
    """The MultiHeadAttention's output, computed with 2-D projections (same weights).

    Keras' EinsumDense projects [B, T, D] with a batched matmul against a broadcast kernel,
    whose kernel gradient is a [B, D, H*k] batch of products summed over B; flattening the
    tokens to [B*T, D] makes each projection (and its gradient) one 2-D matmul, and the
    scores / weighted sum are batched matmuls over [B, H] without einsum transposes.
    Measured faster (forward + backward) on CPU, see docs/PERFORMANCE.md; the values are
    the same (softmax in float32, masked keys get the same large negative logit as
    keras.ops.dot_product_attention).
    """
    attention = self.attention
    dtype = self.compute_dtype
    width, heads, key_dim = x.shape[-1], self.num_heads, self.key_dim
    steps = ops.shape(x)[1]
    flat = ops.reshape(ops.cast(x, dtype), (-1, width))

    def project(layer, order):
      kernel = ops.cast(ops.reshape(layer.kernel, (width, -1)), dtype)
      projected = ops.matmul(flat, kernel) + ops.cast(ops.reshape(layer.bias, (-1,)), dtype)
      size = projected.shape[-1] // heads
      return ops.transpose(ops.reshape(projected, (-1, steps, heads, size)), order)

    query = project(attention.query_dense, (0, 2, 1, 3))  # [B, H, T, k]
    key = project(attention.key_dense, (0, 2, 3, 1))  # [B, H, k, S]
    value = project(attention.value_dense, (0, 2, 1, 3))  # [B, H, S, v]
    logits = ops.cast(ops.matmul(query, key), "float32") * (1.0 / float(key_dim) ** 0.5)
    if attention_mask is not None:  # [B, 1, S] -> [B, 1, 1, S]
      logits = ops.where(ops.expand_dims(attention_mask, 1), logits, _LARGE_NEGATIVE)
      # Masked keys' values are zeroed too (the same output: their weight is 0). In a
      # float16 LiteRT export the L2 epsilon rounds to 0, a padded frame's features become
      # NaN, and 0 * NaN would spread to every frame.
      value = ops.where(ops.expand_dims(attention_mask, -1), value, ops.zeros_like(value))
    probabilities = ops.cast(ops.softmax(logits, axis=-1), dtype)
    attended = ops.transpose(ops.matmul(probabilities, value), (0, 2, 1, 3))  # [B, T, H, v]
    attended = ops.reshape(attended, (-1, attended.shape[2] * attended.shape[3]))
    output = attention.output_dense
    kernel = ops.cast(ops.reshape(output.kernel, (attended.shape[-1], -1)), dtype)
    attended = ops.matmul(attended, kernel) + ops.cast(output.bias, dtype)
    return ops.reshape(attended, (-1, steps, attended.shape[-1]))

  def get_config(self):
    config = super().get_config()
    config.update(num_heads=self.num_heads, key_dim=self.key_dim, dropout=self.dropout,
                  layer_norm=self.layer_norm, modality=self.modality)
    return config

  def forward_flops(self, input_shape, max_frames):  # pylint: disable=unused-argument
    """The FLOPs protocol of models/flops.py: the attention's products (the LayerNorm and
    the residual are element-wise)."""
    return multi_head_attention_flops(self.attention, input_shape, input_shape)


def multi_head_attention_flops(attention, query_shape, value_shape):
  """Forward FLOPs of a keras MultiHeadAttention for one example: query [T, Dq], key/value
  [S, Dv] (shapes without the batch axis): the Q, K, V and output projections, the QK^T
  scores and the scores-weighted sum of V, 2 x multiply-adds each."""
  steps, query_dim = math.prod(query_shape[:-1]), query_shape[-1]
  sources, value_dim = math.prod(value_shape[:-1]), value_shape[-1]
  heads, key_dim = attention.num_heads, attention.key_dim
  head_value_dim = attention.value_dim or key_dim
  output_dim = query_dim
  projections = (steps * query_dim * heads * key_dim            # Q
                 + sources * value_dim * heads * key_dim        # K
                 + sources * value_dim * heads * head_value_dim  # V
                 + steps * heads * head_value_dim * output_dim)  # output
  scores = steps * sources * heads * key_dim                    # Q K^T
  weighted = steps * sources * heads * head_value_dim           # softmax(.) V
  return 2 * (projections + scores + weighted)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassifierDense(keras.layers.Dense):
  """keras.layers.Dense whose kernel gradient, under bfloat16 on a CPU, takes the form that
  oneDNN runs fastest at classifier shapes ([B, 16384] x [16384, 3862] in the paper-size
  Attend-Fusion).

  Same weights, config, checkpoints and forward values as Dense; float32, GPUs and TPUs use
  Dense's own call. Autodiff writes the kernel gradient as matmul(inputs, dy,
  transpose_a=True); oneDNN's bfloat16 kernel measured slower in that form than on a
  materialized inputs^T (benchmarks/matmul_forms.py), and TensorFlow's graph optimizer folds
  a plain 2-D transpose back into transpose_a, so inputs^T is made through a 3-D transpose.
  The whole bfloat16 training step of AttendFusion measured faster with it (benchmarks/run.py's
  side-by-side run; figures in docs/PERFORMANCE.md); the gradients are the same values.
  """

  def call(self, inputs, training=None):
    if not self._bfloat16_cpu_path(inputs):
      return super().call(inputs, training=training)
    outputs = _matmul_materialized_kernel_gradient(inputs,
                                                   ops.cast(self.kernel, self.compute_dtype))
    if self.bias is not None:
      outputs = ops.add(outputs, self.bias)
    if self.activation is not None:
      outputs = self.activation(outputs)
    return outputs

  def _bfloat16_cpu_path(self, inputs):
    return (self.compute_dtype == "bfloat16" and len(inputs.shape) == 2
            and inputs.shape[-1] is not None and not self.lora_enabled
            and self.quantization_mode is None and _cpu_only())


@functools.lru_cache(maxsize=None)
def _cpu_only():
  """True when TensorFlow sees no GPU or TPU (ops run on the CPU, through oneDNN)."""
  if keras.backend.backend() != "tensorflow":
    return False
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def transpose_unfolded(x):
  """x^T of a 2-D x, through a 3-D transpose that TensorFlow's graph optimizer does not fold
  into a following matmul as transpose_a / transpose_b."""
  rows, columns = x.shape
  return ops.reshape(ops.transpose(ops.reshape(x, (rows or -1, columns, 1)), (1, 0, 2)),
                     (columns, -1))


@ops.custom_gradient
def _matmul_materialized_kernel_gradient(inputs, kernel):
  """inputs [B, D] @ kernel [D, C]; its kernel gradient is transpose_unfolded(inputs) @ dy."""

  def gradient(*upstream, **unused_kwargs):
    output_gradient = upstream[0]
    return (ops.matmul(output_gradient, ops.transpose(kernel)),
            ops.matmul(transpose_unfolded(inputs), output_gradient))

  return ops.matmul(inputs, kernel), gradient


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MoeCombine(keras.layers.Layer):
  """The starter's mixture of experts, from gate and expert logits (float32 output).

  gate_logits [B, C*(M+1)] (class-major: M+1 per class, the last a dummy expert that predicts
  'no entity'), expert_logits [B, C*M] -> probabilities [B, C] =
  sum_m softmax(gates)[:, c, m] * sigmoid(experts)[:, c, m].
  """

  def __init__(self, num_classes, num_mixtures, **kwargs):
    kwargs["dtype"] = "float32"
    super().__init__(**kwargs)
    self.num_classes = int(num_classes)
    self.num_mixtures = int(num_mixtures)

  def call(self, inputs):
    gate_logits, expert_logits = inputs
    gates = ops.softmax(
        ops.reshape(ops.cast(gate_logits, "float32"),
                    (-1, self.num_classes, self.num_mixtures + 1)), axis=-1)
    experts = ops.sigmoid(
        ops.reshape(ops.cast(expert_logits, "float32"),
                    (-1, self.num_classes, self.num_mixtures)))
    return ops.sum(gates[:, :, :self.num_mixtures] * experts, axis=-1)

  def compute_output_shape(self, input_shape):
    return (input_shape[0][0], self.num_classes)

  def get_config(self):
    config = super().get_config()
    config.update(num_classes=self.num_classes, num_mixtures=self.num_mixtures)
    config.pop("dtype", None)
    return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FrameValidMask(keras.layers.Layer):
  """num_frames [B] + frames [B, T, ...] -> bool [B, T] (True for valid frames), e.g. for LSTM."""

  def call(self, frames, num_frames):
    return frame_mask(num_frames, ops.shape(frames)[1])

  def compute_output_spec(self, frames, num_frames):
    return keras.KerasTensor(tuple(frames.shape[:2]), dtype="bool")
