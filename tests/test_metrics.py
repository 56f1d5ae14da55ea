"""yt8m_fusion.metrics (numpy): the spec's hand-computed cases and the starter's edge cases."""

import os
import random

import numpy as np
import pytest

from yt8m_fusion import metrics
from yt8m_fusion.metrics import AveragePrecisionCalculator
from yt8m_fusion.metrics import F1_CANDIDATE_KEYS
from yt8m_fusion.metrics import EvaluationMetrics
from yt8m_fusion.metrics import MeanAveragePrecisionCalculator

# STARTER_COMPAT.md section 4: small case with a tie at 0.3 (and one at 0.5).
SMALL_PREDICTIONS = np.array([[.1, .9, .3, 0], [.5, .5, .2, .1], [.2, .3, .1, .4]])
SMALL_LABELS = np.array([[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])

# STARTER_COMPAT.md section 6: the Model Garden AP test lists.
AP_PREDICTIONS = [[.98, .88, .77, .65, .64, .59, .45, .43, .20, .05],
                  [.878, .832, .759, .621, .458, .285, .134], [.98], [.56]]
AP_ACTUALS = [[1, 1, 0, 0, 0, 1, 1, 0, 0, 1], [1, 0, 1, 0, 0, 1, 0], [1], [0]]
AP_EXPECTED = {
    None: [0.714286, 0.722222, 1.0, 0.0],
    3: [0.666667, 0.555556, 1.0, 0.0],
    5: [0.4, 0.555556, 1.0, 0.0],
    10: [0.714286, 0.722222, 1.0, 0.0],
    20: [0.714286, 0.722222, 1.0, 0.0],
}


def test_exports():
  for name in ("calculate_hit_at_one", "calculate_precision_at_equal_recall_rate",
               "calculate_gap", "top_k_by_class", "flatten", "AveragePrecisionCalculator",
               "MeanAveragePrecisionCalculator", "EvaluationMetrics", "HitAtOne",
               "PrecisionAtEqualRecallRate", "GlobalAveragePrecision"):
    assert name in metrics.__all__
    assert hasattr(metrics, name)


def test_small_case_from_the_spec():
  assert metrics.calculate_hit_at_one(SMALL_PREDICTIONS, SMALL_LABELS) == pytest.approx(2 / 3)
  assert metrics.calculate_precision_at_equal_recall_rate(
      SMALL_PREDICTIONS, SMALL_LABELS) == pytest.approx(2 / 3)
  assert metrics.calculate_gap(SMALL_PREDICTIONS, SMALL_LABELS, top_k=2) == pytest.approx(5 / 6)
  evaluation = EvaluationMetrics(4, 2, None)
  batch = evaluation.accumulate(SMALL_PREDICTIONS, SMALL_LABELS, 1.5)
  assert batch == pytest.approx({"hit_at_one": 2 / 3, "perr": 2 / 3, "loss": 1.5})
  result = evaluation.get()
  assert result["gap"] == pytest.approx(5 / 6)
  assert result["aps"] == [1.0, 1.0, 1.0]  # classes 0, 1, 2 have positives; class 3 none
  assert result["map"] == 1.0
  assert result["num_examples"] == 3


def test_small_case_gap_depends_on_the_starter_tie_order():
  # calculate_gap pushes the top-2 items class by class (video order inside a class):
  # class 0: .5+ | class 1: .9+ .5- .3- | class 2: .3+ | class 3: .4-; 3 positives.
  scores = [.5, .9, .5, .3, .3, .4]
  labels = [1, 1, 0, 0, 1, 0]
  calculator = AveragePrecisionCalculator()
  calculator.accumulate(scores, labels, 3)
  # Both ties mix a positive and a negative: positives first would give (1 + 1 + 3/5) / 3,
  # positives last (1 + 2/3 + 3/6) / 3. The starter's heap + seed-0 shuffle puts the
  # positive first at 0.5 and last at 0.3: (1 + 1 + 3/6) / 3 = 5/6.
  assert calculator.peek_ap_at_n() == pytest.approx(5 / 6)
  assert (1 + 1 + 3 / 5) / 3 != pytest.approx(5 / 6)
  assert (1 + 2 / 3 + 3 / 6) / 3 != pytest.approx(5 / 6)


@pytest.mark.parametrize("n", [None, 3, 5, 10, 20])
def test_ap_at_n_model_garden_lists(n):
  got = [AveragePrecisionCalculator.ap_at_n(p, a, n=n) for p, a in zip(AP_PREDICTIONS, AP_ACTUALS)]
  assert got == pytest.approx(AP_EXPECTED[n], abs=1e-6)
  if n is None:
    assert [AveragePrecisionCalculator.ap(p, a) for p, a in zip(AP_PREDICTIONS, AP_ACTUALS)
           ] == pytest.approx(AP_EXPECTED[None], abs=1e-6)


def test_ap_calculator_accumulate_peek_clear():
  calculator = AveragePrecisionCalculator()
  assert calculator.peek_ap_at_n() == 0
  assert calculator.heap_size == 0
  calculator.accumulate(AP_PREDICTIONS[0][:4], AP_ACTUALS[0][:4])
  calculator.accumulate(AP_PREDICTIONS[0][4:], AP_ACTUALS[0][4:])
  assert calculator.heap_size == 10
  assert calculator.num_accumulated_positives == 5
  assert calculator.peek_ap_at_n() == pytest.approx(0.714286, abs=1e-6)
  calculator.clear()
  assert calculator.heap_size == 0 and calculator.peek_ap_at_n() == 0


def test_ap_calculator_top_n_and_extra_positives():
  calculator = AveragePrecisionCalculator(top_n=3)
  calculator.accumulate(AP_PREDICTIONS[1], AP_ACTUALS[1])
  assert calculator.heap_size == 3
  assert calculator.peek_ap_at_n() == pytest.approx(0.555556, abs=1e-6)
  # Positives that never made it into the list still count for recall.
  calculator = AveragePrecisionCalculator()
  calculator.accumulate([0.9, 0.8], [1, 0], num_positives=4)
  assert calculator.peek_ap_at_n() == pytest.approx(0.25)


def test_zero_one_normalize():
  rng = np.random.default_rng(0)
  data = rng.random((5, 10)) + rng.integers(0, 10, size=(5, 10))
  for row in data:
    normalized = AveragePrecisionCalculator._zero_one_normalize(row)  # pylint: disable=protected-access
    assert normalized.min() == 0.0 and normalized.max() == pytest.approx(1.0)
    assert np.all((normalized >= 0) & (normalized <= 1))
  assert np.all(AveragePrecisionCalculator._zero_one_normalize(  # pylint: disable=protected-access
      np.full(3, 2.0)) == 0)


def test_hit_at_one_ties_and_unlabeled_videos():
  predictions = np.array([[0.5, 0.5, 0.1], [0.2, 0.7, 0.7], [0.9, 0.1, 0.0]])
  labels = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]])
  # Ties go to the lowest index: video 0 hits class 0, video 1 picks class 1 (miss).
  assert metrics.calculate_hit_at_one(predictions, labels) == pytest.approx(1 / 3)
  # Float labels (segment ratings) are averaged.
  assert metrics.calculate_hit_at_one(predictions, labels * 0.5) == pytest.approx(1 / 6)


def test_perr_edge_cases():
  predictions = np.array([
      [0.9, 0.8, 0.1, 0.2],   # 2 labels, both in the top 2 -> 1
      [0.0, 0.0, 0.3, -0.1],  # top 2 = 0.3 (+) and a 0.0: a positive scored 0 does not count
      [0.5, 0.4, 0.3, 0.2],   # no labels -> k = 0 -> 0, but the video counts
      [-0.1, -0.2, -0.3, -0.4],  # negative scores never count
  ])
  labels = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
  expected = (1.0 + 0.5 + 0.0 + 0.0) / 4
  assert metrics.calculate_precision_at_equal_recall_rate(predictions, labels) == pytest.approx(
      expected)


def test_top_k_by_class_keeps_zero_scores_and_counts_all_positives():
  predictions = np.array([[0.0, 0.0, 0.9], [0.8, 0.0, 0.1]])
  labels = np.array([[1, 1, 0], [1, 0, 1]])
  scores, truths, positives = metrics.top_k_by_class(predictions, labels, k=2)
  assert len(scores) == len(truths) == len(positives) == 3
  # Video 0 keeps a zero score (class 0 or 1, argpartition's choice); video 1 keeps 0.8, 0.1.
  assert sum(len(s) for s in scores) == 4
  assert 0.0 in np.concatenate(scores)
  np.testing.assert_array_equal(scores[2], [0.9, 0.1])  # class 2: video 0, then video 1
  np.testing.assert_array_equal(truths[2], [0, 1])
  assert [float(x) for x in positives] == [2.0, 1.0, 1.0]  # the whole batch, top-k or not
  assert metrics.flatten([[1, 2], [], [3]]) == [1, 2, 3]
  # k larger than the number of classes is capped.
  scores, _, _ = metrics.top_k_by_class(predictions, labels, k=50)
  assert sum(len(s) for s in scores) == 6
  with pytest.raises(ValueError):
    metrics.top_k_by_class(predictions, labels, k=0)


def test_gap_counts_positives_outside_the_top_k():
  predictions = np.array([[0.9, 0.8, 0.1], [0.7, 0.2, 0.6]])
  labels = np.array([[1, 0, 1], [1, 1, 0]])
  # Top-1 items: 0.9 (+), 0.7 (+); 4 positives in total -> (1/1 + 2/2) / 4.
  assert metrics.calculate_gap(predictions, labels, top_k=1) == pytest.approx(0.5)
  # All 6 items: .9+ .8- .7+ .6- .2+ .1+.
  assert metrics.calculate_gap(predictions, labels, top_k=3) == pytest.approx(
      (1 / 1 + 2 / 3 + 3 / 5 + 4 / 6) / 4)


def test_map_skips_classes_without_positives_and_scores_missed_classes_zero():
  predictions = np.array([[0.9, 0.1, 0.2, 0.0], [0.8, 0.3, 0.1, 0.0]])
  labels = np.array([[1, 0, 0, 1], [0, 0, 0, 1]])  # class 3 positive but never in the top-2
  evaluation = EvaluationMetrics(4, 2, None)
  evaluation.accumulate(predictions, labels, 0.0)
  result = evaluation.get()
  assert result["aps"] == [1.0, 0.0]  # classes 0 and 3 only
  assert result["map"] == 0.5
  calculator = MeanAveragePrecisionCalculator(4, filter_empty_classes=False)
  scores, truths, positives = metrics.top_k_by_class(predictions, labels, k=2)
  calculator.accumulate(scores, truths, positives)
  assert calculator.peek_map_at_n() == [1.0, 0.0, 0.0, 0.0]
  assert not calculator.is_empty()
  calculator.clear()
  assert calculator.is_empty()


def test_map_calculator_starter_format_defaults_to_counting_labels():
  calculator = MeanAveragePrecisionCalculator(3)
  calculator.accumulate([[0.9, 0.1], [0.5], []], [[1, 0], [0], []])
  assert calculator.peek_map_at_n() == [1.0]  # only class 0 has (counted) positives


def test_f1_hand_computed():
  predictions = np.array([[0.9, 0.5, 0.2], [0.6, 0.49, 0.7]])
  labels = np.array([[1, 0, 1], [0, 1, 1]])
  # Predicted positives (>= 0.5): (0,0)+ (0,1)- (1,0)- (1,2)+ -> TP 2, FP 2; FN: (0,2), (1,1).
  evaluation = EvaluationMetrics(3, 2, None, f1_threshold=0.5)
  evaluation.accumulate(predictions, labels, 0.0)
  result = evaluation.get()
  assert result["precision"] == pytest.approx(0.5)
  assert result["recall"] == pytest.approx(0.5)
  assert result["f1"] == pytest.approx(0.5)
  evaluation = EvaluationMetrics(3, 2, None, f1_threshold=0.95)
  evaluation.accumulate(predictions, labels, 0.0)
  result = evaluation.get()
  assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)


def test_f1_on_a_large_batch_matches_direct_counts():
  rng = np.random.default_rng(3)
  predictions = rng.random((300, 1000)).astype(np.float32)
  labels = (rng.random((300, 1000)) < 0.01).astype(np.float32)
  predictions[labels > 0] += 0.5
  for threshold in (0.3, 0.9, 1.2):
    evaluation = EvaluationMetrics(1000, 20, None, f1_threshold=threshold)
    evaluation.accumulate(predictions, labels, 0.0)
    result = evaluation.get()
    predicted = predictions >= threshold
    tp = np.sum(predicted & (labels > 0))
    assert result["precision"] == pytest.approx(tp / max(predicted.sum(), 1))
    assert result["recall"] == pytest.approx(tp / labels.sum())


F1_KEYS = ("f1_macro", "f1_per_video", "f1_top1", "f1_top3", "f1_top5", "f1_at_num_labels")


def test_f1_candidate_keys_are_the_documented_ones():
  assert F1_CANDIDATE_KEYS == F1_KEYS
  with open(os.path.join(os.path.dirname(__file__), "..", "docs", "METRICS.md")) as handle:
    documented = handle.read()
  for key in ("gap", "avg_hit_at_one", "avg_perr", "map", "f1", "precision", "recall",
              *F1_KEYS):
    assert f"`{key}`" in documented, key


@pytest.mark.parametrize("top_k", [2, 20])
def test_f1_family_hand_computed(top_k):
  predictions = np.array([[0.9, 0.6, 0.2, 0.1],
                          [0.3, 0.8, 0.55, 0.05],
                          [0.4, 0.1, 0.2, 0.45]])
  labels = np.array([[1, 0, 1, 0],
                     [0, 1, 0, 0],
                     [0, 0, 0, 0]])
  evaluation = EvaluationMetrics(4, top_k, None, f1_threshold=0.5)
  evaluation.accumulate(predictions, labels, 0.0)
  result = evaluation.get()
  # >= 0.5: (0,0)+ (0,1)- (1,1)+ (1,2)-: TP 2 of 4 predicted, 3 positives.
  assert result["f1"] == pytest.approx(2 * 2 / (4 + 3))
  # Classes with positives: 0 (TP 1, predicted 1, positives 1), 1 (1, 2, 1), 2 (0, 1, 1).
  assert result["f1_macro"] == pytest.approx((1 + 2 / 3 + 0) / 3)
  # Videos: 0 (TP 1, predicted 2, positives 2), 1 (1, 2, 1), 2 (nothing: 0).
  assert result["f1_per_video"] == pytest.approx((2 / 4 + 2 / 3 + 0) / 3)
  # Top-1 classes 0, 1, 3: 2 hits of 3 predicted, 3 positives.
  assert result["f1_top1"] == pytest.approx(2 * 2 / (3 + 3))
  # Top-3: {0, 1, 2} 2 hits, {1, 2, 0} 1, {3, 0, 2} 0: 3 hits of 9 predicted.
  assert result["f1_top3"] == pytest.approx(2 * 3 / (9 + 3))
  # Top-5 of 4 classes: every class predicted, 12 in all.
  assert result["f1_top5"] == pytest.approx(2 * 3 / (12 + 3))
  # As many as its labels: video 0 top-2 {0, 1} 1 hit, video 1 top-1 {1} 1 hit.
  assert result["f1_at_num_labels"] == pytest.approx(2 / 3)
  assert result["avg_perr"] == pytest.approx((1 / 2 + 1 + 0) / 3)


def test_f1_family_on_a_large_batch_matches_dense_counts():
  rng = np.random.default_rng(5)
  num_videos, num_classes = 400, 1000
  predictions = (rng.random((num_videos, num_classes)) ** 4).astype(np.float32)
  labels = (rng.random((num_videos, num_classes)) < 0.004).astype(np.float32)
  labels[:5] = 0  # videos without labels
  predictions[labels > 0] = np.minimum(predictions[labels > 0] + 0.4, 1.0)
  # Rows with more than top_k scores above the thresholds: read outside the top-k candidates.
  predictions[7] = 0.9 + 0.05 * rng.random(num_classes)
  predictions[8, :100] = 0.7 + 0.01 * rng.random(100)
  for threshold in (0.3, 0.5, 0.95):
    evaluation = EvaluationMetrics(num_classes, 20, None, f1_threshold=threshold)
    evaluation.accumulate(predictions[:150], labels[:150], 0.0)
    evaluation.accumulate(predictions[150:], labels[150:], 0.0)
    result = evaluation.get()
    predicted = predictions >= threshold
    positive = labels > 0
    hits = predicted & positive
    with_positives = positive.sum(0) > 0
    class_f1 = 2 * hits.sum(0) / np.maximum(predicted.sum(0) + positive.sum(0), 1)
    assert result["f1_macro"] == pytest.approx(class_f1[with_positives].mean())
    video_f1 = 2 * hits.sum(1) / np.maximum(predicted.sum(1) + positive.sum(1), 1)
    assert result["f1_per_video"] == pytest.approx(video_f1.mean())
    assert result["f1"] == pytest.approx(2 * hits.sum() / (predicted.sum() + positive.sum()))
  order = np.argsort(-predictions, axis=1, kind="stable")
  ranked_hits = np.take_along_axis(positive, order, axis=1)
  for k in (1, 3, 5):
    expected = 2 * ranked_hits[:, :k].sum() / (num_videos * k + positive.sum())
    assert result[f"f1_top{k}"] == pytest.approx(expected), k
  counts = positive.sum(1)
  equal_hits = sum(ranked_hits[row, :count].sum() for row, count in enumerate(counts))
  assert result["f1_at_num_labels"] == pytest.approx(equal_hits / counts.sum())


def test_accumulating_batches_equals_one_batch():
  rng = np.random.default_rng(7)
  predictions = rng.random((700, 600))  # float64: no ties
  labels = (rng.random((700, 600)) < 0.005).astype(np.float32)
  labels[:3] = 0
  losses = rng.random(700)
  whole = EvaluationMetrics(600, 20, None)
  whole.accumulate(predictions, labels, losses)
  parts = EvaluationMetrics(600, 20, None)
  for start, end in ((0, 100), (100, 357), (357, 700)):
    parts.accumulate(predictions[start:end], labels[start:end], losses[start:end])
  one, many = whole.get(), parts.get()
  assert many["aps"] == one["aps"]
  assert many["gap"] == one["gap"]
  assert many["map"] == one["map"]
  assert many["num_examples"] == one["num_examples"] == 700
  for key in ("avg_hit_at_one", "avg_perr", "avg_loss", "f1", "precision", "recall",
              *F1_KEYS):
    assert many[key] == pytest.approx(one[key], rel=1e-12), key
  parts.clear()
  with pytest.raises(ValueError):
    parts.get()


def test_value_errors():
  for bad in (1, 0, -3, 2.5, "3", True, None):
    with pytest.raises(ValueError):
      MeanAveragePrecisionCalculator(bad)
    with pytest.raises(ValueError):
      EvaluationMetrics(bad, 20, None)
  assert MeanAveragePrecisionCalculator(np.int64(5)).num_class == 5
  for bad in (0, -1, 1.5, "2"):
    with pytest.raises(ValueError):
      AveragePrecisionCalculator(top_n=bad)
    with pytest.raises(ValueError):
      AveragePrecisionCalculator.ap_at_n([0.5], [1], n=bad)
  with pytest.raises(ValueError):
    AveragePrecisionCalculator.ap_at_n([0.5, 0.2], [1], n=None)
  calculator = AveragePrecisionCalculator()
  with pytest.raises(ValueError):
    calculator.accumulate([0.5, 0.2], [1])
  with pytest.raises(ValueError):
    calculator.accumulate([0.5], [1], num_positives=-1)
  with pytest.raises(ValueError):
    EvaluationMetrics(4, 0, None)
  with pytest.raises(ValueError):
    EvaluationMetrics(4, 2, None).get()
  with pytest.raises(ValueError):
    EvaluationMetrics(5, 2, None).accumulate(SMALL_PREDICTIONS, SMALL_LABELS, 0.0)
  with pytest.raises(ValueError):
    metrics.calculate_hit_at_one(SMALL_PREDICTIONS, SMALL_LABELS[:2])
  with pytest.raises(ValueError):
    MeanAveragePrecisionCalculator(3).accumulate([[0.1]], [[1]])


def test_python_global_random_state_is_untouched():
  random.seed(1234)
  expected = [random.random() for _ in range(3)]
  random.seed(1234)
  AveragePrecisionCalculator.ap_at_n([0.5, 0.5, 0.5, 0.2], [1, 0, 1, 0], n=None)
  metrics.calculate_gap(SMALL_PREDICTIONS, SMALL_LABELS, top_k=2)
  assert [random.random() for _ in range(3)] == expected


def test_empty_batches_and_dtypes():
  empty = np.zeros((0, 5))
  assert metrics.calculate_hit_at_one(empty, empty) == 0.0
  assert metrics.calculate_precision_at_equal_recall_rate(empty, empty) == 0.0
  assert metrics.calculate_gap(empty, empty) == 0.0
  # float16 predictions and bool labels give the float32 / 0-1 results.
  p16 = SMALL_PREDICTIONS.astype(np.float16)
  assert metrics.calculate_gap(p16, SMALL_LABELS.astype(bool), top_k=2) == metrics.calculate_gap(
      p16.astype(np.float32), SMALL_LABELS, top_k=2)
