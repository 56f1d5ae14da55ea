"""The one registry of models: `--model=NAME` -> builder."""

import dataclasses
import re
from typing import Callable

import keras
import tensorflow as tf

from yt8m_fusion.errors import UserError
from yt8m_fusion.models import attend_fusion
from yt8m_fusion.models import baselines
from yt8m_fusion.models import common
from yt8m_fusion.models import hparams as hparams_lib
from yt8m_fusion.models import starter
from yt8m_fusion.models.config import ModelConfig

VISUAL = ("mean_rgb",)
AUDIO_VISUAL = ("mean_rgb", "mean_audio")
FRAME_NAMES = {"mean_rgb": "rgb", "mean_audio": "audio"}
# Defaults of the paper-size networks, chosen by a sweep on the real YouTube-8M sample's
# validate split (docs/TRAINING.md has the table). Adam at the starter's 0.01 makes these
# networks diverge. The FC baselines: FC Late Fusion's sweep; the starter's joint L2 norm of
# the input kept it from learning (the other FC baselines share its layers).
ATTEND_FUSION_TRAINING = {"base_learning_rate": 0.0001}
FC_TRAINING = {"base_learning_rate": 0.0001, "batch_size": 256, "num_epochs": 4}
FC_PARAMS = {"input_l2_norm": "none"}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  name: str
  builder: Callable  # (config, inputs, hp) -> output tensor
  description: str
  frame_only: bool = False
  default_features: tuple = VISUAL  # video-level names; frame-level: rgb / audio
  # TrainOptions fields that differ from the starter's defaults for this model.
  training: dict = dataclasses.field(default_factory=dict)
  # Hyper-parameters whose defaults differ for this model (saved in model_flags.json like
  # every hyper-parameter, so a trained model is rebuilt as it was trained).
  params: dict = dataclasses.field(default_factory=dict)


_SPECS = (
    ModelSpec("AttendFusion", attend_fusion.build_attend_fusion,
              "Attend-Fusion: per-modality FC + self-attention, late fusion (paper, 72.9M)",
              default_features=AUDIO_VISUAL,
              training=ATTEND_FUSION_TRAINING),
    ModelSpec("FCModel", baselines.build_fc,
              "FC baseline on the given features concatenated (mean_audio: audio only)",
              training=FC_TRAINING, params=FC_PARAMS),
    ModelSpec("FCRNModel", baselines.build_fcrn, "FC residual network baseline",
              default_features=AUDIO_VISUAL,
              training=FC_TRAINING, params=FC_PARAMS),
    ModelSpec("FCRGNModel", baselines.build_fcrgn,
              "FC residual network with context gating baseline", default_features=AUDIO_VISUAL,
              training=FC_TRAINING, params=FC_PARAMS),
    ModelSpec("FCEarlyFusion", baselines.build_fc,
              "FC early fusion: features concatenated -> FC stack", default_features=AUDIO_VISUAL,
              training=FC_TRAINING, params=FC_PARAMS),
    ModelSpec("FCMidFusion", baselines.build_mid_fusion,
              "FC mid fusion: per-modality FC -> concatenated -> FC",
              default_features=AUDIO_VISUAL,
              training=FC_TRAINING, params=FC_PARAMS),
    ModelSpec("FCLateFusion", baselines.build_late_fusion,
              "FC late fusion: per-modality FC stack + classifier, logits summed "
              "(--fc_late_fusion; paper baseline, 341.2M)", default_features=AUDIO_VISUAL,
              training=FC_TRAINING, params=FC_PARAMS),
    ModelSpec("LogisticModel", starter.build_logistic,
              "starter: logistic regression on the concatenated features"),
    ModelSpec("MoeModel", starter.build_moe, "starter: mixture of experts (--moe_num_mixtures)"),
    ModelSpec("FrameLevelLogisticModel", starter.build_frame_level_logistic,
              "starter: logistic regression on the frames' mean", frame_only=True),
    ModelSpec("DbofModel", starter.build_dbof,
              "starter: deep bag of frames + video-level classifier", frame_only=True),
    ModelSpec("LstmModel", starter.build_lstm,
              "starter: stacked LSTM + video-level classifier", frame_only=True),
)
REGISTRY = {spec.name: spec for spec in _SPECS}


def list_models():
  """The registered model names, in registry order."""
  return list(REGISTRY)


def get_spec(name):
  try:
    return REGISTRY[name]
  except KeyError:
    raise UserError(f"--model={name!r} is not a known model; choose one of: "
                    + ", ".join(REGISTRY)) from None


def default_training(name):
  """The TrainOptions fields whose defaults differ for this model (a new dict)."""
  return dict(get_spec(name).training)


def default_params(name):
  """The hyper-parameters whose defaults differ for this model (a new dict)."""
  return dict(get_spec(name).params)


def is_frame_only(name):
  return get_spec(name).frame_only


def default_feature_names(model_name, frame_features):
  """The feature names used when --feature_names is empty."""
  names = get_spec(model_name).default_features
  if frame_features:
    return [FRAME_NAMES.get(name, name) for name in names]
  return list(names)


def build_model(config: ModelConfig) -> keras.Model:
  """The Keras functional model for `config` (see docs/DESIGN.md, 'Models')."""
  spec = get_spec(config.model)
  hp = hparams_lib.resolve(config.params)
  if spec.frame_only:
    common.require_frames(config)
  if not config.feature_names:
    raise UserError("--feature_names: at least one feature is needed")
  if any(size <= 0 for size in config.feature_sizes):
    raise UserError(f"--feature_sizes={','.join(map(str, config.feature_sizes))}: sizes must "
                    "be positive")
  if len(set(config.feature_names)) != len(config.feature_names):
    raise UserError(f"--feature_names={','.join(config.feature_names)} names a feature twice")
  if int(config.num_classes) < 1:
    raise UserError(f"--num_classes={config.num_classes}: must be positive")
  inputs = common.build_inputs(config)
  try:
    outputs = spec.builder(config, inputs, hp)
  except tf.errors.ResourceExhaustedError as error:
    detail = re.sub(r"\{\{function_node [^}]*\}\}", "", str(getattr(error, "message", error)))
    detail = " ".join(detail.split())[:160]
    raise UserError(f"out of memory building {config.model} with --num_classes="
                    f"{config.num_classes} ({detail}); expected a model that fits this machine: "
                    "lower --num_classes or the model's size flags") from None
  return keras.Model(inputs, outputs, name=config.model)
