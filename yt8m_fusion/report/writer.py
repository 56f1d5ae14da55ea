"""`write_report`: the table, the figures and report.md for a set of trained runs."""

import collections
import dataclasses
import logging
import os

from yt8m_fusion import io_utils
from yt8m_fusion.data.vocabulary import class_name
from yt8m_fusion.errors import UserError
from yt8m_fusion.report import figures
from yt8m_fusion.report import runs as runs_lib
from yt8m_fusion.report import table as table_lib

FILES = {
    "csv": "results.csv",
    "markdown_table": "results.md",
    "report": "report.md",
    "gap_vs_parameters": "gap_vs_parameters.png",
    "training_curves": "training_curves.png",
    "per_class_ap": "per_class_ap.png",
    "per_class_ap_by_frequency": "per_class_ap_by_frequency.png",
    "per_class_ap_csv": "per_class_ap.csv",
    "qualitative": "qualitative.png",
    "qualitative_csv": "qualitative.csv",
    "attention": "attention.png",
}
CAPTIONS = {
    "gap_vs_parameters": "Validation GAP against the number of parameters (log scale).",
    "training_curves": "Training (solid, per logged batch) and validation (dashed, one point "
                       "per evaluation) loss and GAP.",
    "per_class_ap": "Per-class average precision: its distribution for each model, and its "
                    "mean by how frequent the class is.",
    "per_class_ap_by_frequency": "The AP of each class (a dot) against how frequent the "
                                 "class is, per model, with the mean AP of each frequency "
                                 "bin (black).",
    "qualitative": "Top-3 predictions of two models beside the ground truth on validation "
                   "videos (green: a true label, red: not one).",
    "attention": "Attend-Fusion's self-attention per modality on the same videos.",
}


@dataclasses.dataclass
class Report:
  output_dir: str
  table: object  # pandas.DataFrame
  files: dict  # name -> path of what was written
  skipped: dict  # figure name -> why it was not drawn


def write_report(train_dirs, output_dir, *, labels=None, extra=None, extra_columns=(),
                 compare=None, num_videos=6, video_ids=None, vocabulary=None,
                 eval_data_pattern=None, train_data_pattern=None, title="Model comparison",
                 notes=(), max_frames=300):
  """Writes the report for `train_dirs` into `output_dir`; returns a Report.

  Args:
    train_dirs: folders written by train.py (each with model_flags.json, eval/, train_log.csv).
    labels: a display name per run (default: the folder names).
    extra, extra_columns: {label: {column: value}} and the column names to add to the table
      (e.g. the experiment's budget).
    compare: two labels (or train_dirs) for the qualitative figure. Default: Attend-Fusion
      and FC Late Fusion when both are there, else the two runs with the best GAP.
    num_videos, video_ids: the videos of the qualitative and attention figures (default the
      first `num_videos` labelled videos of the evaluation data).
    vocabulary: a vocabulary CSV (columns Index, Name; TrainVideoCount if any) for class
      names and training frequencies (default: found beside the evaluation data, as in the
      demo dataset and the real sample). Classes it does not name show as "class <index>".
    eval_data_pattern: the labelled data for the qualitative figure (default: the data the
      runs were evaluated on, from their eval JSON).
    train_data_pattern: the runs' training data: per-class AP is then shown against each
      class's number of training positives, counted there (default: the vocabulary's
      TrainVideoCount, else the class's videos in the evaluation data).
    notes: Markdown paragraphs put under the title of report.md.
  """
  io_utils.check_writable_dir(output_dir, "--output_dir")
  runs = runs_lib.load_runs(list(train_dirs), labels, extra)
  path = lambda name: os.path.join(output_dir, FILES[name])  # noqa: E731
  files, skipped = {}, {}

  table = table_lib.results_table(runs, extra_columns)
  io_utils.write_text_atomic(path("csv"), table.to_csv(index=False))
  io_utils.write_text_atomic(path("markdown_table"),
                             table_lib.to_markdown(table, extra_columns))
  files["csv"], files["markdown_table"] = path("csv"), path("markdown_table")
  missing_eval = [run.label for run in runs if not run.metrics]
  if missing_eval:
    logging.warning("No evaluation JSON in %s: run eval.py on them (their rows are empty)",
                    ", ".join(run.train_dir for run in runs if not run.metrics))

  files["gap_vs_parameters"] = figures.gap_vs_parameters(table, path("gap_vs_parameters"))
  files["training_curves"] = figures.training_curves(runs, path("training_curves"))

  pattern = eval_data_pattern or _common_pattern(runs)
  vocabulary = vocabulary or runs_lib.find_vocabulary(pattern)
  names, train_counts = (runs_lib.read_vocabulary_table(vocabulary) if vocabulary
                         else ({}, None))
  class_info = {}
  _optional(skipped, "per_class_ap", lambda: class_info.update(_class_info(
      runs, train_counts, max_frames, train_data_pattern)))
  if class_info:
    files["per_class_ap"] = figures.per_class_ap(runs, path("per_class_ap"), class_info)
    if class_info.get("classes") is not None:
      files["per_class_ap_csv"] = _per_class_csv(runs, class_info, names,
                                                 path("per_class_ap_csv"))
      files["per_class_ap_by_frequency"] = figures.per_class_ap_by_frequency(
          runs, path("per_class_ap_by_frequency"), class_info)
    else:
      skipped["per_class_ap_by_frequency"] = ("the per-class APs could not be matched to "
                                              "classes (no evaluation data named in the "
                                              "eval JSON, or other data)")
  else:
    skipped.setdefault("per_class_ap_by_frequency", skipped.get("per_class_ap", ""))

  pair = choose_comparison(runs, compare)
  videos = {}
  _optional(skipped, "qualitative", lambda: files.update(_qualitative(
      pair, pattern, names, num_videos, video_ids, max_frames, path, videos)))
  attend = ([run for run in pair if run.has_attention] +
            [run for run in runs if run.has_attention])
  if attend:
    _optional(skipped, "attention", lambda: files.update(attention=_attention(
        attend[0], pattern, num_videos, videos.get("ids") or video_ids, max_frames,
        path("attention"))))
  else:
    skipped["attention"] = "no Attend-Fusion run with attention among the runs"

  report_path = path("report")
  io_utils.write_text_atomic(report_path, _report_markdown(
      title, notes, table, extra_columns, files, skipped, runs, pair, pattern, vocabulary,
      output_dir, class_info))
  files["report"] = report_path
  for name, reason in skipped.items():
    logging.warning("Skipped the %s figure: %s", name, reason)
  return Report(output_dir=output_dir, table=table, files=files, skipped=skipped)


def _optional(skipped, name, draw):
  """Draws a figure that needs more than the JSON files; a UserError skips it, noted."""
  try:
    draw()
  except UserError as error:
    skipped[name] = str(error)


def _common_pattern(runs):
  patterns = collections.Counter(run.eval_data_pattern for run in runs if run.eval_data_pattern)
  return patterns.most_common(1)[0][0] if patterns else ""


def choose_comparison(runs, compare=None):
  """The two runs of the qualitative figure (one if there is only one run)."""
  if compare:
    chosen = []
    for key in compare:
      match = [run for run in runs if key in (run.label, run.train_dir,
                                              os.path.normpath(run.train_dir))]
      if not match:
        raise UserError(f"--compare: {key!r} is not one of the runs' labels "
                        f"({', '.join(run.label for run in runs)})")
      chosen.append(match[0])
    return chosen
  attend = [run for run in runs if run.has_attention]
  late = [run for run in runs if run.config.model == "FCLateFusion"]
  if attend and late:
    return [attend[0], late[0]]
  ranked = sorted(runs, key=lambda run: -runs_lib.finite((run.metrics or {}).get("gap", 0.0)))
  return ranked[:2]


def _class_info(runs, train_counts, max_frames, train_data_pattern=None):
  """Which class each per_class_ap entry belongs to, and how frequent the classes are.

  evaluation.write_results keeps the APs of the classes with positives in the evaluation
  data, in class order; reading that data's labels tells which classes those are. The
  frequency is the class's training positives in `train_data_pattern` when given, else the
  vocabulary's TrainVideoCount, else its videos in the evaluation data.
  """
  reference = next((run for run in runs if (run.metrics or {}).get("per_class_ap")), None)
  if reference is None:
    raise UserError("no run has per-class APs in its evaluation JSON")
  pattern = reference.eval_data_pattern
  if not pattern:
    return {"classes": None}
  from yt8m_fusion.report import predictions  # pylint: disable=import-outside-toplevel
  counts, _ = predictions.label_counts(pattern, reference.config, max_frames)
  classes = [int(c) for c in (counts > 0).nonzero()[0]]
  if len(classes) != len(reference.metrics["per_class_ap"]):
    logging.warning("The per-class APs of %s do not match the classes of %s: drawing their "
                    "distribution only", reference.label, pattern)
    return {"classes": None}
  info = {"classes": classes, "eval_positives": {c: int(counts[c]) for c in classes}}
  if train_data_pattern:
    train, videos = predictions.label_counts(train_data_pattern, reference.config, max_frames)
    info.update(frequency={c: int(train[c]) for c in classes}, frequency_column="train_positives",
                frequency_name=f"training positives of the class (of {videos:,} training "
                               "videos)")
  elif train_counts:
    info.update(frequency=train_counts, frequency_column="train_video_count",
                frequency_name="training videos of the class (vocabulary TrainVideoCount)")
  else:
    info.update(frequency=dict(info["eval_positives"]), frequency_column="eval_positives",
                frequency_name="videos of the class in the evaluation data")
  return info


def _per_class_csv(runs, class_info, names, path):
  """per_class_ap.csv: one row per class with labels: name, frequency, each run's AP."""
  classes = class_info["classes"]
  header = ["class_index", "class_name", "eval_positives"]
  if class_info["frequency_column"] != "eval_positives":
    header.append(class_info["frequency_column"])
  columns = [run for run in runs
             if len((run.metrics or {}).get("per_class_ap") or []) == len(classes)]
  lines = [",".join(header + [_csv(run.label) for run in columns])]
  for index, class_index in enumerate(classes):
    cells = [str(class_index), _csv(class_name(names, class_index)),
             str(class_info["eval_positives"][class_index])]
    if class_info["frequency_column"] != "eval_positives":
      cells.append(str(class_info["frequency"].get(class_index, 0)))
    cells += [f"{float(run.metrics['per_class_ap'][index]):.6f}" for run in columns]
    lines.append(",".join(cells))
  io_utils.write_text_atomic(path, "\n".join(lines) + "\n")
  return path


def ap_by_frequency_markdown(runs, class_info):
  """A Markdown table: mean per-class AP of each frequency bin (rows) for each run."""
  counts = figures.class_counts(class_info)
  columns = [run for run in runs
             if len((run.metrics or {}).get("per_class_ap") or []) == len(counts)]
  if not columns:
    return ""
  by_run = [figures.binned_ap(run.metrics["per_class_ap"], counts) for run in columns]
  lines = ["| " + class_info["frequency_name"] + " | classes | " +
           " | ".join(run.label for run in columns) + " |",
           "|---|---:|" + "---:|" * len(columns)]
  for position, first in enumerate(by_run[0]):
    lines.append(f"| {first['name']} | {first['classes']} | " +
                 " | ".join(f"{rows[position]['mean_ap']:.3f}" for rows in by_run) + " |")
  return "\n".join(lines) + "\n"


def _qualitative(pair, pattern, names, num_videos, video_ids, max_frames, path, videos_out):
  from yt8m_fusion.report import predictions  # pylint: disable=import-outside-toplevel
  if not pair:
    raise UserError("no run to show")
  if not pattern:
    raise UserError("no labelled data: the runs have no eval JSON naming their data; pass "
                    "--eval_data_pattern (the validate split)")
  name_of = lambda c: class_name(names, c)  # noqa: E731
  first = predictions.read_videos(pattern, pair[0].config, count=num_videos,
                                  video_ids=video_ids, max_frames=max_frames)
  ids = first["video_ids"]
  videos_out["ids"] = ids
  tops = []
  for run in pair:
    videos = first if run is pair[0] else predictions.read_videos(
        pattern, run.config, video_ids=ids, count=len(ids), max_frames=max_frames)
    with predictions.load_predictor(run) as predictor:
      tops.append(predictions.top_k(predictions.predict(predictor, videos), 3))
  examples, rows = [], ["video_id,ground_truth,model,rank,class_index,class_name,score"]
  for index, video_id in enumerate(ids):
    truth_ids = [int(c) for c in first["labels"][index].nonzero()[0]]
    truth = [name_of(c) for c in truth_ids]
    top = [[(c, name_of(c), score) for c, score in model_top[index]] for model_top in tops]
    examples.append({"video_id": video_id, "truth": truth, "truth_ids": set(truth_ids),
                     "top": top})
    for run, predicted in zip(pair, top):
      for rank, (c, name, score) in enumerate(predicted, start=1):
        rows.append(",".join([video_id, _csv(";".join(truth)), _csv(run.label), str(rank),
                              str(c), _csv(name), f"{score:.6f}"]))
  io_utils.write_text_atomic(path("qualitative_csv"), "\n".join(rows) + "\n")
  return {"qualitative": figures.qualitative(examples, [run.label for run in pair],
                                             path("qualitative")),
          "qualitative_csv": path("qualitative_csv")}


def _attention(run, pattern, num_videos, video_ids, max_frames, path):
  from yt8m_fusion.report import predictions  # pylint: disable=import-outside-toplevel
  if not pattern:
    raise UserError("no data to run the model on: pass --eval_data_pattern")
  videos = predictions.read_videos(pattern, run.config, count=num_videos, video_ids=video_ids,
                                   max_frames=max_frames)
  with predictions.load_predictor(run) as predictor:
    received, first_map = predictions.attention_received(predictor.model, videos)
  return figures.attention(received, first_map, videos["video_ids"], path, run.label,
                           run.config.frame_features)


def _csv(text):
  text = str(text)
  if any(ch in text for ch in ",\"\n"):
    return '"' + text.replace('"', '""') + '"'
  return text


def _report_markdown(title, notes, table, extra_columns, files, skipped, runs, pair, pattern,
                     vocabulary, output_dir, class_info=None):
  lines = [f"# {title}", ""]
  for note in notes:
    lines += [note, ""]
  lines += [table_lib.to_markdown(table, extra_columns), ""]
  lines += ["GAP, F1, Hit@1, PERR and mAP are from each run's latest evaluation "
            "(`eval/metrics.json`, " + (f"on `{pattern}`" if pattern else "its own data") +
            "); parameters are the trained models' counts; size on disk is the exported "
            "SavedModel (or the checkpoint, with optimizer state, when none was exported); "
            "training examples/s is the median of `train_log.csv` (machine-dependent). "
            f"Full precision in `{FILES['csv']}`.", ""]
  for name in ("gap_vs_parameters", "training_curves", "per_class_ap",
               "per_class_ap_by_frequency", "qualitative", "attention"):
    if name in files:
      relative = os.path.relpath(files[name], output_dir)
      caption = CAPTIONS[name]
      if name == "qualitative" and pair:
        caption += " Models: " + " and ".join(run.label for run in pair) + "."
      lines += [f"![{name}]({relative})", "", f"*{caption}*", ""]
      if name == "training_curves" and table_lib.validation_curve_markdown(runs):
        lines += ["Validation GAP (%) at each evaluation:", "",
                  table_lib.validation_curve_markdown(runs)]
      if name == "per_class_ap_by_frequency":
        lines += ["Mean per-class AP by class frequency (each class's AP in "
                  f"`{FILES['per_class_ap_csv']}`):", "",
                  ap_by_frequency_markdown(runs, class_info)]
    elif name in skipped:
      lines += [f"*{name}: not drawn ({skipped[name]}).*", ""]
  lines += ["## Runs", ""]
  for run in runs:
    step = (run.metrics or {}).get("step", "?")
    lines.append(f"- **{run.label}**: `{run.train_dir}` ({run.config.model}, step {step}, "
                 f"{len(run.eval_history)} evaluation(s))")
  if vocabulary:
    lines += ["", f"Class names from `{vocabulary}` (classes it does not name are shown as "
              "\"class <index>\")."]
  return "\n".join(lines) + "\n"
