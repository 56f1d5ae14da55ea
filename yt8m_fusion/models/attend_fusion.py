"""Attend-Fusion (Awan et al. 2024): per-modality FC + self-attention, fused late.

Each feature name is a modality. The paper gives the design (per-modality "attention
networks" of fully connected layers and softmax(QK^T/sqrt(d))V self-attention, attended
features fused late, 72M parameters) but not the sizes; the defaults are the sizes that
its parameter count implies (docs/ARCHITECTURE.md works them out):

Video-level (default): per modality Dense(--attend_hidden_size=8192, relu) x
--attend_fc_layers -> the vector viewed as 8192/--attend_token_size = 64 tokens of 128 ->
MultiHeadAttention(--attend_num_heads=4, --attend_key_dim=32) + residual + LayerNorm ->
flatten; the modalities concatenated (16384) -> Dense(num_classes) -> sigmoid.
With mean_rgb + mean_audio and 3862 classes: 72,865,046 parameters.

Frame-level (--frame_features): per modality a per-frame Dense(--attend_frame_hidden_size=256)
x --attend_fc_layers -> self-attention over the modality's frames (padded frames masked as
keys) + residual + LayerNorm -> masked pooling over the valid frames (--frame_pooling) ->
concatenated -> Dense(num_classes) -> sigmoid.

--noattend_attention is the ablation "Attend-Fusion without attention": it removes the
self-attention and nothing else, so the block becomes LayerNorm(x) (the LayerNorm of the
residual path, on the same tokens or frames). Models trained before
--attend_norm_without_attention existed dropped that LayerNorm too; their model_flags.json
lacks the flag and rebuilds them without it (`MODEL.values_before_flag_existed`).
"""

import dataclasses

import keras

from yt8m_fusion.errors import UserError
from yt8m_fusion.models import common
from yt8m_fusion.models import definition
from yt8m_fusion.models import layers as zoo_layers
from yt8m_fusion.models.definition import hparam


@dataclasses.dataclass(frozen=True)
class AttendFusionHParams(definition.HParams):
  """Attend-Fusion's sizes; the video-level defaults are the paper-size model."""

  attend_hidden_size: int = hparam(
      8192, "AttendFusion (video-level): units of each modality's fully connected layers "
      "(the paper-size model: 8192).", lower_bound=1)
  attend_fc_layers: int = hparam(
      1, "AttendFusion: fully connected layers per modality before the attention.",
      lower_bound=1)
  attend_token_size: int = hparam(
      128, "AttendFusion (video-level): the hidden vector is viewed as "
      "attend_hidden_size/attend_token_size tokens of this size for the self-attention "
      "(8192 = 64 tokens of 128).", lower_bound=1)
  attend_frame_hidden_size: int = hparam(
      256, "AttendFusion (frame-level): units of the per-frame fully connected layers (the "
      "attention runs over the frames at this width).", lower_bound=1)
  attend_num_heads: int = hparam(4, "AttendFusion: attention heads.", lower_bound=1)
  attend_key_dim: int = hparam(
      32, "AttendFusion: size of each head's query/key (and value).", lower_bound=1)
  attend_attention: bool = hparam(
      True, "AttendFusion: the self-attention block. --noattend_attention is the ablation "
      "'Attend-Fusion without attention': the same layers without the self-attention (the "
      "block becomes LayerNorm(x), see --attend_norm_without_attention).")
  attend_layer_norm: bool = hparam(
      True, "AttendFusion: layer normalization after the attention's residual.")
  attend_norm_without_attention: bool = hparam(
      True, "AttendFusion with --noattend_attention: keep the block's LayerNorm (the block "
      "becomes LayerNorm(x)), so that the ablation removes the self-attention only. false: "
      "drop it too, as models trained before this flag existed did.")
  attend_activation: str = hparam(
      "relu", "AttendFusion: activation of the fully connected layers.")
  attend_dropout: float = hparam(
      0.0, "AttendFusion: dropout rate after each fully connected layer and on the fused "
      "vector before the classifier.", lower_bound=0.0)
  attend_attention_dropout: float = hparam(
      0.0, "AttendFusion: dropout rate on the attention probabilities (0 keeps the fused "
      "attention kernel).", lower_bound=0.0)


def build_attend_fusion(config, inputs, hp):
  activation = common.check_activation(hp.attend_activation, "attend_activation")
  dropout = hp.attend_dropout
  if not 0 <= dropout < 1 or not 0 <= hp.attend_attention_dropout < 1:
    raise UserError("--attend_dropout and --attend_attention_dropout must be in [0, 1)")
  if config.frame_features:
    features, num_frames = common.frame_features(config, inputs, hp)
    width = hp.attend_frame_hidden_size
  else:
    features, num_frames = common.video_features(config, inputs, hp), None
    width = hp.attend_hidden_size
    if width % hp.attend_token_size:
      raise UserError(f"--attend_hidden_size={width} is not a multiple of "
                      f"--attend_token_size={hp.attend_token_size} (the hidden vector is "
                      "viewed as tokens of that size)")

  # The ablation keeps the block's LayerNorm: it removes the attention only.
  norm_only = (not hp.attend_attention and hp.attend_layer_norm
               and hp.attend_norm_without_attention)
  attended = []
  for name, x in zip(config.feature_names, features):
    prefix = common.safe_name(name)
    for index in range(hp.attend_fc_layers):
      x = common.dense_block(x, width, activation, dropout=dropout, name=f"{prefix}_fc_{index}")
    if config.frame_features:
      if hp.attend_attention:
        x = _attention_block(hp, name, prefix)(x, num_frames)
      elif norm_only:
        x = _block_norm(prefix)(x)
      x = zoo_layers.MaskedPooling(hp.frame_pooling, name=f"{prefix}_pool")(x, num_frames)
    elif hp.attend_attention or norm_only:
      tokens = width // hp.attend_token_size
      x = keras.layers.Reshape((tokens, hp.attend_token_size), name=f"{prefix}_tokens")(x)
      if hp.attend_attention:
        x = _attention_block(hp, name, prefix)(x)
      else:
        x = _block_norm(prefix)(x)
      x = keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    attended.append(x)

  x = common.concat(attended, "fusion")
  if dropout > 0:
    x = keras.layers.Dropout(dropout, name="fusion_dropout")(x)
  logits = zoo_layers.ClassifierDense(config.num_classes, name="classifier")(x)
  return common.probabilities(logits)


def _attention_block(hp, name, prefix):
  return zoo_layers.SelfAttentionBlock(
      num_heads=hp.attend_num_heads, key_dim=hp.attend_key_dim,
      dropout=hp.attend_attention_dropout, layer_norm=hp.attend_layer_norm,
      modality=name, name=f"{prefix}_attention")


def _block_norm(prefix):
  """The attention block's LayerNorm alone (same epsilon, over each token or frame)."""
  return keras.layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_layer_norm")


def attention_scores_model(model):
  """A keras.Model with `model`'s inputs -> {feature name: attention probabilities}.

  Scores are float32 [B, heads, tokens, tokens] (video-level: the hidden vector's tokens;
  frame-level: [B, heads, T, T] over the frames, padded keys get 0). Works on a built or a
  loaded (keras.models.load_model) Attend-Fusion model; the weights are shared.
  """
  blocks = [layer for layer in model.layers if isinstance(layer, zoo_layers.SelfAttentionBlock)]
  if not blocks:
    raise UserError(f"model '{model.name}' has no self-attention block (built with "
                    "--noattend_attention, or not an AttendFusion model)")
  outputs = {}
  for block in blocks:
    block_inputs = block.input
    args = list(block_inputs) if isinstance(block_inputs, (list, tuple)) else [block_inputs]
    key = block.modality or block.name
    outputs[key] = _AttentionScores(block, name=f"{common.safe_name(key)}_scores")(*args)
  return keras.Model(model.input, outputs, name=f"{model.name}_attention_scores")


class _AttentionScores(keras.layers.Layer):
  """The attention probabilities of a SelfAttentionBlock (shares its weights), as float32.

  A separate layer rather than a second call of the block: a Keras functional graph expects
  a layer's calls to have the same number of outputs.
  """

  def __init__(self, block, **kwargs):
    super().__init__(dtype=block.dtype_policy, **kwargs)
    self.block = block

  def call(self, x, num_frames=None):
    _, scores = self.block(x, num_frames, return_attention_scores=True)
    return keras.ops.cast(scores, "float32")


def _widths(config, hp):
  if config.frame_features:
    text = f"{hp.attend_frame_hidden_size} per frame"
  else:
    text = f"{hp.attend_hidden_size}"
    if hp.attend_attention:
      token = hp.attend_token_size
      text += f" ({hp.attend_hidden_size // max(token, 1)} tokens of {token})"
  if hp.attend_attention:
    return text + f", {hp.attend_num_heads} heads x {hp.attend_key_dim}"
  return text + ", no attention"


MODEL = definition.ModelDefinition(
    name="AttendFusion", build=build_attend_fusion, hparams=AttendFusionHParams,
    description="Attend-Fusion: per-modality FC + self-attention, late fusion (paper, 72.9M)",
    default_features=definition.AUDIO_VISUAL,
    # Chosen by sweeps on the real sample's validate split (docs/TRAINING.md): Adam at the
    # starter's 0.01 makes the paper-size network diverge; the network over-fits, and label
    # smoothing with a longer schedule helps it most.
    training={"base_learning_rate": 0.0001, "num_epochs": 8, "label_smoothing": 0.01},
    widths=_widths, family="Attend-Fusion",
    has_attention=lambda config, hp: hp.attend_attention,
    values_before_flag_existed={"attend_norm_without_attention": False},
    small_params={"attend_hidden_size": 16, "attend_token_size": 4,
                  "attend_frame_hidden_size": 8, "attend_num_heads": 2, "attend_key_dim": 4})
