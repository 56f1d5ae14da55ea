#!/usr/bin/env python3
"""Benchmark of yt8m_fusion.metrics against a per-video reference of the starter's calculation.

Usage::

    python benchmarks/metrics_benchmark.py [--num_videos 100000] [--num_classes 3862]
        [--batch_size 1024] [--top_k 20] [--reference_videos N] [--no_reference]
        [--seed 0] [--repeats 2] [--json FILE]

Both implementations see the same random batches (about 3 labels per video, float32
sigmoid scores from noisy logits, float32 multi-hot labels, batches of 1024): the vectorized
``yt8m_fusion.metrics.EvaluationMetrics`` (Hit@1, PERR, GAP, mAP, plus F1) and the
``Reference*`` classes below, which do the calculation the way the YouTube-8M starter code
does it (per-video ``argpartition`` loops, Python lists of ``(class, score, label)``
triplets, one ``heapq`` min-heap per average-precision calculator, a ``random.sample``
shuffle seeded with 0 before a stable sort, and a Python loop for the AP sum).

The reference is written from the behaviour described in the project's compatibility
spec (section 4); it is not the starter's code. Two deliberate choices:

* its shuffle uses a private ``random.Random(0)`` instead of reseeding Python's global RNG
  (same permutation, no side effect);
* all sums are done in Python floats (float64), which is what the starter got under the
  NumPy 1.x it was written for. (Under NumPy 2, ``0.0 + numpy.float32(x)`` stays float32, so
  the verbatim starter code silently computes some sums in float32 when labels are float32.)

Timing: only the metric's own calls (accumulate + get) are timed, not the data generation;
both wall-clock and process CPU seconds are reported (CPU time is the steadier figure when
other jobs share the machine); both implementations first run once, untimed, on other data,
then ``--repeats`` times (default 2) on the same data, and the fastest run of each counts
(as timeit reports). By default the reference runs on all videos (the slow part of the
benchmark; its time is in docs/PERFORMANCE.md); ``--reference_videos N`` times it on the
first N videos only and extrapolates linearly (said so in the output; the reference's final
sort grows slightly faster than linearly, so the extrapolation flatters it).

A last line times ``EvaluationMetrics(..., exact_ties=False)`` on the compared videos: it
skips rebuilding the starter's heap order for tied scores, so it is faster but differs from
the reference by the order of ties alone (its max abs difference is printed).

``measure(num_videos, num_classes, ...)`` returns the figures as a dict, for a combined
benchmark script; the command line prints them and optionally writes them as JSON.
The tests import the ``Reference*`` classes and functions from this file.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import sys
import time

import numpy as np

# --------------------------------------------------------------------------------------
# Reference: the starter's calculation, one video / one element at a time.
# --------------------------------------------------------------------------------------


class ReferenceAveragePrecisionCalculator:
  """Heap-based AP calculator with the starter's semantics (see module docstring)."""

  def __init__(self, top_n=None):
    if not (top_n is None or (isinstance(top_n, int) and top_n > 0)):
      raise ValueError("top_n must be a positive integer or None.")
    self._top_n = top_n
    self._total_positives = 0.0
    self._heap = []

  @property
  def heap_size(self):
    return len(self._heap)

  @property
  def num_accumulated_positives(self):
    return self._total_positives

  def accumulate(self, predictions, actuals, num_positives=None):
    if len(predictions) != len(actuals):
      raise ValueError("the shape of predictions and actuals does not match.")
    if num_positives is not None:
      self._total_positives += float(num_positives)
    else:
      self._total_positives += float(np.sum(np.asarray(actuals) > 1e-5))
    heap = self._heap
    top_n = self._top_n
    for score, actual in zip(predictions, actuals):
      if top_n is None or len(heap) < top_n:
        heapq.heappush(heap, (score, actual))
      elif score > heap[0][0]:
        heapq.heappop(heap)
        heapq.heappush(heap, (score, actual))

  def clear(self):
    self._heap = []
    self._total_positives = 0.0

  def peek_ap_at_n(self):
    if not self._heap:
      return 0.0
    columns = np.array(list(zip(*self._heap)))
    return self.ap_at_n(columns[0], columns[1], n=self._top_n,
                        total_num_positives=self._total_positives)

  @staticmethod
  def shuffle(predictions, actuals):
    order = random.Random(0).sample(range(len(predictions)), len(predictions))
    return predictions[order], actuals[order]

  @staticmethod
  def ap_at_n(predictions, actuals, n=20, total_num_positives=None):
    if len(predictions) != len(actuals):
      raise ValueError("the shape of predictions and actuals does not match.")
    predictions = np.asarray(predictions)
    actuals = np.asarray(actuals)
    predictions, actuals = ReferenceAveragePrecisionCalculator.shuffle(predictions, actuals)
    ranked = sorted(range(len(predictions)), key=lambda i: predictions[i], reverse=True)
    if total_num_positives is None:
      numpos = float(np.sum(actuals > 0))
    else:
      numpos = float(total_num_positives)
    if numpos == 0:
      return 0.0
    if n is not None:
      numpos = min(numpos, n)
    delta_recall = 1.0 / numpos
    limit = len(ranked) if n is None else min(len(ranked), n)
    ap = 0.0
    poscount = 0.0
    for i in range(limit):
      if actuals[ranked[i]] > 0:
        poscount += 1
        ap += poscount / (i + 1) * delta_recall
    return ap


class ReferenceMeanAveragePrecisionCalculator:
  """One reference AP calculator per class; APs of classes with positives only."""

  def __init__(self, num_class, filter_empty_classes=True, top_n=None):
    if not isinstance(num_class, int) or num_class <= 1:
      raise ValueError("num_class must be an integer > 1.")
    self._num_class = num_class
    self._filter_empty_classes = filter_empty_classes
    self._calculators = [ReferenceAveragePrecisionCalculator(top_n) for _ in range(num_class)]

  def accumulate(self, predictions, actuals, num_positives=None):
    if not num_positives:
      num_positives = [None] * self._num_class
    for c in range(self._num_class):
      self._calculators[c].accumulate(predictions[c], actuals[c], num_positives[c])

  def peek_map_at_n(self):
    return [calc.peek_ap_at_n() for calc in self._calculators
            if not self._filter_empty_classes or calc.num_accumulated_positives > 0]

  def is_empty(self):
    return all(calc.heap_size == 0 for calc in self._calculators)

  def clear(self):
    for calc in self._calculators:
      calc.clear()


def reference_hit_at_one(predictions, actuals):
  top = np.argmax(predictions, 1)
  hits = actuals[np.arange(actuals.shape[0]), top]
  return float(np.mean(hits.astype(np.float64)))


def reference_perr(predictions, actuals):
  total = 0.0
  num_videos = actuals.shape[0]
  for row in range(num_videos):
    num_labels = int(np.sum(actuals[row]))
    top = np.argpartition(predictions[row], -num_labels)[-num_labels:]
    precision = 0.0
    for index in top:
      if predictions[row][index] > 0:
        precision += float(actuals[row][index])
    total += precision / top.size
  return total / num_videos


def reference_top_k_by_class(predictions, labels, k=20):
  if k <= 0:
    raise ValueError("k must be a positive integer.")
  num_classes = predictions.shape[1]
  k = min(k, num_classes)
  triplets = []
  for video in range(predictions.shape[0]):
    scores = predictions[video]
    truth = labels[video]
    top = np.argpartition(scores, -k)[-k:]
    triplets.extend((index, scores[index], truth[index]) for index in top)
  out_predictions = [[] for _ in range(num_classes)]
  out_labels = [[] for _ in range(num_classes)]
  for index, score, truth in triplets:
    out_predictions[index].append(score)
    out_labels[index].append(truth)
  num_positives = [np.sum(labels[:, c]) for c in range(num_classes)]
  return out_predictions, out_labels, num_positives


def _flatten(lists):
  return [item for sublist in lists for item in sublist]


def reference_gap(predictions, actuals, top_k=20):
  calculator = ReferenceAveragePrecisionCalculator()
  sparse_predictions, sparse_labels, num_positives = reference_top_k_by_class(
      predictions, actuals, top_k)
  calculator.accumulate(_flatten(sparse_predictions), _flatten(sparse_labels),
                        sum(float(x) for x in num_positives))
  return calculator.peek_ap_at_n()


class ReferenceEvaluationMetrics:
  """The starter's EvaluationMetrics on top of the reference calculators."""

  def __init__(self, num_class, top_k, top_n=None):
    self.num_class = num_class
    self.top_k = top_k
    self.map_calculator = ReferenceMeanAveragePrecisionCalculator(num_class, top_n=top_n)
    self.global_ap_calculator = ReferenceAveragePrecisionCalculator()
    self.clear()

  def accumulate(self, predictions, labels, loss):
    batch_size = labels.shape[0]
    hit_at_one = reference_hit_at_one(predictions, labels)
    perr = reference_perr(predictions, labels)
    mean_loss = float(np.mean(loss))
    sparse_predictions, sparse_labels, num_positives = reference_top_k_by_class(
        predictions, labels, self.top_k)
    self.map_calculator.accumulate(sparse_predictions, sparse_labels, num_positives)
    self.global_ap_calculator.accumulate(_flatten(sparse_predictions), _flatten(sparse_labels),
                                         sum(float(x) for x in num_positives))
    self.num_examples += batch_size
    self.sum_hit_at_one += hit_at_one * batch_size
    self.sum_perr += perr * batch_size
    self.sum_loss += mean_loss * batch_size
    return {"hit_at_one": hit_at_one, "perr": perr, "loss": mean_loss}

  def get(self):
    if self.num_examples <= 0:
      raise ValueError("total_sample must be positive.")
    return {
        "avg_hit_at_one": self.sum_hit_at_one / self.num_examples,
        "avg_perr": self.sum_perr / self.num_examples,
        "avg_loss": self.sum_loss / self.num_examples,
        "aps": self.map_calculator.peek_map_at_n(),
        "gap": self.global_ap_calculator.peek_ap_at_n(),
    }

  def clear(self):
    self.sum_hit_at_one = 0.0
    self.sum_perr = 0.0
    self.sum_loss = 0.0
    self.num_examples = 0
    self.map_calculator.clear()
    self.global_ap_calculator.clear()


# --------------------------------------------------------------------------------------
# Random data.
# --------------------------------------------------------------------------------------


def make_batch(batch_index, batch_size, num_classes, seed=0, labels_per_video=3.0):
  """A deterministic random batch: (float32 predictions, float32 multi-hot labels, loss).

  About ``labels_per_video`` labels per video drawn from a skewed (Zipf-like) class
  distribution; scores are float32 sigmoids of noisy logits shifted up for true labels.
  """
  rng = np.random.default_rng([seed, batch_index])
  class_weights = 1.0 / (np.arange(num_classes) + 10.0) ** 0.8
  class_weights /= class_weights.sum()
  max_draws = 12
  draws = rng.choice(num_classes, size=(batch_size, max_draws), p=class_weights)
  counts = np.minimum(1 + rng.poisson(labels_per_video - 1.0, size=batch_size), max_draws)
  rows = np.repeat(np.arange(batch_size), counts)
  cols = draws[np.arange(max_draws)[None, :] < counts[:, None]]
  labels = np.zeros((batch_size, num_classes), np.float32)
  labels[rows, cols] = 1.0
  logits = rng.standard_normal((batch_size, num_classes), dtype=np.float32)
  logits *= 1.5
  logits += labels * np.float32(5.5) - np.float32(5.0)
  predictions = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
  loss = np.float32(rng.uniform(5.0, 15.0))
  return predictions, labels, loss


def _batches(num_videos, batch_size, num_classes, seed):
  for index, start in enumerate(range(0, num_videos, batch_size)):
    predictions, labels, loss = make_batch(index, batch_size, num_classes, seed)
    size = min(batch_size, num_videos - start)
    yield predictions[:size], labels[:size], loss


def _run(metrics, num_videos, batch_size, num_classes, seed):
  """Feeds all batches to ``metrics``.

  Returns:
    (wall seconds, CPU seconds of this process, get()), counting only the metric's own
    calls (accumulate and get), not the data generation.
  """
  wall = cpu = 0.0
  for predictions, labels, loss in _batches(num_videos, batch_size, num_classes, seed):
    start, start_cpu = time.perf_counter(), time.process_time()
    metrics.accumulate(predictions, labels, loss)
    wall += time.perf_counter() - start
    cpu += time.process_time() - start_cpu
  start, start_cpu = time.perf_counter(), time.process_time()
  result = metrics.get()
  wall += time.perf_counter() - start
  cpu += time.process_time() - start_cpu
  return wall, cpu, result


def _compare(fast, reference):
  """Max abs differences between the vectorized and reference results."""
  diffs = {}
  for key in ("avg_hit_at_one", "avg_perr", "avg_loss", "gap"):
    diffs[key] = abs(float(fast[key]) - float(reference[key]))
  fast_aps = np.asarray(fast["aps"], np.float64)
  ref_aps = np.asarray(reference["aps"], np.float64)
  if fast_aps.shape != ref_aps.shape:
    diffs["aps"] = float("inf")
    diffs["map"] = float("inf")
  else:
    diffs["aps"] = float(np.max(np.abs(fast_aps - ref_aps))) if fast_aps.size else 0.0
    diffs["map"] = abs(float(np.mean(fast_aps)) - float(np.mean(ref_aps))) if fast_aps.size else 0.0
  return diffs


def _best_of(repeats, run_once):
  """Runs ``run_once()`` (returning (wall, cpu, result)) ``repeats`` times; the fastest run's
  wall and CPU seconds (each the minimum, as timeit reports), every wall time, the result.

  Every run starts without the caches that depend on the data's size (the seed-0 shuffle
  draws are cached per list length, which would favour the later runs).
  """
  from yt8m_fusion.metrics import _starter_order  # pylint: disable=import-outside-toplevel
  runs = []
  for _ in range(max(1, int(repeats))):
    _starter_order.clear_caches()
    runs.append(run_once())
  return (min(r[0] for r in runs), min(r[1] for r in runs), [r[0] for r in runs], runs[-1][2])


def measure(num_videos=100000, num_classes=3862, batch_size=1024, top_k=20,
            reference_videos=None, seed=0, run_reference=True, warmup=True, repeats=2):
  """Times the vectorized EvaluationMetrics and the per-video reference on the same data.

  Args:
    num_videos: videos fed to the vectorized implementation.
    num_classes: classes per video.
    batch_size: videos per ``accumulate`` call.
    top_k: top-k per video fed to GAP / mAP.
    reference_videos: videos for the reference loop; ``None`` = ``num_videos``. When smaller,
      the reference time is extrapolated linearly to ``num_videos`` (``reference_extrapolated``
      is then True) and the values are compared on that subset (the vectorized
      implementation is run a second time on it, untimed).
    seed: data seed.
    run_reference: False to time only the vectorized implementation.
    warmup: first run both implementations once, untimed, on one or two batches of other
      data (so that one-time costs such as imports are not timed).
    repeats: timed runs of each implementation on the same data; the fastest counts (as
      timeit reports the minimum: on a shared machine, and on a VM where a process's first
      use of fresh memory is slow, single runs vary).

  Returns:
    A dict of figures: times in seconds, ``speedup``, ``max_abs_diff`` (over Hit@1, PERR,
    loss, GAP, every class AP and mAP), ``values_equal`` and the metric values.
  """
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the package also loads TensorFlow
  from yt8m_fusion.metrics import EvaluationMetrics  # pylint: disable=import-outside-toplevel

  if warmup:  # one-time costs (lazy imports, allocator growth) out of the timed runs
    _run(EvaluationMetrics(num_classes, top_k, None), min(num_videos, 2 * batch_size),
         batch_size, num_classes, seed + 1)
    if run_reference:
      _run(ReferenceEvaluationMetrics(num_classes, top_k, None), min(num_videos, batch_size),
           batch_size, num_classes, seed + 1)
  fast_seconds, fast_cpu, fast_runs, fast = _best_of(repeats, lambda: _run(
      EvaluationMetrics(num_classes, top_k, None), num_videos, batch_size, num_classes, seed))
  figures = {
      "num_videos": num_videos,
      "num_classes": num_classes,
      "batch_size": batch_size,
      "top_k": top_k,
      "repeats": max(1, int(repeats)),
      "vectorized_seconds": fast_seconds,
      "vectorized_seconds_runs": fast_runs,
      "vectorized_cpu_seconds": fast_cpu,
      "vectorized_videos_per_second": num_videos / fast_seconds,
      "gap": float(fast["gap"]),
      "map": float(fast["map"]),
      "avg_hit_at_one": float(fast["avg_hit_at_one"]),
      "avg_perr": float(fast["avg_perr"]),
      "f1": float(fast["f1"]),
      "num_scored_classes": len(fast["aps"]),
  }
  if not run_reference:
    return figures
  ref_videos = num_videos if reference_videos is None else min(reference_videos, num_videos)
  ref_seconds, ref_cpu, ref_runs, reference = _best_of(repeats, lambda: _run(
      ReferenceEvaluationMetrics(num_classes, top_k, None), ref_videos, batch_size, num_classes,
      seed))
  if ref_videos == num_videos:
    compared = fast
  else:
    _, _, compared = _run(EvaluationMetrics(num_classes, top_k, None), ref_videos, batch_size,
                          num_classes, seed)
  diffs = _compare(compared, reference)
  # The same with exact_ties=False (equal scores ranked non-positives first: no heap rebuild).
  quick_seconds, quick_cpu, _, quick = _best_of(repeats, lambda: _run(
      EvaluationMetrics(num_classes, top_k, None, exact_ties=False), ref_videos, batch_size,
      num_classes, seed))
  quick_diffs = _compare(quick, reference)
  scale = num_videos / ref_videos
  figures.update({
      "reference_videos": ref_videos,
      "reference_seconds_measured": ref_seconds,
      "reference_seconds_runs": ref_runs,
      "reference_seconds": ref_seconds * scale,
      "reference_cpu_seconds": ref_cpu * scale,
      "reference_extrapolated": ref_videos != num_videos,
      "speedup": ref_seconds * scale / fast_seconds,
      "speedup_cpu": ref_cpu * scale / fast_cpu,
      "max_abs_diff": max(diffs.values()),
      "abs_diff": diffs,
      "values_equal": max(diffs.values()) == 0.0,
      "reference_gap": float(reference["gap"]),
      "inexact_ties_seconds": quick_seconds * scale,
      "inexact_ties_cpu_seconds": quick_cpu * scale,
      "inexact_ties_speedup": ref_seconds / quick_seconds,
      "inexact_ties_speedup_cpu": ref_cpu / quick_cpu,
      "inexact_ties_max_abs_diff": max(quick_diffs.values()),
  })
  return figures


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--num_videos", type=int, default=100000)
  parser.add_argument("--num_classes", type=int, default=3862)
  parser.add_argument("--batch_size", type=int, default=1024)
  parser.add_argument("--top_k", type=int, default=20)
  parser.add_argument("--reference_videos", type=int, default=None,
                      help="time the reference loop on this many videos only and extrapolate "
                      "linearly to --num_videos (default: all videos)")
  parser.add_argument("--no_reference", action="store_true",
                      help="time only the vectorized implementation")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--repeats", type=int, default=2,
                      help="timed runs of each implementation; the fastest counts (default 2)")
  parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
  args = parser.parse_args(argv)

  figures = measure(args.num_videos, args.num_classes, args.batch_size, args.top_k,
                    args.reference_videos, args.seed, run_reference=not args.no_reference,
                    repeats=args.repeats)
  print(f"videos: {figures['num_videos']}  classes: {figures['num_classes']}  "
        f"batch: {figures['batch_size']}  top_k: {figures['top_k']}")
  print(f"best of {figures['repeats']} runs each (wall seconds of every run in the JSON)")
  print(f"vectorized EvaluationMetrics: {figures['vectorized_seconds']:.2f} s wall, "
        f"{figures['vectorized_cpu_seconds']:.2f} s CPU "
        f"({figures['vectorized_videos_per_second']:.0f} videos/s)  GAP {figures['gap']:.6f}  "
        f"mAP {figures['map']:.6f}  Hit@1 {figures['avg_hit_at_one']:.6f}  "
        f"PERR {figures['avg_perr']:.6f}")
  if "reference_seconds" in figures:
    if figures["reference_extrapolated"]:
      print(f"reference per-video loop: {figures['reference_seconds_measured']:.2f} s measured on "
            f"{figures['reference_videos']} videos, EXTRAPOLATED linearly to "
            f"{figures['num_videos']} videos: {figures['reference_seconds']:.1f} s wall, "
            f"{figures['reference_cpu_seconds']:.1f} s CPU")
      print(f"values compared on the first {figures['reference_videos']} videos")
    else:
      print(f"reference per-video loop: {figures['reference_seconds']:.2f} s wall, "
            f"{figures['reference_cpu_seconds']:.2f} s CPU")
    print(f"speed-up: {figures['speedup']:.1f}x wall, {figures['speedup_cpu']:.1f}x CPU")
    print(f"max abs difference: {figures['max_abs_diff']:.3g} "
          f"({'equal' if figures['values_equal'] else 'NOT bit-identical'}; per metric: "
          + ", ".join(f"{k} {v:.3g}" for k, v in figures["abs_diff"].items()) + ")")
    print(f"with exact_ties=False: {figures['inexact_ties_seconds']:.2f} s wall, "
          f"{figures['inexact_ties_cpu_seconds']:.2f} s CPU"
          f"{' (scaled to ' + str(figures['num_videos']) + ' videos)' if figures['reference_extrapolated'] else ''}"
          f", speed-up {figures['inexact_ties_speedup']:.1f}x wall, "
          f"{figures['inexact_ties_speedup_cpu']:.1f}x CPU, max abs difference "
          f"{figures['inexact_ties_max_abs_diff']:.3g} (tie order only)")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as handle:
      json.dump(figures, handle, indent=2, sort_keys=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
