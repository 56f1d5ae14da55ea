"""Bad input becomes a one-line UserError naming the file, the feature and the expectation."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from programs import REPO
from yt8m_fusion import data
from yt8m_fusion.core.skipping import SkipCounter
from yt8m_fusion.litert import records as litert_records
from yt8m_fusion.data import records
from yt8m_fusion.errors import UserError

VIDEO_KW = dict(frame_features=False, feature_names=("mean_rgb", "mean_audio"),
                feature_sizes=(8, 4), num_classes=20)
FRAME_KW = dict(frame_features=True, feature_names=("rgb", "audio"), feature_sizes=(6, 3),
                num_classes=20)
VIDEO = data.DataSpec(**VIDEO_KW)
FRAME = data.DataSpec(**FRAME_KW)


def _video(i, labels=None, rgb=None, audio=None, **features):
  feats = {"mean_rgb": np.full(8, 0.5) if rgb is None else rgb,
           "mean_audio": np.zeros(4) if audio is None else audio}
  feats.update(features)
  feats = {k: v for k, v in feats.items() if v is not False}
  return records.make_video_example(f"v{i}", [i % 20] if labels is None else labels, feats)


def _frames(i, count=3, rgb_size=6, audio_count=None, labels=None):
  rgb = np.full((count, rgb_size), i % 256, np.uint8)
  audio = np.full((count if audio_count is None else audio_count, 3), 7, np.uint8)
  return records.make_frame_example(f"f{i}", [i % 20] if labels is None else labels,
                                    {"rgb": rgb, "audio": audio})


def _write(path, recs):
  records.write_tfrecord(path, recs)
  return str(path)


def _good_video_file(tmp_path, name="good.tfrecord", count=5):
  return _write(tmp_path / name, [_video(i) for i in range(count)])


def _iterate_and_explain(pattern, batch_parse_frames=None, **kwargs):
  """Iterates until the reader fails; returns the explained UserError.

  The up-front check reads only the first record, so the bad record must come later.
  """
  spec = data.DataSpec(**kwargs)
  dataset = data.load_dataset(pattern, spec, batch_size=4,
                              batch_parse_frames=batch_parse_frames).dataset
  with pytest.raises(tf.errors.OpError) as info:
    for _ in dataset:
      pass
  error = data.explain_read_error(info.value, pattern, spec)
  assert isinstance(error, UserError) and "\n" not in str(error)
  return str(error)


def test_empty_glob_and_directory(tmp_path):
  with pytest.raises(UserError, match=r"no files match '.*/nothing-\*\.tfrecord'"):
    data.load_dataset(f"{tmp_path}/nothing-*.tfrecord", VIDEO)
  _good_video_file(tmp_path)
  with pytest.raises(UserError, match=r"no files match '.*/missing\.tfrecord'"):
    data.list_files(f"{tmp_path}/good.tfrecord,{tmp_path}/missing.tfrecord")
  with pytest.raises(UserError, match="is a directory"):
    data.list_files(str(tmp_path))
  with pytest.raises(UserError, match="empty"):
    data.list_files(" , ")


def test_missing_feature_key(tmp_path):
  path = _write(tmp_path / "nokey.tfrecord", [_video(0, audio=False)])
  with pytest.raises(UserError) as info:
    data.load_dataset(path, VIDEO)
  message = str(info.value)
  assert path in message and "'mean_audio' is missing" in message and "record 0" in message
  # Not in the first record: found while iterating, then explained.
  path = _write(tmp_path / "nokey2.tfrecord",
                [_video(i) for i in range(5)] + [_video(5, audio=False)])
  message = _iterate_and_explain(path, **VIDEO_KW)
  assert path in message and "record 5" in message and "'mean_audio' is missing" in message


@pytest.mark.parametrize("batch_parse", [False, True])
def test_wrong_feature_size(tmp_path, batch_parse):
  path = _write(tmp_path / "size.tfrecord", [_video(0, rgb=np.zeros(16))])
  with pytest.raises(UserError, match=r"size\.tfrecord: record 0 \(id 'v0'\): feature 'mean_rgb' "
                     r"has 16 values; expected 8 \(--feature_sizes\)"):
    data.load_dataset(path, VIDEO)
  path = _write(tmp_path / "frames.tfrecord", [_frames(0), _frames(1), _frames(2, rgb_size=5)])
  message = _iterate_and_explain(path, batch_parse_frames=batch_parse, **FRAME_KW)
  assert path in message and "record 2" in message and "'rgb' frame 0 has 5 bytes; expected 6" \
      in message


def test_label_id_out_of_range(tmp_path):
  path = _write(tmp_path / "labels.tfrecord", [_video(0), _video(1, labels=[3, 25])])
  message = _iterate_and_explain(path, **VIDEO_KW)
  assert path in message and "record 1" in message and "class id 25" in message
  assert "num_classes=20" in message
  frames = _write(tmp_path / "frame_labels.tfrecord", [_frames(0), _frames(1, labels=[-1])])
  for batch_parse in (False, True):
    message = _iterate_and_explain(frames, batch_parse_frames=batch_parse, **FRAME_KW)
    assert frames in message and "record 1" in message and "class id -1" in message
  with pytest.raises(tf.errors.InvalidArgumentError, match="yt8m_fusion data check"):
    data.parse_serialized(tf.constant(list(records.iterate_records(path))), VIDEO)


def test_not_a_tfrecord_file_and_empty_file(tmp_path):
  path = tmp_path / "random.tfrecord"
  path.write_bytes(np.random.default_rng(0).bytes(3000))
  with pytest.raises(UserError, match=r"random\.tfrecord: the file is not a TFRecord file"):
    data.load_dataset(str(path), VIDEO)
  empty = tmp_path / "empty.tfrecord"
  empty.write_bytes(b"")
  with pytest.raises(UserError, match=r"empty\.tfrecord: the file is empty \(0 bytes\)"):
    data.load_dataset(str(empty), VIDEO)
  # Among good files too (local files are all checked for emptiness).
  _good_video_file(tmp_path, "a.tfrecord")
  with pytest.raises(UserError, match=r"empty\.tfrecord: the file is empty"):
    data.load_dataset(f"{tmp_path}/a.tfrecord,{empty}", VIDEO)


def test_truncated_file_and_bad_checksum(tmp_path):
  good = _good_video_file(tmp_path, "good.tfrecord", count=6)
  content = open(good, "rb").read()
  truncated = tmp_path / "truncated.tfrecord"
  truncated.write_bytes(content[:-40])
  message = _iterate_and_explain(str(truncated), **VIDEO_KW)
  assert str(truncated) in message and "is truncated" in message
  corrupted = bytearray(content)
  corrupted[len(content) // 2] ^= 0xFF
  bad = tmp_path / "checksum.tfrecord"
  bad.write_bytes(bytes(corrupted))
  message = _iterate_and_explain(str(bad), **VIDEO_KW)
  assert str(bad) in message and "corrupted record" in message
  # With the good file first in the list, the scan still names the bad one.
  message = _iterate_and_explain([good, str(bad)], **VIDEO_KW)
  assert str(bad) in message and good not in message


def test_video_vs_frame_level_mismatch(tmp_path):
  video = _good_video_file(tmp_path)
  with pytest.raises(UserError) as info:
    data.load_dataset(video, FRAME)
  message = str(info.value)
  assert video in message and "holds video-level records" in message
  assert "--frame_features" in message and "'rgb'" not in message
  frames = _write(tmp_path / "frames.tfrecord", [_frames(0)])
  with pytest.raises(UserError) as info:
    data.load_dataset(frames, VIDEO)
  message = str(info.value)
  assert frames in message and "holds frame-level records" in message
  assert "add --frame_features" in message
  # The same mistakes found while iterating are explained the same way (a file whose
  # first record matches passes the up-front check; the reader meets the other later).
  video_after_frames = _write(tmp_path / "video_after_frames.tfrecord", [_frames(0), _video(1)])
  message = _iterate_and_explain(video_after_frames, **FRAME_KW)
  assert video_after_frames in message and "record 1" in message
  assert "holds video-level records" in message
  frames_after_video = _write(tmp_path / "frames_after_video.tfrecord", [_video(0), _frames(1)])
  message = _iterate_and_explain(frames_after_video, **VIDEO_KW)
  assert frames_after_video in message and "record 1" in message
  assert "holds frame-level records" in message


def test_nan_and_inf_values(tmp_path):
  rgb = np.zeros(8)
  rgb[3] = np.nan
  path = _write(tmp_path / "nan.tfrecord", [_video(0), _video(1, rgb=rgb)])
  message = _iterate_and_explain(path, **VIDEO_KW)
  assert path in message and "record 1" in message and "'mean_rgb' has a nan value at index 3" \
      in message
  audio = np.zeros(4)
  audio[0] = -np.inf
  path = _write(tmp_path / "inf.tfrecord", [_video(0, audio=audio)])
  with pytest.raises(UserError, match=r"inf\.tfrecord: record 0.*'mean_audio' has a -inf value"):
    data.load_dataset(path, VIDEO)


@pytest.mark.parametrize("batch_parse", [False, True])
def test_video_with_zero_frames(tmp_path, batch_parse):
  path = _write(tmp_path / "zero.tfrecord", [_frames(0), _frames(1, count=0, audio_count=0)])
  message = _iterate_and_explain(path, batch_parse_frames=batch_parse, **FRAME_KW)
  assert path in message and "record 1" in message and "'rgb' has zero frames" in message


def test_skip_corrupt_records_counts_what_it_skips(tmp_path):
  rgb_nan = np.zeros(8)
  rgb_nan[0] = np.nan
  bad_records = [
      _video(0), _video(1, labels=[99]), _video(2), _video(3, rgb=np.zeros(9)),
      b"this is not a protocol buffer\xff\xff", _video(5, rgb=rgb_nan), _video(6, audio=False),
      _video(7)]
  mixed = _write(tmp_path / "a-mixed.tfrecord", bad_records)
  good = _write(tmp_path / "b-good.tfrecord", [_video(10 + i) for i in range(4)])
  content = open(_write(tmp_path / "c-full.tfrecord", [_video(20 + i) for i in range(6)]),
                 "rb").read()
  (tmp_path / "c-full.tfrecord").write_bytes(content[:-30])  # records 20-24 readable
  pattern = f"{tmp_path}/*.tfrecord"
  dataset, counter, _ = data.load_dataset(pattern, VIDEO, batch_size=3,
                                          skip_corrupt_records=True, num_readers=2)
  ids = sorted(v.decode() for b in dataset for v in b["video_ids"].numpy())
  assert ids == sorted(["v0", "v2", "v7"] + [f"v{10 + i}" for i in range(4)] +
                       [f"v{20 + i}" for i in range(5)])
  assert counter.invalid_records == 5
  assert counter.unreadable_files == 1 and counter.unreadable_bytes > 0
  assert "skipped 5 invalid record(s) and the unreadable rest of 1 file(s)" in counter.summary()
  del mixed, good
  # A second pass counts again: a second epoch, or iterating the dataset once more.
  dataset, counter, _ = data.load_dataset(pattern, VIDEO, batch_size=3,
                                          skip_corrupt_records=True, num_epochs=2)
  assert sum(int(b["num_frames"].shape[0]) for b in dataset) == 24
  assert counter.invalid_records == 10 and counter.unreadable_files == 2
  assert sum(int(b["num_frames"].shape[0]) for b in dataset) == 24
  assert counter.invalid_records == 20 and counter.unreadable_files == 4
  counter.reset()
  assert counter.invalid_records == 0 and not counter.skipped_anything


@pytest.mark.parametrize("batch_parse", [False, True])
def test_skip_corrupt_frame_records(tmp_path, batch_parse):
  recs = [_frames(0), _frames(1, count=0, audio_count=0), _frames(2, rgb_size=4), _frames(3),
          _frames(4, labels=[20])]
  path = _write(tmp_path / "frames.tfrecord", recs)
  dataset, counter, _ = data.load_dataset(
      path, dataclasses.replace(FRAME, max_frames=4), batch_size=2, skip_corrupt_records=True,
      dequantize=False, batch_parse_frames=batch_parse)
  ids = [v for b in dataset for v in b["video_ids"].numpy()]
  assert ids == [b"f0", b"f3"] and counter.invalid_records == 3


def test_skip_mode_still_rejects_flag_mistakes(tmp_path):
  video = _good_video_file(tmp_path)
  with pytest.raises(UserError, match="holds video-level records"):
    data.load_dataset(video, FRAME, skip_corrupt_records=True)


def test_explain_read_error_without_culprit(tmp_path):
  path = _good_video_file(tmp_path)
  error = tf.errors.InvalidArgumentError(None, None, "something else went wrong")
  message = str(data.explain_read_error(error, path, VIDEO))
  assert "no bad record was found" in message and "something else went wrong" in message


# ----------------------------------------------------------------------------------------
# Second round (docs/RELIABILITY.md): containers, every file's first record, labels
# ----------------------------------------------------------------------------------------

def test_the_container_is_detected_and_compressed_files_read_like_plain_ones(tmp_path):
  import gzip  # pylint: disable=import-outside-toplevel
  plain = _good_video_file(tmp_path, "plain.tfrecord", count=6)
  with open(plain, "rb") as source, gzip.open(tmp_path / "gz.tfrecord.gz", "wb") as target:
    target.write(source.read())
  with tf.io.TFRecordWriter(str(tmp_path / "zlib.tfrecord"), options="ZLIB") as writer:
    for raw in records.iterate_records(plain):
      writer.write(raw)
  (tmp_path / "notes.txt").write_text("model_checkpoint_path: nothing\n")
  damaged = bytearray(open(plain, "rb").read())
  damaged[9] ^= 0x40  # the first record's length checksum
  (tmp_path / "damaged.tfrecord").write_bytes(bytes(damaged))
  (tmp_path / "empty.tfrecord").write_bytes(b"")
  detected = {name: records.detect_compression(str(tmp_path / name)) for name in
              ("plain.tfrecord", "gz.tfrecord.gz", "zlib.tfrecord", "notes.txt",
               "damaged.tfrecord", "empty.tfrecord")}
  assert detected == {"plain.tfrecord": "", "gz.tfrecord.gz": "GZIP", "zlib.tfrecord": "ZLIB",
                      "notes.txt": None, "damaged.tfrecord": None, "empty.tfrecord": None}

  def ids(pattern, **kwargs):
    return [v for batch in data.load_dataset(pattern, VIDEO, batch_size=4, **kwargs).dataset
            for v in batch["video_ids"].numpy().tolist()]
  expected = ids(plain)
  assert len(expected) == 6
  for name in ("gz.tfrecord.gz", "zlib.tfrecord"):
    assert ids(str(tmp_path / name)) == expected
    assert ids(str(tmp_path / name), skip_corrupt_records=True) == expected
  assert sorted(ids(f"{plain},{tmp_path}/gz.tfrecord.gz")) == sorted(expected * 2)  # mixed
  assert list(records.record_dataset([str(tmp_path / "zlib.tfrecord"), plain])
              .as_numpy_iterator()) == list(records.iterate_records(plain)) * 2


def test_a_cut_gzip_file_is_named_and_skipped_with_its_decompressed_bytes(tmp_path):
  """TensorFlow's GZIP reader sometimes ends a cut stream quietly: the whole stream is
  checked before reading."""
  import gzip  # pylint: disable=import-outside-toplevel
  content = open(_good_video_file(tmp_path, "plain.tfrecord", count=40), "rb").read()
  compressed = gzip.compress(content)
  cut = tmp_path / "cut" / "videos.tfrecord.gz"
  cut.parent.mkdir()
  cut.write_bytes(compressed[:len(compressed) // 2])
  with pytest.raises(UserError, match=r"videos.tfrecord.gz: the GZIP-compressed file is cut "
                                      r"short or corrupt after \d+ bytes of content"):
    data.load_dataset(str(cut), VIDEO, batch_size=8)
  batches = data.load_dataset(str(cut), VIDEO, batch_size=8, skip_corrupt_records=True)
  read = sum(int(batch["video_ids"].shape[0]) for batch in batches.dataset)
  assert 0 < read < 40
  assert batches.skip_counter.unreadable_files == 1 and batches.skip_counter.unreadable_bytes > 0


def test_every_file_is_looked_at_not_only_the_first(tmp_path):
  folder = tmp_path / "data"
  folder.mkdir()
  for index in range(3):
    _good_video_file(folder, f"videos{index}.tfrecord")
  _write(folder / "videos3.tfrecord", [_frames(0), _frames(1)])
  (folder / "videos4.tfrecord").write_text("id\tlabels\n")
  (folder / "videos5.tfrecord").mkdir()
  with pytest.raises(UserError) as info:
    data.check_files(str(folder / "*"), VIDEO)
  assert "videos4.tfrecord: is a text file, not a TFRecord file" in str(info.value)
  (folder / "videos4.tfrecord").unlink()
  with pytest.raises(UserError, match="videos5.tfrecord: is a folder, not a TFRecord file"):
    data.check_files(str(folder / "*"), VIDEO, skip_corrupt_records=True)
  (folder / "videos5.tfrecord").rmdir()
  with pytest.raises(UserError) as info:
    data.check_files(str(folder / "*"), VIDEO)
  assert ("videos3.tfrecord: holds frame-level records (tf.train.SequenceExample), unlike the "
          "other 3 file(s)") in str(info.value)
  # A missing feature in the first record of a later file is named before any reading.
  (folder / "videos3.tfrecord").unlink()
  _write(folder / "videos3.tfrecord", [_video(0, audio=False)])
  with pytest.raises(UserError, match=r"videos3.tfrecord: record 0 \(id 'v0'\): feature "
                                      r"'mean_audio' is missing \(the record has: mean_rgb\)"):
    data.check_files(str(folder / "*"), VIDEO)


def test_files_without_labels_are_refused_only_where_labels_are_needed(tmp_path):
  labelled = _good_video_file(tmp_path, "train.tfrecord")
  unlabelled = _write(tmp_path / "test.tfrecord",
                      [records.make_video_example(f"t{i}", None, {"mean_rgb": np.zeros(8),
                                                                  "mean_audio": np.zeros(4)})
                       for i in range(20)])
  data.check_files(unlabelled, VIDEO)  # inference
  with pytest.raises(UserError) as info:
    data.check_files(unlabelled, VIDEO, require_labels=True)
  assert ("test.tfrecord: holds no labels (none of its first 16 record(s) has 'labels'), like "
          "the test split") in str(info.value)
  assert "inference.py" in str(info.value)
  with pytest.raises(UserError, match="remove it from the data pattern"):
    data.check_files(f"{labelled},{unlabelled}", VIDEO, require_labels=True)
  # A few unlabelled records at the start of labelled data are not a test split.
  mostly = _write(tmp_path / "mostly.tfrecord", [_video(0, labels=[]), _video(1, labels=[]),
                                                 _video(2)])
  data.check_files(mostly, VIDEO, require_labels=True)
  # Segment mode needs segment ratings (only the 2019 validate split has them).
  rated = records.make_frame_example("s0", [1], {"rgb": np.full((10, 6), 3, np.uint8),
                                                 "audio": np.full((10, 3), 3, np.uint8)},
                                     segments={"segment_labels": [1], "segment_start_times": [0],
                                               "segment_scores": [1.0]})
  segments = _write(tmp_path / "rated.tfrecord", [rated])
  frames = _write(tmp_path / "frames.tfrecord", [_frames(0, count=10)])
  rated_frames = dataclasses.replace(FRAME, segment_labels=True)
  data.check_files(segments, rated_frames, require_labels=True)
  with pytest.raises(UserError, match="frames.tfrecord: holds no segment ratings"):
    data.check_files(frames, rated_frames, require_labels=True)
  with pytest.raises(UserError, match="--segment_labels needs frame-level data"):
    dataclasses.replace(VIDEO, segment_labels=True)


# ----------------------------------------------------------------------------------------
# One validator (core/validation.py): every reader accepts and refuses the same records
# ----------------------------------------------------------------------------------------

def _litert_read(path, spec, skip=False):
  """The TensorFlow-free reader of the LiteRT runtime: (video ids, skip counter)."""
  counter = SkipCounter()
  batches = litert_records.read_batches(path, spec, batch_size=4, skip_corrupt_records=skip,
                                        skip_counter=counter)
  return [video_id for batch in batches for video_id in batch["video_ids"]], counter


def _long_video(i, bad_frame, count=12):
  """Frame-level record of `count` frames whose frame `bad_frame` has 5 rgb bytes, not 6."""
  rgb = [bytes([i % 256]) * (5 if t == bad_frame else 6) for t in range(count)]
  audio = [bytes([7]) * 3] * count
  return records.make_frame_example(f"f{i}", [i % 20], {"rgb": rgb, "audio": audio})


def test_frames_past_max_frames_are_not_checked_by_any_reader(tmp_path):
  spec = dataclasses.replace(FRAME, max_frames=8)
  path = _write(tmp_path / "long.tfrecord", [_frames(0), _long_video(1, bad_frame=10)])
  for batch_parse in (False, True):  # the tf.data reader, both parse paths
    batches = data.load_dataset(path, spec, batch_size=4, batch_parse_frames=batch_parse)
    assert [v for b in batches.dataset for v in b["video_ids"].numpy()] == [b"f0", b"f1"]
  assert data.validate_record(list(records.iterate_records(path))[1], spec)[0] is None
  assert _litert_read(path, spec)[0] == [b"f0", b"f1"]
  # The same damage inside the first max_frames: refused by each, with the same line.
  path = _write(tmp_path / "bad.tfrecord", [_frames(0), _long_video(1, bad_frame=5)])
  expected = f"{path}: record 1 (id 'f1'): feature 'rgb' frame 5 has 5 bytes; expected 6"
  for batch_parse in (False, True):
    assert expected in _iterate_and_explain(path, batch_parse_frames=batch_parse,
                                            **dataclasses.asdict(spec))
  with pytest.raises(UserError) as info:
    _litert_read(path, spec)
  assert expected in str(info.value)
  ids, counter = _litert_read(path, spec, skip=True)
  assert ids == [b"f0"] and "skipped 1 invalid record(s)" in counter.summary()


def test_a_bad_segment_record_is_explained_precisely(tmp_path):
  spec = dataclasses.replace(FRAME, segment_labels=True, max_frames=10)

  def rated(i, start):
    frames = {"rgb": np.full((10, 6), 3, np.uint8), "audio": np.full((10, 3), 3, np.uint8)}
    return records.make_frame_example(
        f"s{i}", [1], frames,
        segments={"segment_labels": [1], "segment_start_times": [start], "segment_scores": [1.0]})

  path = _write(tmp_path / "rated.tfrecord", [rated(0, 0), rated(1, 5), rated(2, 6)])
  message = _iterate_and_explain(path, **dataclasses.asdict(spec))
  assert (f"{path}: record 2 (id 's2'): segment start time 6 is outside the video; expected "
          "start times 0 <= start <= max_frames - 5 = 5") in message
  with pytest.raises(UserError, match=r"record 2 \(id 's2'\): segment start time 6"):
    data.check_files(path, spec, num_records=3)


def test_check_readable_checks_without_a_pipeline(tmp_path):
  good = _good_video_file(tmp_path)
  assert data.check_readable(good, VIDEO, require_labels=True) == [good]
  with pytest.raises(UserError, match="holds video-level records"):
    data.check_readable(good, FRAME)
  unlabelled = _write(tmp_path / "test.tfrecord",
                      [records.make_video_example("t0", None, {"mean_rgb": np.zeros(8),
                                                               "mean_audio": np.zeros(4)})])
  data.check_readable(unlabelled, VIDEO)
  with pytest.raises(UserError, match="holds no labels"):
    data.check_readable(unlabelled, VIDEO, require_labels=True)


def test_the_core_imports_without_tensorflow():
  code = ("import sys\n"
          "from yt8m_fusion.core import files, framing, records, skipping, spec, "
          "submission_format, validation\n"
          "from yt8m_fusion.litert import records as litert_records\n"
          "assert 'tensorflow' not in sys.modules, 'yt8m_fusion.core imported TensorFlow'\n")
  subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
