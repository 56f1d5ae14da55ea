"""`DataSpec`: what the records hold, in one place (features, level, classes, frames).

Built once from a model's config (`ModelConfig.data_spec(max_frames=, segment_labels=)`) or
from a LiteRT file's metadata (`DataSpec.from_model_flags`), then handed to the reader, the
validator, the file checks, the serving signature's parser and the exports, so that they all
read the same thing. Feature names and sizes are validated here, once.
"""

import dataclasses

from yt8m_fusion.errors import UserError

# Frames in a segment of the 2019 segment-rated data.
SEGMENT_SIZE = 5
SEGMENTS_NEED_FRAMES = "--segment_labels needs frame-level data: add --frame_features"
# The frame-level feature each video-level feature is the mean of (YouTube-8M's video-level
# features are the means of the videos' frame features).
FRAME_NAMES = {"mean_rgb": "rgb", "mean_audio": "audio"}
# Keys of a batch that are not features.
BATCH_KEYS = ("video_ids", "num_frames", "labels", "label_weights")


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """The features to read and how the records are laid out.

  Attributes:
    feature_names: e.g. ("mean_rgb", "mean_audio") (video-level) or ("rgb", "audio").
    feature_sizes: one size per name, e.g. (1024, 128).
    frame_features: SequenceExample frame-level records instead of video-level Examples.
    num_classes: size of the label vocabulary (3862; 4716 for the 2017 data).
    max_frames: frames kept per video (frame-level): later frames dropped, shorter videos
      zero-padded.
    segment_labels: frame-level 2019 segment data: batches of rated 5-frame segments.
  """

  feature_names: tuple = ("mean_rgb",)
  feature_sizes: tuple = (1024,)
  frame_features: bool = False
  num_classes: int = 3862
  max_frames: int = 300
  segment_labels: bool = False

  def __post_init__(self):
    names, sizes = self.feature_names, self.feature_sizes
    if isinstance(names, str):
      names = [name.strip() for name in names.split(",") if name.strip()]
    if isinstance(sizes, (str, int)):
      sizes = [size for size in str(sizes).split(",") if size.strip()]
    names, sizes = tuple(names), tuple(int(size) for size in sizes)
    object.__setattr__(self, "feature_names", names)
    object.__setattr__(self, "feature_sizes", sizes)
    if not names:
      raise UserError("no feature names given; expected e.g. mean_rgb,mean_audio or rgb,audio")
    if len(names) != len(sizes):
      raise UserError(f"{len(names)} feature names ({','.join(names)}) but {len(sizes)} "
                      f"feature sizes ({','.join(map(str, sizes))}); give one size per "
                      "feature name")
    if len(set(names)) != len(names):
      raise UserError(f"--feature_names={','.join(names)} names a feature twice; give each "
                      "feature once")
    reserved = set(BATCH_KEYS) & set(names)
    if reserved:
      raise UserError(f"feature name(s) {','.join(sorted(reserved))} clash with the batch "
                      "keys video_ids/num_frames/labels/label_weights")
    if any(size <= 0 for size in sizes):
      raise UserError(f"feature sizes must be positive, got {','.join(map(str, sizes))}")
    for value, what in ((self.max_frames, "max_frames"), (self.num_classes, "num_classes")):
      if int(value) < 1:
        raise UserError(f"{what} must be at least 1, got {value}")
    if self.segment_labels and not self.frame_features:
      raise UserError(SEGMENTS_NEED_FRAMES)
    if self.segment_labels and self.max_frames < SEGMENT_SIZE:
      raise UserError(f"max_frames={self.max_frames} is shorter than a {SEGMENT_SIZE}-frame "
                      "segment")

  @classmethod
  def from_model_flags(cls, model_flags, *, max_frames=None, segment_labels=False):
    """The spec of a model_flags.json dict (the starter's "1024,128" strings or lists), e.g.
    the one a LiteRT file embeds; `max_frames` None keeps the default."""
    extra = {} if not max_frames else {"max_frames": int(max_frames)}
    return cls(feature_names=model_flags["feature_names"],
               feature_sizes=model_flags["feature_sizes"],
               frame_features=bool(model_flags["frame_features"]),
               num_classes=int(model_flags.get("num_classes", 3862)),
               segment_labels=bool(segment_labels), **extra)

  def describe(self):
    """The spec in one line, for messages."""
    text = (f"frame_features={self.frame_features}, feature_names={','.join(self.feature_names)}"
            f", feature_sizes={','.join(map(str, self.feature_sizes))}, "
            f"num_classes={self.num_classes}")
    if self.frame_features:
      text += f", max_frames={self.max_frames}, segment_labels={self.segment_labels}"
    return text

  @property
  def model_input_names(self):
    """The batch keys a model takes: the features, and num_frames for frame-level data."""
    return self.feature_names + (("num_frames",) if self.frame_features else ())
