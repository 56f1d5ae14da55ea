"""The YouTube-8M starter code's models, rebuilt in Keras 3 from their described behaviour.

Video-level: LogisticModel, MoeModel (they also take frame-level input: masked mean over the
valid frames first). Frame-level only: FrameLevelLogisticModel, DbofModel, LstmModel.
"""

import keras

from yt8m_fusion.errors import UserError
from yt8m_fusion.models import common
from yt8m_fusion.models import layers as zoo_layers


def build_logistic(config, inputs, hp):
  """LogisticModel: Dense(num_classes) + sigmoid on the concatenated (normalized) features."""
  x = common.concat(common.video_features(config, inputs, hp), "concat_features")
  return common.logistic_head(x, config.num_classes, hp)


def build_moe(config, inputs, hp):
  """MoeModel: softmax gates over --moe_num_mixtures + 1 (a dummy), sigmoid experts."""
  x = common.concat(common.video_features(config, inputs, hp), "concat_features")
  return common.moe_head(x, config.num_classes, hp)


def build_frame_level_logistic(config, inputs, hp):
  """FrameLevelLogisticModel: the frames' mean (per-frame normalized) -> LogisticModel."""
  frames, num_frames = common.frame_features(config, inputs, hp)
  x = common.concat(frames, "concat_features")
  pooled = zoo_layers.MaskedPooling("mean", name="frame_mean")(x, num_frames)
  return common.logistic_head(pooled, config.num_classes, hp)


def build_dbof(config, inputs, hp):
  """DbofModel (deep bag of frames).

  Sample --iterations frames -> (BN) -> Dense(--dbof_cluster_size) -> BN or bias ->
  activation -> pool over the samples (--dbof_pooling_method) -> Dense(--dbof_hidden_size)
  -> BN or bias -> activation -> --video_level_classifier_model.
  """
  frames, num_frames = common.frame_features(config, inputs, hp)
  x = common.concat(frames, "concat_features")
  pooling = hp["dbof_pooling_method"]
  if pooling not in ("max", "average", "mean"):
    raise UserError(f"--dbof_pooling_method={pooling!r}: expected max or average")
  activation = common.check_activation(hp["dbof_activation"], "dbof_activation")
  batch_norm = hp["dbof_add_batch_norm"]

  x = zoo_layers.FrameSampler(hp["iterations"], random_frames=hp["sample_random_frames"],
                              name="sample_frames")(x, num_frames)
  if batch_norm:
    x = keras.layers.BatchNormalization(name="input_bn")(x)
  x = keras.layers.Dense(hp["dbof_cluster_size"], use_bias=not batch_norm,
                         kernel_initializer=_starter_init(), name="cluster")(x)
  if batch_norm:
    x = keras.layers.BatchNormalization(name="cluster_bn")(x)
  x = keras.layers.Activation(activation, name="cluster_act")(x)
  if pooling == "max":
    x = keras.layers.GlobalMaxPooling1D(name="cluster_pool")(x)
  else:
    x = keras.layers.GlobalAveragePooling1D(name="cluster_pool")(x)
  x = keras.layers.Dense(hp["dbof_hidden_size"], use_bias=not batch_norm,
                         kernel_initializer=_starter_init(), name="hidden1")(x)
  if batch_norm:
    x = keras.layers.BatchNormalization(name="hidden1_bn")(x)
  x = keras.layers.Activation(activation, name="hidden1_act")(x)
  return common.video_level_classifier(x, config.num_classes, hp)


def build_lstm(config, inputs, hp):
  """LstmModel: --lstm_layers stacked LSTMs of --lstm_cells; the last layer's output at the
  last valid frame (padding masked with num_frames) -> --video_level_classifier_model."""
  frames, num_frames = common.frame_features(config, inputs, hp)
  x = common.concat(frames, "concat_features")
  mask = zoo_layers.FrameValidMask(name="frame_mask")(x, num_frames)
  layers = hp["lstm_layers"]
  for index in range(layers):
    x = keras.layers.LSTM(hp["lstm_cells"], return_sequences=index < layers - 1,
                          unit_forget_bias=True, name=f"lstm_{index}")(x, mask=mask)
  return common.video_level_classifier(x, config.num_classes, hp)


def _starter_init():
  # The starter initialized the DBoF weights with a normal of stddev 1/sqrt(fan_in).
  return keras.initializers.VarianceScaling(1.0, mode="fan_in", distribution="untruncated_normal")
