"""The YouTube-8M starter code's models, rebuilt in Keras 3 from their described behaviour.

Video-level: LogisticModel, MoeModel (they also take frame-level input: masked mean over the
valid frames first). Frame-level only: FrameLevelLogisticModel, DbofModel, LstmModel.

Their hyper-parameters keep the starter's flag names and defaults, declared once per
classifier head: `LogisticHParams` (l2_penalty) < `MoeHParams` (moe_num_mixtures) <
`VideoLevelClassifierHParams` (video_level_classifier_model, the DBoF and LSTM heads).
"""

import dataclasses

import keras

from yt8m_fusion.errors import UserError
from yt8m_fusion.models import common
from yt8m_fusion.models import definition
from yt8m_fusion.models import layers as zoo_layers
from yt8m_fusion.models.definition import hparam

DBOF_POOLING_METHODS = ("max", "average", "mean")


@dataclasses.dataclass(frozen=True)
class LogisticHParams(definition.HParams):
  l2_penalty: float = hparam(
      1e-8, "L2 weight penalty of the LogisticModel / MoeModel classifiers, starter semantics "
      "(penalty * sum(w^2) / 2); 0 turns it off.", lower_bound=0.0)


@dataclasses.dataclass(frozen=True)
class MoeHParams(LogisticHParams):
  moe_num_mixtures: int = hparam(
      2, "MoeModel: number of mixtures (excluding the dummy 'expert' that always predicts the "
      "non-existence of an entity).", lower_bound=1)


@dataclasses.dataclass(frozen=True)
class VideoLevelClassifierHParams(MoeHParams):
  # A string, not an enum, as in the starter: a wrong name is a UserError at build time.
  video_level_classifier_model: str = hparam(
      "MoeModel", "DbofModel / LstmModel: classifier on the video representation: MoeModel or "
      "LogisticModel.")


@dataclasses.dataclass(frozen=True)
class DbofHParams(VideoLevelClassifierHParams):
  iterations: int = hparam(30, "DbofModel: number of frames sampled per video.", lower_bound=1)
  dbof_add_batch_norm: bool = hparam(
      True, "DbofModel: batch normalization of the input, cluster and hidden layers (else "
      "biases).")
  sample_random_frames: bool = hparam(
      True, "DbofModel: in training sample --iterations random frames; if false, a random "
      "contiguous sequence of --iterations frames. Inference is deterministic: evenly spaced "
      "frames (or the centred sequence).")
  dbof_cluster_size: int = hparam(
      8192, "DbofModel: number of units in the DBoF cluster layer.", lower_bound=1)
  dbof_hidden_size: int = hparam(
      1024, "DbofModel: number of units in the DBoF hidden layer.", lower_bound=1)
  dbof_pooling_method: str = hparam(
      "max", "DbofModel: how the sampled frames' cluster activations are pooled: max or "
      "average.")
  dbof_activation: str = hparam(
      "sigmoid", "DbofModel: activation of the cluster and hidden layers (a Keras activation "
      "name: sigmoid, relu, relu6, tanh, ...).")


@dataclasses.dataclass(frozen=True)
class LstmHParams(VideoLevelClassifierHParams):
  lstm_cells: int = hparam(1024, "LstmModel: number of LSTM cells per layer.", lower_bound=1)
  lstm_layers: int = hparam(2, "LstmModel: number of stacked LSTM layers.", lower_bound=1)


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
  pooling = hp.dbof_pooling_method
  if pooling not in DBOF_POOLING_METHODS:
    raise UserError(f"--dbof_pooling_method={pooling!r}: expected max or average")
  activation = common.check_activation(hp.dbof_activation, "dbof_activation")
  batch_norm = hp.dbof_add_batch_norm

  x = zoo_layers.FrameSampler(hp.iterations, random_frames=hp.sample_random_frames,
                              name="sample_frames")(x, num_frames)
  if batch_norm:
    x = keras.layers.BatchNormalization(name="input_bn")(x)
  x = keras.layers.Dense(hp.dbof_cluster_size, use_bias=not batch_norm,
                         kernel_initializer=_starter_init(), name="cluster")(x)
  if batch_norm:
    x = keras.layers.BatchNormalization(name="cluster_bn")(x)
  x = keras.layers.Activation(activation, name="cluster_act")(x)
  if pooling == "max":
    x = keras.layers.GlobalMaxPooling1D(name="cluster_pool")(x)
  else:
    x = keras.layers.GlobalAveragePooling1D(name="cluster_pool")(x)
  x = keras.layers.Dense(hp.dbof_hidden_size, use_bias=not batch_norm,
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
  layers = hp.lstm_layers
  for index in range(layers):
    x = keras.layers.LSTM(hp.lstm_cells, return_sequences=index < layers - 1,
                          unit_forget_bias=True, name=f"lstm_{index}")(x, mask=mask)
  return common.video_level_classifier(x, config.num_classes, hp)


def _starter_init():
  # The starter initialized the DBoF weights with a normal of stddev 1/sqrt(fan_in).
  return keras.initializers.VarianceScaling(1.0, mode="fan_in", distribution="untruncated_normal")


MODELS = (
    definition.ModelDefinition(
        name="LogisticModel", build=build_logistic, hparams=LogisticHParams,
        description="starter: logistic regression on the concatenated features"),
    definition.ModelDefinition(
        name="MoeModel", build=build_moe, hparams=MoeHParams,
        description="starter: mixture of experts (--moe_num_mixtures)",
        small_params={"moe_num_mixtures": 2},
        widths=lambda config, hp: f"{hp.moe_num_mixtures} mixtures"),
    definition.ModelDefinition(
        name="FrameLevelLogisticModel", build=build_frame_level_logistic,
        hparams=LogisticHParams, frame_only=True,
        description="starter: logistic regression on the frames' mean"),
    definition.ModelDefinition(
        name="DbofModel", build=build_dbof, hparams=DbofHParams, frame_only=True,
        description="starter: deep bag of frames + video-level classifier",
        widths=lambda config, hp: f"cluster {hp.dbof_cluster_size}, hidden {hp.dbof_hidden_size}",
        small_params={"dbof_cluster_size": 16, "dbof_hidden_size": 8, "iterations": 5}),
    definition.ModelDefinition(
        name="LstmModel", build=build_lstm, hparams=LstmHParams, frame_only=True,
        description="starter: stacked LSTM + video-level classifier",
        widths=lambda config, hp: f"{hp.lstm_cells} x {hp.lstm_layers}",
        small_params={"lstm_cells": 8, "lstm_layers": 2}),
)
