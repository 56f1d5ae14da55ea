"""Ensembles of a video-level and a frame-level model on frame-level records: the video-level
member takes the means of the dequantized frames. The synthetic data's `both_formats` writes
the same videos at both levels (its video-level features are those means), so the ensemble on
the frame records must equal the members' mean, each on its own records: through the Python
API, inference.py and the exported SavedModel in a fresh process."""

import csv
import os

import numpy as np
import pytest

from programs import run_program
from yt8m_fusion import data as yt8m_data
from yt8m_fusion import models
from yt8m_fusion import prediction
from yt8m_fusion import training
from yt8m_fusion.errors import UserError
from yt8m_fusion.models import ModelConfig

WEIGHTS = (0.25, 0.75)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp("data"))
  return yt8m_data.generate_dataset(folder, num_videos=40, num_classes=3862, seed=7,
                                    both_formats=True, num_shards=2, min_frames=5,
                                    max_frames=40)


@pytest.fixture(scope="module")
def members(dataset, tmp_path_factory):
  """[a video-level FCModel's train_dir, a frame-level DbofModel's train_dir]."""
  folder = tmp_path_factory.mktemp("members")
  options = training.TrainOptions(batch_size=8, num_epochs=100, max_steps=3,
                                  base_learning_rate=0.01, seed=1, verbose=0)
  video = ModelConfig("FCModel", ["mean_rgb", "mean_audio"], [1024, 128],
                      params=models.registry.get_spec("FCModel").small_params)
  frame = ModelConfig("DbofModel", ["rgb", "audio"], [1024, 128], frame_features=True,
                      params=models.registry.get_spec("DbofModel").small_params)
  train_dirs = []
  for config, level in ((video, "video"), (frame, "frame")):
    train_dir = str(folder / level)
    training.run(config, train_dir, dataset[level]["train"], options=options, export=False)
    train_dirs.append(train_dir)
  return train_dirs


@pytest.fixture(scope="module")
def expected(dataset, members):
  """{video id: the weighted mean of the members, each on the records of its level}."""
  per_member = []
  for train_dir, level in zip(members, ("video", "frame")):
    with prediction.load(train_dir) as predictor:
      per_member.append({video_id: row for batch in predictor.predictions(
          dataset[level]["validate"], batch_size=16) for video_id, row in
                         zip(batch.video_ids, batch.probabilities)})
  assert sorted(per_member[0]) == sorted(per_member[1])
  return {video_id: WEIGHTS[0] * per_member[0][video_id] + WEIGHTS[1] * per_member[1][video_id]
          for video_id in per_member[0]}


def test_a_video_level_member_reads_the_means_of_the_frames(dataset, members, expected):
  with prediction.ensemble(members, WEIGHTS) as ensemble:
    assert ensemble.spec.frame_features and ensemble.spec.feature_names == ("rgb", "audio")
    got = {video_id: row for batch in ensemble.predictions(dataset["frame"]["validate"],
                                                           batch_size=16, labels=True)
           for video_id, row in zip(batch.video_ids, batch.probabilities)}
    with pytest.raises(UserError, match="segments are rated on frames"):
      next(ensemble.predictions(dataset["frame"]["validate"], split_segments=True))
  assert sorted(got) == sorted(expected)
  assert max(float(np.abs(got[v] - expected[v]).max()) for v in got) <= 1e-5


def _csv_rows(path):
  with open(path, newline="", encoding="utf-8") as handle:
    return {row["VideoId"]: row["LabelConfidencePairs"].split() for row in csv.DictReader(handle)}


def _top(probabilities, k):
  indexes = np.argsort(-probabilities, kind="stable")[:k]
  return [int(index) for index in indexes], probabilities[indexes]


def _check_csv(path, expected, k=5):
  rows = _csv_rows(path)
  assert sorted(rows) == sorted(video_id.decode() for video_id in expected)
  for video_id, pairs in rows.items():
    indexes, scores = _top(expected[video_id.encode()], k)
    assert [int(p) for p in pairs[0::2]][:2] == indexes[:2]
    np.testing.assert_allclose([float(s) for s in pairs[1::2]], scores, atol=1e-5)


def test_inference_and_the_exported_ensemble_on_frame_records(dataset, members, expected,
                                                               tmp_path):
  weights = f"--ensemble_weights={WEIGHTS[0]},{WEIGHTS[1]}"
  output = tmp_path / "ensemble.csv"
  run_program("inference.py", f"--train_dir={','.join(members)}", weights,
              f"--input_data_pattern={dataset['frame']['validate']}", f"--output_file={output}",
              "--top_k=5")
  _check_csv(output, expected)
  # One SavedModel that parses frame-level records (TF Serving's contract), in a fresh process.
  result = run_program("yt8m_fusion.export", f"--train_dir={','.join(members)}", weights,
                       "--format=saved_model", f"--export_dir={tmp_path / 'export'}")
  path = result.stdout.strip().split(": ")[-1]
  served = tmp_path / "served.csv"
  run_program("inference.py", f"--saved_model_dir={path}", f"--output_file={served}",
              f"--input_data_pattern={dataset['frame']['validate']}", "--top_k=5")
  _check_csv(served, expected)


def test_what_cannot_be_read_from_frames_is_one_line():
  frame = ModelConfig("DbofModel", ["rgb", "audio"], [1024, 128], frame_features=True).data_spec()
  video = ModelConfig("LogisticModel", ["mean_rgb", "mean_audio"], [1024, 128]).data_spec()
  assert prediction.union_spec([video, frame], ["A", "B"]).feature_names == ("rgb", "audio")
  inception = ModelConfig("LogisticModel", ["mean_inc3"], [1024]).data_spec()
  with pytest.raises(UserError, match="A reads the video-level feature mean_inc3, which is not "
                     "the mean of a frame-level feature") as error:
    prediction.union_spec([inception, frame], ["A", "B"])
  assert "\n" not in str(error.value)
