"""The report's figures (matplotlib, Agg, PNG). Each function draws one file and returns its path.

No pyplot: figures are `matplotlib.figure.Figure` objects rendered by the Agg canvas, so
nothing depends on a display or on global plotting state.
"""

import math

import matplotlib

matplotlib.use("Agg")  # noqa: E402  (before anything imports pyplot)
from matplotlib import patches  # pylint: disable=wrong-import-position
from matplotlib import ticker  # pylint: disable=wrong-import-position
from matplotlib.figure import Figure  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

DPI = 100
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39")
CORRECT, WRONG = "#1a7f37", "#b42318"


def colors(labels):
  """A fixed color per run label, in the order given (the same in every figure)."""
  return {label: PALETTE[index % len(PALETTE)] for index, label in enumerate(labels)}


def family(architecture, modalities):
  """How a model is grouped in the figures: its definition's family (models/definition.py),
  else by its modalities ("a + b": fusion)."""
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  spec = models.REGISTRY.get(architecture)
  if spec is not None and spec.family is not None:
    return spec.family
  return "fusion" if "+" in modalities else "one modality"


_MARKERS = {"one modality": "o", "fusion": "s", "Attend-Fusion": "*"}


def _save(figure, path):
  figure.savefig(path, dpi=DPI, bbox_inches="tight")
  return path


def gap_vs_parameters(table, path, title=None):
  """GAP (%) against parameters (log scale), one point per model."""
  figure = Figure(figsize=(8.5, 5.2))
  axes = figure.add_subplot()
  palette = colors(list(table["model"]))
  points = []
  for _, row in table.iterrows():
    if math.isnan(row["gap"]):
      continue
    kind = family(row["architecture"], row["modalities"])
    axes.scatter(row["parameters"], 100 * row["gap"], s=160 if kind == "Attend-Fusion" else 70,
                 marker=_MARKERS[kind], color=palette[row["model"]], edgecolor="black",
                 linewidth=0.6, zorder=3, label=row["model"])
    points.append((row["parameters"], 100 * row["gap"], row["model"]))
  axes.set_xscale("log")
  axes.xaxis.set_major_formatter(ticker.FuncFormatter(_format_count))
  axes.xaxis.set_minor_formatter(ticker.FuncFormatter(
      lambda value, _: _format_count(value) if str(value)[0] in "25" else ""))
  axes.tick_params(axis="x", which="minor", labelsize=7)
  axes.set_xlabel("parameters (log scale)")
  axes.set_ylabel("validation GAP (%)")
  axes.set_title(title or "Accuracy against model size")
  axes.grid(True, which="both", alpha=0.3)
  if points:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    low, high = min(xs), max(xs)
    axes.set_xlim(low / 1.6, high * 2.2)
    span = max(ys) - min(ys) or 1.0
    axes.set_ylim(min(ys) - 0.12 * span, max(ys) + 0.12 * span)
    _annotate(axes, points, span)
  axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False,
              title="model", title_fontsize=8, markerscale=0.8)
  return _save(figure, path)


def _format_count(value, _=None):
  if value >= 1e9:
    return f"{value / 1e9:g}B"
  if value >= 1e6:
    return f"{value / 1e6:g}M"
  if value >= 1e3:
    return f"{value / 1e3:g}k"
  return f"{value:g}"


def _annotate(axes, points, span):
  """Labels beside the points, nudged vertically so that close ones do not overlap."""
  placed = []
  step = 0.055 * span
  for x, y, label in sorted(points, key=lambda p: p[1]):
    text_y = y
    for other_x, other_y in placed:
      if abs(math.log10(x) - math.log10(other_x)) < 0.35 and abs(text_y - other_y) < step:
        text_y = other_y + step
    placed.append((x, text_y))
    axes.annotate(label, (x, y), xytext=(x * 1.07, text_y), fontsize=7.5, va="center",
                  arrowprops=dict(arrowstyle="-", color="0.6", lw=0.5) if text_y != y else None)


def training_curves(runs, path):
  """Loss and GAP against steps: training (train_log.csv) and validation (eval JSON)."""
  figure = Figure(figsize=(13, 4.8))
  loss_axes, gap_axes = figure.subplots(1, 2)
  palette = colors([run.label for run in runs])
  for run in runs:
    color = palette[run.label]
    log = run.train_log
    if log is not None and len(log):
      if "loss" in log.columns:
        loss_axes.plot(log["step"], log["loss"], color=color, lw=1.0, alpha=0.75)
      if "gap" in log.columns:
        gap_axes.plot(log["step"], 100 * log["gap"], color=color, lw=1.0, alpha=0.75)
    history = [record for record in run.eval_history if "gap" in record]
    if history:
      steps = [int(record["step"]) for record in history]
      loss_axes.plot(steps, [record.get("avg_loss", np.nan) for record in history], color=color,
                     ls="--", marker="o", ms=4)
      gap_axes.plot(steps, [100 * record["gap"] for record in history], color=color, ls="--",
                    marker="o", ms=4, label=run.label)
    else:
      gap_axes.plot([], [], color=color, label=run.label)
  loss_axes.set_yscale("log")
  loss_axes.set_title("loss (cross-entropy summed over classes)")
  gap_axes.set_title("GAP (%)")
  for axes in (loss_axes, gap_axes):
    axes.set_xlabel("training step")
    axes.grid(True, alpha=0.3)
  gap_axes.plot([], [], color="0.3", lw=1.0, label="— training batches")
  gap_axes.plot([], [], color="0.3", ls="--", marker="o", ms=4, label="-o- validation")
  gap_axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
  return _save(figure, path)


def frequency_bins(counts):
  """Log-spaced bins of class frequency: [(low, high, name)] covering the counts."""
  top = max(int(np.max(counts)) if len(counts) else 1, 1)
  edges = [0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 100000, 10 ** 9]
  bins = []
  for low, high in zip(edges[:-1], edges[1:]):
    if low > top:
      break
    name = "0" if high == 1 else (f"{low}-{high - 1}" if high - 1 <= top else f">={low}")
    bins.append((low, high, name))
  return bins


def per_class_ap(runs, path, class_info):
  """Per-class AP: its distribution per model, and its mean by class frequency.

  class_info: {"classes": [class index per AP entry] or None, "frequency": {class: count},
  "frequency_name": axis label}. Without classes only the distribution is drawn.
  """
  with_aps = [run for run in runs if (run.metrics or {}).get("per_class_ap")]
  by_frequency = class_info.get("classes") is not None
  figure = Figure(figsize=(13.5 if by_frequency else 7, 5), layout="constrained")
  axes_list = figure.subplots(1, 2 if by_frequency else 1, squeeze=False)[0]
  palette = colors([run.label for run in runs])
  curve_axes = axes_list[0]
  data = [np.asarray(run.metrics["per_class_ap"], dtype=float) for run in with_aps]
  grid = np.linspace(0, 1, 201)
  for run, values in zip(with_aps, data):
    share = [(values > x).mean() for x in grid]
    curve_axes.plot(grid, 100 * np.asarray(share), color=palette[run.label],
                    label=f"{run.label} (mAP {100 * values.mean():.1f})")
  count = len(data[0]) if data else 0
  curve_axes.set_xlabel("x = per-class AP (top-20 per video, as in mAP)")
  curve_axes.set_ylabel("% of classes with an AP above x")
  curve_axes.set_title(f"distribution of per-class AP ({count} classes present in the "
                       "evaluation data)", fontsize=10)
  curve_axes.set_xlim(0, 1)
  curve_axes.set_ylim(0, 100)
  curve_axes.grid(True, alpha=0.3)
  curve_axes.legend(fontsize=7.5, frameon=False, loc="upper right")
  if by_frequency:
    line_axes = axes_list[1]
    counts = class_counts(class_info)
    bins = None
    for run, values in zip(with_aps, data):
      if len(values) != len(counts):
        continue
      bins = binned_ap(values, counts)
      line_axes.plot(np.arange(len(bins)), [b["mean_ap"] for b in bins], marker="o",
                     color=palette[run.label], label=run.label)
    bins = bins or binned_ap(np.zeros(len(counts)), counts)
    line_axes.set_xticks(np.arange(len(bins)))
    line_axes.set_xticklabels([f"{b['name']}\n{b['classes']} cl." for b in bins], fontsize=8)
    line_axes.set_xlabel(class_info.get("frequency_name", "class frequency"))
    line_axes.set_ylabel("mean AP of the classes in the bin")
    line_axes.set_ylim(0, 1)
    line_axes.set_title("per-class AP by class frequency (colors as on the left)", fontsize=10)
    line_axes.grid(True, alpha=0.3)
  return _save(figure, path)


def class_counts(class_info):
  """The frequency of each class of `class_info["classes"]` (the per_class_ap order)."""
  frequency = class_info["frequency"]
  return np.array([frequency.get(c, 0) for c in class_info["classes"]], dtype=np.int64)


def binned_ap(values, counts):
  """Per-class APs grouped by class frequency (the non-empty `frequency_bins`).

  Returns [{"name", "low", "high", "classes", "mean_ap", "median_ap"}], low <= count < high.
  """
  values = np.asarray(values, dtype=float)
  counts = np.asarray(counts)
  rows = []
  for low, high, name in frequency_bins(counts):
    members = (counts >= low) & (counts < high)
    if members.any():
      rows.append({"name": name, "low": low, "high": high, "classes": int(members.sum()),
                   "mean_ap": float(values[members].mean()),
                   "median_ap": float(np.median(values[members]))})
  return rows


def per_class_ap_by_frequency(runs, path, class_info):
  """Each class's AP against its frequency (e.g. training positives), one panel per run,
  with the mean AP of each frequency bin.

  class_info: as for `per_class_ap`, with "classes" known.
  """
  counts = class_counts(class_info)
  with_aps = [run for run in runs
              if len((run.metrics or {}).get("per_class_ap") or []) == len(counts)]
  columns = min(3, max(len(with_aps), 1))
  rows = max(math.ceil(len(with_aps) / columns), 1)
  figure = Figure(figsize=(4.6 * columns, 3.6 * rows + 0.4), layout="constrained")
  grid = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
  palette = colors([run.label for run in runs])
  jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(counts))  # fixed: same dots
  for index, run in enumerate(with_aps):
    axes = grid[index // columns][index % columns]
    values = np.asarray(run.metrics["per_class_ap"], dtype=float)
    axes.scatter(np.maximum(counts, 0) * np.exp(jitter), values, s=5, alpha=0.3, linewidth=0,
                 color=palette[run.label])
    bins = binned_ap(values, counts)
    centers = [np.median(counts[(counts >= b["low"]) & (counts < b["high"])]) for b in bins]
    axes.plot(centers, [b["mean_ap"] for b in bins], color="black", marker="o", ms=4, lw=1.2,
              label="mean of the bin")
    axes.set_xscale("symlog", linthresh=1)
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(f"{run.label} (mAP {100 * values.mean():.1f})", fontsize=9)
    axes.grid(True, alpha=0.3)
    if index == 0:
      axes.legend(fontsize=7.5, frameon=False, loc="upper left")
  for index in range(len(with_aps), rows * columns):
    grid[index // columns][index % columns].set_axis_off()
  figure.supxlabel(class_info.get("frequency_name", "class frequency") + " (symlog scale)",
                   fontsize=9)
  figure.supylabel("AP of the class", fontsize=9)
  figure.suptitle(f"per-class AP against class frequency ({len(counts)} classes with labels "
                  "in the evaluation data; bins: " +
                  ", ".join(b["name"] for b in binned_ap(np.zeros(len(counts)), counts)) + ")",
                  fontsize=10)
  return _save(figure, path)


def _short(text, width):
  return text if len(text) <= width else text[:width - 1] + "…"


def qualitative(examples, model_labels, path, name_width=40):
  """The paper's Figure 3: per video, the top-3 of two models beside the ground truth.

  examples: [{"video_id", "truth": [name], "truth_ids": {class}, "top": [[(class, name,
  score)] per model]}]. Correct predictions are green (a true label), wrong ones red.
  """
  max_truth = 4
  columns = ["ground truth"] + [f"{label}: top-3" for label in model_labels]
  widths = [1.0, 3.0] + [3.4] * len(model_labels)
  line = 0.19  # inches per text line
  heights = [max(min(len(e["truth"]), max_truth + 1), 3) + 0.8 for e in examples]
  total_lines = sum(heights) + 1.6
  figure = Figure(figsize=(sum(widths), total_lines * line))
  axes = figure.add_axes([0, 0, 1, 1])
  axes.set_axis_off()
  axes.set_xlim(0, sum(widths))
  axes.set_ylim(total_lines, 0)  # y in text lines, downwards
  lefts = np.cumsum([0] + widths[:-1]) + 0.08
  for left, title in zip(lefts, ["video"] + columns):
    axes.text(left, 0.8, title, fontsize=8.5, weight="bold", va="center")
  top = 1.6
  for index, (example, height) in enumerate(zip(examples, heights)):
    if index % 2 == 0:
      axes.add_patch(patches.Rectangle((0, top), sum(widths), height, color="0.94", zorder=0))
    axes.text(lefts[0], top + height / 2, example["video_id"], fontsize=8, va="center",
              family="monospace")
    truth = example["truth"][:max_truth]
    if len(example["truth"]) > max_truth:
      truth.append(f"(+{len(example['truth']) - max_truth} more)")
    for row, name in enumerate(truth):
      axes.text(lefts[1], top + 0.9 + row, _short(name, name_width), fontsize=7.5,
                va="center")
    for column, predictions in enumerate(example["top"], start=2):
      for row, (class_index, name, score) in enumerate(predictions):
        correct = class_index in example["truth_ids"]
        axes.text(lefts[column], top + 0.9 + row,
                  f"{'✓' if correct else '✗'} {score:.2f}  {_short(name, name_width)}",
                  fontsize=7.5, va="center", color=CORRECT if correct else WRONG)
    top += height
  return _save(figure, path)


def _colorbar(figure, image, axes):
  bar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.02)
  bar.formatter = ticker.ScalarFormatter(useOffset=False)
  bar.update_ticks()
  return bar


def attention(received, first_map, video_ids, path, label, frame_level):
  """Per modality: attention each token (or frame) receives, per video; and one full map."""
  names = list(received)
  figure = Figure(figsize=(5.8 * len(names) + 0.4, 8.4), layout="constrained")
  grid = figure.subplots(2, len(names), squeeze=False,
                         gridspec_kw={"height_ratios": [1, 1.3]})
  unit = "frame" if frame_level else "token"
  for column, name in enumerate(names):
    values = np.ma.masked_invalid(received[name])
    axes = grid[0][column]
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")  # after the last frame
    image = axes.imshow(values, aspect="auto", cmap=cmap, interpolation="nearest")
    axes.set_yticks(range(len(video_ids)))
    axes.set_yticklabels(video_ids, fontsize=7, family="monospace")
    axes.set_xlabel(f"{unit} (key)")
    if frame_level:
      title = (f"{name}: attention received by each frame x the video's frames\n(mean over "
               "heads and queries; 1 = uniform; grey: after the video's last frame)")
    else:
      title = (f"{name}: attention received by each token\n(mean over heads and queries; "
               f"uniform: 1/{values.shape[1]} = {1 / values.shape[1]:.3f})")
    axes.set_title(title, fontsize=9)
    axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    _colorbar(figure, image, axes)
    axes = grid[1][column]
    image = axes.imshow(first_map[name], aspect="equal", cmap="magma", interpolation="nearest")
    axes.set_xlabel(f"{unit} (key)")
    axes.set_ylabel(f"{unit} (query)")
    axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    axes.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    axes.set_title(f"{name}, video {video_ids[0]}: query x key (mean over heads)", fontsize=9)
    _colorbar(figure, image, axes)
  figure.suptitle(f"{label}: self-attention per modality", fontsize=11)
  return _save(figure, path)
