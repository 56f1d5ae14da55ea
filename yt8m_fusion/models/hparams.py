"""Every model hyper-parameter, in one table: flags, defaults, and values for builders.

Each entry becomes an absl flag (`define_hparam_flags`), is gathered from the command line
by `hparams_from_flags` into `ModelConfig.params` (saved in `model_flags.json`, so eval and
inference rebuild the same model), and is read back by the builders with `resolve`, which
fills any missing key with its default (a `ModelConfig` with empty params builds the
paper-size model).

The starter code's model flags keep their names and defaults (`--moe_num_mixtures`,
`--iterations`, `--dbof_*`, `--sample_random_frames`, `--video_level_classifier_model`,
`--lstm_cells`, `--lstm_layers`), so its command lines keep working.
"""

import dataclasses

from absl import flags

from yt8m_fusion.errors import UserError
from yt8m_fusion.models.config import parse_bool

INPUT_L2_NORM_MODES = ("joint", "per_feature", "none")
FRAME_POOLING_METHODS = ("mean", "max")
DBOF_POOLING_METHODS = ("max", "average", "mean")
FC_NORMALIZATIONS = ("none", "batch", "layer")
LATE_FUSION_COMBINATIONS = ("sum_logits", "mean_probabilities")
VIDEO_LEVEL_CLASSIFIERS = ("MoeModel", "LogisticModel")


@dataclasses.dataclass(frozen=True)
class HParam:
  name: str
  kind: str  # "integer", "float", "bool", "string" or "enum"
  default: object
  help: str
  choices: tuple = ()
  lower_bound: object = None


HPARAMS = (
    # --- Inputs (every model) ---
    HParam("input_l2_norm", "enum", "joint",
           "L2 normalization of the model input inside the graph (eps 1e-12), as the starter "
           "did: 'joint' = one norm over the concatenated features (rgb+audio together, per "
           "video or per frame), 'per_feature' = each feature separately, 'none' = off. "
           "The FC baselines default to none (docs/TRAINING.md).",
           choices=INPUT_L2_NORM_MODES),
    HParam("frame_pooling", "enum", "mean",
           "How frames are pooled over the valid frames (padding masked with num_frames): by "
           "the video-level models given --frame_features, and by frame-level AttendFusion "
           "after its attention.", choices=FRAME_POOLING_METHODS),
    HParam("l2_penalty", "float", 1e-8,
           "L2 weight penalty of the LogisticModel / MoeModel classifiers, starter semantics "
           "(penalty * sum(w^2) / 2); 0 turns it off.", lower_bound=0.0),
    # --- Starter: video-level ---
    HParam("moe_num_mixtures", "integer", 2,
           "MoeModel: number of mixtures (excluding the dummy 'expert' that always predicts "
           "the non-existence of an entity).", lower_bound=1),
    # --- Starter: frame-level ---
    HParam("iterations", "integer", 30, "DbofModel: number of frames sampled per video.",
           lower_bound=1),
    HParam("dbof_add_batch_norm", "bool", True,
           "DbofModel: batch normalization of the input, cluster and hidden layers "
           "(else biases)."),
    HParam("sample_random_frames", "bool", True,
           "DbofModel: in training sample --iterations random frames; if false, a random "
           "contiguous sequence of --iterations frames. Inference is deterministic: evenly "
           "spaced frames (or the centred sequence)."),
    HParam("dbof_cluster_size", "integer", 8192, "DbofModel: number of units in the DBoF "
           "cluster layer.", lower_bound=1),
    HParam("dbof_hidden_size", "integer", 1024, "DbofModel: number of units in the DBoF "
           "hidden layer.", lower_bound=1),
    HParam("dbof_pooling_method", "string", "max",
           "DbofModel: how the sampled frames' cluster activations are pooled: max or "
           "average."),
    HParam("dbof_activation", "string", "sigmoid",
           "DbofModel: activation of the cluster and hidden layers (a Keras activation name: "
           "sigmoid, relu, relu6, tanh, ...)."),
    HParam("video_level_classifier_model", "string", "MoeModel",
           "DbofModel / LstmModel: classifier on the video representation: MoeModel or "
           "LogisticModel."),
    HParam("lstm_cells", "integer", 1024, "LstmModel: number of LSTM cells per layer.",
           lower_bound=1),
    HParam("lstm_layers", "integer", 2, "LstmModel: number of stacked LSTM layers.",
           lower_bound=1),
    # --- Attend-Fusion ---
    HParam("attend_hidden_size", "integer", 8192,
           "AttendFusion (video-level): units of each modality's fully connected layers "
           "(the paper-size model: 8192).", lower_bound=1),
    HParam("attend_fc_layers", "integer", 1,
           "AttendFusion: fully connected layers per modality before the attention.",
           lower_bound=1),
    HParam("attend_token_size", "integer", 128,
           "AttendFusion (video-level): the hidden vector is viewed as "
           "attend_hidden_size/attend_token_size tokens of this size for the self-attention "
           "(8192 = 64 tokens of 128).", lower_bound=1),
    HParam("attend_frame_hidden_size", "integer", 256,
           "AttendFusion (frame-level): units of the per-frame fully connected layers (the "
           "attention runs over the frames at this width).", lower_bound=1),
    HParam("attend_num_heads", "integer", 4, "AttendFusion: attention heads.", lower_bound=1),
    HParam("attend_key_dim", "integer", 32, "AttendFusion: size of each head's query/key "
           "(and value).", lower_bound=1),
    HParam("attend_attention", "bool", True,
           "AttendFusion: the self-attention block. --noattend_attention is the ablation "
           "'Attend-Fusion without attention': the same layers without the self-attention "
           "(the block becomes LayerNorm(x), see --attend_norm_without_attention)."),
    HParam("attend_layer_norm", "bool", True,
           "AttendFusion: layer normalization after the attention's residual."),
    HParam("attend_norm_without_attention", "bool", True,
           "AttendFusion with --noattend_attention: keep the block's LayerNorm (the block "
           "becomes LayerNorm(x)), so that the ablation removes the self-attention only. "
           "false: drop it too, as models trained before this flag existed did."),
    HParam("attend_activation", "string", "relu",
           "AttendFusion: activation of the fully connected layers."),
    HParam("attend_dropout", "float", 0.0,
           "AttendFusion: dropout rate after each fully connected layer and on the fused "
           "vector before the classifier.", lower_bound=0.0),
    HParam("attend_attention_dropout", "float", 0.0,
           "AttendFusion: dropout rate on the attention probabilities (0 keeps the fused "
           "attention kernel).", lower_bound=0.0),
    # --- FC baselines ---
    HParam("fc_hidden_size", "integer", 8192,
           "FC baselines (FCModel, FCRNModel, FCRGNModel, FCEarlyFusion, FCMidFusion, "
           "FCLateFusion): units of every hidden layer.", lower_bound=1),
    HParam("fc_num_layers", "integer", 3,
           "FC baselines: hidden layers (per modality for FCLateFusion; FCMidFusion uses "
           "--fc_mid_modality_layers and --fc_mid_fused_layers instead).", lower_bound=1),
    HParam("fc_mid_modality_layers", "integer", 2,
           "FCMidFusion: hidden layers per modality before the concatenation.",
           lower_bound=1),
    HParam("fc_mid_fused_layers", "integer", 1,
           "FCMidFusion: hidden layers after the concatenation.", lower_bound=0),
    HParam("fc_late_fusion", "enum", "sum_logits",
           "FCLateFusion: how the modality classifiers are combined. sum_logits: one sigmoid "
           "of the summed logits (a class seen in one modality only can still score near 1); "
           "mean_probabilities: the average of the modalities' sigmoid outputs (a class seen "
           "in one modality only scores at most about 0.5).",
           choices=LATE_FUSION_COMBINATIONS),
    HParam("fc_activation", "string", "relu", "FC baselines: hidden-layer activation."),
    HParam("fc_dropout", "float", 0.0, "FC baselines: dropout rate after each hidden layer.",
           lower_bound=0.0),
    HParam("fc_normalization", "enum", "none",
           "FC baselines: normalization of each hidden layer before its activation.",
           choices=FC_NORMALIZATIONS),
)

# Hyper-parameters added after the first release whose default changed the model's behaviour:
# a model_flags.json written before they existed gets these values, not the new defaults,
# so that a saved model is rebuilt as it was trained.
VALUES_BEFORE_FLAG_EXISTED = {"fc_late_fusion": "mean_probabilities",
                              "attend_norm_without_attention": False}



def params_as_trained(params):
  """A saved model's `params` plus the VALUES_BEFORE_FLAG_EXISTED of the flags it lacks.

  For code that rebuilds a saved model from its model_flags.json alone (train_dir's
  merge_config does the same for the programs, where a flag given explicitly wins). The
  starter's files carry no hyper-parameters and are returned as they are.
  """
  params = dict(params or {})
  if params:
    for name, value in VALUES_BEFORE_FLAG_EXISTED.items():
      params.setdefault(name, value)
  return params


_BY_NAME = {hparam.name: hparam for hparam in HPARAMS}
HPARAM_NAMES = tuple(_BY_NAME)


def define_hparam_flags(define_once):
  """Defines one absl flag per hyper-parameter with `define_once(define_fn, name, default, ...)`."""
  for hparam in HPARAMS:
    kwargs = {"help": hparam.help}
    if hparam.kind == "integer":
      define = flags.DEFINE_integer
      if hparam.lower_bound is not None:
        kwargs["lower_bound"] = hparam.lower_bound
    elif hparam.kind == "float":
      define = flags.DEFINE_float
      if hparam.lower_bound is not None:
        kwargs["lower_bound"] = hparam.lower_bound
    elif hparam.kind == "bool":
      define = flags.DEFINE_bool
    elif hparam.kind == "enum":
      define = flags.DEFINE_enum
      kwargs["enum_values"] = list(hparam.choices)
    else:
      define = flags.DEFINE_string
    define_once(define, hparam.name, hparam.default, **kwargs)


def hparams_from_flags(flag_values):
  """{hyper-parameter name: value} from the (parsed or default) flag values."""
  return {name: flag_values[name].value for name in HPARAM_NAMES}


def default_hparams():
  """{hyper-parameter name: default} (the paper-size / starter defaults)."""
  return {hparam.name: hparam.default for hparam in HPARAMS}


def resolve(params):
  """Defaults overridden by `params` (e.g. `ModelConfig.params`), checked and coerced.

  Unknown keys are ignored (a newer model_flags.json may carry more). A value of the wrong
  type or out of range raises a UserError naming the flag.
  """
  values = default_hparams()
  for name, value in (params or {}).items():
    if name in _BY_NAME:
      values[name] = _coerce(_BY_NAME[name], value)
  return values


def _coerce(hparam, value):
  def bad(expected):
    return UserError(f"--{hparam.name}={value!r}: expected {expected}")

  if hparam.kind == "integer":
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
      raise bad("an integer")
    try:
      number = int(value)
    except ValueError:
      raise bad("an integer") from None
    if isinstance(value, float) and number != value:
      raise bad("an integer")
    if hparam.lower_bound is not None and number < hparam.lower_bound:
      raise bad(f"an integer >= {hparam.lower_bound}")
    return number
  if hparam.kind == "float":
    try:
      number = float(value)
    except (TypeError, ValueError):
      raise bad("a number") from None
    if hparam.lower_bound is not None and number < hparam.lower_bound:
      raise bad(f"a number >= {hparam.lower_bound}")
    return number
  if hparam.kind == "bool":
    try:
      return parse_bool(value)
    except ValueError:
      raise bad("true or false") from None
  value = str(value)
  if hparam.kind == "enum" and value not in hparam.choices:
    raise bad("one of " + ", ".join(hparam.choices))
  return value
