"""The comparison table, like the paper's Table 1: one row per trained model.

Values come from each run's latest evaluation JSON (eval/metrics.json) unchanged: GAP, F1,
Hit@1, PERR and mAP are fractions in the CSV (the Markdown shows them in %, as the paper
does); F1 is micro-F1 at the threshold, and the CSV also has the other F1 definitions
(docs/METRICS.md). `parameters` is the trained model's `count_params()` saved with the evaluation (the
model is rebuilt from model_flags.json and counted when an old JSON lacks it).
`train_examples_per_second` is the median of train_log.csv's rows (each the rate over
--log_every_n_steps steps; the median ignores the warm-up and resumed starts), or the JSON's
last rate when there is no log.
"""

import math

import pandas as pd

from yt8m_fusion.metrics import F1_CANDIDATE_KEYS
from yt8m_fusion.report.runs import finite

MODALITY_NAMES = {"mean_rgb": "visual", "rgb": "visual", "mean_audio": "audio",
                  "audio": "audio"}

# (column, header in the Markdown table, formatter for the Markdown table)
COLUMNS = (
    ("model", "model", str),
    ("architecture", "architecture", str),
    ("modalities", "modalities", str),
    ("gap", "GAP (%)", lambda v: _percent(v)),
    ("f1", "F1 (%)", lambda v: _percent(v)),
    ("hit_at_1", "Hit@1 (%)", lambda v: _percent(v)),
    ("perr", "PERR (%)", lambda v: _percent(v)),
    ("map", "mAP (%)", lambda v: _percent(v)),
    ("parameters", "parameters", lambda v: _millions(v)),
    ("size_on_disk_mb", "size on disk (MB)", lambda v: _number(v, 1)),
    ("train_examples_per_second", "train examples/s", lambda v: _number(v, 0)),
    ("widths", "widths", str),
)
# In the CSV only.
CSV_ONLY_COLUMNS = ("step", "precision", "recall", *F1_CANDIDATE_KEYS, "avg_loss",
                    "num_eval_examples", "size_of", "eval_data_pattern", "train_dir")


def modalities(config):
  names = [MODALITY_NAMES.get(name, name) for name in config.feature_names]
  return " + ".join(dict.fromkeys(names))


def widths(config):
  """The sizes that matter for the model, in a few words (what its definition declares)."""
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  spec = models.REGISTRY.get(config.model)
  if spec is None:
    return "-"
  return spec.describe_widths(config, models.hparams_of(config))


def count_parameters(config):
  """Builds the model from its config and counts its parameters (no weights are loaded)."""
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  return int(models.build_model(config).count_params())


def examples_per_second(run):
  log = run.train_log
  if log is not None and "examples_per_second" in log.columns:
    rates = log["examples_per_second"].dropna()
    if len(rates):
      return float(rates.median())
  return finite((run.metrics or {}).get("train_examples_per_second"))


def results_table(runs, extra_columns=()):
  """A pandas DataFrame, one row per run, in the order given."""
  rows = []
  for run in runs:
    metrics = run.metrics or {}
    parameters = metrics.get("num_parameters")
    if parameters is None:
      parameters = count_parameters(run.config)
    row = {
        "model": run.label,
        "architecture": run.config.model,
        "modalities": modalities(run.config),
        "gap": finite(metrics.get("gap")),
        "f1": finite(metrics.get("f1")),
        "hit_at_1": finite(metrics.get("avg_hit_at_one")),
        "perr": finite(metrics.get("avg_perr")),
        "map": finite(metrics.get("map")),
        "parameters": int(parameters),
        "size_on_disk_mb": (run.size_bytes / 1e6 if run.size_bytes is not None else math.nan),
        "train_examples_per_second": examples_per_second(run),
        "widths": widths(run.config),
        "step": int(metrics["step"]) if "step" in metrics else None,
        "precision": finite(metrics.get("precision")),
        "recall": finite(metrics.get("recall")),
        **{key: finite(metrics.get(key)) for key in F1_CANDIDATE_KEYS},  # NaN in older JSON
        "avg_loss": finite(metrics.get("avg_loss")),
        "num_eval_examples": metrics.get("num_examples"),
        "size_of": run.size_of,
        "eval_data_pattern": run.eval_data_pattern,
        "train_dir": run.train_dir,
    }
    for column in extra_columns:
      row[column] = run.extra.get(column, "")
    rows.append(row)
  order = [c for c, _, _ in COLUMNS] + list(extra_columns) + list(CSV_ONLY_COLUMNS)
  return pd.DataFrame(rows, columns=order)


def to_markdown(table, extra_columns=()):
  """A GitHub Markdown table (no tabulate dependency)."""
  specs = list(COLUMNS) + [(c, c, str) for c in extra_columns]
  headers = [header for _, header, _ in specs]
  lines = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" if fmt is str else "---:" for _, _, fmt in specs) + "|"]
  for _, row in table.iterrows():
    cells = []
    for column, _, fmt in specs:
      value = row[column]
      text = "" if value is None or (isinstance(value, float) and math.isnan(value)) \
          else fmt(value)
      cells.append(text.replace("|", "\\|"))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def validation_curve_markdown(runs):
  """Validation GAP (%) of each run at each evaluated step: a Markdown table, or "" if none."""
  steps = sorted({record["step"] for run in runs for record in run.eval_history})
  if not steps:
    return ""
  lines = ["| model | " + " | ".join(f"step {step}" for step in steps) + " |",
           "|---|" + "---:|" * len(steps)]
  for run in runs:
    gaps = {record["step"]: record.get("gap") for record in run.eval_history}
    cells = [_percent(gaps[step]) if step in gaps else "" for step in steps]
    lines.append(f"| {run.label} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _percent(value):
  value = finite(value)
  return "" if math.isnan(value) else f"{100 * value:.2f}"


def _millions(value):
  value = finite(value)
  if math.isnan(value):
    return ""
  return f"{value / 1e6:.2f}M" if value >= 1e5 else f"{int(value):,}"


def _number(value, digits):
  value = finite(value)
  if math.isnan(value):
    return ""
  return f"{value:,.{digits}f}"
