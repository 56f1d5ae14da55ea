"""Synthetic YouTube-8M data, in exactly the YouTube-8M record formats.

    python -m yt8m_fusion.data.synthetic --output_dir DIR [--frame_features | --both_formats]
        [--num_videos N] [--num_classes C] [--seed S]

or `generate_dataset(output_dir, num_videos=..., frame_features=..., ...)`.

Files: `train-0000k-of-0000n.tfrecord`, `validate-...`, `test-...` (several shards per
split; test records carry no labels, as on Kaggle) and `vocabulary.csv`. Video-level
records are tf.train.Examples ("id", "labels", "mean_rgb" 1024 floats, "mean_audio" 128
floats); frame-level records are tf.train.SequenceExamples (context "id", "labels";
feature lists "rgb", "audio": one 1024- / 128-byte quantized frame per second). With
`both_formats` the same videos are written to `DIR/video/` and `DIR/frame/` sharing
`DIR/vocabulary.csv`; the video-level means are the means of the *dequantized* frames
written to the frame-level files, as YouTube-8M defines them.

Generative model (details in docs/DATA.md; the learnability measured on the demo in
docs/PERFORMANCE.md):

* Classes. Frequencies follow a Zipf law, p(c) ~ (c + 2)^-1.2 (class 0 is the most
  common, as in YouTube-8M's vocabulary). Classes fall in 24 "verticals"; the 24 most
  common classes head them. Each class shows its evidence in one of four ways:
  visual only (30%), audio only (25%), both modalities (20%, each at 0.6 strength),
  or split (25%): split classes come in 3x3 grids that share 3 visual and 3 audio
  patterns, class (i, j) showing visual pattern i and audio pattern j, so that
  neither modality alone tells the 3 classes of a row (or column) apart and only
  their combination identifies the class.
* Labels. A video draws its first label from the Zipf law, the head of that label's
  vertical with probability 0.5, and Poisson(2.5) more labels, each from the same
  vertical with probability 0.6 (else from the whole vocabulary): about 3 distinct
  labels per video, co-occurring inside verticals.
* Frames. 1 frame per second, a uniform number of frames in [min_frames, max_frames].
  Each modality's frame is: a global mean + a per-video offset (isotropic, and along
  16 shared "nuisance" directions) + a per-shot vector (shots of ~8 frames) + per-frame
  jitter + class evidence. A label's evidence (the class's random unit pattern times
  12 times a per-video strength in [0.6, 1.4]) is present in one window covering
  25-100% of the frames; 10% of labels show no evidence at all (label noise) and 30% of
  videos show half-strength evidence of a class they are not labelled with
  (distractors). Frames are quantized to uint8 with the feature extractor's formula;
  video-level features are the means of the dequantized frames.
* Segment ratings (option `segment_labels`, validate split of the frame-level files):
  per label, a 5-frame segment inside its evidence window rated 1 and one outside it
  rated 0, in the 2019 format (segment_labels, segment_start_times, segment_end_times,
  segment_scores).

Everything is drawn from numpy Generators seeded by `seed`: the same seed gives
byte-identical files.
"""

import dataclasses
import json
import os
import string
import time

import numpy as np

from yt8m_fusion.core.spec import SEGMENT_SIZE

GENERATOR_VERSION = "1"
FEATURE_SIZES = {"rgb": 1024, "audio": 128}
VIDEO_FEATURES = {"rgb": "mean_rgb", "audio": "mean_audio"}
VERTICALS = (
    "Games", "Arts & Entertainment", "Autos & Vehicles", "Sports", "Food & Drink",
    "Pets & Animals", "Computers & Electronics", "Hobbies & Leisure", "Beauty & Fitness",
    "Business & Industrial", "Science", "Home & Garden", "Travel", "Shopping",
    "Law & Government", "Jobs & Education", "Internet & Telecom", "Books & Literature",
    "Health", "News", "Real Estate", "Finance", "People & Society", "Reference")
MODALITIES = ("visual", "audio", "both", "split")


@dataclasses.dataclass(frozen=True)
class GeneratorParams:
  """The knobs of the generative model (defaults are the documented model)."""

  zipf_exponent: float = 1.2
  zipf_offset: float = 2.0
  modality_probs: tuple = (0.30, 0.25, 0.20, 0.25)  # visual, audio, both, split
  extra_labels_mean: float = 2.5
  same_vertical_prob: float = 0.6
  head_label_prob: float = 0.5
  missing_evidence_prob: float = 0.1
  distractor_prob: float = 0.3
  distractor_strength: float = 0.5
  window_fraction: tuple = (0.25, 1.0)
  strength_range: tuple = (0.6, 1.4)
  # Per modality: (evidence amplitude, per-video sigma, nuisance sigma, shot sigma, jitter sigma)
  visual: tuple = (12.0, 0.30, 0.25, 0.25, 0.20)
  audio: tuple = (12.0, 0.35, 0.30, 0.30, 0.25)
  both_scale: float = 0.6  # evidence per modality of "both" classes
  mean_sigma: float = 0.3
  nuisance_dims: int = 16
  bank_size: int = 4096
  shot_length: float = 8.0


class _World:
  """The fixed part of the generative model: classes, patterns, noise banks."""

  def __init__(self, num_classes, seed, params):
    rng = np.random.default_rng([seed, 1])
    self.params = params
    self.num_classes = num_classes
    ranks = np.arange(num_classes, dtype=np.float64)
    freq = (ranks + params.zipf_offset) ** -params.zipf_exponent
    self.freq = freq / freq.sum()
    self.cum_freq = np.cumsum(self.freq)
    num_verticals = min(len(VERTICALS), num_classes)
    self.vertical = np.empty(num_classes, np.int64)
    self.vertical[:num_verticals] = np.arange(num_verticals)
    self.vertical[num_verticals:] = rng.integers(0, num_verticals, num_classes - num_verticals)
    self.vertical_classes = [np.flatnonzero(self.vertical == v) for v in range(num_verticals)]
    self.vertical_cum = [np.cumsum(self.freq[c]) / self.freq[c].sum()
                         for c in self.vertical_classes]
    modality = rng.choice(4, size=num_classes, p=np.asarray(params.modality_probs))
    # Split classes in 3x3 grids; leftovers become "both".
    split = np.flatnonzero(modality == 3)
    grid_count = len(split) // 9
    modality[split[grid_count * 9:]] = 2
    self.modality = modality
    visual_index = np.arange(num_classes)
    audio_index = np.arange(num_classes)
    order = rng.permutation(split[:grid_count * 9]).reshape(grid_count, 3, 3) if grid_count \
        else np.zeros((0, 3, 3), np.int64)
    for grid in order:
      for i in range(3):
        for j in range(3):
          visual_index[grid[i, j]] = grid[i, 0]  # row i shares a visual pattern
          audio_index[grid[i, j]] = grid[0, j]   # column j shares an audio pattern
    self.grids = order
    self.modality_names = [MODALITIES[m] for m in modality]
    self.patterns = {}
    self.amplitude = {}
    self.mean = {}
    self.nuisance = {}
    self.bank = {}
    for name, size, sub, index, settings in (
        ("rgb", FEATURE_SIZES["rgb"], 0, visual_index, params.visual),
        ("audio", FEATURE_SIZES["audio"], 1, audio_index, params.audio)):
      patterns = rng.standard_normal((num_classes, size)).astype(np.float32)
      patterns /= np.linalg.norm(patterns, axis=1, keepdims=True)
      self.patterns[name] = patterns[index]
      amplitude = np.full(num_classes, settings[0], np.float32)
      amplitude[modality == (1 - sub)] = 0.0  # visual-only classes have no audio, and v.v.
      amplitude[modality == 2] *= params.both_scale
      self.amplitude[name] = amplitude
      self.mean[name] = (rng.standard_normal(size) * params.mean_sigma).astype(np.float32)
      nuisance = rng.standard_normal((params.nuisance_dims, size)).astype(np.float32)
      self.nuisance[name] = nuisance / np.linalg.norm(nuisance, axis=1, keepdims=True) * np.sqrt(
          size / params.nuisance_dims)
      self.bank[name] = rng.standard_normal((params.bank_size, size)).astype(np.float32)

  def sample_labels(self, rng):
    p = self.params
    first = int(np.searchsorted(self.cum_freq, rng.random() * self.cum_freq[-1]))
    first = min(first, self.num_classes - 1)
    labels = [first]
    vertical = self.vertical[first]
    if vertical < len(self.vertical_classes) and rng.random() < p.head_label_prob:
      labels.append(int(vertical))
    for _ in range(rng.poisson(p.extra_labels_mean)):
      if rng.random() < p.same_vertical_prob:
        classes = self.vertical_classes[vertical]
        pick = np.searchsorted(self.vertical_cum[vertical], rng.random())
        labels.append(int(classes[min(pick, len(classes) - 1)]))
      else:
        pick = np.searchsorted(self.cum_freq, rng.random() * self.cum_freq[-1])
        labels.append(int(min(pick, self.num_classes - 1)))
    return sorted(set(labels))

  def sample_video(self, rng, num_frames):
    """-> labels, {name: uint8 [T, D]}, evidence windows {label: (start, end)}."""
    from yt8m_fusion.data import quantization  # pylint: disable=import-outside-toplevel
    p = self.params
    labels = self.sample_labels(rng)
    shown = [c for c in labels if rng.random() >= p.missing_evidence_prob]
    strengths = list(rng.uniform(*p.strength_range, size=len(shown)))
    if rng.random() < p.distractor_prob:
      distractor = int(min(np.searchsorted(self.cum_freq, rng.random() * self.cum_freq[-1]),
                           self.num_classes - 1))
      if distractor not in labels:
        shown.append(distractor)
        strengths.append(p.distractor_strength)
    windows = {}
    mask = np.zeros((num_frames, len(shown)), np.float32)
    for k, c in enumerate(shown):
      length = max(1, int(round(num_frames * rng.uniform(*p.window_fraction))))
      start = int(rng.integers(0, num_frames - length + 1))
      mask[start:start + length, k] = strengths[k]
      windows[c] = (start, start + length)
    shot_of_frame = np.minimum(
        np.cumsum(rng.random(num_frames) < 1.0 / p.shot_length), num_frames - 1)
    num_shots = int(shot_of_frame[-1]) + 1
    frames = {}
    for name, settings in (("rgb", p.visual), ("audio", p.audio)):
      _, video_sigma, nuisance_sigma, shot_sigma, jitter_sigma = settings
      size = FEATURE_SIZES[name]
      bank = self.bank[name]
      offset = (self.mean[name]
                + rng.standard_normal(size, dtype=np.float32) * video_sigma
                + (rng.standard_normal(p.nuisance_dims, dtype=np.float32) * nuisance_sigma)
                @ self.nuisance[name])
      shots = bank[rng.integers(0, len(bank), num_shots)] * shot_sigma
      jitter = bank[rng.integers(0, len(bank), num_frames)] * jitter_sigma
      x = jitter
      x += shots[shot_of_frame]
      x += offset
      if shown:
        evidence = self.patterns[name][shown] * self.amplitude[name][shown, None]
        x += mask @ evidence
      frames[name] = quantization.quantize(x)
    return labels, frames, windows


def _video_ids(rng, count):
  alphabet = np.array(list(string.ascii_letters + string.digits))
  codes = rng.choice(len(alphabet) ** 4, size=count, replace=False)
  digits = np.stack([(codes // len(alphabet) ** k) % len(alphabet) for k in range(4)], axis=1)
  return ["".join(alphabet[row]) for row in digits]


def _segments(rng, labels, windows, num_frames):
  """2019-style ratings: per label a positive segment in its window, a negative outside."""
  starts = np.arange(0, max(num_frames - SEGMENT_SIZE, 0) + 1, SEGMENT_SIZE)
  seg_labels, seg_starts, seg_scores = [], [], []
  for c in labels:
    start, end = windows.get(c, (0, 0))
    inside = starts[(starts >= start) & (starts + SEGMENT_SIZE <= end)]
    outside = starts[(starts + SEGMENT_SIZE <= start) | (starts >= end)]
    if inside.size:
      seg_labels.append(c)
      seg_starts.append(int(rng.choice(inside)))
      seg_scores.append(1.0)
    if outside.size:
      seg_labels.append(c)
      seg_starts.append(int(rng.choice(outside)))
      seg_scores.append(0.0)
  return {"segment_labels": seg_labels, "segment_start_times": seg_starts,
          "segment_end_times": [s + SEGMENT_SIZE for s in seg_starts],
          "segment_scores": seg_scores}


def split_sizes(num_videos, fractions=(0.75, 0.125, 0.125)):
  """train/validate/test counts (the demo's 4000 -> 3000/500/500)."""
  validate = int(round(num_videos * fractions[1]))
  test = int(round(num_videos * fractions[2]))
  return {"train": num_videos - validate - test, "validate": validate, "test": test}


def generate_dataset(output_dir, *, num_videos=1000, frame_features=False, num_classes=3862,
                     seed=0, both_formats=False, num_shards=4, min_frames=30, max_frames=300,
                     split_fractions=(0.75, 0.125, 0.125), segment_labels=False, params=None):
  """Writes a synthetic dataset in the YouTube-8M formats; returns a dict describing it.

  Args:
    output_dir: created if needed.
    num_videos: videos in all, split train/validate/test by `split_fractions`.
    frame_features: write frame-level records (else video-level). Ignored with
      `both_formats`, which writes both, to output_dir/video and output_dir/frame.
    num_classes: vocabulary size (3862 as YouTube-8M 2018).
    seed: everything is a deterministic function of the seed and the arguments.
    num_shards: files per split (fewer for tiny splits: at most one per video).
    min_frames, max_frames: frame counts are uniform in [min_frames, max_frames].
    segment_labels: add 2019-style segment ratings to the frame-level validate records.
    params: a GeneratorParams to change the generative model.

  Returns:
    {"output_dir", "vocabulary": path, "video": {split: glob} or None,
     "frame": {split: glob} or None, "num_videos": {split: count}, "seconds": float}
  """
  from yt8m_fusion.data import quantization  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.data import records  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.data import vocabulary  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  started = time.time()
  if num_videos < 1 or num_classes < 2 or not 1 <= min_frames <= max_frames:
    raise ValueError("need num_videos >= 1, num_classes >= 2, 1 <= min_frames <= max_frames")
  params = params or GeneratorParams()
  world = _World(num_classes, seed, params)
  output_dir = os.fspath(output_dir)
  formats = ("video", "frame") if both_formats else (("frame",) if frame_features else ("video",))
  dirs = {fmt: (os.path.join(output_dir, fmt) if both_formats else output_dir) for fmt in formats}
  for path in dirs.values():
    tf.io.gfile.makedirs(path)
  sizes = split_sizes(num_videos, split_fractions)
  rng = np.random.default_rng([seed, 2])
  ids = _video_ids(rng, num_videos)
  frame_counts = rng.integers(min_frames, max_frames + 1, size=num_videos)
  train_counts = np.zeros(num_classes, np.int64)
  video = 0
  for split, count in sizes.items():
    if count == 0:
      continue
    shards = max(1, min(num_shards, count))
    for shard, members in enumerate(np.array_split(np.arange(video, video + count), shards)):
      name = f"{split}-{shard:05d}-of-{shards:05d}.tfrecord"
      writers = {fmt: tf.io.TFRecordWriter(os.path.join(dirs[fmt], name)) for fmt in formats}
      for index in members:
        labels, frames, windows = world.sample_video(rng, int(frame_counts[index]))
        if split == "train":
          train_counts[labels] += 1
        written_labels = None if split == "test" else labels
        if "frame" in writers:
          segments = _segments(rng, labels, windows, int(frame_counts[index])) \
              if (segment_labels and split == "validate") else None
          writers["frame"].write(records.make_frame_example(
              ids[index], written_labels, frames, segments=segments).SerializeToString())
        if "video" in writers:
          means = {VIDEO_FEATURES[n]: quantization.dequantize_numpy(q).mean(axis=0,
                                                                             dtype=np.float64)
                   for n, q in frames.items()}
          writers["video"].write(records.make_video_example(
              ids[index], written_labels, means).SerializeToString())
      for writer in writers.values():
        writer.close()
    video += count

  vocab_path = os.path.join(output_dir, "vocabulary.csv")
  rows = []
  for c in range(num_classes):
    vertical = VERTICALS[world.vertical[c]]
    kind = world.modality_names[c]
    rows.append({"Index": c, "TrainVideoCount": int(train_counts[c]),
                 "KnowledgeGraphId": f"/m/syn{c:05d}", "Name": f"{vertical} {kind} class {c}",
                 "WikiUrl": "", "Vertical1": vertical,
                 "WikiDescription": f"Synthetic class {c}, evidence: {kind}, "
                                    f"frequency rank {c}."})
  vocabulary.write_vocabulary(vocab_path, rows)
  info = {
      "generator_version": GENERATOR_VERSION, "seed": seed, "num_classes": num_classes,
      "num_videos": sizes, "min_frames": min_frames, "max_frames": max_frames,
      "segment_labels": bool(segment_labels), "params": dataclasses.asdict(params),
      "class_modality": world.modality_names,
      "split_grids": world.grids.tolist(),
  }
  with tf.io.gfile.GFile(os.path.join(output_dir, "synthetic_info.json"), "w") as handle:
    handle.write(json.dumps(info) + "\n")
  patterns = {fmt: {split: os.path.join(dirs[fmt], f"{split}-*.tfrecord")
                    for split, count in sizes.items() if count}
              for fmt in formats}
  return {"output_dir": output_dir, "vocabulary": vocab_path,
          "video": patterns.get("video"), "frame": patterns.get("frame"),
          "num_videos": sizes, "seconds": time.time() - started}


if __name__ == "__main__":  # python -m yt8m_fusion.data.synthetic: see yt8m_fusion.cli.synthetic
  from yt8m_fusion.cli.synthetic import run  # pylint: disable=import-outside-toplevel
  run()
