"""NeXtVLAD (Lin, Xiao, Fan 2018, arXiv 1811.05014): grouped NetVLAD over the frames.

NetVLAD sums, over the frames, each frame's residuals to K learned cluster centres weighted
by a softmax assignment, so its output (K x N) and the FC after it grow with the feature
size N. NeXtVLAD first expands each frame x (N) to x' = W_e x + b (lambda N), splits x' into
G groups of lambda N / G, and aggregates the groups instead of the frame:

    y[k, j] = sum_frames sum_groups  sigmoid(w_g . x' + b_g)            (group attention)
                                      * softmax_k(w_gk . x' + b_gk)     (group g -> cluster k)
                                      * (x'_g[j] - c[k, j])

y is K x lambda N / G, G / lambda times smaller than NetVLAD's K x N. Each row of y is
L2-normalized (NetVLAD's intra-normalization) and the rows are flattened.

The video model of the paper: the rgb and the audio frames each through their own NeXtVLAD,
concatenated -> dropout -> FC(hidden) + BatchNorm -> SE context gating (FC(hidden / r) + BN
+ ReLU -> FC(hidden) + BN + sigmoid, times its input) -> the video-level classifier
(LogisticModel by default). Padded frames (index >= num_frames) get a zero weight, so they
change nothing. docs/MODELS.md ("NeXtVLAD") gives the configuration, the parameter formula
and count, the FLOPs, and the choices the paper leaves open.
"""

import dataclasses

import keras
from keras import ops

from yt8m_fusion.errors import UserError
from yt8m_fusion.models import common
from yt8m_fusion.models import definition
from yt8m_fusion.models import layers as zoo_layers
from yt8m_fusion.models import starter

_PACKAGE = "yt8m_fusion"


@dataclasses.dataclass(frozen=True)
class NeXtVLADHParams(starter.VideoLevelClassifierHParams):
  """The paper's single-model configuration by default (docs/MODELS.md, "NeXtVLAD")."""

  nextvlad_cluster_size: int = definition.hparam(
      128, "NeXtVLAD: cluster centres K of each modality's NeXtVLAD.", lower_bound=1)
  nextvlad_expansion: int = definition.hparam(
      2, "NeXtVLAD: expansion factor lambda: each frame is projected to lambda x its size "
      "before it is split into groups.", lower_bound=1)
  nextvlad_groups: int = definition.hparam(
      8, "NeXtVLAD: groups G each expanded frame is split into (must divide lambda x the "
      "feature size).", lower_bound=1)
  nextvlad_hidden_size: int = definition.hparam(
      2048, "NeXtVLAD: units H of the FC layer after the aggregation.", lower_bound=1)
  nextvlad_dropout: float = definition.hparam(
      0.5, "NeXtVLAD: dropout rate on the concatenated NeXtVLAD outputs, before the FC "
      "layer.", lower_bound=0.0)
  nextvlad_gating_reduction: int = definition.hparam(
      8, "NeXtVLAD: reduction r of the SE context gating (its bottleneck has H / r units).",
      lower_bound=1)
  # The classifier head (common.video_level_classifier): the starter's fields, with the
  # paper's logistic classifier as this model's default.
  video_level_classifier_model: str = definition.hparam(
      "LogisticModel", "DbofModel / LstmModel / NeXtVLAD: classifier on the video "
      "representation: MoeModel or LogisticModel.")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NeXtVLAD(keras.layers.Layer):
  """frames [B, T, N] + num_frames [B] -> [B, K * lambda N / G] (see the module docstring).

  Holds the expansion (N x lambda N), the group attention (lambda N x G), the cluster
  assignment (lambda N x G K), each with a bias, and the centres (K x lambda N / G).
  Frames at index >= num_frames get a zero weight. The sums and the normalization run in
  float32 (also under mixed precision).
  """

  def __init__(self, cluster_size, expansion, groups, epsilon=zoo_layers.L2_EPSILON,
               **kwargs):
    super().__init__(**kwargs)
    self.cluster_size = int(cluster_size)
    self.expansion = int(expansion)
    self.groups = int(groups)
    self.epsilon = float(epsilon)

  def build(self, frames_shape, num_frames_shape=None):
    feature_size = int(frames_shape[-1])
    expanded = self.expansion * feature_size
    if expanded % self.groups:
      raise ValueError(f"NeXtVLAD: {self.groups} groups do not divide the expanded size "
                       f"{expanded} ({self.expansion} x {feature_size})")
    self.group_size = expanded // self.groups
    glorot = keras.initializers.GlorotUniform
    self.expansion_kernel = self.add_weight(
        name="expansion_kernel", shape=(feature_size, expanded), initializer=glorot())
    self.expansion_bias = self.add_weight(
        name="expansion_bias", shape=(expanded,), initializer="zeros")
    self.attention_kernel = self.add_weight(
        name="attention_kernel", shape=(expanded, self.groups), initializer=glorot())
    self.attention_bias = self.add_weight(
        name="attention_bias", shape=(self.groups,), initializer="zeros")
    self.assignment_kernel = self.add_weight(
        name="assignment_kernel", shape=(expanded, self.groups * self.cluster_size),
        initializer=glorot())
    self.assignment_bias = self.add_weight(
        name="assignment_bias", shape=(self.groups * self.cluster_size,),
        initializer="zeros")
    self.centers = self.add_weight(
        name="centers", shape=(self.cluster_size, self.group_size), initializer=glorot())
    self.built = True

  def call(self, frames, num_frames):
    dtype = self.compute_dtype
    steps = ops.shape(frames)[1]
    valid = ops.expand_dims(zoo_layers.frame_mask(num_frames, steps), -1)  # [B, T, 1]
    expanded = ops.matmul(ops.cast(frames, dtype), ops.cast(self.expansion_kernel, dtype))
    expanded = expanded + ops.cast(self.expansion_bias, dtype)  # [B, T, lambda N]
    # Padded frames are zeroed, not only weighted 0: 0 x NaN would still be NaN.
    expanded = ops.where(valid, expanded, ops.zeros_like(expanded))

    attention = ops.sigmoid(ops.cast(
        ops.matmul(expanded, ops.cast(self.attention_kernel, dtype))
        + ops.cast(self.attention_bias, dtype), "float32"))  # [B, T, G]
    attention = ops.where(valid, attention, ops.zeros_like(attention))
    logits = (ops.matmul(expanded, ops.cast(self.assignment_kernel, dtype))
              + ops.cast(self.assignment_bias, dtype))
    assignment = ops.softmax(ops.reshape(ops.cast(logits, "float32"),
                                         (-1, steps, self.groups, self.cluster_size)), axis=-1)
    weights = assignment * ops.expand_dims(attention, -1)  # [B, T, G, K]

    # Every (frame, group) pair is one descriptor of group_size values.
    weights = ops.reshape(weights, (-1, steps * self.groups, self.cluster_size))
    descriptors = ops.reshape(ops.cast(expanded, "float32"),
                              (-1, steps * self.groups, self.group_size))
    weighted_sum = ops.matmul(ops.transpose(weights, (0, 2, 1)), descriptors)  # [B, K, D]
    mass = ops.sum(weights, axis=1)  # [B, K]: the weight each centre received
    vlad = weighted_sum - ops.expand_dims(mass, -1) * ops.cast(self.centers, "float32")

    squares = ops.sum(ops.square(vlad), axis=-1, keepdims=True)
    vlad = vlad * ops.rsqrt(ops.maximum(squares, self.epsilon))  # intra-normalization
    vlad = ops.reshape(vlad, (-1, self.cluster_size * self.group_size))
    return ops.cast(vlad, dtype)

  def compute_output_shape(self, frames_shape, num_frames_shape=None):
    expanded = self.expansion * int(frames_shape[-1])
    return (frames_shape[0], self.cluster_size * (expanded // self.groups))

  def forward_flops(self, input_shape, max_frames):
    """Per-example forward FLOPs of the matrix products (2 x multiply-adds).

    `input_shape`: the frames' shape without the batch axis ([T, N]; T is taken as
    max_frames, padding included). The expansion, the group attention, the cluster
    assignment and the weighted sum of the grouped frames; the centre term, the softmax and
    the normalization are element-wise and left out, as models/flops.py does.
    """
    if input_shape and isinstance(input_shape[0], (list, tuple)):
      input_shape = input_shape[0]  # [frames shape, num_frames shape]
    feature_size = int(input_shape[-1])
    expanded = self.expansion * feature_size
    per_frame = (feature_size * expanded  # expansion
                 + expanded * self.groups  # group attention
                 + expanded * self.groups * self.cluster_size  # cluster assignment
                 + self.groups * self.cluster_size * (expanded // self.groups))  # weighted sum
    return 2 * int(max_frames) * per_frame

  def get_config(self):
    config = super().get_config()
    config.update(cluster_size=self.cluster_size, expansion=self.expansion, groups=self.groups,
                  epsilon=self.epsilon)
    return config


def parameter_count(feature_sizes, num_classes, hp):
  """The model's parameter count from its sizes (docs/MODELS.md, "NeXtVLAD").

  The paper's formula for one NeXtVLAD and its share of the FC layer, without biases, is
  lambda N (N + G + K (G + (H + 1) / G)); here plus the biases, the BatchNorms (4 values per
  unit, their moving statistics included, as Keras counts them), the SE context gating and
  the LogisticModel classifier.
  """
  lam, groups, clusters = hp.nextvlad_expansion, hp.nextvlad_groups, hp.nextvlad_cluster_size
  hidden, bottleneck = hp.nextvlad_hidden_size, _bottleneck(hp)
  total = 0
  for size in feature_sizes:
    expanded = lam * size
    # = lambda N (N + G + K (G + (H + 1) / G)), in integers.
    total += (expanded * (size + groups + clusters * groups)
              + clusters * (expanded // groups) * (hidden + 1))
    total += expanded + groups + groups * clusters  # the biases
  total += 4 * hidden  # the FC's BatchNorm
  total += 2 * hidden * bottleneck + 4 * bottleneck + 4 * hidden  # SE context gating
  total += hidden * num_classes + num_classes  # LogisticModel
  return total


def build(config, inputs, hp):
  """The NeXtVLAD video model (module docstring): probabilities [B, num_classes]."""
  if not 0 <= hp.nextvlad_dropout < 1:
    raise UserError(f"--nextvlad_dropout={hp.nextvlad_dropout}: expected a rate in [0, 1)")
  for name, size in zip(config.feature_names, config.feature_sizes):
    if (hp.nextvlad_expansion * size) % hp.nextvlad_groups:
      raise UserError(
          f"--nextvlad_groups={hp.nextvlad_groups} does not divide --nextvlad_expansion x "
          f"the size of feature '{name}' ({hp.nextvlad_expansion} x {size}); expected a "
          "divisor of it")
  frames, num_frames = common.frame_features(config, inputs, hp)
  aggregated = [
      NeXtVLAD(hp.nextvlad_cluster_size, hp.nextvlad_expansion, hp.nextvlad_groups,
               name=f"{common.safe_name(name)}_nextvlad")(x, num_frames)
      for name, x in zip(config.feature_names, frames)]
  x = common.concat(aggregated, "concat_nextvlad")
  if hp.nextvlad_dropout > 0:
    x = keras.layers.Dropout(hp.nextvlad_dropout, name="nextvlad_dropout")(x)
  x = keras.layers.Dense(hp.nextvlad_hidden_size, use_bias=False, name="hidden")(x)
  x = keras.layers.BatchNormalization(name="hidden_bn")(x)
  x = se_context_gating(x, _bottleneck(hp), name="gating")
  return common.video_level_classifier(x, config.num_classes, hp)


def se_context_gating(x, bottleneck, name):
  """x * sigmoid(BN(FC(ReLU(BN(FC(x)))))): context gating through a bottleneck (SE style)."""
  width = x.shape[-1]
  gates = keras.layers.Dense(bottleneck, use_bias=False, name=f"{name}_squeeze")(x)
  gates = keras.layers.BatchNormalization(name=f"{name}_squeeze_bn")(gates)
  gates = keras.layers.Activation("relu", name=f"{name}_squeeze_relu")(gates)
  gates = keras.layers.Dense(width, use_bias=False, name=f"{name}_excite")(gates)
  gates = keras.layers.BatchNormalization(name=f"{name}_excite_bn")(gates)
  gates = keras.layers.Activation("sigmoid", name=f"{name}_excite_sigmoid")(gates)
  return keras.layers.Multiply(name=name)([x, gates])


def _bottleneck(hp):
  return max(1, hp.nextvlad_hidden_size // hp.nextvlad_gating_reduction)


def _widths(config, hp):
  return (f"K={hp.nextvlad_cluster_size} lambda={hp.nextvlad_expansion} "
          f"G={hp.nextvlad_groups} H={hp.nextvlad_hidden_size}")


MODEL = definition.ModelDefinition(
    name="NeXtVLAD",
    build=build,
    hparams=NeXtVLADHParams,
    description="NeXtVLAD (Lin et al. 2018): rgb and audio frames each aggregated by a "
                "grouped NetVLAD -> FC -> SE context gating -> logistic (paper size, 89.0M)",
    frame_only=True,
    default_features=definition.AUDIO_VISUAL,
    # Adam at the paper's 0.0002: the project's default of 0.01 makes paper-size networks
    # diverge (docs/TRAINING.md). At 0.0002 the paper-size model learns from the first steps.
    training={"base_learning_rate": 0.0002},
    widths=_widths,
    small_params={"nextvlad_cluster_size": 4, "nextvlad_groups": 2, "nextvlad_hidden_size": 16,
                  "nextvlad_gating_reduction": 4},
)
