"""Input-pipeline benchmark: raw TFRecord reading vs a starter-style reader vs ours.

    python benchmarks/input_pipeline.py [--num_videos 512] [--batch_size 256] [--json out.json]

Generates frame-level synthetic YouTube-8M files (yt8m_fusion.data.synthetic) into a
temporary folder (or reads --data_pattern), then measures on the same files:

  raw        TFRecordDataset over the files (parallel interleave), records only
  starter    the starter code's way: one tf.io.parse_single_sequence_example per record,
             sequential, decode + dequantize + pad/truncate per record, then batch
  ours_f32   yt8m_fusion.data.load_dataset(dequantize=True)  (float32, dequantized)
  ours_u8    yt8m_fusion.data.load_dataset(dequantize=False) (uint8, what frame models read)
             (both choose per-record or batch parsing from the first record's frame
             count, as load_dataset does by default; the choice is printed)
  record_u8  uint8, batch_parse_frames=False: each record parsed, then batched
  batch_u8   uint8, batch_parse_frames=True: serialized records batched first and parsed
             a batch at a time (the design that video-level data uses)
  starter_1t, ours_u8_1t
             the same two readers limited to one tf.data thread (a private thread pool of
             size 1): the per-core comparison. The starter-style reader is sequential, so it
             gains nothing from more cores, while ours parses in parallel: the ratio of the
             two full readers grows with the core count, and this line shows it per core.

and prints records/s, MB/s (of TFRecord bytes), the process CPU time per record and the
ratios to the starter-style reader. The files are read several times, so after the first
pass they come from the page cache: these are CPU rates of the pipelines, not disk rates.
On a shared machine the wall-clock rates vary with the load; the CPU time per record is
steadier. `measure(...)` returns the same numbers as a dict for other scripts.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # pylint: disable=wrong-import-position

from yt8m_fusion import data  # pylint: disable=wrong-import-position
from yt8m_fusion.data.readers import (  # pylint: disable=wrong-import-position
    BATCH_PARSE_BELOW_FRAMES)

FEATURE_NAMES = ("rgb", "audio")
FEATURE_SIZES = (1024, 128)
NUM_CLASSES = 3862


def frame_spec(max_frames=300):
  """The DataSpec of the benchmark's frame-level records."""
  return data.DataSpec(feature_names=FEATURE_NAMES, feature_sizes=FEATURE_SIZES,
                       frame_features=True, num_classes=NUM_CLASSES, max_frames=max_frames)


def raw_dataset(files, batch_size, num_readers=8):
  """Only the TFRecord reading (parallel interleave, as ours), no parsing."""
  dataset = tf.data.Dataset.from_tensor_slices(files).interleave(
      lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20),
      cycle_length=min(num_readers, len(files)), num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.batch(batch_size).map(lambda r: {"bytes": tf.strings.length(r)}).prefetch(2)


def starter_style_dataset(files, batch_size, max_frames=300):
  """The starter's frame reader: per-record parse, decode, dequantize, resize; sequential."""

  def resize_axis(tensor, new_size):
    shape = tf.unstack(tf.shape(tensor))
    pad_shape = shape[:]
    pad_shape[0] = tf.maximum(0, new_size - shape[0])
    shape[0] = tf.minimum(shape[0], new_size)
    resized = tf.concat([tf.slice(tensor, tf.zeros_like(shape), shape),
                         tf.zeros(tf.stack(pad_shape), tensor.dtype)], 0)
    return tf.ensure_shape(resized, [new_size] + tensor.shape.as_list()[1:])

  def parse(serialized):
    context, features = tf.io.parse_single_sequence_example(
        serialized,
        context_features={"id": tf.io.FixedLenFeature([], tf.string),
                          "labels": tf.io.VarLenFeature(tf.int64)},
        sequence_features={name: tf.io.FixedLenSequenceFeature([], tf.string)
                           for name in FEATURE_NAMES})
    matrices, num_frames = [], None
    for name, size in zip(FEATURE_NAMES, FEATURE_SIZES):
      decoded = tf.reshape(tf.cast(tf.io.decode_raw(features[name], tf.uint8), tf.float32),
                           [-1, size])
      frames = tf.minimum(tf.shape(decoded)[0], max_frames)
      num_frames = frames if num_frames is None else num_frames
      matrices.append(resize_axis(data.dequantize(decoded), max_frames))
    labels = tf.cast(tf.sparse.to_indicator(context["labels"], NUM_CLASSES), tf.float32)
    return {"video_ids": context["id"], "video_matrix": tf.concat(matrices, 1),
            "num_frames": num_frames, "labels": labels}

  dataset = tf.data.TFRecordDataset(files, buffer_size=1 << 20).map(parse)
  # Sequential, as the starter's parsing was: tf.data's default graph rewrites may otherwise
  # turn this map into a parallel one, which made its measured rate swing from run to run
  # (figures in docs/PERFORMANCE.md).
  options = tf.data.Options()
  options.experimental_optimization.map_parallelization = False
  return dataset.batch(batch_size).prefetch(2).with_options(options)


def ours_dataset(files, batch_size, dequantize, max_frames=300, batch_parse_frames=False):
  # Built once per reader by `_rate` (its file check is not in the timed passes).
  return data.load_dataset(files, frame_spec(max_frames), batch_size=batch_size,
                           dequantize=dequantize,
                           batch_parse_frames=batch_parse_frames).dataset


def one_thread(make_dataset):
  """The same dataset with tf.data limited to one thread (private pool, no intra-op threads)."""

  def make():
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return make_dataset().with_options(options)

  return make


def _rate(make_dataset, total_bytes, min_seconds):
  """Records/s over whole passes of the dataset (one warm-up pass first)."""
  dataset = make_dataset()  # built (and its functions traced) once, iterated many times

  def one_pass():
    count = 0
    for batch in dataset:
      count += int(tf.shape(next(iter(batch.values())))[0])
    return count

  one_pass()  # warm-up: tracing, thread pools, page cache
  records, passes = 0, 0
  started, cpu_started = time.perf_counter(), os.times()
  while True:
    records += one_pass()
    passes += 1
    elapsed = time.perf_counter() - started
    if elapsed >= min_seconds:
      break
  cpu_ended = os.times()
  cpu = (cpu_ended.user - cpu_started.user) + (cpu_ended.system - cpu_started.system)
  return {"records_per_s": records / elapsed,
          "mb_per_s": total_bytes * passes / elapsed / 1e6, "passes": passes,
          "seconds": elapsed, "cpu_us_per_record": cpu / records * 1e6}


def measure(files, *, batch_size=256, max_frames=300, min_seconds=3.0, repeats=3, which=None):
  """Measures the readers on frame-level `files` (a list or a pattern); returns a dict.

  The readers take turns `repeats` times (so that a changing machine load hits them
  alike); each figure is the median over the rounds, and each ratio the median of the
  per-round ratios.
  """
  files = data.list_files(files)
  total_bytes = sum(tf.io.gfile.stat(f).length for f in files)
  # load_dataset's default choice, made once here (as load_dataset's check_files does).
  first_frames = data.check_files(files[:1], frame_spec(max_frames))["first_record_frames"]
  auto = first_frames is not None and first_frames < BATCH_PARSE_BELOW_FRAMES
  candidates = {
      "raw": lambda: raw_dataset(files, batch_size),
      "starter": lambda: starter_style_dataset(files, batch_size, max_frames),
      "ours_f32": lambda: ours_dataset(files, batch_size, True, max_frames, auto),
      "ours_u8": lambda: ours_dataset(files, batch_size, False, max_frames, auto),
      "record_u8": lambda: ours_dataset(files, batch_size, False, max_frames, False),
      "batch_u8": lambda: ours_dataset(files, batch_size, False, max_frames, True),
  }
  candidates["starter_1t"] = one_thread(candidates["starter"])
  candidates["ours_u8_1t"] = one_thread(candidates["ours_u8"])
  names = [name for name in candidates if not which or name in which]
  rounds = []
  for _ in range(max(1, repeats)):
    rounds.append({name: _rate(candidates[name], total_bytes, min_seconds) for name in names})
  results = {"files": len(files), "bytes": total_bytes, "first_record_frames": first_frames,
             "ours_parsing": "batch" if auto else "record",
             "batch_size": batch_size, "max_frames": max_frames, "cpu_count": os.cpu_count(),
             "repeats": len(rounds), "rates": {}, "rounds": rounds}
  for name in names:
    results["rates"][name] = {
        key: statistics.median(r[name][key] for r in rounds)
        for key in ("records_per_s", "mb_per_s", "cpu_us_per_record")}
  if "starter" in names:
    results["speedup_vs_starter"] = {
        name: statistics.median(r[name]["records_per_s"] / r["starter"]["records_per_s"]
                                for r in rounds) for name in names}
    results["cpu_speedup_vs_starter"] = {
        name: statistics.median(r["starter"]["cpu_us_per_record"] / r[name]["cpu_us_per_record"]
                                for r in rounds) for name in names}
  if "starter_1t" in names and "ours_u8_1t" in names:
    results["one_thread_ours_vs_starter"] = statistics.median(
        r["ours_u8_1t"]["records_per_s"] / r["starter_1t"]["records_per_s"] for r in rounds)
  return results


def print_table(results):
  print(f"{results['files']} files, {results['bytes'] / 1e6:.1f} MB, "
        f"batch {results['batch_size']}, "
        f"max_frames {results['max_frames']}, {results['cpu_count']} CPUs, median of "
        f"{results['repeats']} rounds; ours_* parse per {results['ours_parsing']} (first record: "
        f"{results['first_record_frames']} frames)")
  print(f"{'reader':<10} {'records/s':>11} {'MB/s':>9} {'x starter':>10} {'CPU us/rec':>11} "
        f"{'CPU x starter':>14}")
  for name, rate in results["rates"].items():
    ratio = results.get("speedup_vs_starter", {}).get(name)
    cpu_ratio = results.get("cpu_speedup_vs_starter", {}).get(name)
    ratio = f"{ratio:.2f}" if ratio is not None else "-"
    cpu_ratio = f"{cpu_ratio:.2f}" if cpu_ratio is not None else "-"
    print(f"{name:<10} {rate['records_per_s']:>11.0f} {rate['mb_per_s']:>9.1f} {ratio:>10} "
          f"{rate['cpu_us_per_record']:>11.0f} {cpu_ratio:>14}")
  if "one_thread_ours_vs_starter" in results:
    print(f"one tf.data thread each: ours_u8 / starter = "
          f"{results['one_thread_ours_vs_starter']:.2f}x (the starter-style reader uses one "
          f"core whatever the machine; ours scales with the cores)")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--data_pattern", default="",
                      help="frame-level files to read (default: generate synthetic ones)")
  parser.add_argument("--num_videos", type=int, default=512)
  parser.add_argument("--min_frames", type=int, default=120)
  parser.add_argument("--max_frames_generated", type=int, default=300)
  parser.add_argument("--num_shards", type=int, default=8)
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--max_frames", type=int, default=300)
  parser.add_argument("--seconds", type=float, default=3.0,
                      help="minimum time per reader and round")
  parser.add_argument("--repeats", type=int, default=3, help="rounds (medians are reported)")
  parser.add_argument("--json", default="", help="also write the results to this file")
  args = parser.parse_args(argv)
  temporary = None
  try:
    pattern = args.data_pattern
    if not pattern:
      temporary = tempfile.mkdtemp(prefix="yt8m-bench-")
      started = time.time()
      info = data.generate_dataset(
          temporary, num_videos=args.num_videos, frame_features=True,
          num_shards=args.num_shards, min_frames=args.min_frames,
          max_frames=args.max_frames_generated, split_fractions=(1.0, 0.0, 0.0))
      pattern = info["frame"]["train"]
      print(f"Generated {args.num_videos} frame-level videos ({args.min_frames}-"
            f"{args.max_frames_generated} frames) in {time.time() - started:.1f} s")
    results = measure(pattern, batch_size=args.batch_size, max_frames=args.max_frames,
                      min_seconds=args.seconds, repeats=args.repeats)
    print_table(results)
    if args.json:
      with open(args.json, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    return results
  finally:
    if temporary:
      shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
  main()
