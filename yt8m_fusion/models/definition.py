"""What a model module declares: its `ModelDefinition` and its typed hyper-parameters.

A model is one module. It defines a frozen dataclass of hyper-parameters (a subclass of
`HParams`, each field declared with `hparam(...)`: default, help, bounds), a builder, and
one `ModelDefinition` that names them; `models/registry.py` only lists the definitions.

    @dataclasses.dataclass(frozen=True)
    class MyModelHParams(definition.HParams):
      my_hidden_size: int = definition.hparam(1024, "MyModel: hidden units.", lower_bound=1)

    def build(config, inputs, hp):          # hp: a MyModelHParams
      ...
      return probabilities                   # [batch, num_classes] in (0, 1)

    MODEL = definition.ModelDefinition(
        name="MyModel", build=build, hparams=MyModelHParams,
        description="one line for --helpfull and the summary",
        widths=lambda config, hp: f"{hp.my_hidden_size}")

Each field becomes the absl flag of the same name (`--my_hidden_size`), so the starter's
flag names stay as they are. A field that several models share (`input_l2_norm`,
`moe_num_mixtures`, ...) is declared once in a base class that they inherit; a model
whose default differs redeclares the field with its own default (same kind, choices and
help: the flag is one). `model_flags.json` stores the chosen model's fields only.

A field added to a model after train_dirs were written with it: when its default changes
what the old files built, name the old behaviour's value in the definition's
`values_before_flag_existed`, so that a file lacking the field rebuilds the model it was
trained as.
"""

import dataclasses
import typing
from typing import Callable, Mapping

from yt8m_fusion.errors import UserError
from yt8m_fusion.models.config import parse_bool

INPUT_L2_NORM_MODES = ("joint", "per_feature", "none")
FRAME_POOLING_METHODS = ("mean", "max")
VISUAL = ("mean_rgb",)
AUDIO_VISUAL = ("mean_rgb", "mean_audio")


def hparam(default, help, *, choices=(), lower_bound=None, upper_bound=None):  # pylint: disable=redefined-builtin
  """A hyper-parameter field: its default, its help text and the values it accepts."""
  return dataclasses.field(default=default, metadata={
      "help": help, "choices": tuple(choices), "lower_bound": lower_bound,
      "upper_bound": upper_bound})


@dataclasses.dataclass(frozen=True)
class HParamField:
  """One declared hyper-parameter, as the flags and the checks see it."""
  name: str
  kind: str  # "integer", "float", "bool", "string" or "enum"
  default: object
  help: str
  choices: tuple = ()
  lower_bound: object = None
  upper_bound: object = None


INPUT_L2_NORM_HELP = (
    "L2 normalization of the model input inside the graph (eps 1e-12), as the starter did: "
    "'joint' = one norm over the concatenated features (rgb+audio together, per video or per "
    "frame), 'per_feature' = each feature separately, 'none' = off (docs/TRAINING.md).")

_KINDS = {int: "integer", float: "float", bool: "bool", str: "string"}


@dataclasses.dataclass(frozen=True)
class HParams:
  """The hyper-parameters every model has: how its input is normalized and pooled."""

  input_l2_norm: str = hparam("joint", INPUT_L2_NORM_HELP, choices=INPUT_L2_NORM_MODES)
  frame_pooling: str = hparam(
      "mean",
      "How frames are pooled over the valid frames (padding masked with num_frames): by the "
      "video-level models given --frame_features, and by frame-level AttendFusion after its "
      "attention.", choices=FRAME_POOLING_METHODS)

  @classmethod
  def declared(cls) -> tuple:
    """The `HParamField`s of this class, in declaration order."""
    hints = typing.get_type_hints(cls)
    result = []
    for field in dataclasses.fields(cls):
      meta = field.metadata
      kind = "enum" if meta.get("choices") else _KINDS[hints[field.name]]
      result.append(HParamField(field.name, kind, field.default, meta.get("help", ""),
                                meta.get("choices", ()), meta.get("lower_bound"),
                                meta.get("upper_bound")))
    return tuple(result)

  @classmethod
  def names(cls) -> tuple:
    return tuple(field.name for field in dataclasses.fields(cls))

  @classmethod
  def from_dict(cls, values: Mapping | None):
    """The defaults overridden by `values`, each checked and coerced.

    Keys this model does not declare are ignored: files written by earlier versions hold
    every model's hyper-parameters. A value of the wrong type or out of range raises a
    UserError naming the flag.
    """
    values = values or {}
    known = {field.name: field for field in cls.declared()}
    return cls(**{name: coerce(known[name], value) for name, value in values.items()
                  if name in known})

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def coerce(field: HParamField, value):
  """`value` as the type `field` declares; a UserError names the flag when it is not one."""
  def bad(expected):
    return UserError(f"--{field.name}={value!r}: expected {expected}")

  if field.kind == "integer":
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
      raise bad("an integer")
    try:
      number = int(value)
    except ValueError:
      raise bad("an integer") from None
    if isinstance(value, float) and number != value:
      raise bad("an integer")
  elif field.kind == "float":
    try:
      number = float(value)
    except (TypeError, ValueError):
      raise bad("a number") from None
  elif field.kind == "bool":
    try:
      return parse_bool(value)
    except ValueError:
      raise bad("true or false") from None
  else:
    text = str(value)
    if field.kind == "enum" and text not in field.choices:
      raise bad("one of " + ", ".join(field.choices))
    return text
  what = "an integer" if field.kind == "integer" else "a number"
  if field.lower_bound is not None and number < field.lower_bound:
    raise bad(f"{what} >= {field.lower_bound}")
  if field.upper_bound is not None and number > field.upper_bound:
    raise bad(f"{what} <= {field.upper_bound}")
  return number


@dataclasses.dataclass(frozen=True)
class ModelDefinition:
  """Everything the programs need to know about one model.

  Attributes:
    name: the `--model` name.
    build: `(config, inputs, hp) -> probabilities`: `config` is the ModelConfig, `inputs`
      the dict of Keras inputs (`common.build_inputs`), `hp` an instance of `hparams`.
    hparams: the model's `HParams` subclass.
    description: one line, for `--helpfull`, the summary and docs/MODELS.md.
    frame_only: the model reads frame-level records only.
    default_features: video-level feature names used when --feature_names is empty
      (frame-level: rgb / audio).
    training: TrainOptions fields whose defaults differ for this model.
    widths: `(config, hp) -> str`, the sizes that matter, in a few words (the report).
    family: how the report groups it: "Attend-Fusion", "fusion" or "one modality"
      (None: "fusion" when it reads several modalities, else "one modality").
    has_attention: `(config, hp) -> bool`, whether the built model has self-attention
      blocks (`layers.SelfAttentionBlock`) whose scores the report can draw (None: never).
    values_before_flag_existed: {field: value} for fields added after train_dirs were
      written with this model, whose default changed what those files built: a
      model_flags.json lacking the field gets this value, not the default.
    small_params: {field: value} of a small instance that builds and trains in well under
      a second (the tests that cover every model build each one at these sizes).
  """

  name: str
  build: Callable
  hparams: type
  description: str
  frame_only: bool = False
  default_features: tuple = VISUAL
  training: Mapping = dataclasses.field(default_factory=dict)
  widths: Callable | None = None
  family: str | None = None
  has_attention: Callable | None = None
  values_before_flag_existed: Mapping = dataclasses.field(default_factory=dict)
  small_params: Mapping = dataclasses.field(default_factory=dict)

  def describe_widths(self, config, hp) -> str:
    return self.widths(config, hp) if self.widths is not None else "-"

  def attends(self, config, hp) -> bool:
    return bool(self.has_attention(config, hp)) if self.has_attention is not None else False

  def describe_family(self, num_modalities) -> str:
    if self.family is not None:
      return self.family
    return "fusion" if num_modalities > 1 else "one modality"
