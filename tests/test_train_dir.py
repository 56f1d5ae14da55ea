"""model_flags.json handling and --start_new_model's clean-up."""

import json

import pytest

from yt8m_fusion import models
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.errors import UserError
from yt8m_fusion.models.config import ModelConfig


def make_config(**overrides):
  values = dict(model="AttendFusion", feature_names=["mean_rgb", "mean_audio"],
                feature_sizes=[1024, 128], params={"attend_hidden_size": 8192})
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
  # The model's own hyper-parameters, all of them (defaults filled in), and no others.
  assert data["model_params"] == models.default_params("AttendFusion")
  loaded = train_dir_lib.load_config(str(tmp_path))
  assert loaded == ModelConfig(**{**vars(make_config()),
                                  "params": models.default_params("AttendFusion")})
  train_dir_lib.save_config(str(tmp_path), make_config(model="LogisticModel"))
  data = json.loads((tmp_path / "model_flags.json").read_text())
  assert sorted(data["model_params"]) == ["frame_pooling", "input_l2_norm", "l2_penalty"]


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
  requested = make_config(model="FCLateFusion", params={"attend_hidden_size": 64})
  with pytest.raises(UserError, match="--model: saved 'AttendFusion', given 'FCLateFusion'"):
    train_dir_lib.merge_config(saved, requested, {"model"}, str(tmp_path))
  requested = make_config(params={"attend_hidden_size": 64})
  with pytest.raises(UserError, match="--attend_hidden_size: saved 8192, given 64"):
    train_dir_lib.merge_config(saved, requested, {"attend_hidden_size"}, str(tmp_path))
  # Flags left at their defaults take the saved values.
  merged = train_dir_lib.merge_config(make_config(), requested, set(), str(tmp_path))
  assert merged.model == "AttendFusion" and merged.params["attend_hidden_size"] == 8192


def test_saved_models_keep_the_behaviour_of_flags_added_later(tmp_path):
  """A model_flags.json from before --fc_late_fusion existed rebuilds mean_probabilities."""
  requested = make_config(model="FCLateFusion",
                          params={"fc_hidden_size": 8192, "fc_late_fusion": "sum_logits"})
  old = make_config(model="FCLateFusion", params={"fc_hidden_size": 8192})  # without the flag
  merged = train_dir_lib.merge_config(old, requested, set(), str(tmp_path))
  assert merged.params["fc_late_fusion"] == "mean_probabilities"
  # Saved with the flag: the saved value; given explicitly for an old model: the given one.
  new = make_config(model="FCLateFusion",
                    params={"fc_hidden_size": 8192, "fc_late_fusion": "sum_logits"})
  assert train_dir_lib.merge_config(new, requested, set(), str(tmp_path)).params[
      "fc_late_fusion"] == "sum_logits"
  explicit = train_dir_lib.merge_config(old, requested, {"fc_late_fusion"}, str(tmp_path))
  assert explicit.params["fc_late_fusion"] == "sum_logits"
  # The starter's files hold no hyper-parameters: the defaults (the starter's), or the flags.
  starter = make_config(model="MoeModel", feature_names=["mean_rgb"], feature_sizes=[1024],
                        params={})
  given = make_config(model="MoeModel", feature_names=["mean_rgb"], feature_sizes=[1024],
                      params={"moe_num_mixtures": 4})
  assert train_dir_lib.merge_config(starter, given, set(), str(tmp_path)).params == (
      models.default_params("MoeModel"))
  assert train_dir_lib.merge_config(starter, given, {"moe_num_mixtures"}, str(tmp_path)).params[
      "moe_num_mixtures"] == 4


def test_a_saved_file_with_a_bad_hyper_parameter_names_it(tmp_path):
  data = make_config().to_json_dict()
  data["model_params"]["attend_hidden_size"] = "wide"
  (tmp_path / "model_flags.json").write_text(json.dumps(data))
  with pytest.raises(UserError, match="'model_params': --attend_hidden_size='wide'"):
    train_dir_lib.load_config(str(tmp_path))
  # Another model's keys (earlier files held every model's) are not this model's business.
  data = make_config().to_json_dict()
  data["model_params"]["fc_hidden_size"] = "wide"
  (tmp_path / "model_flags.json").write_text(json.dumps(data))
  assert train_dir_lib.load_config(str(tmp_path)).model == "AttendFusion"


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


# Second round (docs/RELIABILITY.md): what train_dir/checkpoint and model_flags.json may hold.

def _fake_checkpoint(folder, step):
  (folder / f"model.ckpt-{step}.index").write_bytes(b"x")
  (folder / f"model.ckpt-{step}.data-00000-of-00001").write_bytes(b"x")


def _index(folder, *steps, prefix=""):
  lines = [f'model_checkpoint_path: "{prefix}model.ckpt-{steps[-1]}"']
  lines += [f'all_model_checkpoint_paths: "{prefix}model.ckpt-{s}"' for s in steps]
  lines += ["all_model_checkpoint_timestamps: 1.5", "last_preserved_timestamp: 1.0"]
  (folder / "checkpoint").write_text("\n".join(lines) + "\n")


def test_latest_checkpoint_checks_what_the_index_names(tmp_path):
  assert train_dir_lib.latest_checkpoint(str(tmp_path)) is None
  _fake_checkpoint(tmp_path, 1)
  _fake_checkpoint(tmp_path, 2)
  with pytest.raises(UserError, match="holds model.ckpt-1, model.ckpt-2 but no 'checkpoint'"):
    train_dir_lib.latest_checkpoint(str(tmp_path))
  _index(tmp_path, 1, 2)
  assert train_dir_lib.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-2")
  _index(tmp_path, 1, 2, prefix=f"{tmp_path}/")  # absolute names inside train_dir: fine
  assert train_dir_lib.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-2")
  (tmp_path / "model.ckpt-2.data-00000-of-00001").unlink()
  _index(tmp_path, 1, 2)
  with pytest.raises(UserError, match=r"names model.ckpt-2, but model.ckpt-2.data-00000-of-00001 "
                                      r"is missing .* edit it to name an intact one "
                                      r"\(model.ckpt-1\)"):
    train_dir_lib.latest_checkpoint(str(tmp_path))
  _index(tmp_path, 1, prefix="/elsewhere/run/")
  with pytest.raises(UserError, match="names /elsewhere/run/model.ckpt-1, outside"):
    train_dir_lib.latest_checkpoint(str(tmp_path))
  _index(tmp_path, 1, prefix="../other/")
  with pytest.raises(UserError, match="outside"):
    train_dir_lib.latest_checkpoint(str(tmp_path))
  (tmp_path / "checkpoint").write_text("step 2\n")
  with pytest.raises(UserError, match="checkpoint line 1 is not part of a checkpoint index"):
    train_dir_lib.latest_checkpoint(str(tmp_path))
  (tmp_path / "checkpoint").write_text("")
  with pytest.raises(UserError, match="names no checkpoint"):
    train_dir_lib.require_checkpoint(str(tmp_path))


@pytest.mark.parametrize("content,expected", [
    ('{"model": ', "is not valid JSON"),
    ("[1]", "holds a JSON list, not an object"),
    ('{"model": "AttendFusion"}', "lacks the keys feature_names, feature_sizes"),
    (json.dumps(dict(json.loads(make_config().to_json()), model=7)), "'model' is 7; expected a name"),
    (json.dumps(dict(json.loads(make_config().to_json()), feature_sizes="1024")),
     "'feature_names' has 2 names but 'feature_sizes' has 1 sizes"),
    (json.dumps(dict(json.loads(make_config().to_json()), num_classes="many")),
     "'num_classes' is 'many'; expected an integer >= 2"),
    (json.dumps(dict(json.loads(make_config().to_json()), frame_features="maybe")),
     "'frame_features' is 'maybe'; expected true or false"),
    (json.dumps(dict(json.loads(make_config().to_json()), label_loss="L1Loss")),
     "'label_loss' is 'L1Loss', not a known loss"),
    (json.dumps(dict(json.loads(make_config().to_json()), model_params=[1])),
     "'model_params' is [1]; expected an object"),
])
def test_invalid_model_flags_name_the_file_and_the_key(tmp_path, content, expected):
  (tmp_path / "model_flags.json").write_text(content)
  with pytest.raises(UserError) as info:
    train_dir_lib.load_config(str(tmp_path))
  assert str(info.value).startswith(str(tmp_path / "model_flags.json"))
  assert expected in str(info.value)


def test_train_dir_that_is_something_else(tmp_path):
  with pytest.raises(UserError, match="--train_dir=.*/nowhere does not exist"):
    train_dir_lib.load_config(str(tmp_path / "nowhere"))
  (tmp_path / "a_file").write_text("x")
  with pytest.raises(UserError, match="a_file is a file; expected a folder"):
    train_dir_lib.load_config(str(tmp_path / "a_file"))
  export = tmp_path / "run" / "export" / "7"
  export.mkdir(parents=True)
  (export / "saved_model.pb").write_bytes(b"x")
  with pytest.raises(UserError, match=r"export/7 is an exported SavedModel.*here .*/run\)"):
    train_dir_lib.load_config(str(export))
  with pytest.raises(UserError, match=r"export is a train_dir's export folder \(SavedModels 7\)"):
    train_dir_lib.check_not_export(str(export.parent))
  train_dir_lib.check_not_export(str(tmp_path / "run"))


def test_model_flags_bind_a_resumed_run_only_once_a_checkpoint_exists(tmp_path):
  train_dir_lib.save_config(str(tmp_path), make_config())
  assert train_dir_lib.config_to_resume(str(tmp_path)) is None
  _fake_checkpoint(tmp_path, 3)
  _index(tmp_path, 3)
  assert train_dir_lib.config_to_resume(str(tmp_path)) == ModelConfig(
      **{**vars(make_config()), "params": models.default_params("AttendFusion")})


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
  (tmp_path / "model.ckpt-6_temp").mkdir()
  (tmp_path / "model.ckpt-6_temp" / "part-00000-of-00001.index").write_text("x")
  (tmp_path / ("checkpoint.tmp" + "ab" * 16)).write_text("x")
  (tmp_path / ".model_flags.json.tmp-1234").write_text("x")
  for name in ("checkpoint", "model.ckpt-6.index", "notes_temp", "checkpoint.tmp"):
    (tmp_path / name).write_text("x")
  assert train_dir_lib.remove_stale_temporaries(str(tmp_path)) == [
      ".model_flags.json.tmp-1234", "checkpoint.tmp" + "ab" * 16, "model.ckpt-6_temp"]
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      "checkpoint", "checkpoint.tmp", "model.ckpt-6.index", "notes_temp"]
