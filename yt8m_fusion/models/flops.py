"""Forward FLOPs per example, counted from the layer shapes.

Counts matrix products only, as 2 x multiply-adds: Dense layers (per position: frames,
tokens or sampled frames), self-attention (the Q, K, V projections, the QK^T scores, the
scores-weighted sum of V and the output projection) and recurrent layers (LSTM: 4 gates x
units x (input + units) per frame, GRU: 3 gates). Element-wise work (activations,
normalizations, softmax, pooling, dequantization) is left out: it is small next to the
products and not what an MFU figure counts. Frame-level models are counted at `max_frames`
(default 300) frames, padding included (the model computes on padded frames too).
"""

import math

import keras

from yt8m_fusion.models import layers as zoo_layers

DEFAULT_MAX_FRAMES = 300


def forward_flops(model_or_config, max_frames=DEFAULT_MAX_FRAMES):
  """Forward FLOPs per example of a keras.Model, or of the model a ModelConfig builds."""
  model = model_or_config
  if not isinstance(model, keras.Model):
    from yt8m_fusion.models.registry import build_model  # pylint: disable=import-outside-toplevel
    model = build_model(model_or_config)
  return int(sum(layer_flops(layer, max_frames) for layer in model.layers))


def layer_flops(layer, max_frames=DEFAULT_MAX_FRAMES):
  """Forward FLOPs per example of one (called) layer."""
  if isinstance(layer, keras.Model):
    return sum(layer_flops(inner, max_frames) for inner in layer.layers)
  if isinstance(layer, keras.layers.InputLayer):
    return 0
  try:
    inputs = layer.input
  except ValueError:  # never called in the model: no input, no FLOPs
    return 0
  first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
  shape = _per_example(first.shape, max_frames)
  if isinstance(layer, keras.layers.Dense):
    return 2 * _positions(shape) * shape[-1] * layer.units
  if isinstance(layer, zoo_layers.SelfAttentionBlock):
    return attention_flops(layer.attention, shape, shape)
  if isinstance(layer, keras.layers.MultiHeadAttention):
    value = inputs[1] if isinstance(inputs, (list, tuple)) and len(inputs) > 1 else first
    return attention_flops(layer, shape, _per_example(value.shape, max_frames))
  if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
    gates = 4 if isinstance(layer, keras.layers.LSTM) else 3
    return 2 * shape[0] * gates * layer.units * (shape[-1] + layer.units)
  return 0


def attention_flops(attention, query_shape, value_shape):
  """Multi-head attention FLOPs for one example: query [T, Dq], key/value [S, Dv]."""
  steps, query_dim = _positions(query_shape), query_shape[-1]
  sources, value_dim = _positions(value_shape), value_shape[-1]
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


def _per_example(shape, max_frames):
  """A KerasTensor shape without its batch axis, None (frames) replaced by max_frames."""
  return tuple(max_frames if dim is None else int(dim) for dim in tuple(shape)[1:])


def _positions(shape):
  """How many vectors of the last axis an example has (frames x tokens ...)."""
  return math.prod(shape[:-1]) if len(shape) > 1 else 1


def format_flops(flops):
  """'166,395,904 (0.166 GFLOPs)'."""
  return f"{flops:,} ({flops / 1e9:.3f} GFLOPs)"
