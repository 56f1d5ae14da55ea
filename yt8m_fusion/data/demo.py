"""The demo dataset: synthetic YouTube-8M data generated once and cached.

`ensure_demo_dataset()` returns the paths of a synthetic dataset of 4000 videos
(train/validate/test 3000/500/500, 3862 classes) written in both formats, video-level
(`mean_rgb`, `mean_audio`) and frame-level (`rgb`, `audio`, 20-60 frames per video; the
validate split also carries 2019-style segment ratings), with one `vocabulary.csv`.

It lives in `$YT8M_FUSION_DEMO_DIR` (default `~/.cache/yt8m_fusion/demo`) under a folder
named after the generator version and the demo settings, so a changed generator
regenerates it. Generation (seconds; docs/PERFORMANCE.md) writes into a temporary folder
that is renamed when complete: an interrupted run leaves nothing that looks finished.
"""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time

from yt8m_fusion.data import synthetic

_LOG = logging.getLogger("yt8m_fusion.data")
ENV_VAR = "YT8M_FUSION_DEMO_DIR"
DEFAULT_DIR = os.path.join("~", ".cache", "yt8m_fusion", "demo")
DEMO_SETTINGS = {
    "num_videos": 4000, "num_classes": 3862, "seed": 0, "num_shards": 4,
    "min_frames": 20, "max_frames": 60, "segment_labels": True,
}


@dataclasses.dataclass(frozen=True)
class DemoDataset:
  """Paths (globs) of the demo dataset. Also readable as a dict: demo["video_train"]."""

  root: str
  vocabulary: str
  num_classes: int
  video_train: str
  video_validate: str
  video_test: str
  frame_train: str
  frame_validate: str
  frame_test: str

  def patterns(self, frame_features):
    """{"train", "validate", "test"} -> glob, for one format."""
    prefix = "frame" if frame_features else "video"
    return {split: getattr(self, f"{prefix}_{split}") for split in ("train", "validate", "test")}

  def as_dict(self):
    return dataclasses.asdict(self)

  def __getitem__(self, key):
    return self.as_dict()[key]


def demo_version(settings=None):
  """Folder name: the generator version plus a hash of the settings and model parameters."""
  settings = DEMO_SETTINGS if settings is None else settings
  text = json.dumps({"settings": settings,
                     "params": dataclasses.asdict(synthetic.GeneratorParams())}, sort_keys=True)
  digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
  return f"synthetic-v{synthetic.GENERATOR_VERSION}-{digest}"


def demo_dir():
  return os.path.expanduser(os.environ.get(ENV_VAR) or DEFAULT_DIR)


def _describe(path, settings):
  def glob(fmt, split):
    return os.path.join(path, fmt, f"{split}-*.tfrecord")
  return DemoDataset(
      root=path, vocabulary=os.path.join(path, "vocabulary.csv"),
      num_classes=settings["num_classes"],
      **{f"{fmt}_{split}": glob(fmt, split) for fmt in ("video", "frame")
         for split in ("train", "validate", "test")})


def _is_complete(path):
  return os.path.isfile(os.path.join(path, "vocabulary.csv")) and \
      os.path.isdir(os.path.join(path, "video")) and os.path.isdir(os.path.join(path, "frame"))


def ensure_demo_dataset(root=None, *, settings=None):
  """Generates the demo dataset unless it is cached; returns its DemoDataset (paths).

  Args:
    root: the cache folder (default `$YT8M_FUSION_DEMO_DIR` or ~/.cache/yt8m_fusion/demo).
    settings: overrides of DEMO_SETTINGS (tests use small ones); part of the folder name.
  Logs one line: that it uses the cached dataset, or that it generates it, and where.
  """
  settings = {**DEMO_SETTINGS, **(settings or {})}
  base = os.path.expanduser(root) if root else demo_dir()
  path = os.path.join(base, demo_version(settings))
  if _is_complete(path):
    _LOG.info("Using the demo dataset (synthetic YouTube-8M, %d videos) at %s",
              settings["num_videos"], path)
    return _describe(path, settings)
  _LOG.info("Generating the demo dataset (synthetic YouTube-8M, %d videos, once) into %s",
            settings["num_videos"], path)
  os.makedirs(base, exist_ok=True)
  temporary = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=base)
  try:
    started = time.time()
    synthetic.generate_dataset(temporary, both_formats=True, **settings)
    with open(os.path.join(temporary, "GENERATED"), "w", encoding="utf-8") as handle:
      handle.write(f"{time.time() - started:.1f} s\n")
    if os.path.isdir(path) and not _is_complete(path):
      shutil.rmtree(path, ignore_errors=True)  # a leftover that is not ours to trust
    try:
      os.rename(temporary, path)
    except OSError:
      if not _is_complete(path):  # another process finished first: use its copy
        raise
  finally:
    shutil.rmtree(temporary, ignore_errors=True)
  return _describe(path, settings)
