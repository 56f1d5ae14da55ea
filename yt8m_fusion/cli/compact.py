"""python -m yt8m_fusion.experiments.compact: the compact model's recipe, resumable.

    python -m yt8m_fusion.experiments.compact --output_dir=reports/compact \
        --train_data_pattern='.../train/*.tfrecord' --eval_data_pattern='.../validate/*.tfrecord'

See yt8m_fusion/experiments/compact.py for the stages and docs/COMPACT_RECIPE.md for the figures.
"""

from absl import app
from absl import flags

from yt8m_fusion import distillation
from yt8m_fusion.cli import common
from yt8m_fusion.cli.parsing import parse_flags
from yt8m_fusion.errors import UserError, exit_on_user_error
from yt8m_fusion.experiments import compact
from yt8m_fusion.training import PRECISION_POLICIES

FLAGS = flags.FLAGS
DEFAULTS = compact.Recipe()


def define_flags():
  flags.DEFINE_string("output_dir", "reports/compact",
                      "Where runs/, crossfit/, results.csv and report.md go.")
  flags.DEFINE_string("train_data_pattern", "", "Training TFRecords (video-level).")
  flags.DEFINE_string("eval_data_pattern", "", "Labelled TFRecords every model is evaluated on "
                      "(the validation split: tune on nothing else).")
  flags.DEFINE_list("seeds", list(map(str, DEFAULTS.seeds)),
                    "Seeds of Attend-Fusion's default runs and of the distilled students.")
  flags.DEFINE_list("late_fusion_seeds", list(map(str, DEFAULTS.late_fusion_seeds)),
                    "Seeds of FC Late Fusion's default runs (empty: none).")
  flags.DEFINE_list("teacher_models", list(DEFAULTS.teacher_models),
                    "Models of the cross-fitted teacher ensemble.")
  flags.DEFINE_list("teacher_seeds", list(map(str, DEFAULTS.teacher_seeds)),
                    "Seeds of the cross-fitted teacher ensemble (per model, per fold).")
  flags.DEFINE_integer("folds", DEFAULTS.folds, "Folds of the cross-fitting.", lower_bound=2)
  flags.DEFINE_list("distill_settings",
                    [f"{w:g}:{t:g}" for w, t in DEFAULTS.distill_settings],
                    "The students' candidate weight:temperature pairs (train.py's "
                    "--distill_weight and --distill_temperature), each tried on the first "
                    "seed; the best on --eval_data_pattern trains the other seeds.")
  flags.DEFINE_enum("mixed_precision", None, list(PRECISION_POLICIES),
                    "Precision of the runs this command trains (default: each model's, "
                    "float32).")
  flags.DEFINE_integer("num_classes", DEFAULTS.num_classes, "Vocabulary size of the data.",
                       lower_bound=2)


def _integers(flag):
  try:
    return tuple(int(value) for value in FLAGS[flag].value)
  except ValueError:
    raise UserError(f"--{flag}={','.join(FLAGS[flag].value)}: expected comma-separated "
                    "integers") from None


def _settings():
  settings = []
  for text in FLAGS.distill_settings:
    weight, sep, temperature = text.partition(":")
    try:
      settings.append((float(weight), float(temperature)))
    except ValueError:
      raise UserError(f"--distill_settings: {text!r}: expected weight:temperature, e.g. "
                      "0.5:1") from None
  return tuple(settings)


def main(argv):
  if len(argv) > 1:
    raise UserError(f"unexpected arguments {' '.join(argv[1:])}; flags are written --name=value")
  common.setup_logging()
  if not FLAGS.train_data_pattern or not FLAGS.eval_data_pattern:
    raise UserError("--train_data_pattern and --eval_data_pattern are both needed")
  recipe = compact.Recipe(
      seeds=_integers("seeds"), late_fusion_seeds=_integers("late_fusion_seeds"),
      teacher_models=tuple(FLAGS.teacher_models), teacher_seeds=_integers("teacher_seeds"),
      folds=FLAGS.folds, distill_settings=_settings(), mixed_precision=FLAGS.mixed_precision,
      num_classes=FLAGS.num_classes)
  rows = compact.run(recipe, FLAGS.output_dir, FLAGS.train_data_pattern,
                     FLAGS.eval_data_pattern)
  for row in rows:
    print(f"{row['stage']}: {row['name']}: GAP {row['gap']}")


def run():
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
