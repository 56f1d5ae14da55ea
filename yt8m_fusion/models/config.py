"""`ModelConfig`: everything needed to rebuild a model, saved as `model_flags.json`.

The starter code saved only five keys in `model_flags.json` and lost the model's
hyper-parameter flags, so eval.py had to be given them again. We keep the starter's
five keys (same names, same string formats, so its tools still read the file) and add
`num_classes` and `model_params`, a dict of every model hyper-parameter flag.
"""

import dataclasses
import json

from yt8m_fusion.errors import UserError

# Keys that the starter code wrote, in its formats ("1024,128" strings, bool).
STARTER_KEYS = ("model", "feature_names", "feature_sizes", "frame_features", "label_loss")


@dataclasses.dataclass
class ModelConfig:
  """What a model builder needs. `params` maps hyper-parameter flag names to values."""

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
    """Reads our format and the starter's five-key format (num_classes 3862, no params)."""
    missing = [key for key in STARTER_KEYS if key not in data]
    if missing:
      raise UserError(f"{source} lacks the keys {', '.join(missing)}; expected a model_flags.json "
                      "written by train.py")
    return cls(
        model=data["model"],
        feature_names=[n.strip() for n in data["feature_names"].split(",") if n.strip()],
        feature_sizes=[int(s) for s in str(data["feature_sizes"]).split(",") if s.strip()],
        frame_features=_frame_features(data["frame_features"], source),
        num_classes=int(data.get("num_classes", 3862)),
        label_loss=data["label_loss"],
        params=dict(data.get("model_params", {})),
    )

  def to_json(self):
    return json.dumps(self.to_json_dict(), indent=2, sort_keys=False) + "\n"

  @classmethod
  def from_json(cls, text, source="model_flags.json"):
    try:
      data = json.loads(text)
    except json.JSONDecodeError as error:
      raise UserError(f"{source} is not valid JSON ({error})") from None
    return cls.from_json_dict(data, source)


def _frame_features(value, source):
  try:
    return parse_bool(value)
  except ValueError:
    raise UserError(f"{source}: frame_features={value!r}; expected true or false") from None


def parse_bool(value):
  """A bool, or the words files and flags spell one with ("true"/"yes"/"1", "false"/"no"/"0").

  Raises ValueError for any other string.
  """
  if not isinstance(value, str):
    return bool(value)
  lowered = value.strip().lower()
  if lowered in ("1", "true", "yes"):
    return True
  if lowered in ("0", "false", "no"):
    return False
  raise ValueError(f"{value!r} is not true or false")
