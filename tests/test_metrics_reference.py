"""The vectorized metrics equal the per-video reference of the starter's calculation.

The reference (``benchmarks/metrics_benchmark.py``) loops over videos with ``argpartition``,
keeps ``heapq`` heaps of ``(score, label)`` tuples and shuffles with ``random.sample`` seeded
with 0 before a stable sort, as the starter does. Values must be equal (==), ties included.
"""

import heapq
import importlib.util
import os
import random

import numpy as np
import pytest

from yt8m_fusion import metrics
from yt8m_fusion.metrics import _starter_order

_BENCHMARK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks", "metrics_benchmark.py")
_spec = importlib.util.spec_from_file_location("metrics_benchmark", _BENCHMARK)
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


def _assert_same(fast, slow):
  for key in ("avg_hit_at_one", "avg_perr", "avg_loss", "gap"):
    assert fast[key] == slow[key], key
  assert fast["aps"] == slow["aps"]
  if slow["aps"]:
    assert fast["map"] == float(np.mean(slow["aps"]))


def _evaluate_both(batches, num_classes, top_k=20, top_n=None):
  fast = metrics.EvaluationMetrics(num_classes, top_k, top_n)
  slow = reference.ReferenceEvaluationMetrics(num_classes, top_k, top_n)
  for predictions, labels, loss in batches:
    assert fast.accumulate(predictions, labels, loss) == slow.accumulate(predictions, labels, loss)
  return fast.get(), slow.get()


def _random_batches(rng, num_classes, sizes, decimals=None, dtype=np.float32):
  batches = []
  for size in sizes:
    labels = (rng.random((size, num_classes)) < 3.0 / num_classes).astype(np.float32)
    logits = rng.standard_normal((size, num_classes)) * 1.5 - 4.0 + 5.0 * labels
    predictions = 1.0 / (1.0 + np.exp(-logits))
    if decimals is not None:  # many exact ties
      predictions = np.round(predictions, decimals)
    predictions = predictions.astype(dtype)
    labels[:2] = 0  # videos without labels
    predictions[2] = 0.0  # a video with all-zero scores
    labels[3, :45] = 1  # a video with more labels than top_k
    batches.append((predictions, labels, rng.random()))
  return batches


@pytest.mark.parametrize("num_classes, decimals, dtype, top_k", [
    (700, None, np.float32, 20),   # realistic float32 scores (candidate top-k path)
    (700, 2, np.float32, 20),      # heavy ties everywhere
    (700, 1, np.float64, 5),       # extreme ties, float64
    (120, 2, np.float32, 20),      # few classes (argpartition path)
    (600, 3, np.float32, 70),      # top_k beyond the candidate path
])
def test_evaluation_metrics_equal_the_reference(num_classes, decimals, dtype, top_k):
  rng = np.random.default_rng(num_classes + (decimals or 0) + top_k)
  batches = _random_batches(rng, num_classes, (150, 97, 150), decimals, dtype)
  fast, slow = _evaluate_both(batches, num_classes, top_k)
  _assert_same(fast, slow)


def test_tie_data_goes_through_the_exact_paths(monkeypatch):
  """The tie test data really exercises the starter-order emulation and the fallbacks."""
  from yt8m_fusion.metrics import eval_util  # pylint: disable=import-outside-toplevel
  calls = {"heap": 0, "shuffle": 0, "argpartition_rows": 0}

  def spy(name, module, attribute):
    original = getattr(module, attribute)

    def wrapped(*args, **kwargs):
      calls[name] += 1
      return original(*args, **kwargs)

    monkeypatch.setattr(module, attribute, wrapped)

  spy("heap", _starter_order, "heap_positions")
  spy("shuffle", _starter_order, "shuffled_positions")
  spy("argpartition_rows", eval_util, "_exact_rows")
  rng = np.random.default_rng(1)
  batches = _random_batches(rng, 700, (150, 150), decimals=2)
  fast, slow = _evaluate_both(batches, 700)
  _assert_same(fast, slow)
  assert calls["heap"] > 1 and calls["shuffle"] > 1 and calls["argpartition_rows"] > 0


def test_inexact_ties_mode(monkeypatch):
  """exact_ties=False skips the starter-order rebuild; only the order of ties differs."""
  rng = np.random.default_rng(8)
  without_ties = _random_batches(rng, 700, (150, 150), dtype=np.float64)
  with_ties = _random_batches(rng, 700, (150, 150), decimals=2)
  for batches, same in ((without_ties, True), (with_ties, False)):
    exact = metrics.EvaluationMetrics(700, 20, None)
    quick = metrics.EvaluationMetrics(700, 20, None, exact_ties=False)
    for predictions, labels, loss in batches:
      exact.accumulate(predictions, labels, loss)
      quick.accumulate(predictions, labels, loss)
    calls = []
    monkeypatch.setattr(_starter_order, "heap_layout", lambda *a, **k: calls.append(1))
    result = quick.get()
    assert not calls
    monkeypatch.undo()
    expected = exact.get()
    if same:
      assert result["gap"] == expected["gap"] and result["aps"] == expected["aps"]
    else:
      # Scores rounded to 2 decimals: huge ties, so a visible (bounded) difference.
      assert result["gap"] == pytest.approx(expected["gap"], abs=0.02)
      assert result["gap"] <= expected["gap"]  # non-positives first is pessimistic
      assert np.all(np.array(result["aps"]) <= np.array(expected["aps"]) + 1e-12)


def test_evaluation_metrics_with_top_n_equal_the_reference():
  rng = np.random.default_rng(11)
  batches = _random_batches(rng, 600, (150, 150, 150, 150), decimals=2)  # > 8192 items: pruning
  fast, slow = _evaluate_both(batches, 600, 20, top_n=3)
  _assert_same(fast, slow)


def test_batch_functions_equal_the_reference():
  rng = np.random.default_rng(5)
  for predictions, labels, _ in _random_batches(rng, 800, (200, 200), decimals=2):
    assert metrics.calculate_hit_at_one(predictions, labels) == reference.reference_hit_at_one(
        predictions, labels)
    assert metrics.calculate_precision_at_equal_recall_rate(
        predictions, labels) == reference.reference_perr(predictions, labels)
    assert metrics.calculate_gap(predictions, labels, 20) == reference.reference_gap(
        predictions, labels, 20)
    scores, truths, positives = metrics.top_k_by_class(predictions, labels, 20)
    ref_scores, ref_truths, ref_positives = reference.reference_top_k_by_class(
        predictions, labels, 20)
    for mine, theirs in zip(scores, ref_scores):
      np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(truths, ref_truths):
      np.testing.assert_array_equal(mine, theirs)
    assert [float(x) for x in positives] == [float(x) for x in ref_positives]


def test_ap_calculators_equal_the_reference_on_tied_lists():
  rng = np.random.default_rng(2)
  # (30000, 40) in 12 chunks also exercises the pruning of items a capped heap rejects.
  for size, top_n, chunks in ((50, None, 4), (3000, None, 4), (25000, None, 4), (3000, 40, 4),
                              (30000, 40, 12)):
    scores = np.round(rng.random(size), 2)
    labels = (rng.random(size) < 0.3).astype(np.float64)
    for n in (None, 7, 100):
      assert metrics.AveragePrecisionCalculator.ap_at_n(
          scores, labels, n) == reference.ReferenceAveragePrecisionCalculator.ap_at_n(
              scores, labels, n)
    fast = metrics.AveragePrecisionCalculator(top_n)
    slow = reference.ReferenceAveragePrecisionCalculator(top_n)
    for chunk in np.array_split(np.arange(size), chunks):
      fast.accumulate(scores[chunk], labels[chunk])
      slow.accumulate(list(scores[chunk]), list(labels[chunk]))
    assert fast.heap_size == slow.heap_size
    assert fast.peek_ap_at_n() == slow.peek_ap_at_n()


def test_float_labels_equal_the_reference():
  rng = np.random.default_rng(9)
  predictions = np.round(rng.random((200, 600)), 2).astype(np.float32)
  labels = np.where(rng.random((200, 600)) < 0.01, rng.choice([0.5, 1.0], (200, 600)), 0.0)
  fast, slow = _evaluate_both([(predictions, labels, 0.0)], 600)
  assert fast["gap"] == slow["gap"]
  assert fast["aps"] == slow["aps"]
  assert fast["avg_hit_at_one"] == slow["avg_hit_at_one"]
  assert fast["avg_perr"] == pytest.approx(slow["avg_perr"], abs=1e-12)


@pytest.mark.parametrize("n", [0, 1, 2, 5, 21, 4096, 4097, 20000, 20001, 70001])
def test_seed0_shuffle_emulation_equals_random_sample(n):
  expected = np.asarray(random.Random(0).sample(range(n), n), dtype=np.int64)
  np.testing.assert_array_equal(_starter_order.seed0_permutation(n), expected)
  positions = np.arange(n)[::max(1, n // 500)]
  shuffled = _starter_order.shuffled_positions(n, positions)
  if n:
    np.testing.assert_array_equal(expected[shuffled], positions)
  if n > _starter_order._PYTHON_SAMPLE_MAX:  # pylint: disable=protected-access
    large = _starter_order._shuffled_positions_large(n, positions)  # pylint: disable=protected-access
    np.testing.assert_array_equal(large, shuffled)


def test_heap_layout_equals_heapq_on_tuples():
  rng = np.random.default_rng(4)
  scores = np.round(rng.random(3000), 2)
  labels = rng.integers(0, 2, 3000)
  tuples = list(zip(scores.tolist(), labels.tolist()))
  keys = [int(round(s * 100)) * 2 + a for s, a in tuples]
  heap = []
  for item in tuples:
    heapq.heappush(heap, item)
  assert [(k // 2 / 100, k % 2) for k in _starter_order.heap_layout(keys, None, 2)] == [
      (round(s, 2), a) for s, a in heap]
  top_n = 50
  heap = []
  for item in tuples:
    if len(heap) < top_n:
      heapq.heappush(heap, item)
    elif item[0] > heap[0][0]:
      heapq.heappop(heap)
      heapq.heappush(heap, item)
  assert [(k // 2 / 100, k % 2) for k in _starter_order.heap_layout(keys, top_n, 2)] == [
      (round(s, 2), a) for s, a in heap]


def test_benchmark_measure_reports_equal_values():
  figures = reference.measure(num_videos=600, num_classes=600, batch_size=256)
  assert figures["values_equal"] is True
  assert figures["max_abs_diff"] == 0.0
  assert figures["reference_extrapolated"] is False
  assert figures["speedup"] > 0
  figures = reference.measure(num_videos=600, num_classes=600, batch_size=256,
                              reference_videos=256)
  assert figures["reference_extrapolated"] is True
  assert figures["values_equal"] is True


class _KeyOnly:
  """A heap item compared by its key alone (as heapq compares the starter's tuples)."""
  __slots__ = ("key", "index")

  def __init__(self, key, index):
    self.key, self.index = key, index

  def __lt__(self, other):
    return self.key < other.key


@pytest.mark.parametrize("kind", ["random", "duplicates", "ascending", "descending", "three_values",
                                  "zigzag"])
@pytest.mark.parametrize("size", [1, 2, 5, 17, 1000, 20000])
def test_heap_positions_equal_a_heapq_replay(kind, size):
  """heap_positions finds where heappush leaves chosen items, as heapq does (worst cases too)."""
  rng = np.random.default_rng(size)
  keys = {"random": lambda: rng.integers(0, 10**9, size),
          "duplicates": lambda: rng.integers(0, max(size // 3, 1), size),
          "ascending": lambda: np.sort(rng.integers(0, 10**6, size)),
          "descending": lambda: np.sort(rng.integers(0, 10**6, size))[::-1],
          "three_values": lambda: rng.integers(0, 3, size),
          "zigzag": lambda: np.where(np.arange(size) % 2 == 0, np.arange(size),
                                     4 * size - np.arange(size))}[kind]().astype(np.int64)
  heap = []
  for index, key in enumerate(keys.tolist()):
    heapq.heappush(heap, _KeyOnly(key, index))
  truth = np.empty(size, dtype=np.int64)
  for position, item in enumerate(heap):
    truth[item.index] = position
  chosen = rng.choice(np.unique(keys), size=max(1, np.unique(keys).size // 20), replace=False)
  for pushes in (np.flatnonzero(np.isin(keys, chosen)), np.arange(size)):
    found = _starter_order.heap_positions(keys, pushes)
    # Items with identical keys are interchangeable: compare the positions key by key.
    for key in np.unique(keys[pushes]).tolist():
      same = keys[pushes] == key
      assert sorted(found[same].tolist()) == sorted(truth[pushes[same]].tolist()), key
