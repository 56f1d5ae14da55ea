"""Experiment reports: two tiny runs trained by the paper experiment's machinery
(training.run in this process, in two chunks each), then the report, in-process and through
`python -m yt8m_fusion.report`; the table is checked against the runs' eval JSON and every
figure must be a non-empty PNG."""

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from programs import run_program
from yt8m_fusion import data as yt8m_data
from yt8m_fusion.errors import UserError
from yt8m_fusion.experiments import paper
from yt8m_fusion import report

NUM_CLASSES = 12
TINY = paper.Budget("tiny", width=32, token_size=8, batch_size=16, learning_rate=0.01,
                    eval_steps=(2, 4), log_every_n_steps=1)
MEMBERS = tuple(m for m in paper.FAMILY if m.label in (paper.ATTEND_FUSION, paper.LATE_FUSION))
FIGURES = ("gap_vs_parameters", "training_curves", "per_class_ap", "per_class_ap_by_frequency",
           "qualitative", "attention")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp("data"))
  dataset = yt8m_data.generate_dataset(folder, num_videos=64, num_classes=NUM_CLASSES, seed=7,
                                       num_shards=2, min_frames=2, max_frames=4)
  output_dir = str(tmp_path_factory.mktemp("paper"))
  seconds, train_dirs = paper.train_all(
      TINY, output_dir, MEMBERS, train_data_pattern=dataset["video"]["train"],
      eval_data_pattern=dataset["video"]["validate"], num_classes=NUM_CLASSES)
  record = {"training_seconds": sum(seconds.values()), "seconds_per_model": seconds,
            "cpu_count": 2, "load_average_before": [1.0, 1.0, 1.0]}
  result = paper.write_experiment_report(TINY, output_dir, MEMBERS, train_dirs, record,
                                         num_videos=3)
  return {"dir": output_dir, "train_dirs": train_dirs, "report": result, "data": dataset,
          "record": record}


def _metrics(train_dir):
  with open(os.path.join(train_dir, "eval", "metrics.json")) as handle:
    return json.load(handle)


def test_table_values_are_the_runs_eval_json(experiment):
  table = pd.read_csv(os.path.join(experiment["dir"], report.FILES["csv"]))
  assert list(table["model"]) == [m.label for m in MEMBERS]
  for (_, row), train_dir in zip(table.iterrows(), experiment["train_dirs"]):
    metrics = _metrics(train_dir)
    assert metrics["step"] == TINY.eval_steps[-1] == row["step"]
    for column, key in (("gap", "gap"), ("f1", "f1"), ("hit_at_1", "avg_hit_at_one"),
                        ("perr", "avg_perr"), ("map", "map"), ("avg_loss", "avg_loss")):
      assert row[column] == pytest.approx(metrics[key], rel=1e-12, abs=1e-15), column
    assert row["parameters"] == metrics["num_parameters"]
    assert row["modalities"] == "visual + audio"
    assert row["budget"] == "tiny"
    assert row["size_of"] == "SavedModel"
    export = os.path.join(train_dir, "export", str(TINY.eval_steps[-1]))
    size = sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(export) for name in names)
    assert row["size_on_disk_mb"] == pytest.approx(size / 1e6)
    assert row["train_examples_per_second"] > 0
  widths = dict(zip(table["model"], table["widths"]))
  assert widths[paper.ATTEND_FUSION] == "32 (4 tokens of 8), 4 heads x 32"
  assert widths[paper.LATE_FUSION] == "32 x 3 per modality"


def test_parameters_are_the_trained_models_counts(experiment):
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import train_dir as train_dir_lib  # pylint: disable=import-outside-toplevel
  table = experiment["report"].table
  for (_, row), train_dir in zip(table.iterrows(), experiment["train_dirs"]):
    model = models.build_model(train_dir_lib.load_config(train_dir))
    assert row["parameters"] == model.count_params()


def test_every_figure_is_a_non_empty_png(experiment):
  files = experiment["report"].files
  assert not experiment["report"].skipped
  for name in FIGURES:
    path = files[name]
    assert os.path.basename(path) == report.FILES[name]
    with open(path, "rb") as handle:
      content = handle.read()
    assert content.startswith(PNG_SIGNATURE) and len(content) > 5000, name


def test_report_markdown_references_table_figures_and_claims(experiment):
  with open(experiment["report"].files["report"]) as handle:
    text = handle.read()
  for name in FIGURES:
    assert f"]({report.FILES[name]})" in text
  assert "| FC Late Fusion | FCLateFusion | visual + audio |" in text
  assert "GAP (%)" in text and "budget" in text
  assert "Attend-Fusion close to FC Late Fusion" in text
  assert experiment["record"]["claims"]["close_at_fraction_of_parameters"] in text
  with open(os.path.join(experiment["dir"], report.FILES["markdown_table"])) as handle:
    table_md = handle.read()
  gap = 100 * _metrics(experiment["train_dirs"][0])["gap"]
  assert f"| {gap:.2f} |" in table_md
  # The validation curve: every run's GAP at each evaluated step, from eval/metrics-<step>.json.
  for member, train_dir in zip(MEMBERS, experiment["train_dirs"]):
    gaps = []
    for step in TINY.eval_steps:
      with open(os.path.join(train_dir, "eval", f"metrics-{step}.json")) as handle:
        gaps.append(f"{100 * json.load(handle)['gap']:.2f}")
    assert f"| {member.label} | {' | '.join(gaps)} |" in text
  assert "| model | step 2 | step 4 |" in text


def test_chunks_give_a_validation_curve_and_a_training_log(experiment):
  run = report.load_run(experiment["train_dirs"][0])
  assert [record["step"] for record in run.eval_history] == list(TINY.eval_steps)
  assert list(run.train_log["step"]) == [1, 2, 3, 4]
  assert {"loss", "gap", "examples_per_second"} <= set(run.train_log.columns)


def test_rerunning_the_experiment_skips_finished_models(experiment):
  seconds, _ = paper.train_all(TINY, experiment["dir"], MEMBERS,
                               train_data_pattern=experiment["data"]["video"]["train"],
                               eval_data_pattern=experiment["data"]["video"]["validate"],
                               num_classes=NUM_CLASSES)
  assert seconds == {}  # nothing trained again


def test_qualitative_predictions_name_the_classes(experiment):
  table = pd.read_csv(experiment["report"].files["qualitative_csv"])
  assert len(table) == 3 * 3 * len(MEMBERS)  # videos x top-3 x models
  assert set(table["model"]) == {m.label for m in MEMBERS}
  vocabulary = yt8m_data.read_vocabulary(experiment["data"]["vocabulary"])
  for _, row in table.iterrows():
    assert row["class_name"] == vocabulary[row["class_index"]]
    assert 0.0 <= row["score"] <= 1.0
    assert isinstance(row["ground_truth"], str) and row["ground_truth"]
  ranks = table.groupby(["video_id", "model"])["score"].apply(list)
  assert all(scores == sorted(scores, reverse=True) for scores in ranks)


def test_per_class_ap_is_mapped_to_the_classes_with_positives(experiment):
  from yt8m_fusion.report import predictions  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.report import writer  # pylint: disable=import-outside-toplevel
  runs = report.load_runs(experiment["train_dirs"])
  info = writer._class_info(runs, None, 300)  # pylint: disable=protected-access
  counts, videos = predictions.label_counts(runs[0].eval_data_pattern, runs[0].config)
  assert videos == experiment["data"]["num_videos"]["validate"]
  assert info["classes"] == [int(c) for c in np.flatnonzero(counts)]
  assert len(info["classes"]) == len(runs[0].metrics["per_class_ap"])


def test_per_class_ap_against_training_positives(experiment):
  from yt8m_fusion.report import predictions  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.report import writer  # pylint: disable=import-outside-toplevel
  runs = report.load_runs(experiment["train_dirs"])
  train = experiment["data"]["video"]["train"]
  info = writer._class_info(runs, None, 300, train)  # pylint: disable=protected-access
  counts, _ = predictions.label_counts(train, runs[0].config)
  assert info["frequency"] == {c: int(counts[c]) for c in info["classes"]}
  assert info["frequency_column"] == "train_positives"
  # The experiment's report (no training data given): the evaluation data's counts.
  table = pd.read_csv(experiment["report"].files["per_class_ap_csv"])
  assert list(table["class_index"]) == info["classes"]
  assert list(table["eval_positives"]) == [info["eval_positives"][c] for c in info["classes"]]
  for member, run in zip(MEMBERS, runs):
    assert list(table[member.label]) == pytest.approx(run.metrics["per_class_ap"], abs=1e-6)


def test_report_command_line(experiment, tmp_path):
  output = str(tmp_path / "cli")
  dirs = dict(zip([m.label for m in MEMBERS], experiment["train_dirs"]))
  train_dirs = [dirs[paper.ATTEND_FUSION], dirs[paper.LATE_FUSION]]
  result = run_program("yt8m_fusion.report", f"--train_dirs={','.join(train_dirs)}",
                       "--labels=AF,Late", "--compare=Late,AF", "--num_videos=2",
                       f"--output_dir={output}")
  assert "| AF | AttendFusion |" in result.stderr, result.stderr[-3000:]
  table = pd.read_csv(os.path.join(output, "results.csv"))
  assert list(table["model"]) == ["AF", "Late"]
  assert table["gap"].tolist() == pytest.approx([_metrics(d)["gap"] for d in train_dirs],
                                                rel=1e-12)
  for name in FIGURES:
    assert os.path.getsize(os.path.join(output, report.FILES[name])) > 5000
  qualitative = pd.read_csv(os.path.join(output, "qualitative.csv"))
  assert list(dict.fromkeys(qualitative["model"])) == ["Late", "AF"]
  assert qualitative["video_id"].nunique() == 2


def test_report_names_classes_from_the_vocabulary_file_and_falls_back(experiment, tmp_path):
  """--vocabulary_file: its names, "class <index>" for the classes it lacks or leaves empty."""
  # Name every other class the experiment's report shows (one of the others with an empty
  # name); the same runs and videos show the same classes.
  shown = sorted(set(pd.read_csv(experiment["report"].files["qualitative_csv"])["class_index"]))
  partial = {index: f"Named {index}" for index in shown[::2]}
  partial[shown[1]] = ""
  vocabulary_file = tmp_path / "partial_vocabulary.csv"
  vocabulary_file.write_text("Index,Name\n" + "".join(f"{i},{n}\n" for i, n in partial.items()))
  output = str(tmp_path / "named")
  run_program("yt8m_fusion.report", f"--train_dirs={','.join(experiment['train_dirs'])}",
              "--num_videos=3", f"--vocabulary_file={vocabulary_file}", f"--output_dir={output}")
  qualitative = pd.read_csv(os.path.join(output, "qualitative.csv"))
  expected = [partial.get(index) or f"class {index}" for index in qualitative["class_index"]]
  assert list(qualitative["class_name"]) == expected
  assert any(name.startswith("Named") for name in expected)
  assert any(name.startswith("class") for name in expected)
  with open(os.path.join(output, "report.md"), encoding="utf-8") as handle:
    assert f"Class names from `{vocabulary_file}`" in handle.read()
  bad = tmp_path / "bad_vocabulary.csv"
  bad.write_text("Index,Label\n0,Game\n")
  with pytest.raises(UserError, match=f"^{bad}: the vocabulary file lacks the column"):
    report.write_report(experiment["train_dirs"][:1], str(tmp_path / "bad"), num_videos=1,
                        vocabulary=str(bad))


def test_report_errors_are_one_line(experiment, tmp_path):
  result = run_program("yt8m_fusion.report", f"--train_dirs={tmp_path / 'missing'}",
                       f"--output_dir={tmp_path / 'out'}", check=False)
  assert result.returncode == 2
  assert "ERROR: --train_dirs:" in result.stderr and "Traceback" not in result.stderr
  with pytest.raises(UserError, match="one label per train_dir"):
    report.load_runs(experiment["train_dirs"], labels=["only one"])
  with pytest.raises(UserError, match="not one of the runs' labels"):
    report.choose_comparison(report.load_runs(experiment["train_dirs"]), ["nope"])


def test_a_run_without_export_reports_its_checkpoint_size(experiment, tmp_path):
  copy = str(tmp_path / "no_export")
  shutil.copytree(experiment["train_dirs"][1], copy,
                  ignore=shutil.ignore_patterns("export"))
  run = report.load_run(copy)
  assert run.size_of == "checkpoint"
  step = TINY.eval_steps[-1]
  expected = sum(os.path.getsize(os.path.join(copy, name)) for name in os.listdir(copy)
                 if name.startswith(f"model.ckpt-{step}."))
  assert run.size_bytes == expected > 0


def _checkpoints(train_dir):
  return sorted(name[:-len(".index")] for name in os.listdir(train_dir)
                if name.startswith("model.ckpt-") and name.endswith(".index"))


def test_compared_runs_keep_only_their_latest_checkpoint(experiment):
  last = TINY.eval_steps[-1]
  for train_dir in experiment["train_dirs"]:  # Attend-Fusion and FC Late Fusion, seed 1
    assert _checkpoints(train_dir) == [f"model.ckpt-{last}"]
    with open(os.path.join(train_dir, "checkpoint")) as handle:
      assert f'model_checkpoint_path: "model.ckpt-{last}"' in handle.read()
    assert report.load_run(train_dir).size_of == "SavedModel"


def test_other_runs_keep_export_and_evaluations_only(experiment, tmp_path):
  audio, logistic = paper.FAMILY[0], paper.REFERENCES[0]
  output_dir = str(tmp_path / "paper")
  data = experiment["data"]["video"]
  paper.train_all(TINY, output_dir, (audio,), train_data_pattern=data["train"],
                  eval_data_pattern=data["validate"], num_classes=NUM_CLASSES)
  paper.train_all(TINY, output_dir, (logistic,), train_data_pattern=data["train"],
                  eval_data_pattern=data["validate"], num_classes=NUM_CLASSES,
                  keep_checkpoints="all")
  audio_dir, logistic_dir = (os.path.join(output_dir, "runs", m.slug) for m in (audio, logistic))
  assert _checkpoints(audio_dir) == [] and not os.path.exists(os.path.join(audio_dir, "checkpoint"))
  assert paper.run_finished(TINY, audio_dir) and report.load_run(audio_dir).size_of == "SavedModel"
  assert _checkpoints(logistic_dir)[-1] == f"model.ckpt-{TINY.eval_steps[-1]}"
  # A finished run is not trained again without its checkpoints.
  seconds, _ = paper.train_all(TINY, output_dir, (audio,), train_data_pattern=data["train"],
                               eval_data_pattern=data["validate"], num_classes=NUM_CLASSES)
  assert seconds == {}


def test_a_run_in_a_fresh_process_trains_and_reports_user_errors(experiment, tmp_path):
  data = experiment["data"]["video"]
  audio = paper.FAMILY[0]
  seconds, (train_dir,) = paper.train_all(
      TINY, str(tmp_path / "paper"), (audio,), train_data_pattern=data["train"],
      eval_data_pattern=data["validate"], num_classes=NUM_CLASSES, process_per_chunk=True)
  assert list(seconds) == [audio.slug] and paper.run_finished(TINY, train_dir)
  recorded = paper.read_json(str(tmp_path / "paper" / paper.EXPERIMENT_FILE))
  assert 0 < recorded["seconds_per_model"][audio.slug] <= seconds[audio.slug]
  with open(tmp_path / "paper" / "logs" / f"{audio.slug}.log") as handle:
    assert f"{train_dir}: training to step {TINY.eval_steps[-1]}" in handle.read()
  with pytest.raises(UserError, match="no_such_file"):
    paper.train_all(TINY, str(tmp_path / "other"), (audio,),
                    train_data_pattern=str(tmp_path / "no_such_file*.tfrecord"),
                    eval_data_pattern=data["validate"], num_classes=NUM_CLASSES,
                    process_per_chunk=True)


def test_a_killed_training_process_is_one_error_that_says_how_to_resume():
  with pytest.raises(UserError, match="ended abruptly .*rerun the same command to resume"):
    paper._in_fresh_process(os.abort)  # pylint: disable=protected-access


def test_the_report_shows_the_finished_members(experiment):
  members = (paper.FAMILY[0], *MEMBERS)  # FC audio-only was never trained in this folder
  runs = paper.plan(TINY, experiment["dir"], members, seeds=(2,),
                    seed_members=(paper.LATE_FUSION,))
  shown, shown_runs, left_out = paper.finished(TINY, members, runs)
  assert [m.label for m in shown] == [m.label for m in MEMBERS]
  assert sorted(d for _, _, d in shown_runs) == sorted(experiment["train_dirs"])
  assert left_out == ["FC audio-only"]


def test_experiment_command_line_selects_and_reports(tmp_path):
  result = run_program("yt8m_fusion.experiments.paper", "--budget=real", "--dry_run",
                       "--models=fc_late_fusion,attend_fusion", "--seeds=2",
                       f"--output_dir={tmp_path}")
  runs = [line.split("\t") for line in result.stdout.splitlines()]
  assert [(label, seed) for label, seed, *_ in runs] == [
      ("FC Late Fusion", "seed 1"), ("FC Late Fusion", "seed 2"), ("Attend-Fusion", "seed 1"),
      ("Attend-Fusion", "seed 2")]
  result = run_program("yt8m_fusion.experiments.paper", "--report_only",
                       f"--output_dir={tmp_path / 'empty'}", check=False)
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert "ERROR: --report_only: no run in" in result.stderr


def test_the_real_budget_keeps_each_models_tuned_preprocessing():
  real = paper.BUDGETS["real"]
  norms = {m.label: paper.member_config(m, real).params["input_l2_norm"] for m in paper.MEMBERS}
  assert norms[paper.LATE_FUSION] == norms["FC audio-only"] == "none"
  assert norms[paper.ATTEND_FUSION] == norms[paper.NO_ATTENTION] == "joint"
  assert real.mixed_precision == "mixed_bfloat16" and real.batch_size == 256
  assert "each model's tuned preprocessing" in real.describe()


def test_the_quick_budget_trains_the_family_alike():
  budget = paper.BUDGETS["quick"]
  runs = paper.plan(budget, "/out", paper.FAMILY)
  assert [m.label for m, _, _ in runs] == [
      "FC audio-only", "FC visual-only", "FCRN", "FCRGN", "FC Early Fusion", "FC Mid Fusion",
      "FC Late Fusion", "Attend-Fusion", "Attend-Fusion w/o attention"]
  for member, seed, train_dir in runs:
    assert train_dir == os.path.join("/out", "runs", member.slug) and seed == 1
    config = paper.member_config(member, budget)
    assert config.params["input_l2_norm"] == "none"
    width = "attend_hidden_size" if member.model == "AttendFusion" else "fc_hidden_size"
    assert config.params[width] == 512
    options = paper.member_options(member, budget, 80, seed)
    assert (options.batch_size, options.base_learning_rate, options.seed,
            options.max_steps) == (256, 0.001, 1, 80)
  assert paper.member_config(runs[-1][0], budget).params["attend_attention"] is False
  assert paper.member_config(runs[0][0], budget).feature_names == ("mean_audio",)
  full = paper.BUDGETS["full"]
  assert paper.member_config(paper.FAMILY[6], full).params["fc_hidden_size"] == 8192
  assert paper.member_config(paper.FAMILY[7], full).params["attend_token_size"] == 128
  seeded = paper.plan(full, "/out", paper.FAMILY[6:8], seeds=(1, 2, 3),
                      seed_members=("attend_fusion",))
  assert [os.path.basename(d) for _, _, d in seeded] == [
      "fc_late_fusion", "attend_fusion", "attend_fusion-seed2", "attend_fusion-seed3"]


def test_claims_are_judged_from_the_table():
  def row(model, modalities, gap, parameters):
    return {"model": model, "modalities": modalities, "gap": gap, "parameters": parameters}
  table = pd.DataFrame([
      row("FC audio-only", "audio", 0.40, 2e6), row("FC visual-only", "visual", 0.50, 3e6),
      row("FC Late Fusion", "visual + audio", 0.70, 341e6),
      row("Attend-Fusion", "visual + audio", 0.695, 72e6),
      row("Attend-Fusion w/o attention", "visual + audio", 0.65, 72e6),
      row("LogisticModel", "visual + audio", 0.30, 4e6)])  # a reference, not a fusion model
  lines, verdicts = paper.claims(table)
  assert verdicts == {"fusion_beats_one_modality": "reproduced",
                      "close_at_fraction_of_parameters": "reproduced",
                      "attention_helps": "reproduced"}
  assert len(lines) == 3 and "4.74x fewer parameters" in lines[1]
  table.loc[3, "parameters"] = 300e6
  table.loc[4, "gap"] = 0.70
  table.loc[2, "gap"] = 0.45  # FC Late Fusion below the visual-only model
  lines, verdicts = paper.claims(table)
  assert verdicts["close_at_fraction_of_parameters"] == "partly"
  assert verdicts["attention_helps"] == "not reproduced"
  assert verdicts["fusion_beats_one_modality"] == "reproduced"  # judged on Attend-Fusion
  assert lines[0].endswith("; not: FC Late Fusion 45.00%.")
  table.loc[3, "gap"] = 0.50
  _, verdicts = paper.claims(table)
  assert verdicts["fusion_beats_one_modality"] == "partly"


def test_budgets_are_what_the_docs_say():
  quick, full = paper.BUDGETS["quick"], paper.BUDGETS["full"]
  assert (quick.width, quick.token_size, quick.eval_steps) == (512, 16, (80, 160, 240))
  assert (full.width, full.token_size) == (8192, 128)  # the paper's sizes (72.9M / 341.2M)
  assert "32 tokens of 16" in quick.describe()


def test_frame_level_attention_is_drawn_over_the_valid_frames(tmp_path):
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.report import figures  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.report import predictions  # pylint: disable=import-outside-toplevel
  config = models.ModelConfig(
      model="AttendFusion", feature_names=["rgb", "audio"], feature_sizes=[8, 4],
      frame_features=True, num_classes=5,
      params={"attend_frame_hidden_size": 8, "attend_num_heads": 2, "attend_key_dim": 4})
  model = models.build_model(config)
  rng = np.random.default_rng(0)
  videos = {"video_ids": ["a", "b"], "inputs": {
      "rgb": rng.integers(0, 256, (2, 10, 8), dtype=np.uint8),  # padded to 10 frames
      "audio": rng.integers(0, 256, (2, 10, 4), dtype=np.uint8),
      "num_frames": np.array([3, 5], dtype=np.int32)}}
  received, first = predictions.attention_received(model, videos)
  for name in ("rgb", "audio"):
    assert received[name].shape == (2, 5)  # trimmed to the longest video
    assert np.isnan(received[name][0, 3:]).all() and not np.isnan(received[name][1]).any()
    # Each query's attention sums to 1 over the valid frames: the mean x frames is 1.
    assert np.nanmean(received[name], axis=1) == pytest.approx([1.0, 1.0], rel=1e-5)
    assert first[name].shape == (3, 3)
  path = figures.attention(received, first, ["a", "b"], str(tmp_path / "attention.png"),
                           "AttendFusion", frame_level=True)
  with open(path, "rb") as handle:
    assert handle.read(8) == PNG_SIGNATURE
