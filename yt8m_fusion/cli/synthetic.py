"""python -m yt8m_fusion.data.synthetic: writes a synthetic dataset in the YouTube-8M formats.

    python -m yt8m_fusion.data.synthetic --output_dir DIR [--frame_features | --both_formats]

See docs/DATA.md for what the generator makes.
"""

from absl import app
from absl import flags

from yt8m_fusion.cli import flags as yt8m_flags
from yt8m_fusion.cli.parsing import parse_flags
from yt8m_fusion.data import synthetic
from yt8m_fusion.errors import UserError, exit_on_user_error


def define_flags():
  once = yt8m_flags.define_once
  once(flags.DEFINE_string, "output_dir", None, "Where to write the synthetic dataset.")
  once(flags.DEFINE_bool, "frame_features", False,
       "Frame-level features (SequenceExample) instead of video-level (Example).")
  once(flags.DEFINE_bool, "both_formats", False,
       "Write video-level AND frame-level records of the same videos (to DIR/video, DIR/frame).")
  once(flags.DEFINE_integer, "num_videos", 1000, "Videos in all (75/12.5/12.5% train/validate/"
       "test).", lower_bound=1)
  once(flags.DEFINE_integer, "num_classes", 3862, "Size of the label vocabulary.", lower_bound=2)
  once(flags.DEFINE_integer, "seed", 0, "Random seed (the output is a function of it).")
  once(flags.DEFINE_integer, "num_shards", 4, "Files per split.", lower_bound=1)
  once(flags.DEFINE_integer, "min_frames", 30, "Fewest frames per video.", lower_bound=1)
  once(flags.DEFINE_integer, "max_frames", 300, "Most frames per video.", lower_bound=1)
  once(flags.DEFINE_bool, "segment_labels", False,
       "Add 2019-style segment ratings to the frame-level validate records.")


def main(argv, flag_values=None):
  """absl main; `flag_values` (default absl's FLAGS) may be any object with the flags."""
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  flag_values = flags.FLAGS if flag_values is None else flag_values
  if not flag_values.output_dir:
    raise UserError("--output_dir is required: where to write the synthetic dataset")
  if flag_values.min_frames > flag_values.max_frames:
    raise UserError(f"--min_frames={flag_values.min_frames} is above "
                    f"--max_frames={flag_values.max_frames}")
  info = synthetic.generate_dataset(
      flag_values.output_dir, num_videos=flag_values.num_videos,
      frame_features=flag_values.frame_features, both_formats=flag_values.both_formats,
      num_classes=flag_values.num_classes, seed=flag_values.seed,
      num_shards=flag_values.num_shards, min_frames=flag_values.min_frames,
      max_frames=flag_values.max_frames, segment_labels=flag_values.segment_labels)
  counts = "/".join(str(v) for v in info["num_videos"].values())
  print(f"Wrote {sum(info['num_videos'].values())} synthetic videos (train/validate/test "
        f"{counts}) to {info['output_dir']} in {info['seconds']:.1f} s; vocabulary: "
        f"{info['vocabulary']}", flush=True)
  for fmt in ("video", "frame"):
    if info[fmt]:
      for split, pattern in info[fmt].items():
        print(f"  {fmt}-level {split}: {pattern}")


def run():
  """Console script `yt8m-synthetic`."""
  define_flags()
  app.run(exit_on_user_error(main), flags_parser=parse_flags)


if __name__ == "__main__":
  run()
