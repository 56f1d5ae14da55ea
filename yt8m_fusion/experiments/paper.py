"""The paper's experiment in one command: train the model family, then write the report.

    python -m yt8m_fusion.experiments.paper --output_dir=reports/paper [--budget=quick|full]

trains, through the real train.py (`python -m yt8m_fusion.cli.train` in a subprocess per
run), the family of Awan et al. (2024): FC audio-only, FC visual-only, FCRN, FCRGN, FC early
/ mid / late fusion, Attend-Fusion, and Attend-Fusion without attention (the ablation), all
on the same data (default: the demo dataset's video-level train split, evaluated on its
validate split) with the same budget (batch size, learning rate, steps, seed,
preprocessing). Each model is trained in chunks of increasing --max_steps: train.py resumes
from the last checkpoint and evaluates at the end of each chunk, which gives
eval/metrics-<step>.json files, the validation curve. Then it writes the report
(yt8m_fusion.report) into --output_dir, with a section checking the paper's claims.

Budgets (`BUDGETS`):
  quick  hidden widths 512 (Attend-Fusion: 32 tokens of 16), 240 steps of 256 videos (20
         epochs of the demo's 3000), evaluated at 80/160/240: 13.6 min on 2 busy CPU cores.
  full   the paper's sizes (hidden widths 8192, Attend-Fusion 64 tokens of 128: FC Late Fusion
         341.2M parameters, Attend-Fusion 72.9M), Adam 1e-4 (the project's default for these
         sizes), 600 steps of 256 (50 epochs), evaluated every 120: hours on a CPU, meant for
         a GPU.
Both use --input_l2_norm=none (see docs/REPORTS.md: with the starter's joint L2 norm the FC
baselines barely learn on the demo data within these budgets, while Attend-Fusion learns
either way).

Rerunning the same command resumes: finished models are skipped, unfinished ones continue
from their last checkpoint. --restart trains everything again from scratch.
"""

import dataclasses
import json
import logging
import math
import os
import subprocess
import sys
import time

from absl import app
from absl import flags

from yt8m_fusion.errors import UserError, exit_on_user_error, parse_flags

FLAGS = flags.FLAGS

EXPERIMENT_FILE = "experiment.json"
RUNS_DIR = "runs"
LOGS_DIR = "logs"


@dataclasses.dataclass(frozen=True)
class Member:
  """One model of the family: a display label, a folder name, train.py flags."""

  label: str
  slug: str
  model: str
  flags: tuple = ()
  width_flags: str = "fc"  # which width flags apply: "fc" or "attend"


FAMILY = (
    Member("FC audio-only", "fc_audio", "FCModel", ("--feature_names=mean_audio",)),
    Member("FC visual-only", "fc_visual", "FCModel", ("--feature_names=mean_rgb",)),
    Member("FCRN", "fcrn", "FCRNModel"),
    Member("FCRGN", "fcrgn", "FCRGNModel"),
    Member("FC Early Fusion", "fc_early_fusion", "FCEarlyFusion"),
    Member("FC Mid Fusion", "fc_mid_fusion", "FCMidFusion"),
    Member("FC Late Fusion", "fc_late_fusion", "FCLateFusion"),
    Member("Attend-Fusion", "attend_fusion", "AttendFusion", width_flags="attend"),
    Member("Attend-Fusion w/o attention", "attend_fusion_no_attention", "AttendFusion",
           ("--noattend_attention",), width_flags="attend"),
)
SINGLE_MODALITY = ("FC audio-only", "FC visual-only")
ATTEND_FUSION, NO_ATTENTION, LATE_FUSION = (
    "Attend-Fusion", "Attend-Fusion w/o attention", "FC Late Fusion")


@dataclasses.dataclass(frozen=True)
class Budget:
  """The same for every model: sizes, batch, learning rate, steps, seed."""

  name: str
  width: int  # --fc_hidden_size and --attend_hidden_size
  token_size: int  # --attend_token_size (tokens = width / token_size)
  batch_size: int
  learning_rate: float
  eval_steps: tuple  # train.py is run to each of these --max_steps, evaluating after each
  log_every_n_steps: int
  seed: int = 1
  common_flags: tuple = ("--input_l2_norm=none",)

  def describe(self):
    tokens = self.width // self.token_size
    return (f"{self.name}: hidden width {self.width} (Attend-Fusion: {tokens} tokens of "
            f"{self.token_size}, 4 heads of 32), {self.eval_steps[-1]} steps of "
            f"{self.batch_size} videos, Adam lr {self.learning_rate:g}, evaluated at steps "
            f"{', '.join(map(str, self.eval_steps))}, seed {self.seed}, "
            f"{' '.join(self.common_flags)}")


BUDGETS = {
    "quick": Budget("quick", width=512, token_size=16, batch_size=256, learning_rate=0.001,
                    eval_steps=(80, 160, 240), log_every_n_steps=10),
    # Adam 1e-4: the project's default for the paper-size models (registry.PAPER_LEARNING_RATE;
    # larger rates make the 8192-wide networks diverge or learn less).
    "full": Budget("full", width=8192, token_size=128, batch_size=256, learning_rate=0.0001,
                   eval_steps=(120, 240, 360, 480, 600), log_every_n_steps=20),
}

# Claims are judged with this margin (GAP points): one seed per model, so smaller
# differences are not read as real (docs/REPORTS.md gives the measured seed-to-seed spread).
GAP_MARGIN = 1.0


def train_flags(member, budget, train_dir):
  """train.py flags of one model (without --max_steps, --export, --start_new_model)."""
  if member.width_flags == "attend":
    widths = (f"--attend_hidden_size={budget.width}", f"--attend_token_size={budget.token_size}")
  else:
    widths = (f"--fc_hidden_size={budget.width}",)
  return [f"--model={member.model}", *member.flags, *widths, *budget.common_flags,
          f"--train_dir={train_dir}", f"--batch_size={budget.batch_size}",
          f"--base_learning_rate={budget.learning_rate}", f"--seed={budget.seed}",
          "--num_epochs=1000000", f"--log_every_n_steps={budget.log_every_n_steps}",
          # Checkpoints at the end of each chunk (and every 15 min); resuming needs only the
          # latest, and a paper-size FC Late Fusion checkpoint with Adam's slots is 4 GB.
          f"--export_model_steps={10 * budget.eval_steps[-1]}", "--max_checkpoints_to_keep=2"]


def plan(budget, output_dir, members=FAMILY, train_data_pattern="", eval_data_pattern="",
         num_classes=None):
  """[(member, train_dir, [argument lists, one per chunk])]: what the experiment runs."""
  data = []
  if train_data_pattern:
    data = [f"--train_data_pattern={train_data_pattern}",
            f"--eval_data_pattern={eval_data_pattern}"]
  if num_classes:
    data.append(f"--num_classes={num_classes}")
  steps = []
  for member in members:
    train_dir = os.path.join(output_dir, RUNS_DIR, member.slug)
    base = train_flags(member, budget, train_dir) + data
    chunks = []
    for index, max_steps in enumerate(budget.eval_steps):
      last = index == len(budget.eval_steps) - 1
      chunks.append(base + [f"--max_steps={max_steps}", "--export" if last else "--noexport"])
    steps.append((member, train_dir, chunks))
  return steps


def chunk_done(train_dir, max_steps, last):
  done = os.path.exists(os.path.join(train_dir, "eval", f"metrics-{max_steps}.json"))
  if last:
    done = done and os.path.isdir(os.path.join(train_dir, "export", str(max_steps)))
  return done


def run_train(arguments, log_path):
  """python -m yt8m_fusion.cli.train ARGS, output appended to log_path; UserError on failure."""
  command = [sys.executable, "-m", "yt8m_fusion.cli.train", *arguments]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
  with open(log_path, "a", encoding="utf-8") as log:
    log.write("$ " + " ".join(command) + "\n")
    log.flush()
    result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
  if result.returncode != 0:
    with open(log_path, encoding="utf-8") as log:
      tail = [line.rstrip() for line in log.readlines()[-5:]]
    errors = [line for line in tail if line.startswith("ERROR")]
    raise UserError(f"train.py failed (exit {result.returncode}); see {log_path}: "
                    + (errors[-1] if errors else (tail[-1] if tail else "no output")))


def select_members(names):
  if not names:
    return FAMILY
  chosen = []
  for name in names:
    match = [m for m in FAMILY if name in (m.slug, m.label)]
    if not match:
      raise UserError(f"--models: {name!r} is not one of " + ", ".join(m.slug for m in FAMILY))
    chosen.append(match[0])
  return tuple(chosen)


def _check_experiment(output_dir, budget, restart, data):
  path = os.path.join(output_dir, EXPERIMENT_FILE)
  if restart or not os.path.exists(path):
    return
  saved = _read_json(path)
  if (saved.get("budget") != budget.name or saved.get("data", {}) != data or
      saved.get("settings", {}).get("seed", budget.seed) != budget.seed):
    raise UserError(f"{output_dir} holds an experiment with --budget={saved.get('budget')} and "
                    "other data or seed settings; use another --output_dir, or --restart to "
                    "train again from scratch")


def train_all(budget, output_dir, members, *, restart=False, train_data_pattern="",
              eval_data_pattern="", num_classes=None):
  """Trains every member, chunk by chunk, skipping what is done.

  Returns ({slug: seconds} of the members trained by this call, [train_dir per member]).
  """
  os.makedirs(os.path.join(output_dir, LOGS_DIR), exist_ok=True)
  seconds, train_dirs = {}, []
  steps = plan(budget, output_dir, members, train_data_pattern, eval_data_pattern, num_classes)
  for number, (member, train_dir, chunks) in enumerate(steps, start=1):
    train_dirs.append(train_dir)
    log_path = os.path.join(output_dir, LOGS_DIR, f"{member.slug}.log")
    started = time.time()
    trained = False
    for index, arguments in enumerate(chunks):
      last = index == len(chunks) - 1
      max_steps = budget.eval_steps[index]
      if not restart and chunk_done(train_dir, max_steps, last):
        continue
      if restart and index == 0:
        arguments = arguments + ["--start_new_model"]
      logging.info("[%d/%d] %s: training to step %d", number, len(steps), member.label,
                   max_steps)
      run_train(arguments, log_path)
      trained = True
    if trained:
      seconds[member.slug] = time.time() - started
      logging.info("[%d/%d] %s: done in %.0f s", number, len(steps), member.label,
                   seconds[member.slug])
    else:
      logging.info("[%d/%d] %s: already trained", number, len(steps), member.label)
  return seconds, train_dirs


def claims(table):
  """The paper's claims, checked on the table: (Markdown lines, {claim: verdict})."""
  rows = {row["model"]: row for _, row in table.iterrows()}
  gap = lambda label: 100 * float(rows[label]["gap"])  # noqa: E731
  lines, verdicts = [], {}

  singles = [label for label in SINGLE_MODALITY if label in rows]
  fusions = [label for label in rows if label not in SINGLE_MODALITY and
             "+" in str(rows[label]["modalities"])]
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


def _load_average():
  try:
    return [round(value, 2) for value in os.getloadavg()]
  except OSError:
    return None


def define_flags():
  flags.DEFINE_string("output_dir", "reports/paper", "Where runs/, logs/ and the report go.")
  flags.DEFINE_enum("budget", "quick", list(BUDGETS), "quick: small widths, minutes on a CPU; "
                    "full: the paper's sizes (hours on a CPU, meant for a GPU).")
  flags.DEFINE_string("models", "", "Comma-separated subset of the family (slugs: "
                      + ", ".join(m.slug for m in FAMILY) + "). Default: all nine.")
  flags.DEFINE_string("train_data_pattern", "", "Training TFRecords (video-level mean_rgb + "
                      "mean_audio). Empty: the demo dataset.")
  flags.DEFINE_string("eval_data_pattern", "", "Labelled evaluation TFRecords; needed with "
                      "--train_data_pattern (the demo's validate split otherwise).")
  flags.DEFINE_integer("seed", None, "Random seed of every run (weights, data order); default "
                       "the budget's (1). Another seed in another --output_dir measures the "
                       "seed-to-seed spread.")
  flags.DEFINE_integer("num_classes", None, "Vocabulary size of the data (train.py's default "
                       "3862 when not given; 4716 for the 2017 data).", lower_bound=2)
  flags.DEFINE_bool("restart", False, "Train every model again from scratch (train.py "
                    "--start_new_model) instead of resuming finished or interrupted runs.")
  flags.DEFINE_bool("dry_run", False, "Print the train.py commands and exit.")
  flags.DEFINE_integer("num_videos", 6, "Videos in the qualitative and attention figures.",
                       lower_bound=1, upper_bound=40)


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  from yt8m_fusion.cli import common  # pylint: disable=import-outside-toplevel
  common.setup_logging()
  budget = BUDGETS[FLAGS.budget]
  if FLAGS.seed is not None:
    budget = dataclasses.replace(budget, seed=FLAGS.seed)
  members = select_members([m.strip() for m in FLAGS.models.split(",") if m.strip()])
  if FLAGS.train_data_pattern and not FLAGS.eval_data_pattern:
    raise UserError("--eval_data_pattern is needed with --train_data_pattern: the report "
                    "compares the models on labelled evaluation data (the validate split)")
  output_dir = FLAGS.output_dir
  data = {"train_data_pattern": FLAGS.train_data_pattern,
          "eval_data_pattern": FLAGS.eval_data_pattern}
  if FLAGS.num_classes:
    data["num_classes"] = FLAGS.num_classes
  if FLAGS.dry_run:
    for member, _, chunks in plan(budget, output_dir, members, FLAGS.train_data_pattern,
                                  FLAGS.eval_data_pattern, FLAGS.num_classes):
      for arguments in chunks:
        print(" ".join([sys.executable, "-m", "yt8m_fusion.cli.train", *arguments]))
    return
  from yt8m_fusion import io_utils  # pylint: disable=import-outside-toplevel
  io_utils.check_writable_dir(output_dir, "--output_dir")
  _check_experiment(output_dir, budget, FLAGS.restart, data)
  if not FLAGS.train_data_pattern:
    common.demo_patterns(False)  # generate the demo dataset once, before the runs
  path = os.path.join(output_dir, EXPERIMENT_FILE)
  previous = {} if FLAGS.restart else _read_json(path)
  record = {"budget": budget.name, "settings": dataclasses.asdict(budget), "data": data,
            "models": [m.slug for m in members], "cpu_count": os.cpu_count(),
            "load_average_before": _load_average(), "started": time.time()}
  _write_json(path, {**previous, **record})
  started = time.time()
  seconds, train_dirs = train_all(budget, output_dir, members, restart=FLAGS.restart,
                                  train_data_pattern=FLAGS.train_data_pattern,
                                  eval_data_pattern=FLAGS.eval_data_pattern,
                                  num_classes=FLAGS.num_classes)
  # Models trained by an earlier call (resumed or finished experiment) keep their times.
  per_model = {m.slug: seconds.get(m.slug, previous.get("seconds_per_model", {}).get(m.slug))
               for m in members}
  per_model = {slug: value for slug, value in per_model.items() if value is not None}
  record.update(training_seconds=sum(per_model.values()), seconds_per_model=per_model,
                load_average_after=_load_average())
  if not seconds and previous.get("load_average_before"):
    record.update({key: previous[key] for key in ("load_average_before", "load_average_after",
                                                 "started") if key in previous})
  record["trained_by_this_call"] = sorted(seconds)
  report_started = time.time()
  report = write_experiment_report(budget, output_dir, members, train_dirs, record,
                                   FLAGS.num_videos)
  record.update(report_seconds=time.time() - report_started,
                wall_seconds=time.time() - started)
  _write_json(os.path.join(output_dir, EXPERIMENT_FILE), record)
  logging.info("Trained %d models in %.1f min (%s), report in %.0f s: %s", len(members),
               record["training_seconds"] / 60, _machine(record), record["report_seconds"],
               report.files["report"])


def write_experiment_report(budget, output_dir, members, train_dirs, record, num_videos=6):
  from yt8m_fusion import report as report_lib  # pylint: disable=import-outside-toplevel
  labels = [m.label for m in members]
  extra = {m.label: {"budget": budget.name} for m in members}
  notes = [
      f"Budget **{budget.describe()}**. Every model: the same data, batch size, learning "
      "rate, steps and seed; parameter counts are those of the trained models"
      + (" (quick budget: smaller widths than the paper's 8192, so the parameter ratios "
         "differ from the paper's)." if budget.width != 8192 else " (the paper's sizes)."),
      f"Training took {record['training_seconds'] / 60:.1f} min in all (the sum of the "
      f"models' times, each with its start-up and evaluations; {_machine(record)}); "
      "per model: " + ", ".join(f"{m.label} {record['seconds_per_model'].get(m.slug, 0):.0f} s"
                                for m in members) + ".",
  ]
  table = report_lib.results_table(report_lib.load_runs(train_dirs, labels, extra),
                                   ("budget",))
  claim_lines, verdicts = claims(table)
  if claim_lines:
    notes.append(f"**The paper's claims on this data** (margin: {GAP_MARGIN:g} GAP point, "
                 "one seed per model):\n\n" + "\n".join(claim_lines))
  result = report_lib.write_report(
      train_dirs, output_dir, labels=labels, extra=extra, extra_columns=("budget",),
      compare=[label for label in (ATTEND_FUSION, LATE_FUSION) if label in labels] or None,
      num_videos=num_videos,
      title=f"Attend-Fusion and its baselines ({budget.name} budget)", notes=notes)
  record["claims"] = verdicts
  return result


def _machine(record):
  before, after = record.get("load_average_before"), record.get("load_average_after")
  text = f"{record.get('cpu_count')} CPU cores"
  if before:
    text += f", 1-min load average {before[0]:g} before"
    if after:
      text += f" and {after[0]:g} after"
  return text


def _read_json(path):
  try:
    with open(path, encoding="utf-8") as handle:
      return json.load(handle)
  except (OSError, json.JSONDecodeError):
    return {}


def _write_json(path, data):
  def clean(value):
    if isinstance(value, float) and not math.isfinite(value):
      return None
    return value
  text = json.dumps({k: clean(v) for k, v in data.items()}, indent=2, sort_keys=True)
  with open(path + ".tmp", "w", encoding="utf-8") as handle:
    handle.write(text + "\n")
  os.replace(path + ".tmp", path)


def run():
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
