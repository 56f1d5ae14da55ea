"""Concurrent serving: the SavedModel's serving_default and a LiteRT file under load.

    python benchmarks/serving_load.py [--model=AttendFusion] [--callers=1,4,16]
        [--requests=400] [--videos_per_request=8] [--json=out.json]

TF Serving calls one loaded SavedModel from many request threads at once, and an app calls
its model from several threads. This exports one model both ways (the SavedModel train.py
writes, `export_saved_model`; the LiteRT file `export_litert` writes) and, for 1, 4 and 16
concurrent callers, sends the same `requests` requests of `videos_per_request` videos each:

  saved_model          serving_default on serialized tf.Example records, one loaded model
                       shared by every caller (as TF Serving)
  litert_shared        one `LiteRTModel` shared by every caller (its calls take turns:
                       an interpreter runs one call at a time)
  litert_per_thread    one `LiteRTModel` per caller thread (calls run in parallel)

Each setting runs the requests twice on the same caller threads: a warm-up round, then the
measured one. It reports throughput (videos/s), p50/p99 request latency, and this process'
resident memory before and after the measured round (its responses dropped). Every response is
compared with the same request served alone, one at a time (`max_abs_difference`), and one
malformed request (bytes that are not a record; for LiteRT, features of the wrong size) is
mixed into every run: it must fail alone (`malformed_failed`, `other_failures`).
The weights are the random initial ones: neither speed nor agreement depends on them.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.dirname(_HERE))

import memory_growth  # pylint: disable=wrong-import-position
import serving_bench  # pylint: disable=wrong-import-position
import training_bench  # pylint: disable=wrong-import-position

CALLERS = (1, 4, 16)
MALFORMED_RECORD = b"\x00 not a tf.Example \xff"


class Requests:
  """`count` requests of `size` videos: serialized records and the matching features."""

  def __init__(self, config, count, size, max_frames, seed=0):
    import numpy as np  # pylint: disable=import-outside-toplevel
    inputs, labels = training_bench.make_batch(config, count * size, max_frames, seed)
    if not config.frame_features:
      inputs = {name: np.asarray(value, np.float32) for name, value in inputs.items()}
    records = serving_bench.serialized_examples(config, inputs, labels)
    self.records = [records[i * size:(i + 1) * size] for i in range(count)]
    self.features = [{name: value[i * size:(i + 1) * size] for name, value in inputs.items()}
                     for i in range(count)]
    self.count = count
    self.size = size

  def malformed_features(self):
    """A LiteRT request whose first feature has the wrong size (refused before the run)."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    bad = dict(self.features[0])
    first = next(iter(bad))
    bad[first] = np.zeros(bad[first].shape[:-1] + (bad[first].shape[-1] + 1,),
                          bad[first].dtype)
    return bad


def serve_concurrently(call, requests, callers, malformed, malformed_at=None, pool=None):
  """Runs `call(i)` for every request index on `callers` threads; `malformed()` once.

  `pool`: a ThreadPoolExecutor of `callers` threads to reuse (default: a new one, whose
  threads end with the call).

  Returns (outputs by index, latencies in seconds, wall seconds, the malformed request's
  exception or None, {index: exception} of the other requests that failed).
  """
  malformed_at = requests.count // 2 if malformed_at is None else malformed_at
  order = list(range(requests.count))
  order.insert(malformed_at, -1)  # -1: the malformed request
  outputs, latencies, failures = {}, [], {}
  malformed_error = [None]
  guard = threading.Lock()

  def one(index):
    started = time.perf_counter()
    try:
      result = malformed() if index < 0 else call(index)
    except Exception as error:  # pylint: disable=broad-except
      with guard:
        if index < 0:
          malformed_error[0] = error
        else:
          failures[index] = error
      return
    elapsed = time.perf_counter() - started
    with guard:
      if index < 0:
        return
      outputs[index] = result
      latencies.append(elapsed)

  started = time.perf_counter()
  if pool is not None:
    list(pool.map(one, order))
  else:
    with concurrent.futures.ThreadPoolExecutor(max_workers=callers) as own_pool:
      list(own_pool.map(one, order))
  return outputs, latencies, time.perf_counter() - started, malformed_error[0], failures


def summarize(name, callers, requests, reference, served, rss_before):
  import numpy as np  # pylint: disable=import-outside-toplevel
  outputs, latencies, wall, malformed_error, failures = served
  differences = [float(np.max(np.abs(np.asarray(outputs[i]) - reference[i])))
                 for i in outputs]
  return {
      "path": name, "callers": callers, "requests": requests.count,
      "videos_per_request": requests.size,
      "videos_per_second": len(outputs) * requests.size / wall,
      "p50_ms": float(np.percentile(latencies, 50) * 1000) if latencies else None,
      "p99_ms": float(np.percentile(latencies, 99) * 1000) if latencies else None,
      "rss_before_mb": rss_before / 2**20,
      "rss_after_mb": memory_growth.rss_bytes() / 2**20,
      "max_abs_difference": max(differences) if differences else None,
      "answered": len(outputs),
      "malformed_failed": malformed_error is not None,
      "malformed_error": type(malformed_error).__name__ if malformed_error else None,
      "other_failures": {int(i): repr(e)[:200] for i, e in failures.items()},
  }


def build_servers(config, workdir, max_frames):
  """(serve_default, litert_path): the exported SavedModel's signature and a LiteRT file."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from yt8m_fusion import export  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  net = models.build_model(config)
  saved_model = export.export_saved_model(net, config, os.path.join(workdir, "export"), 1,
                                          max_frames=max_frames)
  litert_path = os.path.join(workdir, "model.tflite")
  export.export_litert(net, config, litert_path, max_frames=max_frames)
  return tf.saved_model.load(saved_model).signatures["serving_default"], litert_path


def measure_load(model="AttendFusion", frame_features=False, callers=CALLERS, requests=400,
                 videos_per_request=8, num_classes=3862, max_frames=300, params=None,
                 litert_threads=1, seed=0, paths=("saved_model", "litert_shared",
                                                  "litert_per_thread")):
  """The table rows (see the module docstring), one per path and number of callers."""
  import keras  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from yt8m_fusion.litert import LiteRTModel  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(seed)
  config = training_bench.make_config(model, frame_features, num_classes, params)
  batch = Requests(config, requests, videos_per_request, max_frames, seed)
  workdir = tempfile.mkdtemp(prefix="yt8m-serving-load-")
  rows = []
  try:
    serve, litert_path = build_servers(config, workdir, max_frames)
    record_tensors = [tf.constant(records) for records in batch.records]
    # serving_default returns the top-k (class_indexes, predictions); LiteRT probabilities.
    servers = {
        "saved_model": (lambda: (lambda i: serve(example_bytes=record_tensors[i])
                                 ["predictions"].numpy()),
                        lambda: serve(example_bytes=tf.constant([MALFORMED_RECORD]))),
    }
    shared = LiteRTModel(litert_path, num_threads=litert_threads)
    servers["litert_shared"] = (lambda: (lambda i: shared.predict(batch.features[i])),
                                lambda: shared.predict(batch.malformed_features()))
    local = threading.local()

    def own_model():
      if not hasattr(local, "model"):
        local.model = LiteRTModel(litert_path, num_threads=litert_threads)
      return local.model

    servers["litert_per_thread"] = (
        lambda: (lambda i: own_model().predict(batch.features[i])),
        lambda: own_model().predict(batch.malformed_features()))
    for name in paths:
      make_call, malformed = servers[name]
      call = make_call()
      reference = [np.asarray(call(i)) for i in range(batch.count)]  # one at a time
      for count in callers:
        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
          # A first round warms up (per-thread interpreters, pools); memory is compared
          # around the second, with its responses dropped.
          serve_concurrently(call, batch, count, malformed, pool=pool)
          rss_before = memory_growth.rss_bytes()
          served = serve_concurrently(call, batch, count, malformed, pool=pool)
          row = summarize(name, count, batch, reference, served, rss_before)
          del served
          row["rss_after_mb"] = memory_growth.rss_bytes() / 2**20
          rows.append(row)
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
  return {"model": model, "frame_features": bool(frame_features), "num_classes": num_classes,
          "litert_threads": litert_threads, "cpus": os.cpu_count(), "rows": rows,
          "peak_rss_mb": training_bench.peak_rss_bytes() / 2**20}


def markdown_table(result):
  lines = ["| path | callers | videos/s | p50 ms | p99 ms | RSS before -> after (MB) | "
           "max diff vs alone | malformed failed alone |",
           "|---|---|---|---|---|---|---|---|"]
  for row in result["rows"]:
    alone = row["malformed_failed"] and not row["other_failures"]
    lines.append(f"| {row['path']} | {row['callers']} | {row['videos_per_second']:.0f} | "
                 f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['rss_before_mb']:.0f} -> "
                 f"{row['rss_after_mb']:.0f} | {row['max_abs_difference']:.1e} | "
                 f"{'yes' if alone else 'NO'} |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--model", default="AttendFusion")
  parser.add_argument("--frame_features", action="store_true")
  parser.add_argument("--callers", default=",".join(map(str, CALLERS)))
  parser.add_argument("--requests", type=int, default=400)
  parser.add_argument("--videos_per_request", type=int, default=8)
  parser.add_argument("--num_classes", type=int, default=3862)
  parser.add_argument("--litert_threads", type=int, default=1,
                      help="interpreter threads per LiteRTModel")
  parser.add_argument("--json", default="")
  args = parser.parse_args(argv)
  result = measure_load(args.model, args.frame_features,
                        tuple(int(c) for c in args.callers.split(",")), args.requests,
                        args.videos_per_request, args.num_classes,
                        litert_threads=args.litert_threads)
  print(markdown_table(result))
  if args.json:
    with open(args.json, "w", encoding="utf-8") as handle:
      json.dump(result, handle, indent=2)
  return result


if __name__ == "__main__":
  main()
