"""python -m yt8m_fusion.experiments.paper: trains the paper's model family, then reports.

    python -m yt8m_fusion.experiments.paper --output_dir=reports/paper [--budget=quick|full]
        [--train_data_pattern=... --eval_data_pattern=...] [--seeds=1,2,3]

See yt8m_fusion/experiments/paper.py for the protocol and docs/REPORTS.md for the report.
"""

import dataclasses
import logging
import os
import time

from absl import app
from absl import flags

from yt8m_fusion import io_utils
from yt8m_fusion.cli import common
from yt8m_fusion.cli.parsing import parse_flags
from yt8m_fusion.errors import UserError, exit_on_user_error
from yt8m_fusion.experiments import paper
from yt8m_fusion.training import PRECISION_POLICIES

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("output_dir", "reports/paper", "Where runs/, logs/ and the report go.")
  flags.DEFINE_enum("budget", "quick", list(paper.BUDGETS), "quick: small widths, minutes on "
                    "a CPU; full: the paper's sizes (hours on a CPU).")
  flags.DEFINE_list("models", [], "Comma-separated members (slugs: "
                      + ", ".join(m.slug for m in paper.MEMBERS) + "). Default: the nine "
                      "models of the paper's family.")
  flags.DEFINE_string("train_data_pattern", "", "Training TFRecords (video-level mean_rgb + "
                      "mean_audio). Empty: the demo dataset.")
  flags.DEFINE_string("eval_data_pattern", "", "Labelled evaluation TFRecords; needed with "
                      "--train_data_pattern (the demo's validate split otherwise).")
  flags.DEFINE_integer("seed", None, "Random seed of every run (weights, data order); default "
                       "the budget's (1).")
  flags.DEFINE_list("seeds", [], "More seeds for the members of --seed_models (each in "
                    "runs/<slug>-seed<N>), for the seed-to-seed spread.")
  flags.DEFINE_list("seed_models", ["attend_fusion", "fc_late_fusion"],
                    "Members trained with every --seeds.")
  flags.DEFINE_enum("mixed_precision", None, list(PRECISION_POLICIES),
                    "Precision of every run (default: the budget's, float32).")
  flags.DEFINE_integer("num_classes", None, "Vocabulary size of the data (3862 when not given; "
                       "4716 for the 2017 data).", lower_bound=2)
  flags.DEFINE_bool("restart", False, "Train every model again from scratch instead of "
                    "resuming finished or interrupted runs.")
  flags.DEFINE_bool("report_only", False, "Train nothing: write the report of the runs that "
                    "have finished (the others are named in it), e.g. while a long experiment "
                    "is still to be resumed.")
  flags.DEFINE_bool("report", True, "Write the report after training; --noreport trains "
                    "only (e.g. a subset of --models), --report_only reports later.")
  flags.DEFINE_bool("process_per_chunk", True, "Train each chunk (up to an evaluation) in a "
                    "fresh process: TensorFlow keeps the memory of the weights and optimizer "
                    "of every model a process trained (4 GB a chunk for FC Late Fusion).")
  flags.DEFINE_enum("keep_checkpoints", "compared", list(paper.KEEP_CHECKPOINTS),
                    "Checkpoints kept by finished runs: 'compared' keeps only the latest of "
                    "Attend-Fusion's and FC Late Fusion's first seed (the report's figures "
                    "restore them; every run keeps its export and evaluations), 'all' keeps "
                    "them all (4 GB each for a paper-size FC Late Fusion).")
  flags.DEFINE_bool("dry_run", False, "Print the runs (model, seed, folder) and exit.")
  flags.DEFINE_integer("num_videos", 6, "Videos in the qualitative and attention figures.",
                       lower_bound=1, upper_bound=40)


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  common.setup_logging()
  budget = paper.BUDGETS[FLAGS.budget]
  if FLAGS.seed is not None:
    budget = dataclasses.replace(budget, seed=FLAGS.seed)
  if FLAGS.mixed_precision:
    budget = dataclasses.replace(budget, mixed_precision=FLAGS.mixed_precision)
  try:
    seeds = [int(seed) for seed in FLAGS.seeds]
  except ValueError:
    raise UserError(f"--seeds={','.join(FLAGS.seeds)}: expected comma-separated integers") \
        from None
  members = paper.select_members(FLAGS.models)
  seed_members = [m.label for m in paper.select_members(FLAGS.seed_models)] if seeds else []
  if FLAGS.train_data_pattern and not FLAGS.eval_data_pattern:
    raise UserError("--eval_data_pattern is needed with --train_data_pattern: the report "
                    "compares the models on labelled evaluation data (the validate split)")
  output_dir = FLAGS.output_dir
  runs = paper.plan(budget, output_dir, members, seeds, seed_members)
  if FLAGS.dry_run:
    for member, seed, train_dir in runs:
      print(f"{member.label}\tseed {seed}\t{train_dir}\t{budget.describe()}")
    return
  train_pattern, eval_pattern = FLAGS.train_data_pattern, FLAGS.eval_data_pattern
  if not train_pattern:
    demo = common.demo_patterns(False)  # generated once, before the runs
    train_pattern, eval_pattern = demo["train"], demo["validate"]
  data = {"train_data_pattern": FLAGS.train_data_pattern,
          "eval_data_pattern": FLAGS.eval_data_pattern}
  if FLAGS.num_classes:
    data["num_classes"] = FLAGS.num_classes
  io_utils.check_writable_dir(output_dir, "--output_dir")
  paper.check_experiment(output_dir, budget, FLAGS.restart, data)
  path = os.path.join(output_dir, paper.EXPERIMENT_FILE)
  previous = {} if FLAGS.restart else paper.read_json(path)
  if FLAGS.report_only:
    members, runs, not_trained = paper.finished(budget, members, runs)
    if not members:
      raise UserError(f"--report_only: no run in {output_dir} has finished its training to "
                      f"step {budget.eval_steps[-1]}; expected the experiment's runs there "
                      "(same --output_dir and --budget as the training command)")
  else:
    not_trained = []
  record = {"budget": budget.name, "settings": dataclasses.asdict(budget), "data": data,
            "models": [m.slug for m in members], "seeds": [budget.seed, *seeds],
            "cpu_count": os.cpu_count(), "load_average_before": paper.load_average(),
            "started": time.time()}
  paper.write_json(path, {**previous, **record})
  started = time.time()
  if FLAGS.report_only:
    seconds, train_dirs = {}, [train_dir for _, _, train_dir in runs]
  else:
    seconds, train_dirs = paper.train_all(
        budget, output_dir, members, restart=FLAGS.restart, train_data_pattern=train_pattern,
        eval_data_pattern=eval_pattern, num_classes=FLAGS.num_classes, seeds=seeds,
        seed_members=seed_members, keep_checkpoints=FLAGS.keep_checkpoints,
        process_per_chunk=FLAGS.process_per_chunk)
  # Runs trained by an earlier call (a resumed or finished experiment) keep their times.
  per_run = paper.read_json(path).get("seconds_per_model", {})  # added to chunk by chunk
  record.update(training_seconds=sum(per_run.values()), seconds_per_model=per_run,
                load_average_after=paper.load_average())
  if not seconds and previous.get("load_average_before"):
    record.update({key: previous[key] for key in ("load_average_before", "load_average_after",
                                                 "started") if key in previous})
  record["trained_by_this_call"] = sorted(seconds)
  if not FLAGS.report:
    paper.write_json(path, {**previous, **record})
    logging.info("Trained %d runs (%.1f min in all); no report (--noreport)", len(train_dirs),
                 record["training_seconds"] / 60)
    return
  first_seed = {member.label: train_dir for member, seed, train_dir in runs
                if seed == budget.seed}
  seed_runs = {}
  for member, _, train_dir in runs:
    if member.label in seed_members:
      seed_runs.setdefault(member.label, []).append(train_dir)
  report_started = time.time()
  report = paper.write_experiment_report(budget, output_dir, members,
                                         [first_seed[m.label] for m in members], record,
                                         FLAGS.num_videos, seed_runs=seed_runs,
                                         train_data_pattern=FLAGS.train_data_pattern,
                                         not_trained=not_trained)
  record.update(report_seconds=time.time() - report_started,
                wall_seconds=time.time() - started)
  paper.write_json(path, record)
  logging.info("Trained %d runs in %.1f min (%s), report in %.0f s: %s", len(train_dirs),
               record["training_seconds"] / 60, paper.machine_description(record),
               record["report_seconds"], report.files["report"])


def run():
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
