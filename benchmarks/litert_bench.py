"""On-device costs: each LiteRT quantization beside the Keras model and the SavedModel.

    python benchmarks/litert_bench.py --train_dirs=DIR1,DIR2 \
        --data_pattern='../shared/data/yt8m-2018-video/validate/*.tfrecord' \
        --calibration_pattern='../shared/data/yt8m-2018-video/train/*.tfrecord' \
        [--quantizations=none,float16,dynamic_int8,int8] [--json=FILE] [--markdown=FILE]

For each train_dir (its latest checkpoint), on the same videos, side by side in one run:

  keras             the Keras model, called in a tf.function
  saved_model       the SavedModel train.py writes (export_saved_model), `probabilities`
  litert <q>        the .tflite of each quantization, through the ai_edge_litert interpreter
                    (yt8m_fusion.litert.LiteRTModel, --num_threads threads)

and reports for each: the file size (Keras: the .keras file), the batch-1 latency (median of
single-video calls, taken in rounds that alternate the variants so that a change of machine
load hits all of them alike), the throughput at batch 256 (videos/s over one pass over all the
videos, after a warm-up batch), GAP / F1 / Hit@1 / mAP over all the videos, and the largest
difference to the Keras model's probabilities.

The LiteRT files are written first (unless --litert_dir has them), each by the export program
in its own process
(`python -m yt8m_fusion.export`, timed end to end), so that the converter's memory (over 10 GB
for the int8 calibration of the paper-size FCLateFusion) is returned before anything is loaded.
Then the Keras model and the SavedModel stay loaded, and the LiteRT files are loaded one at a
time, each timed in rounds that alternate it with those two (FCLateFusion takes 1.4 GB per
float32 copy, and the interpreter packs its own copy of the weights).
"""

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)

BATCH_SIZE = 256


def _log(message):
  print(f"[litert_bench] {message}", file=sys.stderr, flush=True)


def load_videos(pattern, config, limit=None):
  """(list of input batches of BATCH_SIZE, labels [N, C]) of every video matching pattern."""
  import numpy as np  # pylint: disable=import-outside-toplevel

  from yt8m_fusion import inputs as model_inputs  # pylint: disable=import-outside-toplevel
  batches, labels, count = [], [], 0
  spec = config.data_spec()
  for batch in model_inputs.load_batches(pattern, spec, batch_size=BATCH_SIZE,
                                         num_readers=1).dataset:
    batches.append({name: value.numpy() for name, value in
                    model_inputs.select_model_inputs(batch, spec).items()})
    labels.append(batch["labels"].numpy())
    count += len(labels[-1])
    if limit and count >= limit:
      break
  return batches, np.concatenate(labels)


def directory_bytes(path):
  return sum(os.path.getsize(os.path.join(folder, name))
             for folder, _, names in os.walk(path) for name in names)


class Variant:
  """A way to run the model: `load()` -> predict(inputs) -> probabilities [B, C]; its size."""

  def __init__(self, name, load, size_bytes, details=None):
    self.name, self.load, self.size_bytes = name, load, size_bytes
    self.details = details or {}
    self.latencies = []


def build_variants(train_dir, workdir, quantizations, calibration_pattern, calibration_count,
                   num_threads, litert_dir=""):
  """The Keras model, its SavedModel and one LiteRT file per quantization, loaded."""
  from yt8m_fusion import export  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import prediction  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import train_dir as train_dir_lib  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.litert import model_file  # pylint: disable=import-outside-toplevel

  config = train_dir_lib.load_config(train_dir)
  config.params = models.params_as_trained(config.model, config.params)  # any earlier format
  checkpoint = train_dir_lib.require_checkpoint(train_dir)
  step = train_dir_lib.checkpoint_step(checkpoint)
  _log(f"{config.model}: {checkpoint}")

  files = {}
  for quantization in quantizations:
    if litert_dir:  # written beforehand by the export program (--litert_dir)
      path = os.path.join(litert_dir, f"{config.model}-{quantization}.tflite")
      if not os.path.exists(path):
        _log(f"  litert {quantization}: no {path}, not measured")
        continue
      files[quantization] = (path, model_file.read_info(path), None)
      continue
    path = os.path.join(workdir, f"{config.model}-{quantization}.tflite")
    started = time.time()
    exported = subprocess.run(
        [sys.executable, "-m", "yt8m_fusion.export", f"--train_dir={train_dir}",
         "--format=litert", f"--quantization={quantization}", f"--output_file={path}",
         f"--calibration_data_pattern={calibration_pattern}",
         f"--calibration_examples={calibration_count}"],
        cwd=_REPO, capture_output=True, text=True, check=False)
    if exported.returncode:
      raise RuntimeError(f"the export of {train_dir} at {quantization} failed:\n"
                         f"{exported.stderr[-3000:]}")
    info = model_file.read_info(path)
    files[quantization] = (path, info, time.time() - started)
    _log(f"  litert {quantization}: {os.path.getsize(path) / 1e6:.1f} MB, exported in "
         f"{time.time() - started:.0f} s")

  # Each variant predicts through yt8m_fusion.prediction, as inference.py does.
  keras_predictor = prediction.from_train_dir(train_dir, checkpoint)
  model = keras_predictor.model
  _log(f"{config.model}: {model.count_params():,} parameters")

  keras_path = os.path.join(workdir, f"{config.model}.keras")
  model.save(keras_path)
  anchors = [Variant("keras", lambda: keras_predictor.predict_batch,
                     os.path.getsize(keras_path))]

  saved_model_dir = export.export_saved_model(model, config, os.path.join(workdir, "export"),
                                              step)
  saved_model_predictor = prediction.from_saved_model(saved_model_dir)
  anchors.append(Variant("saved_model", lambda: saved_model_predictor.predict_batch,
                         directory_bytes(saved_model_dir)))

  litert = [Variant(f"litert {quantization}",
                    lambda path=path: prediction.from_litert(path,
                                                             num_threads=num_threads).predict_batch,
                    os.path.getsize(path),
                    {"export_seconds": round(seconds, 1) if seconds else None,
                     "float_ops": info["float_ops"]})
            for quantization, (path, info, seconds) in files.items()]
  return config, model, anchors, litert


def measure(anchors, litert, batches, labels, num_classes, latency_rounds, latency_calls):
  """Each variant's figures (see the module docstring), Keras first."""
  import numpy as np  # pylint: disable=import-outside-toplevel

  from yt8m_fusion.metrics import EvaluationMetrics  # pylint: disable=import-outside-toplevel
  first = batches[0]
  single = [{name: value[i:i + 1] for name, value in first.items()}
            for i in range(min(latency_calls, len(next(iter(first.values())))))]
  anchor_predict = [anchor.load() for anchor in anchors]

  def time_latency(pairs):
    for _, predict in pairs:
      for example in single[:3]:  # warm-up: tracing, interpreter allocation
        predict(example)
    for _ in range(latency_rounds):
      for variant, predict in pairs:
        for example in single:
          started = time.perf_counter()
          predict(example)
          variant.latencies.append(time.perf_counter() - started)

  def score(variant, predict):
    predict(first)  # warm-up at batch 256
    outputs = []
    started = time.perf_counter()
    for batch in batches:
      outputs.append(predict(batch))
    seconds = time.perf_counter() - started
    probabilities = np.concatenate(outputs).astype(np.float32)
    metrics = EvaluationMetrics(num_classes, 20, None)
    metrics.accumulate(probabilities, labels, 0.0)
    scores = metrics.get()
    row = {"variant": variant.name, "size_mb": variant.size_bytes / 1e6,
           "throughput_batch256_videos_per_s": len(probabilities) / seconds,
           "gap": float(scores["gap"]), "f1": float(scores["f1"]),
           "hit_at_one": float(scores["avg_hit_at_one"]), "map": float(scores["map"]),
           "num_videos": int(len(probabilities)), **variant.details}
    _log(f"  {variant.name}: GAP {row['gap']:.4f}, "
         f"{row['throughput_batch256_videos_per_s']:.0f} videos/s at batch 256")
    return row, probabilities

  rows = {}
  reference = None
  for variant, predict in zip(anchors, anchor_predict):
    rows[variant.name], probabilities = score(variant, predict)
    reference = probabilities if reference is None else reference
    rows[variant.name]["max_abs_difference_to_keras"] = float(
        np.abs(probabilities - reference).max())
  for variant in litert:  # one interpreter at a time, timed beside Keras and the SavedModel
    predict = variant.load()
    time_latency(list(zip(anchors, anchor_predict)) + [(variant, predict)])
    rows[variant.name], probabilities = score(variant, predict)
    rows[variant.name]["max_abs_difference_to_keras"] = float(
        np.abs(probabilities - reference).max())
    del predict
    gc.collect()
  if not litert:
    time_latency(list(zip(anchors, anchor_predict)))
  for variant in anchors + litert:
    rows[variant.name]["latency_batch1_ms"] = 1000 * statistics.median(variant.latencies)
    rows[variant.name]["latency_batch1_p90_ms"] = 1000 * float(
        np.percentile(variant.latencies, 90))
    rows[variant.name]["latency_samples"] = len(variant.latencies)
    _log(f"  {variant.name}: {rows[variant.name]['latency_batch1_ms']:.2f} ms at batch 1")
  return [rows[variant.name] for variant in anchors + litert]


def markdown_table(report):
  lines = []
  for entry in report["models"]:
    lines += [f"**{entry['model']}** ({entry['parameters'] / 1e6:.1f}M parameters, "
              f"{entry['num_videos']} validate videos)", "",
              "| variant | size (MB) | batch-1 latency (ms) | batch-256 videos/s | GAP | F1 | "
              "Hit@1 | max abs diff to Keras |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in entry["variants"]:
      lines.append(f"| {row['variant']} | {row['size_mb']:.1f} | {row['latency_batch1_ms']:.2f} | "
                   f"{row['throughput_batch256_videos_per_s']:.0f} | {row['gap']:.4f} | "
                   f"{row['f1']:.4f} | {row['hit_at_one']:.4f} | "
                   f"{row['max_abs_difference_to_keras']:.2g} |")
    lines.append("")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--train_dirs", required=True, help="comma-separated train_dirs")
  parser.add_argument("--data_pattern", required=True, help="TFRecords to predict and score")
  parser.add_argument("--calibration_pattern", required=True,
                      help="TFRecords whose first videos calibrate int8")
  parser.add_argument("--calibration_examples", type=int, default=256)
  parser.add_argument("--quantizations", default="none,float16,dynamic_int8,int8")
  parser.add_argument("--litert_dir", default="",
                      help="take <Model>-<quantization>.tflite from this folder (written by "
                      "python -m yt8m_fusion.export) instead of exporting them")
  parser.add_argument("--num_threads", type=int, default=os.cpu_count() or 1,
                      help="LiteRT interpreter threads (TensorFlow uses every core)")
  parser.add_argument("--latency_rounds", type=int, default=5)
  parser.add_argument("--latency_calls", type=int, default=20)
  parser.add_argument("--limit_videos", type=int, default=0, help="0: every video")
  parser.add_argument("--json", default="")
  parser.add_argument("--markdown", default="")
  args = parser.parse_args(argv)

  import platform  # pylint: disable=import-outside-toplevel

  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from importlib import metadata  # pylint: disable=import-outside-toplevel

  report = {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "ai_edge_litert": metadata.version("ai-edge-litert"),
            "num_threads": args.num_threads, "data_pattern": args.data_pattern, "models": []}
  started = time.time()
  for train_dir in [d for d in args.train_dirs.split(",") if d]:
    workdir = tempfile.mkdtemp(prefix="yt8m-litert-bench-")
    try:
      config, model, anchors, litert = build_variants(
          train_dir, workdir, [q for q in args.quantizations.split(",") if q],
          args.calibration_pattern, args.calibration_examples, args.num_threads,
          args.litert_dir)
      batches, labels = load_videos(args.data_pattern, config, args.limit_videos or None)
      rows = measure(anchors, litert, batches, labels, config.num_classes,
                     args.latency_rounds, args.latency_calls)
      report["models"].append({"model": config.model, "train_dir": train_dir,
                               "parameters": int(model.count_params()),
                               "num_videos": int(len(labels)), "variants": rows})
      del anchors, litert, model
      gc.collect()
    finally:
      shutil.rmtree(workdir, ignore_errors=True)
  report["seconds"] = round(time.time() - started, 1)
  table = markdown_table(report)
  print(table)
  if args.json:
    with open(args.json, "w", encoding="utf-8") as handle:
      json.dump(report, handle, indent=2)
  if args.markdown:
    with open(args.markdown, "w", encoding="utf-8") as handle:
      handle.write(table)
  return report


def _cpu_name():
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
      for line in handle:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return "unknown"


if __name__ == "__main__":
  main()
