"""load_dataset / parse_serialized on real TFRecord files with known contents."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from yt8m_fusion import data
from yt8m_fusion.data import records
from yt8m_fusion.errors import UserError

VIDEO = data.DataSpec(feature_names=("mean_rgb", "mean_audio"), feature_sizes=(8, 4),
                      num_classes=20)
FRAME = data.DataSpec(frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(6, 3),
                      num_classes=20)


def _frame_spec(**changes):
  return dataclasses.replace(FRAME, **changes)


def _collect(dataset):
  batches = list(dataset)
  return {key: np.concatenate([b[key].numpy() for b in batches]) for key in batches[0]}, batches


def _video_records(count, seed=0, id_key="id", prefix="vid"):
  rng = np.random.default_rng(seed)
  items = []
  for i in range(count):
    rgb = rng.normal(size=8).astype(np.float32)
    audio = rng.normal(size=4).astype(np.float32)
    labels = [i % 20, (3 * i + 1) % 20]
    items.append((f"{prefix}{i}", labels, rgb, audio))
  recs = [records.make_video_example(v, l, {"mean_rgb": r, "mean_audio": a}, id_key=id_key)
          for v, l, r, a in items]
  return items, recs


def test_video_level_values_read_back_exactly(tmp_path):
  items, recs = _video_records(7)
  path = tmp_path / "train-0.tfrecord"
  records.write_tfrecord(path, recs)
  out, batches = _collect(data.load_dataset(str(path), VIDEO, batch_size=3).dataset)
  assert [b["mean_rgb"].shape[0] for b in batches] == [3, 3, 1]
  assert [v.decode() for v in out["video_ids"]] == [item[0] for item in items]
  np.testing.assert_array_equal(out["mean_rgb"], np.stack([item[2] for item in items]))
  np.testing.assert_array_equal(out["mean_audio"], np.stack([item[3] for item in items]))
  assert out["mean_rgb"].dtype == np.float32 and out["num_frames"].dtype == np.int32
  np.testing.assert_array_equal(out["num_frames"], np.ones(7))
  expected = np.zeros((7, 20), np.float32)
  for row, item in enumerate(items):
    expected[row, item[1]] = 1
  np.testing.assert_array_equal(out["labels"], expected)
  assert "label_weights" not in out


def test_video_id_key_of_2017_data_and_missing_labels(tmp_path):
  recs = [records.make_video_example("old1", [2, 2, 5], {"mean_rgb": np.ones(8), "mean_audio":
                                                          np.zeros(4)}, id_key="video_id"),
          records.make_video_example("new2", None, {"mean_rgb": np.ones(8), "mean_audio":
                                                    np.zeros(4)})]
  path = str(tmp_path / "mixed.tfrecord")
  records.write_tfrecord(path, recs)
  out, _ = _collect(data.load_dataset(path, VIDEO, batch_size=4).dataset)
  assert list(out["video_ids"]) == [b"old1", b"new2"]
  assert out["labels"][0].tolist() == [1.0 if c in (2, 5) else 0.0 for c in range(20)]
  assert not out["labels"][1].any()  # test split: no labels -> zeros


def _frame_records(tmp_path, counts, name="frames.tfrecord", audio_counts=None, seed=0):
  rng = np.random.default_rng(seed)
  videos = []
  for i, count in enumerate(counts):
    audio_count = count if audio_counts is None else audio_counts[i]
    rgb = rng.integers(0, 256, size=(count, 6), dtype=np.uint8)
    audio = rng.integers(0, 256, size=(audio_count, 3), dtype=np.uint8)
    if i == 0:
      rgb[0, :] = 0
      rgb[-1, :] = 255
    videos.append((f"f{i}", [i % 20], rgb, audio))
  path = str(tmp_path / name)
  records.write_tfrecord(path, [records.make_frame_example(v, l, {"rgb": r, "audio": a})
                                for v, l, r, a in videos])
  return path, videos


@pytest.mark.parametrize("batch_parse", [False, True])
def test_frame_level_dequantized_padded_and_truncated(tmp_path, batch_parse):
  path, videos = _frame_records(tmp_path, [4, 9, 1, 6], audio_counts=[4, 9, 3, 2])
  out, _ = _collect(data.load_dataset(path, _frame_spec(max_frames=6), batch_size=2,
                                      batch_parse_frames=batch_parse).dataset)
  assert out["rgb"].shape == (4, 6, 6) and out["audio"].shape == (4, 6, 3)
  assert out["rgb"].dtype == np.float32
  # num_frames = min(frames of the FIRST feature, max_frames).
  np.testing.assert_array_equal(out["num_frames"], [4, 6, 1, 6])
  for row, (_, _, rgb, audio) in enumerate(videos):
    for got, frames in ((out["rgb"][row], rgb), (out["audio"][row], audio)):
      kept = frames[:6]
      expected = np.zeros((6, frames.shape[1]), np.float32)
      expected[:len(kept)] = data.dequantize_numpy(kept)
      np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
  assert out["rgb"][0, 0, 0] == np.float32(-1.9921875)   # q = 0
  assert out["rgb"][0, 3, 0] == np.float32(2.0078125)    # q = 255
  assert not np.signbit(out["rgb"][0, 4:]).any()          # padding is +0.0, after dequantization
  assert (out["audio"][3, 2:] == 0).all()                 # audio has its own length (2)


@pytest.mark.parametrize("batch_parse", [False, True])
def test_frame_level_uint8_mode(tmp_path, batch_parse):
  path, videos = _frame_records(tmp_path, [3, 8])
  out, _ = _collect(data.load_dataset(path, _frame_spec(max_frames=5), batch_size=2,
                                      dequantize=False, batch_parse_frames=batch_parse).dataset)
  assert out["rgb"].dtype == np.uint8 and out["rgb"].shape == (2, 5, 6)
  np.testing.assert_array_equal(out["rgb"][0, :3], videos[0][2])
  assert (out["rgb"][0, 3:] == 0).all()  # padded with q=0
  np.testing.assert_array_equal(out["rgb"][1], videos[1][2][:5])
  np.testing.assert_array_equal(out["num_frames"], [3, 5])


def test_segment_batches(tmp_path):
  rng = np.random.default_rng(3)
  rgb = [rng.integers(0, 256, size=(n, 6), dtype=np.uint8) for n in (23, 12)]
  audio = [rng.integers(0, 256, size=(n, 3), dtype=np.uint8) for n in (23, 12)]
  segments = [
      {"segment_labels": [4, 7, 4, 9], "segment_start_times": [10, 10, 0, 20],
       "segment_scores": [1.0, 0.0, 1.0, 1.0]},
      {"segment_labels": [2], "segment_start_times": [5], "segment_scores": [0.0]},
  ]
  recs = [records.make_frame_example(f"s{i}", [1], {"rgb": rgb[i], "audio": audio[i]},
                                     segments=segments[i]) for i in range(2)]
  path = str(tmp_path / "validate.tfrecord")
  records.write_tfrecord(path, recs)
  out, batches = _collect(data.load_dataset(
      path, _frame_spec(segment_labels=True, max_frames=30), batch_size=3).dataset)
  assert [b["rgb"].shape[0] for b in batches] == [3, 1]  # batches count segments
  # Unique start times per video in order of appearance: (s0,10), (s0,0), (s0,20), (s1,5).
  assert list(out["video_ids"]) == [b"s0", b"s0", b"s0", b"s1"]
  np.testing.assert_array_equal(out["num_frames"], [5, 5, 5, 5])
  padded = np.zeros((30, 6), np.float32)
  padded[:23] = data.dequantize_numpy(rgb[0])
  for row, start in enumerate((10, 0, 20)):
    np.testing.assert_array_equal(out["rgb"][row], padded[start:start + 5])
  assert (out["rgb"][2][3:] == 0).all()  # frames 23, 24 are padding
  expected_labels = np.zeros((4, 20), np.float32)
  expected_weights = np.zeros((4, 20), np.float32)
  for row, pairs in enumerate([[(4, 1.0), (7, 0.0)], [(4, 1.0)], [(9, 1.0)], [(2, 0.0)]]):
    for cls, score in pairs:
      expected_labels[row, cls] = score
      expected_weights[row, cls] = 1.0
  np.testing.assert_array_equal(out["labels"], expected_labels)
  np.testing.assert_array_equal(out["label_weights"], expected_weights)


def test_parse_serialized_in_tf_function_matches_dataset(tmp_path):
  path, _ = _frame_records(tmp_path, [2, 7, 4])
  serialized = tf.constant(list(records.iterate_records(path)))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(batch):
    return data.parse_serialized(batch, _frame_spec(max_frames=5), dequantize=True)

  concrete = serve.get_concrete_function()
  assert concrete.structured_outputs["rgb"].shape.as_list() == [None, 5, 6]
  got = serve(serialized)
  for batch_parse in (False, True):
    want, _ = _collect(data.load_dataset(path, _frame_spec(max_frames=5), batch_size=8,
                                         batch_parse_frames=batch_parse).dataset)
    assert sorted(want) == sorted(got)
    for key in want:
      np.testing.assert_array_equal(got[key].numpy(), want[key])
      assert got[key].dtype == want[key].dtype


def test_patterns_lists_and_globs(tmp_path):
  for name in ("train-a.tfrecord", "train-b.tfrecord", "valid-a.tfrecord"):
    records.write_tfrecord(tmp_path / name, _video_records(2)[1])
  comma = f"{tmp_path}/train-*.tfrecord, {tmp_path}/valid-*.tfrecord"
  files = data.list_files(comma)
  assert [f.rsplit("/", 1)[1] for f in files] == ["train-a.tfrecord", "train-b.tfrecord",
                                                  "valid-a.tfrecord"]
  assert data.list_files([files[2], files[0], f"{tmp_path}/train-*"]) == [files[2], files[0],
                                                                         files[1]]
  batches = data.load_dataset(comma, VIDEO, batch_size=100)
  assert batches.files == tuple(files) and batches.skip_counter is None
  out, _ = _collect(batches.dataset)
  assert len(out["video_ids"]) == 6
  out, _ = _collect(data.load_dataset([files[0]], VIDEO, batch_size=100).dataset)
  assert len(out["video_ids"]) == 2


def test_shard_by_file_with_input_context(tmp_path):
  for shard in range(4):
    recs = [records.make_video_example(f"s{shard}-{i}", [shard], {"mean_rgb": np.zeros(8),
                                                                   "mean_audio": np.zeros(4)})
            for i in range(3)]
    records.write_tfrecord(tmp_path / f"train-{shard}.tfrecord", recs)
  pattern = f"{tmp_path}/train-*.tfrecord"
  context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                       num_replicas_in_sync=2)
  batches = data.load_dataset(pattern, VIDEO, batch_size=100, input_context=context)
  assert [f.rsplit("/", 1)[1] for f in batches.files] == ["train-1.tfrecord", "train-3.tfrecord"]
  out, _ = _collect(batches.dataset)
  assert sorted({v.decode().split("-")[0] for v in out["video_ids"]}) == ["s1", "s3"]
  context = tf.distribute.InputContext(num_input_pipelines=5, input_pipeline_id=0)
  with pytest.raises(UserError, match=r"4 file\(s\) but there are 5 input pipelines"):
    data.load_dataset(pattern, VIDEO, batch_size=4, input_context=context)


def test_shuffle_with_seed_epochs_and_drop_remainder(tmp_path):
  for shard in range(3):
    records.write_tfrecord(tmp_path / f"t{shard}.tfrecord",
                           _video_records(5, seed=shard, prefix=f"t{shard}-")[1])
  pattern = f"{tmp_path}/t*.tfrecord"

  def ids(**kwargs):
    return [v for b in data.load_dataset(pattern, VIDEO, batch_size=4, **kwargs).dataset
            for v in b["video_ids"].numpy()]

  first = ids(shuffle=True, seed=7, num_epochs=2)
  assert first == ids(shuffle=True, seed=7, num_epochs=2)
  assert sorted(first) == sorted(ids() * 2) and first != ids() * 2
  dataset = data.load_dataset(pattern, VIDEO, batch_size=4, drop_remainder=True).dataset
  assert dataset.element_spec["mean_rgb"].shape.as_list() == [4, 8]
  assert sum(int(b["num_frames"].shape[0]) for b in dataset) == 12


def test_parsing_choice_follows_the_first_record(tmp_path, monkeypatch):
  from yt8m_fusion.data import readers  # pylint: disable=import-outside-toplevel
  calls = []
  original = readers._parse_frame_record  # pylint: disable=protected-access

  def spy(*args, **kwargs):
    calls.append(1)
    return original(*args, **kwargs)

  monkeypatch.setattr(readers, "_parse_frame_record", spy)
  short, _ = _frame_records(tmp_path, [3, 4], name="short.tfrecord")
  data.load_dataset(short, FRAME, batch_size=2)
  assert not calls  # short videos: batch parsing
  monkeypatch.setattr(readers, "BATCH_PARSE_BELOW_FRAMES", 3)
  data.load_dataset(short, FRAME, batch_size=2)
  assert calls  # "long" videos: per-record parsing
