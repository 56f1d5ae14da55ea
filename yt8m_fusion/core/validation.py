"""What a valid YouTube-8M record is, written once as rules driven by a `DataSpec`.

`record_rules(spec)` lists what a record must hold, one `Rule` per key: its type, and one
of a few checks (class ids in range, a feature of D finite floats, frames of D bytes,
segment start times inside the video, one score per segment label). The rules are applied

- to parsed records in plain Python by `check_record` / `validate_record` (the file checks
  of `yt8m_fusion.data.checks`, the explanation of a read error, the LiteRT reader), which
  return a `RecordProblem` whose message is the one-line explanation;
- to tensors by `yt8m_fusion.data.readers`, which turns each rule into an in-graph
  condition; a failed check's message starts with CHECK_PREFIX and lists each
  `Rule.requirement` and whether it held.

Frames: a frame-level record is checked as the model reads it. The parser reads every frame
(so each must be one bytes value), but only the first `max_frames` are decoded and fed to
the model, so only those must have D bytes; later frames are dropped unread, as the starter
did.
"""

import dataclasses
import functools

import numpy as np

from yt8m_fusion.core import records
from yt8m_fusion.core.spec import SEGMENT_SIZE

# Prefix of the messages of the in-graph checks (a tf error that starts with it is ours).
CHECK_PREFIX = "yt8m_fusion data check"

# The checks a Rule can ask for.
ID = "id"                          # at most one bytes value
CLASS_IDS = "class_ids"            # int64 class ids, 0 <= id < limit (num_classes)
FEATURE = "feature"                # a video-level feature: `size` finite floats
FRAMES = "frames"                  # a frame-level feature: >= 1 frame of `size` bytes
SEGMENT_STARTS = "segment_starts"  # 0 <= start <= limit (max_frames - SEGMENT_SIZE)
SEGMENT_SCORES = "segment_scores"  # one score (and one start) per segment label

# Problems that come from flags (the same for every record) rather than from bad data:
# skip_corrupt_records does not skip them.
CONFIG_CATEGORIES = ("format", "missing", "size", "type")
_NUM_CLASSES_HINT = "(--num_classes; the 2017 data has 4716 classes)"


@dataclasses.dataclass(frozen=True)
class Rule:
  """One key of a valid record.

  Attributes:
    key: the context feature (or, for FRAMES, the feature list).
    kind: the type of its values: "bytes", "int64" or "float".
    check: ID, CLASS_IDS, FEATURE, FRAMES, SEGMENT_STARTS or SEGMENT_SCORES.
    size: FEATURE: floats per record; FRAMES: bytes per frame.
    limit: CLASS_IDS: num_classes; SEGMENT_STARTS: the last valid start; FRAMES: the frames
      the model reads (max_frames).
  """

  key: str
  kind: str
  check: str
  size: int = 0
  limit: int = 0

  @property
  def expected(self):
    """What the key must hold, as the end of a sentence."""
    if self.check == ID:
      return "one bytes value"
    if self.check == CLASS_IDS:
      return f"class ids 0 <= id < num_classes={self.limit} {_NUM_CLASSES_HINT}"
    if self.check == FEATURE:
      return f"{self.size} finite floats (--feature_sizes)"
    if self.check == FRAMES:
      return (f"at least one frame, and each of its first {self.limit} frames (max_frames) one "
              f"bytes value of {self.size} quantized uint8 values (--feature_sizes)")
    if self.check == SEGMENT_STARTS:
      return f"start times 0 <= start <= max_frames - {SEGMENT_SIZE} = {self.limit}"
    return "one score per segment label, as segment_start_times holds one start time per label"

  @property
  def requirement(self):
    """The rule in one line: what the in-graph check's message lists."""
    return f"'{self.key}' needs {self.expected}"


@functools.lru_cache(maxsize=64)
def record_rules(spec):
  """The rules of a valid record of `spec` (a DataSpec), in the order they are checked."""
  rules = [Rule("id", "bytes", ID), Rule("video_id", "bytes", ID),  # video_id: 2017 data
           Rule("labels", "int64", CLASS_IDS, limit=spec.num_classes)]
  for name, size in zip(spec.feature_names, spec.feature_sizes):
    if spec.frame_features:
      rules.append(Rule(name, "bytes", FRAMES, size=size, limit=spec.max_frames))
    else:
      rules.append(Rule(name, "float", FEATURE, size=size))
  if spec.segment_labels:
    rules += [Rule("segment_scores", "float", SEGMENT_SCORES),
              Rule("segment_labels", "int64", CLASS_IDS, limit=spec.num_classes),
              Rule("segment_start_times", "int64", SEGMENT_STARTS,
                   limit=spec.max_frames - SEGMENT_SIZE)]
  return tuple(rules)


# ----------------------------------------------------------------------------------------
# The rules applied to parsed records
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RecordProblem:
  """What is wrong with one record: a category, the key (or None) and a one-line message."""

  category: str
  feature: str
  message: str


def where_in_file(path, index, video_id):
  """"path: record N (id 'x')", the start of a bad record's one-line message."""
  return f"{path}: record {index}" + (f" (id '{video_id}')" if video_id else "")


def _kind_name(kind):
  return kind or "no"


def validate_record(raw, spec):
  """Checks one serialized record as the readers would.

  Returns (problem, video_id): a RecordProblem (None if the readers accept the record)
  and the record's id (str; None if it has none or the bytes do not parse).
  """
  try:
    record = records.parse_record(raw)
  except records.DECODE_ERRORS as error:
    return RecordProblem("corrupt", None, "is not a serialized tf.train.Example or "
                         f"SequenceExample ({error or 'undecodable bytes'})"), None
  video_id = records.video_id_of(record)
  return check_record(record, spec), (video_id.decode("utf-8", "replace") or None)


def check_record(record, spec):
  """The first RecordProblem of a parsed record (see `validate_record`), or None."""
  rules = record_rules(spec)
  context = record.context.feature
  for rule in rules:  # context types first: a wrong type makes the parse itself fail
    feature = context.get(rule.key) if rule.check not in (FEATURE, FRAMES) else None
    if feature is None:  # (features check their own type, naming the size expected)
      continue
    kind, values = records.feature_values(feature)
    if kind is not None and kind != rule.kind:
      return RecordProblem("type", rule.key, f"'{rule.key}' holds {_kind_name(kind)} values; "
                           f"expected {rule.kind}")
    if rule.check == ID and len(values) > 1:
      return RecordProblem("type", rule.key, f"'{rule.key}' holds {len(values)} values; "
                           "expected one")
  problem = _level_problem(record, spec)
  if problem is not None:
    return problem
  for rule in rules:
    problem = _CHECKS[rule.check](record, rule) if rule.check in _CHECKS else None
    if problem is not None:
      return problem
  return None


def _level_problem(record, spec):
  """Video-level records read as frame-level ones, or the reverse (a flag mistake)."""
  context, lists = record.context.feature, record.feature_lists.feature_list
  names = ", ".join(spec.feature_names)
  if not spec.frame_features and lists and not any(n in context for n in spec.feature_names):
    return RecordProblem(
        "format", spec.feature_names[0], f"holds frame-level records (tf.train.SequenceExample "
        f"with the feature lists {', '.join(sorted(lists))}) but video-level features ({names}) "
        "were requested; expected tf.train.Example records: add --frame_features (with frame "
        "feature names such as rgb,audio) or read the video-level files")
  if spec.frame_features and not lists:
    float_keys = sorted(k for k, f in context.items() if f.WhichOneof("kind") == "float_list")
    if float_keys:
      return RecordProblem(
          "format", spec.feature_names[0], f"holds video-level records (tf.train.Example with "
          f"the features {', '.join(float_keys)}) but frame-level features ({names}) were "
          "requested (--frame_features); expected tf.train.SequenceExample records: drop "
          "--frame_features (with video feature names such as mean_rgb,mean_audio) or read the "
          "frame-level files")
  return None


def _context_values(record, key):
  feature = record.context.feature.get(key)
  return [] if feature is None else records.feature_values(feature)[1]


def _check_class_ids(record, rule):
  for value in _context_values(record, rule.key):
    if value < 0 or value >= rule.limit:
      return RecordProblem("label", rule.key, f"'{rule.key}' holds the class id {value}; "
                           f"expected 0 <= id < num_classes={rule.limit} {_NUM_CLASSES_HINT}")
  return None


def _check_feature(record, rule):
  context = record.context.feature
  feature = context.get(rule.key)
  if feature is None:
    present = ", ".join(sorted(k for k in context if k not in ("id", "video_id", "labels")))
    return RecordProblem("missing", rule.key, f"feature '{rule.key}' is missing (the record "
                         f"has: {present or 'no features'}); expected {rule.size} floats "
                         "(--feature_names)")
  kind, values = records.feature_values(feature)
  if kind != "float":
    return RecordProblem("type", rule.key, f"feature '{rule.key}' holds {_kind_name(kind)} "
                         f"values; expected {rule.size} floats")
  if len(values) != rule.size:
    return RecordProblem("size", rule.key, f"feature '{rule.key}' has {len(values)} values; "
                         f"expected {rule.size} (--feature_sizes)")
  array = np.asarray(values, dtype=np.float32)
  bad = np.flatnonzero(~np.isfinite(array))
  if bad.size:
    return RecordProblem("nonfinite", rule.key, f"feature '{rule.key}' has a {array[bad[0]]} "
                         f"value at index {bad[0]}; expected finite floats")
  return None


def _check_frames(record, rule):
  lists = record.feature_lists.feature_list
  feature_list = lists.get(rule.key)
  if feature_list is None:
    present = ", ".join(sorted(lists)) or "none"
    return RecordProblem("missing", rule.key, f"feature list '{rule.key}' is missing (the "
                         f"record's feature lists: {present}); expected {rule.size} uint8 values "
                         "per frame (--feature_names)")
  if not feature_list.feature:
    return RecordProblem("frames", rule.key, f"feature '{rule.key}' has zero frames; expected a "
                         "video with at least one frame")
  for t, frame in enumerate(feature_list.feature):
    kind, values = records.feature_values(frame)
    if kind != "bytes":
      return RecordProblem("type", rule.key, f"feature '{rule.key}' frame {t} holds "
                           f"{_kind_name(kind)} values; expected one bytes value of {rule.size} "
                           "quantized uint8 values")
    if len(values) != 1:
      return RecordProblem("type", rule.key, f"feature '{rule.key}' frame {t} holds "
                           f"{len(values)} bytes values; expected one")
    if t < rule.limit and len(values[0]) != rule.size:
      return RecordProblem("size", rule.key, f"feature '{rule.key}' frame {t} has "
                           f"{len(values[0])} bytes; expected {rule.size} (--feature_sizes)")
  return None


def _check_segment_scores(record, rule):
  keys = ("segment_labels", "segment_start_times", rule.key)
  lengths = [len(_context_values(record, key)) for key in keys]
  if len(set(lengths)) > 1:
    return RecordProblem("segments", "segment_labels", f"{', '.join(keys[:2])} and {keys[2]} "
                         f"have {lengths[0]}, {lengths[1]} and {lengths[2]} values; expected "
                         "the same number")
  return None


def _check_segment_starts(record, rule):
  for start in _context_values(record, rule.key):
    if start < 0 or start > rule.limit:
      return RecordProblem("segments", rule.key, f"segment start time {start} is outside the "
                           f"video; expected {rule.expected}")
  return None


# ID has no check of its own: its type and count are checked with the other types.
_CHECKS = {CLASS_IDS: _check_class_ids, FEATURE: _check_feature,
           FRAMES: _check_frames, SEGMENT_SCORES: _check_segment_scores,
           SEGMENT_STARTS: _check_segment_starts}


# ----------------------------------------------------------------------------------------
# Parsed records -> model inputs (the LiteRT reader's values)
# ----------------------------------------------------------------------------------------

def model_inputs_of(record, spec):
  """A valid record's model inputs: {name: float32 [D]} (video-level), or {name: uint8
  [max_frames, D] zero-padded, "num_frames": frames of the first feature, at most
  max_frames} (frame-level), the values `yt8m_fusion.data.load_dataset(..., dequantize=False)`
  gives. Check it first (`check_record`)."""
  values = {}
  if not spec.frame_features:
    for name in spec.feature_names:
      values[name] = np.asarray(record.context.feature[name].float_list.value, np.float32)
    return values
  num_frames = None
  for name, size in zip(spec.feature_names, spec.feature_sizes):
    frames = record.feature_lists.feature_list[name].feature[:spec.max_frames]
    kept = np.zeros((spec.max_frames, size), np.uint8)
    kept[:len(frames)] = np.frombuffer(b"".join(f.bytes_list.value[0] for f in frames),
                                       np.uint8).reshape(len(frames), size)
    values[name] = kept
    if num_frames is None:
      num_frames = len(frames)  # the first feature's, as the starter
  values["num_frames"] = np.int32(num_frames)
  return values
