"""Forward FLOPs per example, counted from the layer shapes.

Counts matrix products only, as 2 x multiply-adds: Dense layers (per position: frames,
tokens or sampled frames), self-attention (the Q, K, V projections, the QK^T scores, the
scores-weighted sum of V and the output projection) and recurrent layers (LSTM: 4 gates x
units x (input + units) per frame, GRU: 3 gates). Element-wise work (activations,
normalizations, softmax, pooling, dequantization) is left out: it is small next to the
products and not what an MFU figure counts. Frame-level models are counted at `max_frames`
(default 300) frames, padding included (the model computes on padded frames too).

The FLOPs protocol: a custom layer that does products declares them with a public method

    def forward_flops(self, input_shape, max_frames) -> int

returning its per-example forward FLOPs (2 x multiply-adds), where `input_shape` is the
shape of its (first) input without the batch axis, frames given as `max_frames`
(`layers.SelfAttentionBlock` is an example). A layer that holds weights, is none of the
Keras layers counted here and does not implement the protocol raises a TypeError naming it,
rather than counting 0 (a new model's MFU would silently read 0). Layers without weights
count 0 unless they implement the protocol.
"""

import math

import keras

from yt8m_fusion.models import layers as zoo_layers

DEFAULT_MAX_FRAMES = 300
# Keras layers with weights but no products to count (element-wise scale and shift).
_ELEMENTWISE_WEIGHTED = (keras.layers.BatchNormalization, keras.layers.LayerNormalization)
attention_flops = zoo_layers.multi_head_attention_flops


def forward_flops(model_or_config, max_frames=DEFAULT_MAX_FRAMES):
  """Forward FLOPs per example of a keras.Model, or of the model a ModelConfig builds."""
  model = model_or_config
  if not isinstance(model, keras.Model):
    from yt8m_fusion.models.registry import build_model  # pylint: disable=import-outside-toplevel
    model = build_model(model_or_config)
  return int(sum(layer_flops(layer, max_frames) for layer in model.layers))


def layer_flops(layer, max_frames=DEFAULT_MAX_FRAMES):
  """Forward FLOPs per example of one (called) layer; a TypeError for a weighted layer it
  cannot count (see the module docstring)."""
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
  if callable(getattr(layer, "forward_flops", None)):
    return int(layer.forward_flops(shape, max_frames))
  if isinstance(layer, keras.layers.Dense):
    return 2 * _positions(shape) * shape[-1] * layer.units
  if isinstance(layer, keras.layers.MultiHeadAttention):
    value = inputs[1] if isinstance(inputs, (list, tuple)) and len(inputs) > 1 else first
    return attention_flops(layer, shape, _per_example(value.shape, max_frames))
  if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
    gates = 4 if isinstance(layer, keras.layers.LSTM) else 3
    return 2 * shape[0] * gates * layer.units * (shape[-1] + layer.units)
  if layer.weights and not isinstance(layer, _ELEMENTWISE_WEIGHTED):
    raise TypeError(
        f"cannot count the FLOPs of layer '{layer.name}' ({type(layer).__name__}): it holds "
        "weights but is not a layer models/flops.py knows; implement "
        "forward_flops(self, input_shape, max_frames) -> int on it (the FLOPs protocol in "
        "models/flops.py)")
  return 0


def _per_example(shape, max_frames):
  """A KerasTensor shape without its batch axis, None (frames) replaced by max_frames."""
  return tuple(max_frames if dim is None else int(dim) for dim in tuple(shape)[1:])


def _positions(shape):
  """How many vectors of the last axis an example has (frames x tokens ...)."""
  return math.prod(shape[:-1]) if len(shape) > 1 else 1


def format_flops(flops):
  """'166,395,904 (0.166 GFLOPs)'."""
  return f"{flops:,} ({flops / 1e9:.3f} GFLOPs)"
