"""The paper's fully connected baselines (sizes: --fc_hidden_size, --fc_num_layers, ...).

The paper names them without their layer sizes; docs/ARCHITECTURE.md derives FC Late
Fusion's from its parameter count (3 x Dense 8192 per modality, 341,204,524 parameters
with mean_rgb + mean_audio and 3862 classes). The other baselines use the same hidden width
and depth so they are comparable. Every one takes video-level or frame-level input (pooled first).

- FCModel: concatenated features -> FC stack -> sigmoid (--feature_names=mean_audio is the
  audio-only baseline, mean_rgb the visual-only one).
- FCEarlyFusion: the same early concatenation, on both modalities by default.
- FCRNModel: Dense projection, then residual blocks h + f(h).
- FCRGNModel: residual blocks whose branch is context-gated, f(h) * sigmoid(W f(h) + b).
- FCMidFusion: per-modality FC layers, concatenation, FC layers.
- FCLateFusion: per-modality FC stack and classifier, combined late: the modality logits
  summed before one sigmoid (--fc_late_fusion=sum_logits, default) or the modality
  probabilities averaged (mean_probabilities).

FCModel, FCRNModel, FCRGNModel and FCEarlyFusion share `FCStackHParams`; FCMidFusion and
FCLateFusion add their own fields to the family's `FCHParams`.
"""

import dataclasses

import keras

from yt8m_fusion.models import common
from yt8m_fusion.models import definition
from yt8m_fusion.models import layers as zoo_layers
from yt8m_fusion.models.definition import hparam

FC_NORMALIZATIONS = ("none", "batch", "layer")
LATE_FUSION_COMBINATIONS = ("sum_logits", "mean_probabilities")


@dataclasses.dataclass(frozen=True)
class FCHParams(definition.HParams):
  """What every FC baseline has: the hidden layers' width and treatment."""

  # The starter's joint L2 norm of the input kept FC Late Fusion from learning in the sweep
  # (docs/TRAINING.md); the other FC baselines share its layers.
  input_l2_norm: str = hparam("none", definition.INPUT_L2_NORM_HELP,
                              choices=definition.INPUT_L2_NORM_MODES)
  fc_hidden_size: int = hparam(
      8192, "FC baselines (FCModel, FCRNModel, FCRGNModel, FCEarlyFusion, FCMidFusion, "
      "FCLateFusion): units of every hidden layer.", lower_bound=1)
  fc_activation: str = hparam("relu", "FC baselines: hidden-layer activation.")
  fc_dropout: float = hparam(0.0, "FC baselines: dropout rate after each hidden layer.",
                             lower_bound=0.0)
  fc_normalization: str = hparam(
      "none", "FC baselines: normalization of each hidden layer before its activation.",
      choices=FC_NORMALIZATIONS)


@dataclasses.dataclass(frozen=True)
class FCStackHParams(FCHParams):
  fc_num_layers: int = hparam(
      3, "FC baselines: hidden layers (per modality for FCLateFusion; FCMidFusion uses "
      "--fc_mid_modality_layers and --fc_mid_fused_layers instead).", lower_bound=1)


@dataclasses.dataclass(frozen=True)
class FCMidFusionHParams(FCHParams):
  fc_mid_modality_layers: int = hparam(
      2, "FCMidFusion: hidden layers per modality before the concatenation.", lower_bound=1)
  fc_mid_fused_layers: int = hparam(
      1, "FCMidFusion: hidden layers after the concatenation.", lower_bound=0)


@dataclasses.dataclass(frozen=True)
class FCLateFusionHParams(FCStackHParams):
  fc_late_fusion: str = hparam(
      "sum_logits", "FCLateFusion: how the modality classifiers are combined. sum_logits: one "
      "sigmoid of the summed logits (a class seen in one modality only can still score near "
      "1); mean_probabilities: the average of the modalities' sigmoid outputs (a class seen in "
      "one modality only scores at most about 0.5).", choices=LATE_FUSION_COMBINATIONS)


def _settings(hp):
  return dict(normalization=hp.fc_normalization, dropout=hp.fc_dropout)


def _fc_stack(x, hp, num_layers, prefix):
  activation = common.check_activation(hp.fc_activation, "fc_activation")
  for index in range(num_layers):
    x = common.dense_block(x, hp.fc_hidden_size, activation, name=f"{prefix}_{index}",
                           **_settings(hp))
  return x


def _classifier(x, num_classes, name="classifier", output_name="predictions"):
  logits = zoo_layers.ClassifierDense(num_classes, name=name)(x)
  return common.probabilities(logits, name=output_name)


def build_fc(config, inputs, hp):
  x = common.concat(common.video_features(config, inputs, hp), "concat_features")
  return _classifier(_fc_stack(x, hp, hp.fc_num_layers, "fc"), config.num_classes)


def _residual(config, inputs, hp, gated):
  activation = common.check_activation(hp.fc_activation, "fc_activation")
  x = common.concat(common.video_features(config, inputs, hp), "concat_features")
  h = common.dense_block(x, hp.fc_hidden_size, activation, name="fc_0", **_settings(hp))
  for index in range(1, hp.fc_num_layers):
    branch = common.dense_block(h, hp.fc_hidden_size, activation, name=f"fc_{index}",
                                **_settings(hp))
    if gated:
      gate = keras.layers.Dense(hp.fc_hidden_size, activation="sigmoid",
                                name=f"gate_{index}")(branch)
      branch = keras.layers.Multiply(name=f"gated_{index}")([branch, gate])
    h = keras.layers.Add(name=f"residual_{index}")([h, branch])
  return _classifier(h, config.num_classes)


def build_fcrn(config, inputs, hp):
  return _residual(config, inputs, hp, gated=False)


def build_fcrgn(config, inputs, hp):
  return _residual(config, inputs, hp, gated=True)


def build_mid_fusion(config, inputs, hp):
  features = common.video_features(config, inputs, hp)
  branches = [_fc_stack(x, hp, hp.fc_mid_modality_layers, f"{common.safe_name(name)}_fc")
              for name, x in zip(config.feature_names, features)]
  x = common.concat(branches, "fusion")
  x = _fc_stack(x, hp, hp.fc_mid_fused_layers, "fused_fc")
  return _classifier(x, config.num_classes)


def build_late_fusion(config, inputs, hp):
  features = common.video_features(config, inputs, hp)
  logits = []
  for name, x in zip(config.feature_names, features):
    prefix = common.safe_name(name)
    x = _fc_stack(x, hp, hp.fc_num_layers, f"{prefix}_fc")
    logits.append(
        zoo_layers.ClassifierDense(config.num_classes, name=f"{prefix}_classifier")(x))
  if len(logits) == 1:
    return common.probabilities(logits[0])
  if hp.fc_late_fusion == "mean_probabilities":
    probabilities = [common.probabilities(x, name=f"{common.safe_name(name)}_predictions")
                     for name, x in zip(config.feature_names, logits)]
    return keras.layers.Average(dtype="float32", name="predictions")(probabilities)
  # Summed logits: each modality adds its evidence (log-odds), so one confident modality is
  # enough; averaging probabilities caps a class seen in one modality at about 0.5.
  return common.probabilities(keras.layers.Add(name="fused_logits")(logits))


def _stack_widths(config, hp):
  return f"{hp.fc_hidden_size} x {hp.fc_num_layers}"


# Chosen by FC Late Fusion's sweep on the real sample's validate split (docs/TRAINING.md).
FC_TRAINING = {"base_learning_rate": 0.0001, "batch_size": 256, "num_epochs": 4}
FC_SMALL = {"fc_hidden_size": 16, "fc_num_layers": 2, "fc_mid_modality_layers": 1,
            "fc_mid_fused_layers": 1}


def _fc_model(name, build, hparams, description, **kwargs):
  kwargs.setdefault("widths", _stack_widths)
  kwargs.setdefault("small_params", {field: size for field, size in FC_SMALL.items()
                                     if field in hparams.names()})
  return definition.ModelDefinition(name=name, build=build, hparams=hparams,
                                    description=description, training=FC_TRAINING, **kwargs)


MODELS = (
    _fc_model("FCModel", build_fc, FCStackHParams,
              "FC baseline on the given features concatenated (mean_audio: audio only)"),
    _fc_model("FCRNModel", build_fcrn, FCStackHParams, "FC residual network baseline",
              default_features=definition.AUDIO_VISUAL),
    _fc_model("FCRGNModel", build_fcrgn, FCStackHParams,
              "FC residual network with context gating baseline",
              default_features=definition.AUDIO_VISUAL),
    _fc_model("FCEarlyFusion", build_fc, FCStackHParams,
              "FC early fusion: features concatenated -> FC stack",
              default_features=definition.AUDIO_VISUAL),
    _fc_model("FCMidFusion", build_mid_fusion, FCMidFusionHParams,
              "FC mid fusion: per-modality FC -> concatenated -> FC",
              default_features=definition.AUDIO_VISUAL,
              widths=lambda config, hp: (f"{hp.fc_hidden_size} x ({hp.fc_mid_modality_layers} "
                                         f"per modality + {hp.fc_mid_fused_layers} fused)")),
    _fc_model("FCLateFusion", build_late_fusion, FCLateFusionHParams,
              "FC late fusion: per-modality FC stack + classifier, logits summed "
              "(--fc_late_fusion; paper baseline, 341.2M)",
              default_features=definition.AUDIO_VISUAL,
              widths=lambda config, hp: _stack_widths(config, hp) + " per modality",
              values_before_flag_existed={"fc_late_fusion": "mean_probabilities"}),
)
