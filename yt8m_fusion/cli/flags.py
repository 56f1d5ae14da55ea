"""absl flags shared by train.py, eval.py, inference.py and the tools.

Names and defaults follow the YouTube-8M starter code, so its command lines work
unchanged. Each program defines the groups it needs by calling the functions below.
"""

from absl import flags

from yt8m_fusion.errors import UserError

FLAGS = flags.FLAGS

# Upper bounds of flags whose larger values can only exhaust memory (TensorFlow crashes on
# a --batch_size of 10^11 instead of raising): a batch of 2^20 video-level records is 5 GB.
MAX_BATCH_SIZE = 1 << 20
MAX_NUM_CLASSES = 1 << 20

# Sizes of the YouTube-8M features, used when --feature_sizes is not given.
KNOWN_FEATURE_SIZES = {
    "mean_rgb": 1024, "rgb": 1024, "mean_audio": 128, "audio": 128,
    "mean_inc3": 1024, "inc3": 1024,
}


def define_once(define, name, *args, **kwargs):
  """Defines a flag unless it exists: programs share groups, and tests import several."""
  if name not in FLAGS:
    define(name, *args, **kwargs)


def define_model_flags():
  """The model, its inputs and its hyper-parameters (all saved in model_flags.json)."""
  define_once(flags.DEFINE_string, "model", "LogisticModel",
               "Which model to use: a name in the model registry "
               "(python -m yt8m_fusion.summary --list prints them).")
  define_once(flags.DEFINE_string, "feature_names", "",
               "Comma-separated feature names, e.g. 'mean_rgb,mean_audio'. Empty: the model's "
               "default ('mean_rgb' for the starter's models, 'mean_rgb,mean_audio' for the "
               "fusion models; 'rgb'/'audio' with --frame_features).")
  define_once(flags.DEFINE_string, "feature_sizes", "",
               "Comma-separated feature sizes, one per name. Empty: the known YouTube-8M sizes "
               "(rgb 1024, audio 128).")
  define_once(flags.DEFINE_bool, "frame_features", False,
               "Frame-level features (SequenceExample) instead of video-level (Example).")
  define_once(flags.DEFINE_integer, "num_classes", 3862,
               "Size of the label vocabulary: 3862 for the 2018 data, 4716 for the 2017 data.",
               lower_bound=2, upper_bound=MAX_NUM_CLASSES)
  define_once(flags.DEFINE_string, "label_loss", "CrossEntropyLoss",
               "Loss: CrossEntropyLoss, HingeLoss or SoftmaxLoss.")
  define_hparam_flags(define_once)


def define_hparam_flags(define=define_once):
  """One absl flag per hyper-parameter name of the registered models.

  `define(define_fn, name, default, **kwargs)` defines one (default: `define_once` on
  FLAGS). A flag's value is used only when given on the command line; otherwise the chosen
  model's own default (the help says so where the models' defaults differ).
  """
  from yt8m_fusion.models import registry  # pylint: disable=import-outside-toplevel
  for name, (field, defaults) in registry.hparam_flags().items():
    values = list(defaults.values())
    default = max(values, key=values.count)  # the most common; the first on a tie
    help_text = field.help
    others = {}
    for model, value in defaults.items():
      if value != default:
        others.setdefault(value, []).append(model)
    if others:
      per_model = "; ".join(f"{value} for {', '.join(names)}" for value, names in others.items())
      help_text += f" Default per model: {per_model}; {default} for the others."
    kwargs = {"help": help_text}
    if field.kind in ("integer", "float"):
      define_fn = flags.DEFINE_integer if field.kind == "integer" else flags.DEFINE_float
      kwargs.update(lower_bound=field.lower_bound, upper_bound=field.upper_bound)
    elif field.kind == "bool":
      define_fn = flags.DEFINE_bool
    elif field.kind == "enum":
      define_fn = flags.DEFINE_enum
      kwargs["enum_values"] = list(field.choices)
    else:
      define_fn = flags.DEFINE_string
    define(define_fn, name, default, **kwargs)


def define_data_flags():
  """How records are read."""
  define_once(flags.DEFINE_bool, "segment_labels", False,
               "Segment-level data (2019 challenge): 5-frame segments labelled by their ratings.")
  define_once(flags.DEFINE_integer, "max_frames", 300,
               "Frames kept per video: later frames are dropped, shorter videos padded.",
               lower_bound=1)
  define_once(flags.DEFINE_integer, "num_readers", 8,
               "Files read in parallel.", lower_bound=1)
  define_once(flags.DEFINE_bool, "skip_corrupt_records", False,
               "Skip records that cannot be read or parsed, and count them in the log, instead "
               "of stopping with an error.")


def split_list(value):
  """'a, b,c' -> ['a', 'b', 'c'] (stripped, empties dropped), as the starter's utils did."""
  return [item.strip() for item in value.split(",") if item.strip()]


def resolve_features(model_name, feature_names, feature_sizes, frame_features):
  """Turns the --feature_names / --feature_sizes strings into lists, filling defaults."""
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  names = split_list(feature_names)
  if not names:
    names = models.default_feature_names(model_name, frame_features)
  if feature_sizes.strip():
    try:
      sizes = [int(size) for size in split_list(feature_sizes)]
    except ValueError:
      raise UserError(f"--feature_sizes={feature_sizes!r}: expected comma-separated integers "
                      "such as 1024,128") from None
    if any(size <= 0 for size in sizes):
      raise UserError(f"--feature_sizes={feature_sizes!r}: sizes must be positive")
  else:
    unknown = [name for name in names if name not in KNOWN_FEATURE_SIZES]
    if unknown:
      raise UserError(f"--feature_sizes is needed for the features {','.join(unknown)} "
                      "(sizes are known only for " + ",".join(KNOWN_FEATURE_SIZES) + ")")
    sizes = [KNOWN_FEATURE_SIZES[name] for name in names]
  if len(names) != len(sizes):
    raise UserError(f"--feature_names has {len(names)} names ({','.join(names)}) but "
                    f"--feature_sizes has {len(sizes)} sizes ({feature_sizes}); give one size "
                    "per feature name")
  return names, sizes


def model_config_from_flags(base=None):
  """A ModelConfig from the command line (features resolved, hyper-parameters gathered).

  Its params are the chosen model's hyper-parameters only: those given on the command line,
  the others its defaults. With `base` (a saved ModelConfig), flags not given on the
  command line take the saved values (as trained: `models.params_as_trained`), so a
  resumed run or eval.py rebuilds the saved model.
  """
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.models.config import ModelConfig  # pylint: disable=import-outside-toplevel

  def value(name):
    if base is not None and not explicitly_set(name):
      return getattr(base, name)
    return FLAGS[name].value

  model, frame_features = value("model"), value("frame_features")
  if base is not None and not explicitly_set("feature_names") and not explicitly_set(
      "feature_sizes"):
    names, sizes = list(base.feature_names), list(base.feature_sizes)
  else:
    names, sizes = resolve_features(model, FLAGS.feature_names, FLAGS.feature_sizes,
                                    frame_features)
  params = models.params_as_trained(base.model, base.params) if base is not None else {}
  params.update({name: FLAGS[name].value for name in models.get_spec(model).hparams.names()
                 if explicitly_set(name)})
  return ModelConfig(model=model, feature_names=names, feature_sizes=sizes,
                     frame_features=frame_features, num_classes=value("num_classes"),
                     label_loss=value("label_loss"),
                     params=models.complete_params(model, params))


def explicitly_set(name):
  """True when the flag was given on the command line (not left at its default)."""
  return name in FLAGS and FLAGS[name].present


def explicit_model_flags():
  """Names of the model flags given on the command line."""
  from yt8m_fusion.models import registry  # pylint: disable=import-outside-toplevel
  names = ["model", "feature_names", "feature_sizes", "frame_features", "label_loss",
           "num_classes", *registry.hparam_flags()]
  return {name for name in names if explicitly_set(name)}


def define_ensemble_weights_flag():
  """--ensemble_weights of eval.py, inference.py and the export (docs/ENSEMBLES.md)."""
  define_once(flags.DEFINE_list, "ensemble_weights", None,
              "With several comma-separated models (an ensemble): one weight per model for the "
              "weighted mean of their probabilities (normalized); default: equal weights.")


def check_no_model_flags_for_ensemble():
  """An ensemble's members are rebuilt from their own model_flags.json: a model flag on the
  command line is a one-line UserError."""
  given = sorted(explicit_model_flags())
  if given:
    raise UserError("model flags apply to one train_dir; an ensemble's members are rebuilt "
                    f"from their own model_flags.json (drop {', '.join('--' + n for n in given)})")
