"""`ModelConfig`: everything needed to rebuild a model, saved as `model_flags.json`.

The starter code saved only five keys in `model_flags.json` and lost the model's
hyper-parameter flags, so eval.py had to be given them again. We keep the starter's
five keys (same names, same string formats, so its tools still read the file) and add
`num_classes` and `model_params`, the model's hyper-parameters (earlier versions wrote
every model's; `registry.params_as_trained` reads every earlier format).
"""

import dataclasses
import json

from yt8m_fusion.errors import UserError

# Keys that the starter code wrote, in its formats ("1024,128" strings, bool).
STARTER_KEYS = ("model", "feature_names", "feature_sizes", "frame_features", "label_loss")


@dataclasses.dataclass
class ModelConfig:
  """What a model builder needs. `params` maps the model's hyper-parameter names to values
  (fields it lacks take the model's defaults, keys of other models are ignored)."""

  model: str
  feature_names: tuple
  feature_sizes: tuple
  frame_features: bool = False
  num_classes: int = 3862
  label_loss: str = "CrossEntropyLoss"
  params: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    self.feature_names = tuple(self.feature_names)
    self.feature_sizes = tuple(int(s) for s in self.feature_sizes)
    if len(self.feature_names) != len(self.feature_sizes):
      raise UserError(
          f"--feature_names has {len(self.feature_names)} names "
          f"({','.join(self.feature_names)}) but --feature_sizes has "
          f"{len(self.feature_sizes)} sizes ({','.join(map(str, self.feature_sizes))}); "
          "give one size per feature name")

  def param(self, name):
    """A hyper-parameter value; a KeyError names the missing flag."""
    try:
      return self.params[name]
    except KeyError:
      raise KeyError(f"model hyper-parameter '{name}' is not in the ModelConfig") from None

  def data_spec(self, *, max_frames=300, segment_labels=False):
    """The `DataSpec` of the records this model reads (its features, level and classes)."""
    from yt8m_fusion.core.spec import DataSpec  # pylint: disable=import-outside-toplevel
    return DataSpec(feature_names=self.feature_names, feature_sizes=self.feature_sizes,
                    frame_features=bool(self.frame_features), num_classes=int(self.num_classes),
                    max_frames=int(max_frames), segment_labels=bool(segment_labels))

  def to_json_dict(self):
    return {
        "model": self.model,
        "feature_names": ",".join(self.feature_names),
        "feature_sizes": ",".join(str(s) for s in self.feature_sizes),
        "frame_features": bool(self.frame_features),
        "label_loss": self.label_loss,
        "num_classes": int(self.num_classes),
        "model_params": dict(sorted(self.params.items())),
    }

  @classmethod
  def from_json_dict(cls, data, source="model_flags.json"):
    """Reads our format and the starter's five-key format (num_classes 3862, no params).

    A UserError names `source`, the key and what was expected for a value of the wrong
    type (e.g. a hand-edited file).
    """
    written_by = "expected a model_flags.json written by train.py"
    if not isinstance(data, dict):
      raise UserError(f"{source} holds a JSON {type(data).__name__}, not an object; {written_by}")
    missing = [key for key in STARTER_KEYS if key not in data]
    if missing:
      raise UserError(f"{source} lacks the keys {', '.join(missing)}; {written_by}")

    def bad(key, expected):
      return UserError(f"{source}: '{key}' is {data[key]!r}; expected {expected}, as train.py "
                       "writes it")

    for key in ("model", "label_loss"):
      if not isinstance(data[key], str) or not data[key].strip():
        raise bad(key, "a name")
    names = _as_list(data["feature_names"])
    if names is None or not names:
      raise bad("feature_names", "comma-separated feature names such as 'mean_rgb,mean_audio'")
    sizes = _as_list(data["feature_sizes"])
    if sizes is None or not all(str(size).isdigit() and int(size) > 0 for size in sizes):
      raise bad("feature_sizes", "comma-separated positive sizes such as '1024,128'")
    if len(names) != len(sizes):
      raise UserError(f"{source}: 'feature_names' has {len(names)} names but 'feature_sizes' has "
                      f"{len(sizes)} sizes; expected one size per name, as train.py writes them")
    try:
      frame_features = parse_bool(data["frame_features"])
    except ValueError:
      raise bad("frame_features", "true or false") from None
    num_classes = data.get("num_classes", 3862)
    if isinstance(num_classes, bool) or not str(num_classes).isdigit() or int(num_classes) < 2:
      raise bad("num_classes", "an integer >= 2")
    params = data.get("model_params", {})
    if not isinstance(params, dict):
      raise bad("model_params", "an object of model hyper-parameters")
    return cls(model=data["model"], feature_names=names, feature_sizes=[int(s) for s in sizes],
               frame_features=frame_features, num_classes=int(num_classes),
               label_loss=data["label_loss"], params=dict(params))

  def to_json(self):
    return json.dumps(self.to_json_dict(), indent=2, sort_keys=False) + "\n"

  @classmethod
  def from_json(cls, text, source="model_flags.json"):
    try:
      data = json.loads(text)
    except json.JSONDecodeError as error:
      raise UserError(f"{source} is not valid JSON ({error})") from None
    return cls.from_json_dict(data, source)


def _as_list(value):
  """'a, b' or ["a", "b"] (or a bare number, as a starter feature size) -> ['a', 'b'];
  None for other types."""
  if isinstance(value, bool):
    return None
  if isinstance(value, int):
    value = str(value)
  if isinstance(value, str):
    return [item.strip() for item in value.split(",") if item.strip()]
  if isinstance(value, list) and all(isinstance(item, (str, int)) and not isinstance(item, bool)
                                     for item in value):
    return [str(item).strip() for item in value]
  return None


def parse_bool(value):
  """A bool from a bool, 0 or 1, or the words files and flags spell one with ("true", "yes",
  "1", "false", "no", "0"); ValueError for anything else."""
  if isinstance(value, bool):
    return value
  if isinstance(value, int) and value in (0, 1):
    return bool(value)
  if isinstance(value, str):
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes"):
      return True
    if lowered in ("0", "false", "no"):
      return False
  raise ValueError(f"{value!r} is not true or false")
