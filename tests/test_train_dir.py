"""model_flags.json handling and --start_new_model's clean-up."""

import json

import pytest

from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.errors import UserError
from yt8m_fusion.models.config import ModelConfig


def make_config(**overrides):
  values = dict(model="AttendFusion", feature_names=["mean_rgb", "mean_audio"],
                feature_sizes=[1024, 128], params={"fusion_hidden_size": 8192})
  values.update(overrides)
  return ModelConfig(**values)


def test_model_flags_keep_the_starter_keys(tmp_path):
  train_dir_lib.save_config(str(tmp_path), make_config())
  data = json.loads((tmp_path / "model_flags.json").read_text())
  assert data["model"] == "AttendFusion"
  assert data["feature_names"] == "mean_rgb,mean_audio"
  assert data["feature_sizes"] == "1024,128"
  assert data["frame_features"] is False
  assert data["label_loss"] == "CrossEntropyLoss"
  assert train_dir_lib.load_config(str(tmp_path)) == make_config()


def test_starter_written_model_flags_are_read(tmp_path):
  (tmp_path / "model_flags.json").write_text(json.dumps({
      "model": "MoeModel", "feature_sizes": "1024", "feature_names": "mean_rgb",
      "frame_features": False, "label_loss": "CrossEntropyLoss"}))
  config = train_dir_lib.load_config(str(tmp_path))
  assert config.model == "MoeModel" and config.num_classes == 3862 and config.params == {}


def test_missing_model_flags_is_a_clear_error(tmp_path):
  with pytest.raises(UserError, match="did you run train.py"):
    train_dir_lib.load_config(str(tmp_path))


def test_explicit_flags_that_contradict_the_saved_model_are_rejected(tmp_path):
  saved = make_config()
  requested = make_config(model="FCLateFusion", params={"fusion_hidden_size": 64})
  with pytest.raises(UserError, match="--model: saved 'AttendFusion', given 'FCLateFusion'"):
    train_dir_lib.merge_config(saved, requested, {"model"}, str(tmp_path))
  with pytest.raises(UserError, match="--fusion_hidden_size"):
    train_dir_lib.merge_config(saved, requested, {"fusion_hidden_size"}, str(tmp_path))
  # Flags left at their defaults take the saved values.
  merged = train_dir_lib.merge_config(make_config(), requested, set(), str(tmp_path))
  assert merged.model == "AttendFusion" and merged.params["fusion_hidden_size"] == 8192


def test_saved_models_keep_the_behaviour_of_flags_added_later(tmp_path):
  """A model_flags.json from before --fc_late_fusion existed rebuilds mean_probabilities."""
  requested = make_config(model="FCLateFusion",
                          params={"fusion_hidden_size": 8192, "fc_late_fusion": "sum_logits"})
  old = make_config(model="FCLateFusion")  # saved without the flag
  merged = train_dir_lib.merge_config(old, requested, set(), str(tmp_path))
  assert merged.params["fc_late_fusion"] == "mean_probabilities"
  # Saved with the flag: the saved value; given explicitly for an old model: the given one.
  new = make_config(model="FCLateFusion",
                    params={"fusion_hidden_size": 8192, "fc_late_fusion": "sum_logits"})
  assert train_dir_lib.merge_config(new, requested, set(), str(tmp_path)).params[
      "fc_late_fusion"] == "sum_logits"
  explicit = train_dir_lib.merge_config(make_config(model="FCLateFusion"), requested,
                                        {"fc_late_fusion"}, str(tmp_path))
  assert explicit.params["fc_late_fusion"] == "sum_logits"


def test_start_new_model_removes_only_our_files(tmp_path):
  for name in ["model_flags.json", "checkpoint", "model.ckpt-10.index",
               "model.ckpt-10.data-00000-of-00001", "events.out.tfevents.1.host",
               "train_log.csv", "notes.txt", "model.ckpt-10.backup"]:
    (tmp_path / name).write_text("x")
  (tmp_path / "eval").mkdir()
  (tmp_path / "export").mkdir()
  (tmp_path / "my_data").mkdir()
  train_dir_lib.remove_own_files(str(tmp_path))
  assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt-10.backup", "my_data",
                                                        "notes.txt"]


def test_checkpoint_step_and_latest_export(tmp_path):
  assert train_dir_lib.checkpoint_step("/x/model.ckpt-1234") == 1234
  assert train_dir_lib.latest_export(str(tmp_path)) is None
  for name in ["3", "12", ".tmp-15-abc"]:
    (tmp_path / "export" / name).mkdir(parents=True)
  assert train_dir_lib.latest_export(str(tmp_path)).endswith("export/12")
