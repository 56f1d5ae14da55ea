"""Inputs, preprocessing and heads shared by the model builders.

Input contract (docs/DESIGN.md): video-level `{name: float32 [B, D]}`; frame-level
`{name: uint8 [B, T, D], "num_frames": int32 [B]}`. Inside the graph a frame-level model
dequantizes (starter formula, bit for bit), zeroes padded frames, then applies the input L2
normalization (`--input_l2_norm`, default the starter's joint norm over the concatenated
features).
"""

import keras

from yt8m_fusion.core.spec import FRAME_NAMES
from yt8m_fusion.errors import UserError
from yt8m_fusion.models import layers as zoo_layers

NUM_FRAMES = "num_frames"


def build_inputs(config):
  """The model's keras.Input dict for `config` (see the module docstring)."""
  inputs = {}
  for name, size in zip(config.feature_names, config.feature_sizes):
    if name == NUM_FRAMES:
      raise UserError(f"--feature_names: '{NUM_FRAMES}' is reserved for the frame count")
    if config.frame_features:
      inputs[name] = keras.Input((None, size), dtype="uint8", name=name)
    else:
      inputs[name] = keras.Input((size,), dtype="float32", name=name)
  if config.frame_features:
    inputs[NUM_FRAMES] = keras.Input((), dtype="int32", name=NUM_FRAMES)
  return inputs


def safe_name(name):
  """A feature name usable inside layer names."""
  return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)


def l2_normalize(features, hp, name="input_l2_norm"):
  """The `--input_l2_norm` normalization of a list of features (identity for 'none')."""
  mode = hp.input_l2_norm
  if mode == "none":
    return list(features)
  outputs = zoo_layers.L2Normalize(mode=mode, name=name)(list(features))
  return list(outputs)


def dequantized_frames(config, inputs):
  """[float32 [B, T, D] per feature] dequantized and with the padding zeroed (not normalized)."""
  num_frames = inputs[NUM_FRAMES]
  return [zoo_layers.DequantizeFrames(name=f"dequantize_{safe_name(name)}")(inputs[name],
                                                                           num_frames)
          for name in config.feature_names]


def frame_means(inputs, video_names):
  """{video-level feature: [B, D]} of frame-level `inputs`: for each of `video_names` (mean_rgb,
  mean_audio), the mean of its frame feature's dequantized valid frames, which is what
  YouTube-8M's video-level features are (an ensemble's video-level member reading frames)."""
  means = {}
  for video_name in video_names:
    frame_name = FRAME_NAMES[video_name]
    frames = zoo_layers.DequantizeFrames(name=f"dequantize_{safe_name(frame_name)}_frames")(
        inputs[frame_name], inputs[NUM_FRAMES])
    means[video_name] = zoo_layers.MaskedPooling("mean", dtype="float32",
                                                 name=f"{safe_name(video_name)}_of_frames")(
                                                     frames, inputs[NUM_FRAMES])
  return means


def frame_features(config, inputs, hp):
  """Frame-level models: ([normalized float32 [B, T, D] per feature], num_frames)."""
  require_frames(config)
  frames = dequantized_frames(config, inputs)
  return l2_normalize(frames, hp, name="frame_l2_norm"), inputs[NUM_FRAMES]


def video_features(config, inputs, hp):
  """Video-level models: [normalized float32 [B, D] per feature].

  Given frame-level input, each feature is first pooled over its valid frames
  (`--frame_pooling`, default the masked mean, i.e. what mean_rgb/mean_audio are), then
  normalized like video-level features.
  """
  if config.frame_features:
    frames = dequantized_frames(config, inputs)
    pooled = [zoo_layers.MaskedPooling(hp.frame_pooling, dtype="float32",
                                       name=f"pool_{safe_name(name)}")(f, inputs[NUM_FRAMES])
              for name, f in zip(config.feature_names, frames)]
    return l2_normalize(pooled, hp)
  return l2_normalize([inputs[name] for name in config.feature_names], hp)


def concat(features, name):
  if len(features) == 1:
    return features[0]
  return keras.layers.Concatenate(axis=-1, name=name)(features)


def require_frames(config):
  if not config.frame_features:
    raise UserError(f"--model={config.model} is a frame-level model: --frame_features is "
                    "needed (with frame features, e.g. --feature_names=rgb,audio)")


def check_activation(name, flag):
  try:
    keras.activations.get(name)
  except (ValueError, TypeError):
    raise UserError(f"--{flag}={name!r}: not a Keras activation (e.g. relu, sigmoid, tanh, "
                    "relu6, gelu)") from None
  return name


def regularizer(hp):
  """The starter's slim.l2_regularizer(l2_penalty) = penalty * sum(w^2) / 2."""
  penalty = hp.l2_penalty
  return keras.regularizers.L2(penalty / 2.0) if penalty > 0 else None


def probabilities(logits, name="predictions"):
  """Sigmoid in float32 (also under mixed precision)."""
  return keras.layers.Activation("sigmoid", dtype="float32", name=name)(logits)


def logistic_head(x, num_classes, hp):
  """The starter's LogisticModel: Dense(num_classes) + sigmoid (L2-penalized weights)."""
  logits = keras.layers.Dense(num_classes, kernel_regularizer=regularizer(hp),
                              name="logistic")(x)
  return probabilities(logits)


def moe_head(x, num_classes, hp, name="moe"):
  """The starter's MoeModel on a [B, D] representation -> float32 probabilities [B, C]."""
  mixtures = hp.moe_num_mixtures
  reg = regularizer(hp)
  gates = keras.layers.Dense(num_classes * (mixtures + 1), use_bias=False,
                             kernel_regularizer=reg, name=f"{name}_gates")(x)
  experts = keras.layers.Dense(num_classes * mixtures, kernel_regularizer=reg,
                               name=f"{name}_experts")(x)
  return zoo_layers.MoeCombine(num_classes, mixtures, name="predictions")([gates, experts])


def video_level_classifier(x, num_classes, hp):
  """The `--video_level_classifier_model` head of the frame-level starter models."""
  choice = hp.video_level_classifier_model
  if choice == "MoeModel":
    return moe_head(x, num_classes, hp)
  if choice == "LogisticModel":
    return logistic_head(x, num_classes, hp)
  raise UserError(f"--video_level_classifier_model={choice!r}: expected MoeModel or "
                  "LogisticModel")


def dense_block(x, units, activation, *, normalization="none", dropout=0.0, name):
  """Dense -> (BatchNorm | LayerNorm) -> activation -> (dropout)."""
  if normalization == "none":
    x = keras.layers.Dense(units, activation=activation, name=name)(x)
    if dropout > 0:
      x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x
  use_bias = normalization != "batch"
  x = keras.layers.Dense(units, use_bias=use_bias, name=name)(x)
  if normalization == "batch":
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
  elif normalization == "layer":
    x = keras.layers.LayerNormalization(name=f"{name}_ln")(x)
  x = keras.layers.Activation(activation, name=f"{name}_act")(x)
  if dropout > 0:
    x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
  return x
