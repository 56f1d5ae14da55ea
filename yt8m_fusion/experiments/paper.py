"""The paper's experiment: train the model family under one protocol, then write the report.

    python -m yt8m_fusion.experiments.paper --output_dir=reports/paper [--budget=quick|full]

trains, in this process through `yt8m_fusion.training.run`, the family of Awan et al. (2024):
FC audio-only, FC visual-only, FCRN, FCRGN, FC early / mid / late fusion, Attend-Fusion and
Attend-Fusion without attention (the ablation), optionally with the starter's LogisticModel
and MoeModel as reference points, all on the same data under the same budget (batch size,
steps, evaluation points, seed, preprocessing). Each model is trained in chunks of
increasing max_steps and evaluated at the end of each chunk (eval/metrics-<step>.json: the
validation curve). Budgets (`BUDGETS`) and their measured times: docs/REPORTS.md.

Rerunning the same command resumes: finished chunks are skipped, an interrupted one
continues from its last checkpoint. `--restart` trains everything again from scratch.
"""

import concurrent.futures
import dataclasses
import json
import logging
import math
import multiprocessing
import os
import time

from yt8m_fusion import models
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion import training
from yt8m_fusion.core import files as core_files
from yt8m_fusion.errors import UserError

EXPERIMENT_FILE = "experiment.json"
RUNS_DIR = "runs"
LOGS_DIR = "logs"
FEATURE_SIZES = {"mean_rgb": 1024, "mean_audio": 128}


@dataclasses.dataclass(frozen=True)
class Member:
  """One model of the family: a display label, a folder name, its model and settings."""

  label: str
  slug: str
  model: str
  params: tuple = ()  # (hyper-parameter, value) pairs beyond the budget's
  features: tuple = ("mean_rgb", "mean_audio")
  width_params: str = "fc"  # which width hyper-parameters apply: "fc", "attend" or ""
  learning_rate: float | None = None  # None: the budget's


FAMILY = (
    Member("FC audio-only", "fc_audio", "FCModel", features=("mean_audio",)),
    Member("FC visual-only", "fc_visual", "FCModel", features=("mean_rgb",)),
    Member("FCRN", "fcrn", "FCRNModel"),
    Member("FCRGN", "fcrgn", "FCRGNModel"),
    Member("FC Early Fusion", "fc_early_fusion", "FCEarlyFusion"),
    Member("FC Mid Fusion", "fc_mid_fusion", "FCMidFusion"),
    Member("FC Late Fusion", "fc_late_fusion", "FCLateFusion"),
    Member("Attend-Fusion", "attend_fusion", "AttendFusion", width_params="attend"),
    Member("Attend-Fusion w/o attention", "attend_fusion_no_attention", "AttendFusion",
           (("attend_attention", False),), width_params="attend"),
)
# The starter's video-level models as reference points, at the starter's learning rate.
REFERENCES = (
    Member("LogisticModel", "logistic", "LogisticModel", width_params="", learning_rate=0.01),
    Member("MoeModel", "moe", "MoeModel", width_params="", learning_rate=0.01),
)
MEMBERS = FAMILY + REFERENCES
SINGLE_MODALITY = ("FC audio-only", "FC visual-only")
ATTEND_FUSION, NO_ATTENTION, LATE_FUSION = (
    "Attend-Fusion", "Attend-Fusion w/o attention", "FC Late Fusion")


@dataclasses.dataclass(frozen=True)
class Budget:
  """The same for every model: sizes, batch, learning rate, steps, seed, preprocessing."""

  name: str
  width: int  # fc_hidden_size and attend_hidden_size
  token_size: int  # attend_token_size (tokens = width / token_size)
  batch_size: int
  learning_rate: float
  eval_steps: tuple  # trained to each of these max_steps, evaluated after each
  log_every_n_steps: int
  seed: int = 1
  # Hyper-parameters of every model, over each model's tuned defaults (the registry's).
  params: tuple = (("input_l2_norm", "none"),)
  mixed_precision: str = "float32"

  def describe(self):
    tokens = self.width // self.token_size
    params = (", ".join(f"{name}={value}" for name, value in self.params) or
              "each model's tuned preprocessing")
    return (f"{self.name}: hidden width {self.width} (Attend-Fusion: {tokens} tokens of "
            f"{self.token_size}, 4 heads of 32), {self.eval_steps[-1]} steps of "
            f"{self.batch_size} videos, Adam lr {self.learning_rate:g}, evaluated at steps "
            f"{', '.join(map(str, self.eval_steps))}, seed {self.seed}, {params}, "
            f"{self.mixed_precision}")


BUDGETS = {
    # Small widths on the demo data: minutes on a CPU.
    "quick": Budget("quick", width=512, token_size=16, batch_size=256, learning_rate=0.001,
                    eval_steps=(80, 160, 240), log_every_n_steps=10),
    # The paper's sizes (FC Late Fusion 341.2M, Attend-Fusion 72.9M parameters).
    "full": Budget("full", width=8192, token_size=128, batch_size=256, learning_rate=0.0001,
                   eval_steps=(120, 240, 360, 480, 600), log_every_n_steps=20),
    # The paper's sizes on the real sample (28,792 training videos: 113 steps of 256 an
    # epoch), evaluated after each epoch; each model's tuned preprocessing
    # (docs/TRAINING.md); mixed_bfloat16, measured against float32 in docs/REPRODUCTION.md.
    "real": Budget("real", width=8192, token_size=128, batch_size=256, learning_rate=0.0001,
                   eval_steps=(113, 226, 339, 452), log_every_n_steps=20, params=(),
                   mixed_precision="mixed_bfloat16"),
}

# Claims are judged with this margin (GAP points): smaller differences are within the
# seed-to-seed spread (docs/REPORTS.md).
GAP_MARGIN = 1.0


def member_config(member, budget, num_classes=3862):
  """The ModelConfig of `member` under `budget`."""
  params = dict(budget.params)
  if member.width_params == "attend":
    params.update(attend_hidden_size=budget.width, attend_token_size=budget.token_size)
  elif member.width_params == "fc":
    params.update(fc_hidden_size=budget.width)
  params.update(member.params)
  return models.ModelConfig(model=member.model, feature_names=member.features,
                            feature_sizes=[FEATURE_SIZES[name] for name in member.features],
                            num_classes=num_classes,
                            params=models.complete_params(member.model, params))


def member_options(member, budget, max_steps, seed):
  """TrainOptions of one chunk of `member`'s training (up to `max_steps`)."""
  return training.TrainOptions(
      batch_size=budget.batch_size,
      base_learning_rate=member.learning_rate or budget.learning_rate,
      num_epochs=1_000_000, max_steps=max_steps, seed=seed,
      log_every_n_steps=budget.log_every_n_steps, mixed_precision=budget.mixed_precision,
      # Checkpoints at the end of each chunk (and every 15 min); resuming needs only the
      # latest, and a paper-size FC Late Fusion checkpoint with Adam's slots is 4 GB.
      checkpoint_steps=10 * budget.eval_steps[-1], max_checkpoints_to_keep=2, verbose=0)


def plan(budget, output_dir, members=FAMILY, seeds=(), seed_members=()):
  """[(member, seed, train_dir)]: the runs of the experiment, in order.

  Every member is trained with `budget.seed`; those named in `seed_members` (labels or
  slugs) also with each of `seeds` (folders runs/<slug>-seed<N>).
  """
  runs = []
  for member in members:
    member_seeds = [budget.seed]
    if member.label in seed_members or member.slug in seed_members:
      member_seeds += [seed for seed in seeds if seed != budget.seed]
    for seed in member_seeds:
      name = member.slug if seed == budget.seed else f"{member.slug}-seed{seed}"
      runs.append((member, seed, os.path.join(output_dir, RUNS_DIR, name)))
  return runs


def evaluated_steps(train_dir):
  """The steps evaluated in train_dir/eval."""
  folder = train_dir_lib.eval_dir(train_dir)
  if not os.path.isdir(folder):
    return set()
  return {int(name[len("metrics-"):-len(".json")]) for name in os.listdir(folder)
          if name.startswith("metrics-") and name[len("metrics-"):-len(".json")].isdigit()}


def run_finished(budget, train_dir):
  """Whether train_dir holds a run trained and evaluated to the budget's last step."""
  return budget.eval_steps[-1] in evaluated_steps(train_dir)


def finished(budget, members, runs):
  """What a report can show now: (members, runs, labels of the members left out).

  A run counts when it is trained and evaluated to the budget's last step; a member
  counts when its first-seed run does (the table's row).
  """
  runs = [run for run in runs if run_finished(budget, run[2])]
  reported = {member.label for member, seed, _ in runs if seed == budget.seed}
  return (tuple(m for m in members if m.label in reported),
          [run for run in runs if run[0].label in reported],
          [m.label for m in members if m.label not in reported])


def chunk_done(train_dir, max_steps, last):
  done = max_steps in evaluated_steps(train_dir)
  if last:
    done = done and os.path.isdir(os.path.join(train_dir, "export", str(max_steps)))
  return done


def select_members(names):
  if not names:
    return FAMILY
  chosen = []
  for name in names:
    match = [m for m in MEMBERS if name in (m.slug, m.label)]
    if not match:
      raise UserError(f"--models: {name!r} is not one of " + ", ".join(m.slug for m in MEMBERS))
    chosen.append(match[0])
  return tuple(chosen)


def check_experiment(output_dir, budget, restart, data):
  """UserError when output_dir holds an experiment with other settings."""
  path = os.path.join(output_dir, EXPERIMENT_FILE)
  if restart or not os.path.exists(path):
    return
  saved = read_json(path)
  if (saved.get("budget") != budget.name or saved.get("data", {}) != data or
      saved.get("settings", {}).get("seed", budget.seed) != budget.seed):
    raise UserError(f"{output_dir} holds an experiment with --budget={saved.get('budget')} and "
                    "other data or seed settings; use another --output_dir, or --restart to "
                    "train again from scratch")


KEEP_CHECKPOINTS = ("compared", "all")


def train_all(budget, output_dir, members, *, restart=False, train_data_pattern="",
              eval_data_pattern="", num_classes=None, seeds=(), seed_members=(),
              keep_checkpoints="compared", process_per_chunk=False):
  """Trains every run of `plan`, chunk by chunk, skipping what is done.

  `keep_checkpoints`: "all", or "compared": a finished run keeps its export and evaluations,
  and only the first seed of Attend-Fusion and FC Late Fusion keeps its latest checkpoint
  (the report's qualitative and attention figures restore those), so that the paper-size
  family fits on a laptop's disk. `process_per_chunk`: train each chunk in a fresh (spawned)
  process: a TensorFlow process keeps about the memory of the weights and optimizer state
  of every `training.run` it made (4 GB a chunk for a paper-size FC Late Fusion), which
  exceeds 24 GB within one run of the `real` budget.

  Returns ({run folder: seconds} of the runs trained by this call, [train_dir per run]).
  """
  os.makedirs(os.path.join(output_dir, LOGS_DIR), exist_ok=True)
  seconds, train_dirs = {}, []
  runs = plan(budget, output_dir, members, seeds, seed_members)
  for number, (member, seed, train_dir) in enumerate(runs, start=1):
    train_dirs.append(train_dir)
    name = os.path.basename(train_dir)
    chunks = [max_steps for index, max_steps in enumerate(budget.eval_steps)
              if restart or not chunk_done(train_dir, max_steps,
                                           index == len(budget.eval_steps) - 1)]
    if not chunks:
      logging.info("[%d/%d] %s (seed %d): already trained", number, len(runs), member.label,
                   seed)
      continue
    started = time.time()
    logging.info("[%d/%d] %s (seed %d): training to steps %s", number, len(runs),
                 member.label, seed, ", ".join(map(str, chunks)))
    config = member_config(member, budget, num_classes or 3862)
    for index, max_steps in enumerate(chunks):
      job = dict(config=config, train_dir=train_dir, max_steps=max_steps,
                 options=member_options(member, budget, max_steps, seed),
                 export=max_steps == budget.eval_steps[-1], restart=restart and index == 0,
                 train_data_pattern=train_data_pattern, eval_data_pattern=eval_data_pattern,
                 output_dir=output_dir)
      if process_per_chunk:
        _in_fresh_process(_train_chunk, **job)
      else:
        _train_chunk(**job)
    if keep_checkpoints != "all":
      keep = seed == budget.seed and member.label in (ATTEND_FUSION, LATE_FUSION)
      train_dir_lib.remove_checkpoints(train_dir, keep_latest=keep)
    seconds[name] = time.time() - started
    logging.info("[%d/%d] %s (seed %d): done in %.0f s", number, len(runs), member.label,
                 seed, seconds[name])
  return seconds, train_dirs


def add_seconds(output_dir, name, seconds, reset=False):
  """Adds to a run's training time in experiment.json, chunk by chunk, so that the time of
  a run trained over several calls (resumed after a crash) adds up."""
  path = os.path.join(output_dir, EXPERIMENT_FILE)
  record = read_json(path)
  per_run = record.setdefault("seconds_per_model", {})
  per_run[name] = seconds + (0 if reset else per_run.get(name, 0))
  write_json(path, record)


def _train_chunk(config, train_dir, max_steps, options, export, restart, train_data_pattern,
                 eval_data_pattern, output_dir):
  """Trains one run (resuming) to `max_steps`, then evaluates it (and exports it)."""
  name = os.path.basename(train_dir)
  if restart:
    train_dir_lib.remove_own_files(train_dir)
  with _log_to(os.path.join(output_dir, LOGS_DIR, f"{name}.log")):
    logging.info("%s: training to step %d", train_dir, max_steps)
    started = time.time()
    training.run(config, train_dir, train_data_pattern, options=options,
                 eval_data_pattern=eval_data_pattern, export=export)
    add_seconds(output_dir, name, time.time() - started, reset=restart)


def _in_fresh_process(function, **kwargs):
  """function(**kwargs) in a spawned Python process; its exception (a UserError) re-raised."""
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(
      max_workers=1, mp_context=context, initializer=_log_like_parent,
      initargs=(logging.getLogger().getEffectiveLevel(),)) as pool:
    try:
      return pool.submit(function, **kwargs).result()
    except concurrent.futures.process.BrokenProcessPool:
      raise UserError(f"the process training {kwargs.get('train_dir')} ended abruptly (killed: "
                      "out of memory, or a signal); rerun the same command to resume from its "
                      "last checkpoint") from None


def _log_like_parent(level):
  """The child's console shows what the parent's would; the run's log file gets INFO."""
  handler = logging.StreamHandler()
  handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
  handler.setLevel(level)
  logging.getLogger().addHandler(handler)
  logging.getLogger().setLevel(min(level, logging.INFO))
  logging.getLogger("tensorflow").setLevel(logging.ERROR)


class _log_to:  # pylint: disable=invalid-name
  """Also appends the log records of the `with` block to `path`."""

  def __init__(self, path):
    self.handler = logging.FileHandler(path)
    self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

  def __enter__(self):
    logging.getLogger().addHandler(self.handler)

  def __exit__(self, *exc):
    logging.getLogger().removeHandler(self.handler)
    self.handler.close()


def claims(table):
  """The paper's claims, checked on the table: (Markdown lines, {claim: verdict})."""
  rows = {row["model"]: row for _, row in table.iterrows()}
  gap = lambda label: 100 * float(rows[label]["gap"])  # noqa: E731
  lines, verdicts = [], {}

  singles = [label for label in SINGLE_MODALITY if label in rows]
  references = {member.label for member in REFERENCES}
  fusions = [label for label in rows if label not in SINGLE_MODALITY and
             label not in references and "+" in str(rows[label]["modalities"])]
  if singles and fusions:
    best_single = max(singles, key=gap)
    above = [label for label in fusions if gap(label) > gap(best_single) + GAP_MARGIN]
    below = [label for label in fusions if label not in above]
    # The paper's ablation: Attend-Fusion on one modality loses accuracy.
    judged = [ATTEND_FUSION] if ATTEND_FUSION in rows else fusions
    holds = all(label in above for label in judged)
    verdicts["fusion_beats_one_modality"] = "reproduced" if holds else (
        "partly" if above else "not reproduced")
    lines.append(
        f"- **Fusion beats one modality** ({verdicts['fusion_beats_one_modality']}): the best "
        f"single modality ({best_single}) reaches GAP {gap(best_single):.2f}%; "
        f"{len(above)} of {len(fusions)} audio-visual models are more than {GAP_MARGIN:g} point "
        "above it (" + ", ".join(f"{label} {gap(label):.2f}%" for label in
                                 sorted(above, key=gap, reverse=True)) + ")"
        + (("; not: " + ", ".join(f"{label} {gap(label):.2f}%" for label in below))
           if below else "") + ".")
  if ATTEND_FUSION in rows and LATE_FUSION in rows:
    delta = gap(ATTEND_FUSION) - gap(LATE_FUSION)
    ratio = float(rows[LATE_FUSION]["parameters"]) / float(rows[ATTEND_FUSION]["parameters"])
    close = abs(delta) <= GAP_MARGIN
    accuracy = "close to" if close else ("above" if delta > 0 else "below")
    small = ratio >= 3.0
    verdicts["close_at_fraction_of_parameters"] = (
        "reproduced" if close and small else
        ("partly" if (close or delta > 0) or small else "not reproduced"))
    lines.append(
        f"- **Attend-Fusion close to FC Late Fusion at about a fifth of the parameters** "
        f"({verdicts['close_at_fraction_of_parameters']}): Attend-Fusion is {accuracy} FC Late "
        f"Fusion (GAP {gap(ATTEND_FUSION):.2f}% vs {gap(LATE_FUSION):.2f}%, "
        f"{delta:+.2f} points) with {ratio:.2f}x fewer parameters "
        f"({_millions(rows[ATTEND_FUSION]['parameters'])} vs "
        f"{_millions(rows[LATE_FUSION]['parameters'])}; the paper: 80.55% vs 80.87%, 72M vs "
        "341M, 4.7x).")
  if ATTEND_FUSION in rows and NO_ATTENTION in rows:
    delta = gap(ATTEND_FUSION) - gap(NO_ATTENTION)
    verdicts["attention_helps"] = ("reproduced" if delta > GAP_MARGIN else "not reproduced")
    lines.append(
        f"- **Removing attention costs accuracy** ({verdicts['attention_helps']}): "
        f"Attend-Fusion {gap(ATTEND_FUSION):.2f}% vs {gap(NO_ATTENTION):.2f}% without "
        f"attention ({delta:+.2f} points; margin {GAP_MARGIN:g} point, one seed each).")
  return lines, verdicts


def _millions(value):
  return f"{float(value) / 1e6:.2f}M"


def write_experiment_report(budget, output_dir, members, train_dirs, record, num_videos=6,
                            seed_runs=None, train_data_pattern=None, not_trained=()):
  """The report of one run per member (`train_dirs`, in `members` order).

  `seed_runs`: {label: [train_dir of each seed]} for the members trained with several
  seeds; their spread is reported beside the table. `train_data_pattern`: the training
  data, for the class frequencies of the per-class figures. `not_trained`: labels of
  members left out because their runs have not finished (named in the report).
  """
  from yt8m_fusion import report as report_lib  # pylint: disable=import-outside-toplevel
  labels = [m.label for m in members]
  extra = {m.label: {"budget": budget.name} for m in members}
  seconds = record.get("seconds_per_model", {})
  notes = [
      f"Budget **{budget.describe()}**. Every model: the same data, batch size, steps, "
      "evaluation points and seed (learning rate: the budget's, the starter's models their "
      "own); parameter counts are those of the trained models"
      + (" (widths smaller than the paper's 8192, so the parameter ratios differ from the "
         "paper's)." if budget.width != 8192 else " (the paper's sizes)."),
      f"Training took {record['training_seconds'] / 60:.1f} min in all (the sum of the "
      f"runs' times, each with its start-up and evaluations; {machine_description(record)}); "
      "per run: " + ", ".join(f"{name} {value:.0f} s" for name, value in seconds.items())
      + ".",
  ]
  if not_trained:
    notes.append("**Not trained yet** (left out of the table; rerunning the experiment's "
                 "command resumes them): " + ", ".join(not_trained) + ".")
  spread = seed_spread(seed_runs or {})
  if spread:
    notes.append("**Seed-to-seed spread** (GAP at the last evaluation): " + "; ".join(
        f"{label}: {' / '.join(f'{100 * g:.2f}' for g in gaps)} % (mean {100 * mean:.2f}, "
        f"range {100 * (max(gaps) - min(gaps)):.2f} points)"
        for label, (gaps, mean) in spread.items()) + ".")
  table = report_lib.results_table(report_lib.load_runs(train_dirs, labels, extra),
                                   ("budget",))
  claim_lines, verdicts = claims(table)
  if claim_lines:
    notes.append(f"**The paper's claims on this data** (margin: {GAP_MARGIN:g} GAP point):"
                 "\n\n" + "\n".join(claim_lines))
  result = report_lib.write_report(
      train_dirs, output_dir, labels=labels, extra=extra, extra_columns=("budget",),
      compare=[label for label in (ATTEND_FUSION, LATE_FUSION) if label in labels] or None,
      num_videos=num_videos, train_data_pattern=train_data_pattern or None,
      title=f"Attend-Fusion and its baselines ({budget.name} budget)", notes=notes)
  record["claims"] = verdicts
  record["seed_spread"] = {label: gaps for label, (gaps, _) in spread.items()}
  return result


def seed_spread(seed_runs):
  """{label: ([GAP of each seed's latest evaluation], mean)} for runs that have one."""
  spread = {}
  for label, train_dirs in seed_runs.items():
    gaps = [read_json(os.path.join(train_dir_lib.eval_dir(d), "metrics.json")).get("gap")
            for d in train_dirs]
    gaps = [gap for gap in gaps if gap is not None]
    if len(gaps) > 1:
      spread[label] = (gaps, sum(gaps) / len(gaps))
  return spread


def machine_description(record):
  before, after = record.get("load_average_before"), record.get("load_average_after")
  text = f"{record.get('cpu_count')} CPU cores"
  if before:
    text += f", 1-min load average {before[0]:g} before"
    if after:
      text += f" and {after[0]:g} after"
  return text


def load_average():
  try:
    return [round(value, 2) for value in os.getloadavg()]
  except OSError:
    return None


def read_json(path):
  try:
    with open(path, encoding="utf-8") as handle:
      return json.load(handle)
  except (OSError, json.JSONDecodeError):
    return {}


def write_json(path, data):
  def clean(value):
    if isinstance(value, float) and not math.isfinite(value):
      return None
    return value
  text = json.dumps({k: clean(v) for k, v in data.items()}, indent=2, sort_keys=True)
  core_files.write_text_atomic(path, text + "\n")


if __name__ == "__main__":  # python -m yt8m_fusion.experiments.paper: see yt8m_fusion.cli.paper
  from yt8m_fusion.cli.paper import run  # pylint: disable=import-outside-toplevel
  run()
