"""Serving throughput: the exported `serving_default` signature vs `model.predict`.

    python benchmarks/serving_bench.py [--model=AttendFusion] [--batch_size=512] [--batches=6]

Exports the model with `yt8m_fusion.export.export_saved_model` (what train.py writes for TF
Serving), loads it with `tf.saved_model.load` and times, on the same batch size and the same
videos:

  serving      serving_default on serialized tf.Example records (parsing, the model and the
               top-20 inside the graph: what TF Serving runs)
  predict      model.predict on the already-parsed feature tensors (the Keras model alone)

Both rates are examples/s over `batches` batches after a warm-up batch, best of `repeats`
passes taken in alternation (so a change of machine load hits both), by wall clock and per
CPU-second of this process. (model.predict spends about as much CPU per example as the
signature but, feeding its batches from Python, keeps fewer cores busy.) The weights are the
random initial ones: the speed does not depend on them.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.dirname(_HERE))

import peak as peak_lib  # pylint: disable=wrong-import-position
import training_bench  # pylint: disable=wrong-import-position


def serialized_examples(config, inputs, labels):
  """tf.Example (video-level) / tf.SequenceExample (frame-level) bytes of a batch."""
  import numpy as np  # pylint: disable=import-outside-toplevel

  from yt8m_fusion.data import records  # pylint: disable=import-outside-toplevel
  out = []
  for row in range(labels.shape[0]):
    label_ids = np.flatnonzero(labels[row]).tolist()
    if config.frame_features:
      count = int(inputs["num_frames"][row])
      frames = {name: inputs[name][row, :count] for name in config.feature_names}
      record = records.make_frame_example(f"v{row:06d}", label_ids, frames)
    else:
      features = {name: inputs[name][row] for name in config.feature_names}
      record = records.make_video_example(f"v{row:06d}", label_ids, features)
    out.append(record.SerializeToString())
  return out


def measure_serving(model="AttendFusion", frame_features=False, batch_size=512, batches=6,
                    repeats=3, max_frames=300, num_classes=3862, params=None, seed=0,
                    export_dir=None):
  """Examples/s of serving_default (serialized records) and model.predict (parsed tensors)."""
  import keras  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from yt8m_fusion import export  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel

  keras.utils.set_random_seed(seed)
  config = training_bench.make_config(model, frame_features, num_classes, params)
  net = models.build_model(config)
  inputs, labels = training_bench.make_batch(config, batch_size, max_frames, seed)
  if not frame_features:
    # Values as a reader parses them back from the float lists.
    inputs = {name: np.asarray(value, np.float32) for name, value in inputs.items()}
  serialized = tf.constant(serialized_examples(config, inputs, labels))
  # predict gets the same videos, `batches` times over, in one call (its own batching).
  predict_inputs = {name: np.concatenate([value] * batches) for name, value in inputs.items()}

  temporary = export_dir or tempfile.mkdtemp(prefix="yt8m-serving-bench-")
  try:
    path = export.export_saved_model(net, config, temporary, 1, max_frames=max_frames)
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]

    def run_serving():
      for _ in range(batches):
        outputs = serve(example_bytes=serialized)
      return outputs

    def run_predict():
      return net.predict(predict_inputs, batch_size=batch_size, verbose=0)

    served = run_serving()  # warm-up (and graph optimization)
    predicted = run_predict()
    # The two paths must give the same top scores.
    top = np.sort(predicted[:batch_size], axis=1)[:, ::-1][:, :served["predictions"].shape[1]]
    max_difference = float(np.max(np.abs(top - served["predictions"].numpy())))

    serving_times, predict_times, serving_cpu, predict_cpu = [], [], [], []
    for _ in range(repeats):
      started, cpu = time.perf_counter(), peak_lib.cpu_seconds()
      run_serving()
      serving_times.append(time.perf_counter() - started)
      serving_cpu.append(peak_lib.cpu_seconds() - cpu)
      started, cpu = time.perf_counter(), peak_lib.cpu_seconds()
      run_predict()
      predict_times.append(time.perf_counter() - started)
      predict_cpu.append(peak_lib.cpu_seconds() - cpu)
  finally:
    if export_dir is None:
      shutil.rmtree(temporary, ignore_errors=True)
  examples = batch_size * batches
  serving_rate = examples / min(serving_times)
  predict_rate = examples / min(predict_times)
  return {
      "model": model, "frame_features": bool(frame_features), "batch_size": batch_size,
      "batches": batches, "repeats": repeats,
      "serving_examples_per_second": serving_rate,
      "predict_examples_per_second": predict_rate,
      "serving_vs_predict": serving_rate / predict_rate,
      "serving_examples_per_cpu_second": examples / max(min(serving_cpu), 1e-9),
      "predict_examples_per_cpu_second": examples / max(min(predict_cpu), 1e-9),
      "serving_seconds": serving_times, "predict_seconds": predict_times,
      "record_bytes": int(sum(len(s) for s in serialized.numpy())),
      "max_abs_difference_top_scores": max_difference,
  }


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--model", default="AttendFusion")
  parser.add_argument("--frame_features", action="store_true")
  parser.add_argument("--batch_size", type=int, default=512)
  parser.add_argument("--batches", type=int, default=6)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--json", default="")
  args = parser.parse_args(argv)
  result = measure_serving(args.model, args.frame_features, args.batch_size, args.batches,
                           args.repeats)
  print(json.dumps(result, indent=2))
  if args.json:
    with open(args.json, "w", encoding="utf-8") as handle:
      json.dump(result, handle, indent=2)
  return result


if __name__ == "__main__":
  main()
