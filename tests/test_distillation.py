"""Distillation: the teacher predictions file, the loss, train.py --teacher, cross-fitting.

On tiny real TFRecords (the synthetic generator's, video level, 12 classes): teachers are
trained for a few steps, so their predictions differ from video to video.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from programs import run_main, run_program
from yt8m_fusion import data as yt8m_data
from yt8m_fusion import distillation
from yt8m_fusion import losses
from yt8m_fusion import models
from yt8m_fusion import prediction
from yt8m_fusion import training
from yt8m_fusion.errors import UserError

NUM_CLASSES = 12
TINY_FC = {"fc_hidden_size": 16, "fc_num_layers": 1}
MODEL_FLAGS = ["--model=FCModel", "--feature_names=mean_rgb,mean_audio",
               "--feature_sizes=1024,128", f"--num_classes={NUM_CLASSES}",
               "--fc_hidden_size=16", "--fc_num_layers=1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp("data"))
  return yt8m_data.generate_dataset(folder, num_videos=48, num_classes=NUM_CLASSES, seed=5,
                                    num_shards=2)


def tiny_config(**params):
  return models.ModelConfig(model="FCModel", feature_names=("mean_rgb", "mean_audio"),
                            feature_sizes=(1024, 128), num_classes=NUM_CLASSES,
                            params={**TINY_FC, **params})


def train_teacher(train_dir, pattern, steps=3, seed=1):
  options = training.TrainOptions(batch_size=8, num_epochs=100, max_steps=steps, seed=seed,
                                  base_learning_rate=0.05, verbose=0)
  training.run(tiny_config(), train_dir, pattern, options=options, export=False)
  return train_dir


@pytest.fixture(scope="module")
def teachers(dataset, tmp_path_factory):
  folder = tmp_path_factory.mktemp("teachers")
  return [train_teacher(str(folder / f"teacher{seed}"), dataset["video"]["train"], seed=seed)
          for seed in (1, 2)]


def all_probabilities(path, pattern):
  """{video id: probabilities} of one model."""
  with prediction.load(path) as predictor:
    return {video_id: row for batch in predictor.predictions(pattern, batch_size=16)
            for video_id, row in zip(batch.video_ids, batch.probabilities)}


def record_ids(pattern):
  ids = []
  for path in tf.io.gfile.glob(pattern):
    for record in tf.data.TFRecordDataset(path):
      example = tf.train.Example.FromString(record.numpy())
      ids.append(example.features.feature["id"].bytes_list.value[0])
  return ids


# ----------------------------------------------------------------------------------------
# The predictions file
# ----------------------------------------------------------------------------------------

def test_predictions_file_round_trip_keeps_each_videos_top_k(dataset, teachers, tmp_path):
  pattern = dataset["video"]["train"]
  path = str(tmp_path / "teacher.npz")
  written = distillation.predict_teachers(
      distillation.parse_teachers(teachers, "3,1"), pattern, path, top_k=5, batch_size=16)
  read = distillation.read_predictions(path)
  assert read.header["top_k"] == 5 and read.header["num_classes"] == NUM_CLASSES
  assert [t["weight"] for t in read.header["teachers"]] == [3.0, 1.0]
  assert read.header["num_videos"] == len(record_ids(pattern)) == len(read.video_ids)
  assert sorted(read.video_ids) == sorted(record_ids(pattern))
  np.testing.assert_array_equal(read.indexes, written.indexes)

  first, second = (all_probabilities(t, pattern) for t in teachers)
  dense = read.dense()
  for row, video_id in enumerate(read.video_ids):
    mean = 0.75 * first[video_id] + 0.25 * second[video_id]
    top = np.argsort(-mean)[:5]
    assert set(read.indexes[row]) == set(top)
    np.testing.assert_allclose(dense[row, top], mean[top], rtol=2e-3, atol=1e-4)
    assert np.count_nonzero(dense[row]) <= 5  # the other classes count as 0

  # In the input pipeline: the same dense targets, looked up by video id.
  targets = distillation.TeacherTargets(read, NUM_CLASSES)
  ids = tf.constant(list(read.video_ids[::-1][:7]))
  looked_up = targets(ids)
  np.testing.assert_array_equal(looked_up["probabilities"].numpy(), dense[::-1][:7])
  np.testing.assert_array_equal(looked_up["found"].numpy(), np.ones(7))


def test_a_file_that_is_not_teacher_predictions_is_one_line(tmp_path):
  path = tmp_path / "other.npz"
  np.savez(path, x=np.zeros(3))
  with pytest.raises(UserError, match="is not a teacher predictions file"):
    distillation.read_predictions(str(path))
  with pytest.raises(UserError, match="cannot be read"):
    distillation.read_predictions(str(tmp_path / "absent.npz"))


def test_teacher_weights_must_match_the_teachers():
  with pytest.raises(UserError, match="--teacher_weights=1: expected 2"):
    distillation.parse_teachers("a,b", "1")
  assert [t.weight for t in distillation.parse_teachers("a,b")] == [1.0, 1.0]


# ----------------------------------------------------------------------------------------
# The loss
# ----------------------------------------------------------------------------------------

def _bce(targets, probabilities):
  p = np.clip(probabilities, 1e-7, 1 - 1e-7)
  return -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum(axis=-1)


def _loss_inputs():
  rng = np.random.default_rng(0)
  labels = (rng.random((4, 6)) < 0.3).astype(np.float32)
  labels[0, 1] = 1.0
  labels[3] = 0.0  # no labels: a test-split record
  predictions = rng.uniform(0.05, 0.95, (4, 6)).astype(np.float32)
  teacher = rng.uniform(0.0, 1.0, (4, 6)).astype(np.float32)
  teacher[:, 0] = 0.0  # outside the stored top-k
  return labels, predictions, teacher


def test_distillation_loss_with_weight_0_is_the_label_loss_on_labelled_videos():
  labels, predictions, teacher = _loss_inputs()
  label_loss = losses.get_loss("CrossEntropyLoss")
  mixed = losses.DistillationLoss(label_loss, weight=0.0)(labels, predictions, teacher)
  expected = label_loss.call(labels, predictions).numpy()
  np.testing.assert_allclose(mixed.numpy()[:3], expected[:3], rtol=1e-6)
  # The unlabelled video takes the soft term alone, whatever the weight.
  np.testing.assert_allclose(mixed.numpy()[3], _bce(teacher[3], predictions[3]), rtol=1e-5)


def test_distillation_loss_mixes_labels_and_teachers_and_skips_missing_teachers():
  labels, predictions, teacher = _loss_inputs()
  label_loss = losses.get_loss("CrossEntropyLoss")
  hard = label_loss.call(labels, predictions).numpy()
  soft = _bce(teacher, predictions)
  found = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
  mixed = losses.DistillationLoss(label_loss, weight=0.3)(labels, predictions, teacher,
                                                          found).numpy()
  np.testing.assert_allclose(mixed[0], 0.7 * hard[0] + 0.3 * soft[0], rtol=1e-5)
  np.testing.assert_allclose(mixed[1], hard[1], rtol=1e-6)  # no teacher: labels alone
  assert mixed[3] == 0.0  # neither labels nor a teacher: nothing to learn


def test_temperature_softens_both_sides_on_the_logit_scale_and_scales_by_t_squared():
  _, predictions, teacher = _loss_inputs()
  soft = losses.DistillationLoss(losses.get_loss(), weight=1.0, temperature=2.0)
  sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))
  with np.errstate(divide="ignore"):
    teacher_logits = np.log(teacher) - np.log1p(-teacher)
  student_logits = np.log(predictions) - np.log1p(-predictions)
  expected = 4.0 * _bce(sigmoid(teacher_logits / 2.0), sigmoid(student_logits / 2.0))
  np.testing.assert_allclose(soft.soft_loss(teacher, predictions).numpy(), expected, rtol=1e-4)
  plain = losses.DistillationLoss(losses.get_loss(), temperature=1.0)
  np.testing.assert_allclose(plain.soft_loss(teacher, predictions).numpy(),
                             _bce(teacher, predictions), rtol=1e-5)


# ----------------------------------------------------------------------------------------
# train.py
# ----------------------------------------------------------------------------------------

def train_py(train_dir, pattern, *extra):
  return run_main("train", *MODEL_FLAGS, f"--train_dir={train_dir}",
                  f"--train_data_pattern={pattern}", "--eval_data_pattern=", "--noexport",
                  "--batch_size=8", "--num_epochs=100", "--seed=3", *extra)


def test_student_trains_with_teachers_through_train_py_and_resumes(dataset, teachers,
                                                                   tmp_path):
  # The training and the unlabelled test records together: the test ones train on the
  # teachers' targets alone.
  pattern = f"{dataset['video']['train']},{dataset['video']['test']}"
  student = str(tmp_path / "student")
  result = train_py(student, pattern, "--max_steps=3", f"--teacher={','.join(teachers)}",
                    "--teacher_weights=2,1", "--distill_weight=0.7",
                    "--distill_temperature=2", "--distill_top_k=5")
  assert result.returncode == 0, result.stderr
  predictions_path = os.path.join(student, distillation.PREDICTIONS_FILE)
  header = distillation.read_header(predictions_path)
  assert header["num_videos"] == len(record_ids(dataset["video"]["train"])) + len(
      record_ids(dataset["video"]["test"]))
  with open(os.path.join(student, distillation.SETTINGS_FILE)) as handle:
    settings = json.load(handle)
  assert settings["weight"] == 0.7 and settings["temperature"] == 2.0
  assert header["top_k"] == 5
  assert tf.train.latest_checkpoint(student).endswith("-3")
  modified = os.path.getmtime(predictions_path)

  # Resumed without the flags: the saved teachers and settings, the file reused.
  result = train_py(student, pattern, "--max_steps=5")
  assert result.returncode == 0, result.stderr
  assert tf.train.latest_checkpoint(student).endswith("-5")
  assert os.path.getmtime(predictions_path) == modified
  with open(os.path.join(student, distillation.SETTINGS_FILE)) as handle:
    assert json.load(handle)["weight"] == 0.7

  # Another teacher for the same run is refused, like another model.
  result = train_py(student, pattern, "--max_steps=6", f"--teacher={teachers[0]}")
  assert result.returncode != 0
  assert "distillation.json says this run was distilled from" in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1


def test_a_video_missing_from_the_teacher_predictions_is_one_line(dataset, teachers,
                                                                  tmp_path):
  pattern = dataset["video"]["train"]
  full = distillation.predict_teachers(distillation.parse_teachers(teachers[:1]), pattern,
                                       str(tmp_path / "full.npz"), top_k=4)
  missing_id = sorted(full.video_ids)[0]
  rows = np.flatnonzero(full.video_ids != missing_id)
  partial = distillation.TeacherPredictions(full.video_ids[rows], full.indexes[rows],
                                            full.probabilities[rows], dict(full.header))
  path = str(tmp_path / "partial.npz")
  distillation.write_predictions(partial, path)

  # One whole epoch, so that the missing video is read.
  result = train_py(str(tmp_path / "student"), pattern, "--num_epochs=1",
                    f"--teacher_predictions={path}")
  assert result.returncode != 0
  message = result.stderr.strip().splitlines()
  assert len(message) == 1, result.stderr
  assert path in message[0] and missing_id.decode() in message[0]
  assert "--distill_missing=labels" in message[0]

  # With --distill_missing=labels that video trains on its labels alone.
  result = train_py(str(tmp_path / "student2"), pattern, "--num_epochs=1",
                    f"--teacher_predictions={path}", "--distill_missing=labels")
  assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------------------------------
# Cross-fitting
# ----------------------------------------------------------------------------------------

def test_crossfit_predicts_each_video_with_the_teacher_that_did_not_train_on_it(dataset,
                                                                                tmp_path):
  output_dir = str(tmp_path / "crossfit")
  train_pattern, test_pattern = dataset["video"]["train"], dataset["video"]["test"]
  args = [*MODEL_FLAGS, "--folds=2", f"--output_dir={output_dir}",
          f"--train_data_pattern={train_pattern}", f"--unlabelled_data_pattern={test_pattern}",
          "--batch_size=8", "--max_steps=4", "--num_epochs=100", "--seed=4", "--distill_top_k=6",
          "--base_learning_rate=0.05"]
  run_program("yt8m_fusion.crossfit", *args)
  predictions = distillation.read_predictions(
      os.path.join(output_dir, distillation.PREDICTIONS_FILE))
  train_ids, test_ids = record_ids(train_pattern), record_ids(test_pattern)
  assert sorted(predictions.video_ids) == sorted(train_ids + test_ids)
  assert predictions.header["folds"] == 2

  folds = distillation.fold_of(np.asarray(train_ids, dtype=object), 2)
  assert set(folds) == {0, 1}  # both folds hold videos
  teacher_dirs = [os.path.join(output_dir, f"fold-{fold}") for fold in range(2)]
  per_teacher = [all_probabilities(d, f"{train_pattern},{test_pattern}") for d in teacher_dirs]
  row_of = {video_id: row for row, video_id in enumerate(predictions.video_ids)}
  dense = predictions.dense()
  distances = []  # to the teacher that did not see the video, to the one that did
  for video_id, fold in zip(train_ids, folds):
    own = per_teacher[fold][video_id]  # the teacher of this fold never trained on it
    top = np.argsort(-own)[:6]
    stored = dense[row_of[video_id], top]
    np.testing.assert_allclose(stored, own[top], rtol=2e-3, atol=1e-4)
    distances.append((np.abs(stored - own[top]).max(),
                      np.abs(stored - per_teacher[1 - fold][video_id][top]).max()))
  own_distance, other_distance = np.mean(distances, axis=0)
  assert other_distance > 5 * own_distance  # the teachers differ: the right one was used
  for video_id in test_ids:  # unlabelled: both teachers averaged
    mean = (per_teacher[0][video_id] + per_teacher[1][video_id]) / 2
    top = np.argsort(-mean)[:6]
    np.testing.assert_allclose(dense[row_of[video_id], top], mean[top], rtol=2e-3, atol=1e-4)

  # Rerunning the same command resumes: nothing is trained or predicted again.
  modified = os.path.getmtime(os.path.join(teacher_dirs[0],
                                           "held_out_" + distillation.PREDICTIONS_FILE))
  run_program("yt8m_fusion.crossfit", *args)
  assert os.path.getmtime(os.path.join(
      teacher_dirs[0], "held_out_" + distillation.PREDICTIONS_FILE)) == modified


def test_crossfit_with_seeds_makes_each_fold_teacher_an_ensemble_of_seeds(dataset, tmp_path):
  output_dir = str(tmp_path / "crossfit")
  pattern = dataset["video"]["train"]
  options = training.TrainOptions(batch_size=8, num_epochs=100, max_steps=2,
                                  base_learning_rate=0.05, verbose=0)
  result = distillation.cross_fit([tiny_config()], output_dir, pattern, folds=2,
                                  options=options, top_k=6, batch_size=16, seeds=[3, 4])
  assert result.teacher_dirs == [[os.path.join(output_dir, f"fold-{fold}", f"FCModel-seed{seed}")
                                  for seed in (3, 4)] for fold in range(2)]
  predictions = distillation.read_predictions(result.predictions_path)
  row_of = {video_id: row for row, video_id in enumerate(predictions.video_ids)}
  dense = predictions.dense()
  ids = record_ids(pattern)
  for fold, (first, second) in enumerate(result.teacher_dirs):
    seeds = [all_probabilities(first, pattern), all_probabilities(second, pattern)]
    held_out = [v for v, f in zip(ids, distillation.fold_of(np.asarray(ids, dtype=object), 2))
                if f == fold]
    assert held_out
    assert not np.allclose(seeds[0][held_out[0]], seeds[1][held_out[0]])  # two teachers
    for video_id in held_out:
      mean = (seeds[0][video_id] + seeds[1][video_id]) / 2
      top = np.argsort(-mean)[:6]
      np.testing.assert_allclose(dense[row_of[video_id], top], mean[top], rtol=2e-3, atol=1e-4)
  with pytest.raises(UserError, match="--seeds=3,3: a seed is given twice"):
    distillation.cross_fit([tiny_config()], output_dir, pattern, folds=2, options=options,
                           seeds=[3, 3])


def test_crossfit_trains_each_model_with_its_own_options(dataset, tmp_path):
  output_dir = str(tmp_path / "crossfit")
  configs = [tiny_config(), models.ModelConfig(
      model="LogisticModel", feature_names=("mean_rgb", "mean_audio"),
      feature_sizes=(1024, 128), num_classes=NUM_CLASSES)]
  options = [training.TrainOptions(batch_size=batch_size, num_epochs=1, seed=1, verbose=0,
                                  log_every_n_steps=1)
             for batch_size in (16, 4)]
  result = distillation.cross_fit(configs, output_dir, dataset["video"]["train"], folds=2,
                                  options=options, top_k=6, batch_size=16)
  for fold_dirs in result.teacher_dirs:
    with open(os.path.join(fold_dirs[0], "train_log.csv")) as fc_log, \
        open(os.path.join(fold_dirs[1], "train_log.csv")) as logistic_log:
      fc_steps = int(fc_log.read().splitlines()[-1].split(",")[0])
      logistic_steps = int(logistic_log.read().splitlines()[-1].split(",")[0])
    # One epoch of the same fold: 4 times the steps at a quarter of the batch.
    assert logistic_steps >= 3 * fc_steps


def test_a_fold_teacher_reads_only_the_other_folds(dataset):
  from yt8m_fusion import inputs  # pylint: disable=import-outside-toplevel
  pattern = dataset["video"]["train"]
  ids = np.asarray(record_ids(pattern), dtype=object)
  batches = inputs.load_batches(pattern, tiny_config().data_spec(),
                                batch_size=5)
  kept = distillation.filter_videos(batches.dataset, distillation.FoldFilter(3, 1), 5)
  sizes, seen = [], []
  for batch in kept:
    sizes.append(len(batch["video_ids"]))
    seen.extend(batch["video_ids"].numpy())
  assert sorted(seen) == sorted(ids[distillation.fold_of(ids, 3) != 1])
  assert all(size == 5 for size in sizes[:-1])  # rebatched to full batches


def test_the_cost_benchmark_measures_every_variant_on_a_tiny_model():
  import sys  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  "benchmarks"))
  import distillation_cost  # pylint: disable=import-outside-toplevel
  tiny = {"attend_hidden_size": 16, "attend_token_size": 8, "attend_num_heads": 2,
          "attend_key_dim": 4}
  result = distillation_cost.measure(batch_size=4, steps=1, chunks=1, student_hidden=tiny,
                                     teacher_hidden={**tiny, "attend_hidden_size": 32},
                                     num_videos=16, num_classes=NUM_CLASSES, top_k=3)
  assert set(result["seconds_per_step"]) == {"labels", "soft_loss", "cached", "forward"}
  assert all(value > 0 for value in result["seconds_per_step"].values())
  assert result["teacher_parameters"] > result["student_parameters"] > 0
