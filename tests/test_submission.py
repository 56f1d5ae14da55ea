"""CSV formats, segment splitting, model archives and atomic writes."""

import os

import numpy as np
import pytest
import tensorflow as tf

from yt8m_fusion import io_utils, submission
from yt8m_fusion.core import submission_format
from yt8m_fusion.errors import UserError


def test_video_line_format_matches_the_starter():
  line = submission_format.format_video_line(b"abcd", [3, 17, 0], np.array([0.991708, 1e-05, 1.0],
                                                                     np.float32))
  assert line == "abcd,3 0.991708 17 1e-05 0 1\n"


def test_video_csv_is_written_whole(tmp_path):
  path = str(tmp_path / "out" / "predictions.csv")
  writer = submission.VideoSubmissionWriter(path)
  writer.add_batch([b"v1", b"v2"], [[1, 0], [0, 1]], [[0.9, 0.1], [0.8, 0.25]])
  assert not os.path.exists(path), "the CSV must not appear before commit"
  writer.commit()
  with open(path) as handle:
    assert handle.read() == "VideoId,LabelConfidencePairs\nv1,1 0.9 0 0.1\nv2,0 0.8 1 0.25\n"
  assert os.listdir(tmp_path / "out") == ["predictions.csv"]


def test_duplicate_video_ids_are_rejected_and_nothing_is_left(tmp_path):
  path = str(tmp_path / "predictions.csv")
  writer = submission.VideoSubmissionWriter(path)
  writer.add_batch([b"v1"], [[1]], [[0.9]])
  with pytest.raises(UserError, match="'v1' appears twice"):
    try:
      writer.add_batch([b"v1"], [[1]], [[0.5]])
    except UserError as error:
      writer.abort(error)
      raise
  assert os.listdir(tmp_path) == []


def test_atomic_output_leaves_nothing_on_error(tmp_path):
  path = str(tmp_path / "x.txt")
  with pytest.raises(RuntimeError):
    with io_utils.atomic_output(path) as handle:
      handle.write("half")
      raise RuntimeError("killed")
  assert os.listdir(tmp_path) == []


def test_unwritable_output_path_is_a_user_error(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("")
  with pytest.raises(UserError, match="--output_file"):
    io_utils.check_writable_file(str(blocker / "sub" / "out.csv"), "--output_file")


def test_split_into_segments_follows_get_segments():
  frames = np.arange(2 * 15 * 2, dtype=np.uint8).reshape(2, 15, 2)
  batch = {"rgb": tf.constant(frames), "num_frames": tf.constant([12, 5], tf.int32),
           "video_ids": tf.constant([b"a", b"b"])}
  segments = submission.split_into_segments(batch, ["rgb"])
  assert segments["video_ids"].numpy().tolist() == [b"a:0", b"a:5", b"a:10", b"b:0"]
  assert segments["num_frames"].numpy().tolist() == [5, 5, 2, 5]
  np.testing.assert_array_equal(segments["rgb"].numpy()[2], frames[0, 10:15])
  np.testing.assert_array_equal(segments["rgb"].numpy()[3], frames[1, 0:5])


def test_segment_ranking_orders_and_caps_per_class():
  ranking = submission.SegmentRanking(max_per_class=2, whitelist={3, 7})
  ranking.add([b"a:0", b"a:5", b"b:0"], [[3, 1], [3, 7], [3, 7]],
              [[0.5, 0.9], [0.7, 0.2], [0.6, 0.4]])
  assert list(ranking.lines()) == ["3,a:5 b:0\n", "7,b:0 a:5\n"]


def test_segment_whitelist_file(tmp_path):
  path = tmp_path / "ids.csv"
  path.write_text("Index\n3\n7\n")
  assert submission.read_segment_whitelist(str(path)) == {3, 7}
  path.write_text("3\n7\n")
  with pytest.raises(UserError, match="header"):
    submission.read_segment_whitelist(str(path))


def test_model_tgz_round_trip(tmp_path):
  train_dir = tmp_path / "train"
  train_dir.mkdir()
  (train_dir / "model_flags.json").write_text("{}")
  (train_dir / "model.ckpt-7.index").write_bytes(b"index")
  (train_dir / "model.ckpt-7.data-00000-of-00001").write_bytes(b"data")
  (train_dir / "model.ckpt-3.index").write_bytes(b"old")
  tgz = str(tmp_path / "model.tgz")
  submission.write_model_tgz(tgz, str(train_dir), str(train_dir / "model.ckpt-7"))
  out = submission.extract_model_tgz(tgz, str(tmp_path / "untar"))
  assert sorted(os.listdir(out)) == ["checkpoint", "model.ckpt-7.data-00000-of-00001",
                                     "model.ckpt-7.index", "model_flags.json"]
  assert tf.train.latest_checkpoint(out).endswith("model.ckpt-7")


def test_top_k_numpy_sorts_and_breaks_ties_by_index():
  indexes, scores = submission_format.top_k_numpy(np.array([[0.1, 0.5, 0.5, 0.9]]), 3)
  assert indexes.tolist() == [[3, 1, 2]]
  assert scores.tolist() == [[0.9, 0.5, 0.5]]
