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
"""

import keras

from yt8m_fusion.models import common
from yt8m_fusion.models import layers as zoo_layers


def _settings(hp):
  return dict(normalization=hp["fc_normalization"], dropout=hp["fc_dropout"])


def _fc_stack(x, hp, num_layers, prefix):
  activation = common.check_activation(hp["fc_activation"], "fc_activation")
  for index in range(num_layers):
    x = common.dense_block(x, hp["fc_hidden_size"], activation, name=f"{prefix}_{index}",
                           **_settings(hp))
  return x


def _classifier(x, num_classes, name="classifier", output_name="predictions"):
  logits = zoo_layers.ClassifierDense(num_classes, name=name)(x)
  return common.probabilities(logits, name=output_name)


def build_fc(config, inputs, hp):
  x = common.concat(common.video_features(config, inputs, hp), "concat_features")
  return _classifier(_fc_stack(x, hp, hp["fc_num_layers"], "fc"), config.num_classes)


def _residual(config, inputs, hp, gated):
  activation = common.check_activation(hp["fc_activation"], "fc_activation")
  x = common.concat(common.video_features(config, inputs, hp), "concat_features")
  h = common.dense_block(x, hp["fc_hidden_size"], activation, name="fc_0", **_settings(hp))
  for index in range(1, hp["fc_num_layers"]):
    branch = common.dense_block(h, hp["fc_hidden_size"], activation, name=f"fc_{index}",
                                **_settings(hp))
    if gated:
      gate = keras.layers.Dense(hp["fc_hidden_size"], activation="sigmoid",
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
  branches = [_fc_stack(x, hp, hp["fc_mid_modality_layers"], f"{common.safe_name(name)}_fc")
              for name, x in zip(config.feature_names, features)]
  x = common.concat(branches, "fusion")
  x = _fc_stack(x, hp, hp["fc_mid_fused_layers"], "fused_fc")
  return _classifier(x, config.num_classes)


def build_late_fusion(config, inputs, hp):
  features = common.video_features(config, inputs, hp)
  logits = []
  for name, x in zip(config.feature_names, features):
    prefix = common.safe_name(name)
    x = _fc_stack(x, hp, hp["fc_num_layers"], f"{prefix}_fc")
    logits.append(
        zoo_layers.ClassifierDense(config.num_classes, name=f"{prefix}_classifier")(x))
  if len(logits) == 1:
    return common.probabilities(logits[0])
  if hp["fc_late_fusion"] == "mean_probabilities":
    probabilities = [common.probabilities(x, name=f"{common.safe_name(name)}_predictions")
                     for name, x in zip(config.feature_names, logits)]
    return keras.layers.Average(dtype="float32", name="predictions")(probabilities)
  # Summed logits: each modality adds its evidence (log-odds), so one confident modality is
  # enough; averaging probabilities caps a class seen in one modality at about 0.5.
  return common.probabilities(keras.layers.Add(name="fused_logits")(logits))
