"""The registry: the models the programs know, collected from their modules.

Each model module declares a `ModelDefinition` (models/definition.py); adding a model is
its module plus one line in `DEFINITIONS`. Everything else (flags, model_flags.json, the
report, FLOPs, the tests that cover every model) reads the definitions from here.
"""

import re

import keras
import tensorflow as tf

from yt8m_fusion.core import spec as core_spec
from yt8m_fusion.errors import UserError
from yt8m_fusion.models import attend_fusion
from yt8m_fusion.models import baselines
from yt8m_fusion.models import common
from yt8m_fusion.models import nextvlad
from yt8m_fusion.models import starter
from yt8m_fusion.models.config import ModelConfig

DEFINITIONS = (
    attend_fusion.MODEL,
    *baselines.MODELS,
    *starter.MODELS,
    nextvlad.MODEL,
)
REGISTRY = {definition.name: definition for definition in DEFINITIONS}
FRAME_NAMES = core_spec.FRAME_NAMES


def list_models():
  """The registered model names, in registry order."""
  return list(REGISTRY)


def get_spec(name):
  """The `ModelDefinition` of `--model=name`; a UserError lists the known ones."""
  try:
    return REGISTRY[name]
  except KeyError:
    raise UserError(f"--model={name!r} is not a known model; choose one of: "
                    + ", ".join(REGISTRY)) from None


def default_training(name):
  """The TrainOptions fields whose defaults differ for this model (a new dict)."""
  return dict(get_spec(name).training)


def default_params(name):
  """{hyper-parameter: default} of this model (a new dict)."""
  return get_spec(name).hparams().to_dict()


def is_frame_only(name):
  return get_spec(name).frame_only


def default_feature_names(model_name, frame_features):
  """The feature names used when --feature_names is empty."""
  names = get_spec(model_name).default_features
  if frame_features:
    return [FRAME_NAMES.get(name, name) for name in names]
  return list(names)


def hparams_of(config: ModelConfig):
  """`config.params` as the model's typed HParams (defaults for the fields it lacks)."""
  return get_spec(config.model).hparams.from_dict(config.params)


def complete_params(model_name, params):
  """{field: value} of every field `model_name` declares: `params` (checked, coerced; keys
  of other models dropped) over the defaults. What model_flags.json stores."""
  return get_spec(model_name).hparams.from_dict(params).to_dict()


def params_as_trained(model_name, params):
  """`complete_params` of a saved model_flags.json's hyper-parameters: a field the file
  lacks gets the value that reproduces what the file's version built
  (`values_before_flag_existed`), else its default.

  The starter's five-key files hold no hyper-parameters (its flags were not saved): they
  get the defaults, which are the starter's.
  """
  spec = get_spec(model_name)
  params = dict(params or {})
  if params:
    for name, value in spec.values_before_flag_existed.items():
      params.setdefault(name, value)
  return spec.hparams.from_dict(params).to_dict()


def has_attention(config: ModelConfig):
  """Whether the model `config` builds has self-attention blocks (the report's heat maps)."""
  spec = REGISTRY.get(config.model)
  return spec is not None and spec.attends(config, hparams_of(config))


def build_model(config: ModelConfig) -> keras.Model:
  """The Keras functional model for `config` (see docs/DESIGN.md, 'Models')."""
  spec = get_spec(config.model)
  hp = spec.hparams.from_dict(config.params)
  if spec.frame_only:
    common.require_frames(config)
  config.data_spec()  # the record layout: UserErrors name the feature flag at fault
  inputs = common.build_inputs(config)
  try:
    outputs = spec.build(config, inputs, hp)
  except tf.errors.ResourceExhaustedError as error:
    detail = re.sub(r"\{\{function_node [^}]*\}\}", "", str(getattr(error, "message", error)))
    detail = " ".join(detail.split())[:160]
    raise UserError(f"out of memory building {config.model} with --num_classes="
                    f"{config.num_classes} ({detail}); expected a model that fits this machine: "
                    "lower --num_classes or the model's size flags") from None
  return keras.Model(inputs, outputs, name=config.model)


def hparam_flags(definitions=DEFINITIONS):
  """{field name: (HParamField, {model name: its default})} over `definitions`, one entry per
  distinct field name: the programs define one absl flag for each.

  A name that two models declare with another kind, choices or bounds would be two flags
  in one: a TypeError (a programming error, caught by the tests).
  """
  def flag_shape(field):
    return (field.kind, field.choices, field.lower_bound, field.upper_bound)

  result = {}
  for spec in definitions:
    for field in spec.hparams.declared():
      first, defaults = result.setdefault(field.name, (field, {}))
      if flag_shape(field) != flag_shape(first):
        owner = next(iter(defaults))
        raise TypeError(f"hyper-parameter '{field.name}' is declared by {owner} as "
                        f"{flag_shape(first)} and by {spec.name} as {flag_shape(field)} (kind, "
                        "choices, bounds); one flag cannot be both: rename one of them")
      defaults[spec.name] = field.default
  return result
