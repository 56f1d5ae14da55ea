"""The synthetic generator and the demo dataset: formats, determinism, caching."""

import dataclasses
import glob
import hashlib
import logging
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from yt8m_fusion import data
from yt8m_fusion.cli import synthetic as synthetic_cli
from yt8m_fusion.data import demo
from yt8m_fusion.data import records
from yt8m_fusion.data import synthetic
from yt8m_fusion.errors import UserError

SMALL = dict(num_videos=24, num_classes=50, min_frames=6, max_frames=20, num_shards=2)


def _digests(root):
  result = {}
  for path in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
    if os.path.isfile(path):
      with open(path, "rb") as handle:
        result[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
  return result


@pytest.fixture(scope="module")
def both(tmp_path_factory):
  root = tmp_path_factory.mktemp("both")
  info = data.generate_dataset(str(root), both_formats=True, seed=3, segment_labels=True, **SMALL)
  return root, info


def test_layout_and_splits(both):
  root, info = both
  assert info["num_videos"] == {"train": 18, "validate": 3, "test": 3}
  names = sorted(os.listdir(root / "video"))
  assert names == sorted(os.listdir(root / "frame"))
  assert names == ["test-00000-of-00002.tfrecord", "test-00001-of-00002.tfrecord",
                   "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
                   "validate-00000-of-00002.tfrecord", "validate-00001-of-00002.tfrecord"]
  assert info["video"]["train"] == str(root / "video" / "train-*.tfrecord")
  assert info["vocabulary"] == str(root / "vocabulary.csv")


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
  for name, seed in (("a", 1), ("b", 1), ("c", 2)):
    data.generate_dataset(str(tmp_path / name), frame_features=True, seed=seed, **SMALL)
  assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
  a, c = _digests(tmp_path / "a"), _digests(tmp_path / "c")
  assert a.keys() == c.keys()
  assert all(a[k] != c[k] for k in a if k.endswith(".tfrecord"))
  assert not glob.glob(str(tmp_path / "a" / "video"))  # frame-level only, straight into the dir


def test_record_formats(both):
  root, _ = both
  frames = {r["context"]["id"][0]: r for f in sorted(glob.glob(str(root / "frame" / "*")))
            for r in records.read_records_python(f)}
  videos = {r["context"]["id"][0]: (os.path.basename(f), r)
            for f in sorted(glob.glob(str(root / "video" / "*")))
            for r in records.read_records_python(f)}
  assert frames.keys() == videos.keys() and len(frames) == 24
  for video_id, (filename, video) in videos.items():
    frame = frames[video_id]
    assert len(video_id) == 4
    rgb, audio = frame["frames"]["rgb"], frame["frames"]["audio"]
    assert rgb.dtype == np.uint8 and rgb.shape[1] == 1024 and audio.shape[1] == 128
    assert 6 <= len(rgb) <= 20 and len(audio) == len(rgb)
    # Video-level means are the means of the dequantized frames.
    np.testing.assert_allclose(video["context"]["mean_rgb"],
                               data.dequantize_numpy(rgb).mean(axis=0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(video["context"]["mean_audio"],
                               data.dequantize_numpy(audio).mean(axis=0), rtol=0, atol=1e-6)
    if filename.startswith("test"):
      assert "labels" not in video["context"] and "labels" not in frame["context"]
    else:
      labels = video["context"]["labels"]
      assert labels and labels == frame["context"]["labels"]
      assert all(0 <= label < 50 for label in labels)
    has_segments = "segment_labels" in frame["context"]
    assert has_segments == filename.startswith("validate")


def test_vocabulary_is_readable_csv(both):
  root, _ = both
  vocabulary = data.read_vocabulary(str(root / "vocabulary.csv"))
  assert sorted(vocabulary) == list(range(50))
  assert all(isinstance(name, str) and name for name in vocabulary.values())
  with open(root / "vocabulary.csv", encoding="utf-8") as handle:
    assert handle.readline().startswith("Index,TrainVideoCount,KnowledgeGraphId,Name,")


def test_read_back_with_the_readers(both):
  root, info = both
  frames = data.DataSpec(frame_features=True, feature_names=("rgb", "audio"),
                         feature_sizes=(1024, 128), num_classes=50, max_frames=20)
  batch = next(iter(data.load_dataset(info["frame"]["train"], frames, batch_size=64,
                                      dequantize=False).dataset))
  assert batch["rgb"].shape == (18, 20, 1024) and batch["labels"].shape == (18, 50)
  assert (batch["labels"].numpy().sum(axis=1) >= 1).all()
  segments = list(data.load_dataset(info["frame"]["validate"],
                                    dataclasses.replace(frames, segment_labels=True),
                                    batch_size=64).dataset)
  assert segments and (segments[0]["label_weights"].numpy().sum(axis=1) >= 1).all()
  videos = data.DataSpec(feature_names=("mean_rgb", "mean_audio"), feature_sizes=(1024, 128),
                         num_classes=50)
  video = next(iter(data.load_dataset(info["video"]["test"], videos).dataset))
  assert not video["labels"].numpy().any()


def test_statistics_of_the_generative_model():
  world = synthetic._World(3862, 0, synthetic.GeneratorParams())  # pylint: disable=protected-access
  rng = np.random.default_rng(0)
  labels = [world.sample_labels(rng) for _ in range(2000)]
  assert 2.5 < np.mean([len(l) for l in labels]) < 3.5
  counts = np.bincount(np.concatenate(labels), minlength=3862)
  assert counts[:10].sum() > counts[1000:].sum()  # Zipf-like head
  modality = np.array(world.modality_names)
  assert {"visual", "audio", "both", "split"} == set(modality)
  assert (world.amplitude["audio"][modality == "visual"] == 0).all()
  assert (world.amplitude["rgb"][modality == "audio"] == 0).all()
  grid = world.grids[0]  # 3x3: rows share the visual pattern, columns the audio pattern
  np.testing.assert_array_equal(world.patterns["rgb"][grid[1, 0]],
                                world.patterns["rgb"][grid[1, 2]])
  np.testing.assert_array_equal(world.patterns["audio"][grid[0, 1]],
                                world.patterns["audio"][grid[2, 1]])
  assert not np.array_equal(world.patterns["rgb"][grid[0, 0]], world.patterns["rgb"][grid[1, 0]])


def test_command_line(tmp_path):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] + sys.path))
  result = subprocess.run(
      [sys.executable, "-m", "yt8m_fusion.data.synthetic", f"--output_dir={tmp_path}",
       "--frame_features", "--num_videos=8", "--num_classes=20", "--max_frames=10",
       "--min_frames=5", "--num_shards=1"], capture_output=True, text=True, env=env, timeout=300)
  assert result.returncode == 0, result.stderr
  assert "Wrote 8 synthetic videos" in result.stdout
  assert sorted(os.listdir(tmp_path)) == [
      "synthetic_info.json", "test-00000-of-00001.tfrecord", "train-00000-of-00001.tfrecord",
      "validate-00000-of-00001.tfrecord", "vocabulary.csv"]


def test_command_line_errors():
  values = types.SimpleNamespace(output_dir="", min_frames=1, max_frames=5)
  with pytest.raises(UserError, match="--output_dir is required"):
    synthetic_cli.main(["prog"], values)
  values.output_dir, values.min_frames = "/tmp/x", 9
  with pytest.raises(UserError, match="--min_frames=9 is above --max_frames=5"):
    synthetic_cli.main(["prog"], values)
  with pytest.raises(UserError, match="unexpected arguments: extra"):
    synthetic_cli.main(["prog", "extra"], values)


def test_demo_dataset_generated_once_and_reused(tmp_path, monkeypatch, caplog):
  monkeypatch.setenv(demo.ENV_VAR, str(tmp_path / "cache"))
  settings = dict(num_videos=16, num_classes=30, min_frames=5, max_frames=10, num_shards=2)
  with caplog.at_level(logging.INFO, logger="yt8m_fusion.data"):
    first = data.ensure_demo_dataset(settings=settings)
  assert [r.getMessage() for r in caplog.records if "demo dataset" in r.getMessage()] == [
      f"Generating the demo dataset (synthetic YouTube-8M, 16 videos, once) into {first.root}"]
  assert first.root.startswith(str(tmp_path / "cache" / "synthetic-v"))
  assert os.listdir(tmp_path / "cache") == [os.path.basename(first.root)]  # no temp left
  assert len(glob.glob(first.video_train)) == 2 and len(glob.glob(first.frame_test)) == 2
  assert first.patterns(True)["validate"] == first.frame_validate
  assert first["vocabulary"] == first.vocabulary and os.path.isfile(first.vocabulary)
  caplog.clear()
  before = os.path.getmtime(first.vocabulary)
  with caplog.at_level(logging.INFO, logger="yt8m_fusion.data"):
    second = data.ensure_demo_dataset(settings=settings)
  assert second == first and os.path.getmtime(first.vocabulary) == before
  assert [r.getMessage() for r in caplog.records] == [
      f"Using the demo dataset (synthetic YouTube-8M, 16 videos) at {first.root}"]
  # Other settings (or another generator version) -> another folder.
  assert demo.demo_version({**demo.DEMO_SETTINGS, **settings}) != demo.demo_version()


def test_interrupted_demo_generation_leaves_nothing(tmp_path, monkeypatch):
  def explode(*args, **kwargs):
    raise KeyboardInterrupt
  monkeypatch.setattr(synthetic, "generate_dataset", explode)
  with pytest.raises(KeyboardInterrupt):
    demo.ensure_demo_dataset(root=str(tmp_path), settings=dict(num_videos=4))
  assert os.listdir(tmp_path) == []
