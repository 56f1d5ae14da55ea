"""training.run as a Python API, and the explicit training step against Keras' own."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from yt8m_fusion import data as yt8m_data
from yt8m_fusion import losses
from yt8m_fusion import models
from yt8m_fusion import training
from yt8m_fusion.errors import UserError

NUM_CLASSES = 12
TINY_FC = {"fc_hidden_size": 16, "fc_num_layers": 1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp("data"))
  return yt8m_data.generate_dataset(folder, num_videos=64, num_classes=NUM_CLASSES, seed=3,
                                    num_shards=2)


def tiny_config(model="FCModel", **params):
  return models.ModelConfig(model=model, feature_names=("mean_rgb", "mean_audio"),
                            feature_sizes=(1024, 128), num_classes=NUM_CLASSES,
                            params={**TINY_FC, **params})


def test_run_trains_evaluates_exports_and_resumes(dataset, tmp_path):
  train_dir = str(tmp_path / "run")
  options = training.TrainOptions(batch_size=8, num_epochs=100, max_steps=4,
                                  base_learning_rate=0.01, verbose=0)
  result = training.run(tiny_config(), train_dir, dataset["video"]["train"], options=options,
                        eval_data_pattern=dataset["video"]["validate"])
  assert result.train.step == 4 and not result.train.interrupted
  with open(os.path.join(train_dir, "eval", "metrics-4.json")) as handle:
    metrics = json.load(handle)
  assert metrics["gap"] == pytest.approx(result.eval_results["gap"])
  assert metrics["num_parameters"] == result.num_parameters > 0
  assert os.path.isdir(result.export_path) and result.export_path.endswith("export/4")
  with open(os.path.join(train_dir, "model_flags.json")) as handle:
    assert json.load(handle)["model"] == "FCModel"

  options.max_steps = 6
  resumed = training.run(tiny_config(), train_dir, dataset["video"]["train"], options=options,
                         export=False)
  assert resumed.train.step == 6 and resumed.eval_results is None
  assert resumed.export_path is None


def test_run_leaves_the_global_precision_policy_as_it_found_it(dataset, tmp_path):
  options = training.TrainOptions(batch_size=8, num_epochs=1, max_steps=2, verbose=0,
                                  mixed_precision="mixed_bfloat16")
  assert keras.mixed_precision.global_policy().name == "float32"
  training.run(tiny_config(), str(tmp_path / "run"), dataset["video"]["train"],
               options=options, export=False)
  # A model built after (an experiment's evaluation) is built in float32 again.
  assert keras.mixed_precision.global_policy().name == "float32"
  assert models.build_model(tiny_config()).compute_dtype == "float32"


def test_label_smoothing_trains_against_smoothed_targets(dataset, tmp_path):
  from yt8m_fusion import prediction  # pylint: disable=import-outside-toplevel
  lowest = []
  for smoothing in (0.0, 0.2):
    train_dir = str(tmp_path / f"smoothing-{smoothing}")
    options = training.TrainOptions(batch_size=16, num_epochs=100, max_steps=40, seed=3,
                                    verbose=0, base_learning_rate=0.05,
                                    label_smoothing=smoothing)
    training.run(tiny_config(), train_dir, dataset["video"]["train"], options=options,
                 export=False)
    with prediction.load(train_dir) as predictor:
      lowest.append(np.mean([batch.probabilities.min(axis=1).mean() for batch in
                             predictor.predictions(dataset["video"]["train"], batch_size=16)]))
  # Smoothed negatives have the target 0.1: the least likely class stays near it, while plain
  # labels push it towards 0.
  assert lowest[1] > 0.05 and lowest[0] < lowest[1] / 2
  with pytest.raises(UserError, match=r"--label_smoothing=1.0: expected a value in \[0, 1\)"):
    training.TrainOptions(label_smoothing=1.0).validate()


def test_a_models_default_label_smoothing_is_left_out_for_other_losses():
  smoothed = training.TrainOptions.for_model("AttendFusion")
  assert smoothed.label_smoothing > 0  # the model's default, cross-entropy's
  hinge = training.TrainOptions.for_model("AttendFusion", "HingeLoss")
  assert hinge.label_smoothing == 0.0 and hinge.num_epochs == smoothed.num_epochs
  losses.get_loss("HingeLoss", hinge.label_smoothing)  # nothing left to refuse
  asked = training.TrainOptions.for_model("AttendFusion", "HingeLoss", label_smoothing=0.01)
  with pytest.raises(UserError, match="--label_smoothing=0.01 applies to"):
    losses.get_loss("HingeLoss", asked.label_smoothing)


def test_run_refuses_a_train_dir_of_another_model(dataset, tmp_path):
  train_dir = str(tmp_path / "run")
  options = training.TrainOptions(batch_size=8, max_steps=1, verbose=0)
  training.run(tiny_config(), train_dir, dataset["video"]["train"], options=options,
               export=False)
  with pytest.raises(UserError, match="model_flags.json describes another model"):
    training.run(tiny_config(fc_hidden_size=32), train_dir, dataset["video"]["train"],
                 options=options, export=False)


def test_options_validate_names_the_flag():
  with pytest.raises(UserError, match="--batch_size=0: expected at least 1"):
    training.TrainOptions(batch_size=0).validate()
  with pytest.raises(UserError, match="--optimizer=Nope is not supported"):
    training.TrainOptions(optimizer="Nope").validate()
  paper = training.TrainOptions.for_model("AttendFusion")
  starter = training.TrainOptions.for_model("LogisticModel")
  assert starter.base_learning_rate == training.TrainOptions().base_learning_rate
  assert paper != starter  # the paper-size models have their own defaults


def _one_step(trainer_or_model, inputs, labels):
  dataset = tf.data.Dataset.from_tensors((inputs, labels))
  trainer_or_model.fit(dataset, epochs=1, verbose=0, shuffle=False)


@pytest.mark.parametrize("clip", [0.0, 0.05])
def test_training_step_matches_keras_fit_with_clipnorm(clip):
  """One SGD step of TrainingModel == Keras' own step with the same per-tensor clipnorm."""
  config = tiny_config(l2_penalty=0.0)
  rng = np.random.default_rng(0)
  inputs = {"mean_rgb": rng.normal(size=(8, 1024)).astype("float32"),
            "mean_audio": rng.normal(size=(8, 128)).astype("float32")}
  labels = (rng.random((8, NUM_CLASSES)) < 0.3).astype("float32")

  keras.utils.set_random_seed(1)
  reference = models.build_model(config)
  start = reference.get_weights()
  reference.compile(optimizer=keras.optimizers.SGD(1.0, **({"clipnorm": clip} if clip else {})),
                    loss=losses.get_loss(config.label_loss))
  _one_step(reference, inputs, labels)

  network = models.build_model(config)
  network.set_weights(start)
  options = training.TrainOptions(optimizer="SGD", base_learning_rate=1.0,
                                  learning_rate_decay=1.0, clip_gradient_norm=clip)
  _one_step(training.build_trainer(network, config, options), inputs, labels)

  moved = max(float(np.max(np.abs(a - b))) for a, b in zip(start, reference.get_weights()))
  assert moved > 1e-3
  for ours, theirs in zip(network.get_weights(), reference.get_weights()):
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_regularization_penalty_weighs_the_models_l2_losses():
  config = tiny_config(model="LogisticModel", l2_penalty=1.0)
  rng = np.random.default_rng(1)
  inputs = {"mean_rgb": rng.normal(size=(4, 1024)).astype("float32"),
            "mean_audio": rng.normal(size=(4, 128)).astype("float32")}
  labels = np.zeros((4, NUM_CLASSES), "float32")
  logs = {}
  for penalty in (0.0, 1.0):
    keras.utils.set_random_seed(2)
    network = models.build_model(config)
    trainer = training.build_trainer(network, config, training.TrainOptions(
        base_learning_rate=0.0, regularization_penalty=penalty))
    history = trainer.fit(tf.data.Dataset.from_tensors((inputs, labels)), verbose=0,
                          shuffle=False)
    logs[penalty] = history.history["loss"][0]
    l2 = float(tf.add_n(network.losses))
  assert l2 > 0
  assert logs[1.0] - logs[0.0] == pytest.approx(l2, rel=1e-4)


def test_train_py_applies_the_models_defaults_only_to_flags_not_given(dataset, tmp_path):
  from programs import run_program  # pylint: disable=import-outside-toplevel
  common = ["--model=FCModel", "--fc_hidden_size=8", "--fc_num_layers=1", "--max_steps=1",
            f"--num_classes={NUM_CLASSES}", "--noexport",
            f"--train_data_pattern={dataset['video']['train']}"]
  defaults = training.TrainOptions.for_model("FCModel")
  run_program("train.py", *common, f"--train_dir={tmp_path / 'a'}")
  with open(tmp_path / "a" / "model_flags.json") as handle:
    params = json.load(handle)["model_params"]
  assert params["input_l2_norm"] == models.default_params("FCModel")["input_l2_norm"]
  result = run_program("train.py", *common, f"--train_dir={tmp_path / 'b'}",
                       "--input_l2_norm=joint", "--batch_size=4")
  with open(tmp_path / "b" / "model_flags.json") as handle:
    assert json.load(handle)["model_params"]["input_l2_norm"] == "joint"
  assert "batch 4 per replica" in result.stderr
  assert f"learning rate {defaults.base_learning_rate:g}" in result.stderr


def test_a_run_stopped_by_max_steps_resumes_its_unfinished_epoch(dataset, tmp_path):
  """--max_steps ends a run mid-epoch: that epoch is not counted as trained, so the same
  run resumed without --max_steps trains on (it once stopped with 'Already trained')."""
  train_dir = str(tmp_path / "run")
  options = training.TrainOptions(batch_size=8, num_epochs=1, max_steps=2, verbose=0)
  first = training.run(tiny_config(), train_dir, dataset["video"]["train"], options=options,
                       export=False)
  assert first.train.step == 2 and first.train.epoch == 0
  options.max_steps = None
  resumed = training.run(tiny_config(), train_dir, dataset["video"]["train"], options=options,
                         export=False)
  assert resumed.train.step > 2 and resumed.train.epoch == 1
