"""python -m yt8m_fusion.experiments.tuning: a resumable sweep of training settings.

See yt8m_fusion/experiments/tuning.py; the sweep behind the defaults: docs/TRAINING.md.
"""

from absl import app
from absl import flags

from yt8m_fusion.cli import common
from yt8m_fusion.cli.parsing import parse_flags
from yt8m_fusion.errors import UserError, exit_on_user_error
from yt8m_fusion.experiments import tuning

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("output_dir", "reports/tuning", "Where runs/ and results.csv go.")
  flags.DEFINE_string("train_data_pattern", "", "Training TFRecords (video-level).")
  flags.DEFINE_string("eval_data_pattern", "", "Labelled TFRecords evaluated after each epoch "
                      "(the validation split: tune on nothing else).")
  flags.DEFINE_multi_string("runs", [], "A run: 'name: model=MODEL key=value ... epochs=N', "
                            "keys being train.py's training options, model "
                            "hyper-parameters or distillation flags (teacher_predictions, "
                            "distill_weight, distill_temperature). Repeat the flag for more "
                            "runs.")
  flags.DEFINE_integer("seed", 1, "Random seed of every run.")
  flags.DEFINE_integer("num_classes", 3862, "Vocabulary size of the data.", lower_bound=2)


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  common.setup_logging()
  if not FLAGS.train_data_pattern or not FLAGS.eval_data_pattern:
    raise UserError("--train_data_pattern and --eval_data_pattern are both needed")
  runs = [tuning.parse_run(text) for text in FLAGS.runs]
  if not runs:
    raise UserError("--runs: give at least one run, e.g. --runs='af: model=AttendFusion "
                    "batch_size=256 epochs=5'")
  tuning.sweep(runs, FLAGS.output_dir, FLAGS.train_data_pattern, FLAGS.eval_data_pattern,
               seed=FLAGS.seed, num_classes=FLAGS.num_classes)
  for name, (gap, epoch) in tuning.best_epochs(tuning.read_results(FLAGS.output_dir)).items():
    print(f"{name}: best GAP {gap:.4f} after {epoch} epoch(s)")


def run():
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
