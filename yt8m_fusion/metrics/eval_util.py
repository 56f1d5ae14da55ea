"""The starter's evaluation metrics (``eval_util.py``) with the same names and results, vectorized.

Inputs are ``[num_videos, num_classes]`` arrays of predictions (scores) and labels (0/1, or
float ratings). Everything a batch needs is computed from one top-k selection per batch
instead of per-video Python loops:

* the per-video top-k set is found by a threshold (the k-th largest of 128 column-group
  maxima bounds the k-th largest score from below) and a small sort of the few scores above
  it; rows where the choice is ambiguous (equal scores at the k-th place, or too many
  candidates) use ``numpy.argpartition`` exactly like the starter, so the same classes are
  picked also with ties (numpy's argpartition gives the same picks row by row or per batch);
* PERR reuses that sorted top-k when the video has at most k labels and no tie at its
  cut-off; other videos (ties, more labels than k) run the starter's ``argpartition``;
* GAP and mAP get the top-k ``(class, score, label)`` items as arrays, in the starter's push
  order, and compute AP with a sort and cumulative sums (``average_precision``), with the
  starter's tie order reproduced.

Results equal the starter's (run under NumPy 1.x: float64 arithmetic) bit for bit for 0/1
labels, ties included; with fractional labels, PERR sums may be added in another order
(last-ulp differences). Results are Python floats (the starter's Hit@1 is a numpy scalar of
the labels' dtype, e.g. float32; ours is the float64 mean, which differs by < 1e-7 from it).
Scores are used as float32 when given as float16/float32/bfloat16 (exact), else float64.

Edge cases kept from the starter: Hit@1 ties go to the lowest class index and a video
without labels scores 0; PERR of a video with k = 0 labels divides by the number of classes
(precision 0 for 0/1 labels) and only scores > 0 count; the top-k keeps zero scores; GAP's
recall counts every positive label of the batch, also those outside the top-k; mAP
averages classes with positives only. Empty batches give 0 (Model Garden's guard; the
starter divides by zero).
"""

import numbers

import numpy as np

from yt8m_fusion.metrics.average_precision import AveragePrecisionCalculator
from yt8m_fusion.metrics.average_precision import MeanAveragePrecisionCalculator
from yt8m_fusion.metrics.average_precision import _calculator_ap
from yt8m_fusion.metrics.average_precision import _score_dtype

__all__ = [
    "EvaluationMetrics",
    "F1_CANDIDATE_KEYS",
    "calculate_gap",
    "calculate_hit_at_one",
    "calculate_precision_at_equal_recall_rate",
    "flatten",
    "top_k_by_class",
]

# Column groups whose maxima give each row's top-k threshold.
_GROUPS = 128
# A row with more candidates than this falls back to argpartition.
_MAX_CANDIDATES = 256
# The top-k F1 candidates EvaluationMetrics reports (f1_top1, f1_top3, f1_top5).
F1_TOP_KS = (1, 3, 5)
# The keys of the F1 definitions EvaluationMetrics.get() gives beside `f1` (docs/METRICS.md).
F1_CANDIDATE_KEYS = ("f1_macro", "f1_per_video", *(f"f1_top{k}" for k in F1_TOP_KS),
                     "f1_at_num_labels")


def flatten(lists):
  """Concatenates a list of lists (the starter's helper)."""
  return [item for sublist in lists for item in sublist]


def _check_inputs(predictions, labels):
  """2-D arrays of equal shape; predictions as C-contiguous float32/float64."""
  predictions = np.asarray(predictions)
  labels = np.asarray(labels)
  if predictions.ndim != 2 or predictions.shape != labels.shape or predictions.shape[1] == 0:
    raise ValueError("predictions and labels must be [num_videos, num_classes] arrays of the "
                     f"same shape, got {predictions.shape} and {labels.shape}.")
  predictions = np.ascontiguousarray(predictions, dtype=_score_dtype(predictions.dtype))
  return predictions, labels


class _TopK:
  """Each video's top-k classes, by descending score.

  Attributes:
    cols: ``[B, K]`` class indices (the starter's argpartition set, sorted by score).
    vals: ``[B, K]`` their scores.
    next_val: ``[B]`` the (K+1)-th largest score where known (+inf when not known).
    argmax: ``[B]`` ``numpy.argmax`` of each row (lowest index among equal maxima).
    threshold: ``[B]`` every score >= threshold was a candidate (None if not computed).
    cand_rows, cand_cols, cand_vals: all candidates (row, class, score).
  """

  def __init__(self, batch, k):
    self.cols = np.zeros((batch, k), dtype=np.int64)
    self.vals = None
    self.next_val = np.full(batch, np.inf)
    self.argmax = np.zeros(batch, dtype=np.int64)
    self.threshold = None
    self.cand_rows = None
    self.cand_cols = None
    self.cand_vals = None


def _exact_rows(predictions, k, rows, top):
  """Fills ``top`` for ``rows`` with the starter's argpartition choice."""
  sub = predictions[rows]
  indices = np.argpartition(sub, -k, axis=1)[:, -k:]
  values = np.take_along_axis(sub, indices, axis=1)
  order = np.argsort(-values, axis=1, kind="stable")
  top.cols[rows] = np.take_along_axis(indices, order, axis=1)
  top.vals[rows] = np.take_along_axis(values, order, axis=1)
  top.argmax[rows] = np.argmax(sub, axis=1)


def _top_k(predictions, k):
  """The top-k of every row (see ``_TopK``); ``k`` <= number of classes."""
  batch, num_classes = predictions.shape
  top = _TopK(batch, k)
  top.vals = np.zeros((batch, k), dtype=predictions.dtype)
  if batch == 0:
    return top
  if num_classes < 4 * _GROUPS or k > _GROUPS // 2:
    _exact_rows(predictions, k, np.arange(batch), top)
    return top

  # Lower bound of the k-th largest score: the k-th largest of the maxima of _GROUPS column
  # groups (group g = columns g, g + _GROUPS, ...), since those maxima are k distinct scores.
  group_max = predictions[:, :_GROUPS].copy()
  for start in range(_GROUPS, num_classes, _GROUPS):
    block = predictions[:, start:start + _GROUPS]
    np.maximum(group_max[:, :block.shape[1]], block, out=group_max[:, :block.shape[1]])
  threshold = np.partition(group_max, -k, axis=1)[:, -k]
  flat = np.flatnonzero(predictions >= threshold[:, None])
  rows = flat // num_classes
  cols = flat - rows * num_classes
  vals = predictions.reshape(-1)[flat]
  top.threshold, top.cand_rows, top.cand_cols, top.cand_vals = threshold, rows, cols, vals

  counts = np.bincount(rows, minlength=batch)
  heavy = counts > _MAX_CANDIDATES
  if np.any(heavy):
    keep = ~heavy[rows]
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    counts = np.where(heavy, 0, counts)
  width = int(counts.max()) + 1 if rows.size else k + 1
  starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
  cells = np.arange(rows.size) + (rows * width - starts[rows])  # flat [row, slot] positions
  padded = np.full((batch, width), -np.inf, dtype=predictions.dtype)
  padded.reshape(-1)[cells] = vals
  padded_cols = np.zeros((batch, width), dtype=np.int64)
  padded_cols.reshape(-1)[cells] = cols
  order = np.argsort(-padded, axis=1)[:, :k + 1]
  order += (np.arange(batch) * width)[:, None]  # flat positions in padded
  sorted_vals = padded.reshape(-1)[order]
  top.cols = padded_cols.reshape(-1)[order[:, :k]]
  top.vals = np.ascontiguousarray(sorted_vals[:, :k])
  top.next_val = sorted_vals[:, k].astype(np.float64)
  top.argmax = top.cols[:, 0].copy()
  tied_max = np.flatnonzero(sorted_vals[:, 0] == sorted_vals[:, 1])
  if tied_max.size:  # numpy.argmax: the lowest index among equal maxima
    top.argmax[tied_max] = np.argmax(predictions[tied_max], axis=1)
  # Equal scores at the k-th place: the starter's argpartition decides which are kept.
  ambiguous = heavy | (sorted_vals[:, k - 1] == sorted_vals[:, k])
  if np.any(ambiguous):
    fallback = np.flatnonzero(ambiguous)
    _exact_rows(predictions, k, fallback, top)
    top.next_val[fallback] = np.where(heavy[fallback], np.inf, top.next_val[fallback])
  return top


def _nonzero_positions(labels):
  """Flat positions of the nonzero labels, ascending (labels are sparse)."""
  flat_labels = labels.reshape(-1)
  if (labels.dtype.itemsize == 4 and flat_labels.size % 2 == 0 and
      flat_labels.flags.c_contiguous):
    # Test pairs of 4-byte labels as one 8-byte word, then the few nonzero pairs one by one.
    pairs = np.flatnonzero(flat_labels.view(np.uint64) != 0)
    candidates = (2 * pairs[:, None] + np.arange(2)).reshape(-1)
    return candidates[flat_labels[candidates] != 0]
  return np.flatnonzero(labels != 0)  # (flatnonzero on a bool array is the fast path)


class _LabelEntries:
  """The nonzero labels of a batch: rows, columns, values (float64)."""

  def __init__(self, labels):
    batch, num_classes = labels.shape
    self.flat = flat = _nonzero_positions(labels)
    self.rows = flat // num_classes
    self.cols = flat - self.rows * num_classes
    self.values = labels.reshape(-1)[flat].astype(np.float64)
    self.row_sums = np.bincount(self.rows, weights=self.values, minlength=batch)
    self.col_sums = np.bincount(self.cols, weights=self.values, minlength=num_classes)


def _gather(matrix, columns):
  """``matrix[i, columns[i, j]]`` for a ``[B, C]`` matrix and ``[B, J]`` column indices."""
  if matrix.flags.c_contiguous:  # flat indexing is several times faster than 2-D fancy
    flat = columns + (np.arange(matrix.shape[0]) * matrix.shape[1])[:, None]
    return matrix.reshape(-1)[flat]
  return np.take_along_axis(matrix, columns, axis=1)


def _starter_precision(predictions, labels, rows, num_labels):
  """PERR of ``rows`` (all with ``num_labels`` labels) exactly as the starter computes it."""
  sub = predictions[rows]
  top = np.argpartition(sub, -num_labels, axis=1)[:, -num_labels:]
  top_labels = np.take_along_axis(labels[rows], top, axis=1).astype(np.float64)
  counted = np.where(np.take_along_axis(sub, top, axis=1) > 0, top_labels, 0.0)
  return counted.sum(axis=1) / top.shape[1]


def _precision_at_equal_recall(predictions, labels, top, entries, top_labels):
  """Per-video PERR (float64 array)."""
  batch, num_classes = predictions.shape
  precision = np.zeros(batch, dtype=np.float64)
  if batch == 0:
    return precision
  k = top.cols.shape[1]
  num_labels = np.trunc(entries.row_sums).astype(np.int64)  # the starter's int(sum(labels))

  # No labels: the starter's slice [-0:] takes every class.
  unlabeled = num_labels == 0
  if np.any(unlabeled):
    in_row = unlabeled[entries.rows]
    scores = predictions.reshape(-1)[entries.flat[in_row]]
    sums = np.bincount(entries.rows[in_row], weights=entries.values[in_row] * (scores > 0),
                       minlength=batch)
    precision[unlabeled] = sums[unlabeled] / num_classes

  # 1..k labels and no tie at the cut-off (or the cut-off score is <= 0): the sorted top-k.
  usable = (num_labels >= 1) & (num_labels <= k)
  rows = np.flatnonzero(usable)
  place = num_labels[rows] - 1
  cut = top.vals[rows, place].astype(np.float64)
  after = np.where(place + 1 < k, top.vals[rows, np.minimum(place + 1, k - 1)], top.next_val[rows])
  clean = (cut > after) | (cut <= 0)
  fast, slow = rows[clean], rows[~clean]
  counted = np.where(top.vals[fast] > 0, top_labels[fast], 0.0)
  precision[fast] = np.cumsum(counted, axis=1)[np.arange(fast.size), place[clean]] / (
      place[clean] + 1)

  # Everything else (ties at the cut-off, more than k labels, odd label sums): as the starter.
  others = np.concatenate([slow, np.flatnonzero(~usable & ~unlabeled)])
  for value in np.unique(num_labels[others]).tolist():
    group = others[num_labels[others] == value]
    precision[group] = _starter_precision(predictions, labels, group, value)
  return precision


def _mean(values):
  return float(np.cumsum(values)[-1] / values.size) if values.size else 0.0


class _BatchStatistics:
  """Everything EvaluationMetrics needs from one batch."""

  def __init__(self, predictions, labels, top_k, f1_threshold=None):
    predictions, labels = _check_inputs(predictions, labels)
    batch, num_classes = predictions.shape
    if (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)) or top_k <= 0:
      raise ValueError("k must be a positive integer.")
    k = min(int(top_k), num_classes)
    self.batch_size = batch
    top = _top_k(predictions, k)
    entries = _LabelEntries(labels)
    top_labels = _gather(labels, top.cols).astype(np.float64)

    hits = _gather(labels, top.argmax[:, None])[:, 0].astype(np.float64)
    self.hit_at_one = float(np.mean(hits)) if batch else 0.0
    perr = _precision_at_equal_recall(predictions, labels, top, entries, top_labels)
    self.perr = _mean(perr)

    # GAP / mAP items in the starter's push order: by class, then by video.
    classes = top.cols.reshape(-1).astype(np.int16 if num_classes < 2**15 else np.int32)
    order = np.argsort(classes, kind="stable")
    self.item_classes = classes[order]
    self.item_scores = top.vals.reshape(-1)[order]
    exact_in_float32 = labels.dtype.kind == "b" or (labels.dtype.kind in "iuf" and
                                                    labels.dtype.itemsize <= 2) or (
                                                        labels.dtype == np.float32)
    self.item_labels = top_labels.reshape(-1)[order].astype(
        np.float32 if exact_in_float32 else np.float64)  # half the memory when exact
    self.num_positives = entries.col_sums

    if f1_threshold is not None:
      self._count_f1(predictions, top, entries, f1_threshold)
      self._count_top_k(predictions, labels, top, top_labels, hits)
      # Each video predicts as many classes as it has labels: the PERR hits, summed.
      num_labels = np.trunc(entries.row_sums)
      self.equal_count_hits = float(np.sum(perr * num_labels))
      self.label_count = float(np.sum(num_labels))

  def _count_top_k(self, predictions, labels, top, top_labels, top_one_labels):
    """Label hits among each video's k best classes, for k in F1_TOP_KS.

    k = 1 is the class Hit@1 takes (the lowest index among equal maxima); deeper ties are
    broken as the top-k selection breaks them.
    """
    num_classes = predictions.shape[1]
    deepest = min(max(F1_TOP_KS), num_classes)
    if top.cols.shape[1] >= deepest:
      positive = top_labels[:, :deepest] > 0
    else:  # --top_k below 5
      positive = _gather(labels, _top_k(predictions, deepest).cols) > 0
    self.top_k_hits = {
        k: int(np.count_nonzero(top_one_labels > 0 if k == 1 else positive[:, :k]))
        for k in F1_TOP_KS}

  def _count_f1(self, predictions, top, entries, threshold):
    """Counts at ``threshold`` (score >= threshold predicts the class; label > 0 is positive).

    Micro: predicted positives, true positives, label positives. Per class: the same three
    (macro-F1). Per video: the sum of the videos' F1 (per-video F1).
    """
    batch, num_classes = predictions.shape
    positive = entries.values > 0
    scores_at_labels = predictions.reshape(-1)[entries.flat]
    hit = positive & (scores_at_labels >= threshold)
    self.true_positives = int(np.count_nonzero(hit))
    self.label_positives = int(np.count_nonzero(positive))

    if top.threshold is None:
      flat = np.flatnonzero(predictions >= threshold)
      rows, cols = flat // num_classes, flat % num_classes
    else:
      # Rows whose candidate threshold is <= the F1 threshold: all scores >= it are
      # candidates; the other rows (more than top_k scores >= it) are read in full.
      covered = top.threshold <= threshold
      chosen = covered[top.cand_rows] & (top.cand_vals >= threshold)
      rows, cols = top.cand_rows[chosen], top.cand_cols[chosen]
      rest = np.flatnonzero(~covered)
      if rest.size:
        rest_rows, rest_cols = np.nonzero(predictions[rest] >= threshold)
        rows = np.concatenate([rows, rest[rest_rows]])
        cols = np.concatenate([cols, rest_cols])
    self.predicted_positives = int(rows.size)

    self.class_true_positives = np.bincount(entries.cols[hit], minlength=num_classes)
    self.class_predicted = np.bincount(cols, minlength=num_classes)
    self.class_positives = np.bincount(entries.cols[positive], minlength=num_classes)
    video_true_positives = np.bincount(entries.rows[hit], minlength=batch)
    video_sizes = (np.bincount(rows, minlength=batch) +
                   np.bincount(entries.rows[positive], minlength=batch))
    self.video_f1_sum = float(np.sum(_f1(video_true_positives, video_sizes)))


def _f1(true_positives, predicted_plus_positives):
  """2 TP / (predicted + positives), elementwise; 0 where nothing is predicted or positive."""
  sizes = np.asarray(predicted_plus_positives, dtype=np.float64)
  return np.divide(2.0 * np.asarray(true_positives, dtype=np.float64), sizes,
                   out=np.zeros_like(sizes), where=sizes > 0)


def calculate_hit_at_one(predictions, actuals):
  """Hit@1: mean over videos of the label of the top-scored class (ties: lowest index).

  Args:
    predictions: ``[num_videos, num_classes]`` scores.
    actuals: ``[num_videos, num_classes]`` labels.

  Returns:
    A float (0 for an empty batch).
  """
  predictions, actuals = _check_inputs(predictions, actuals)
  if predictions.shape[0] == 0:
    return 0.0
  top = np.argmax(predictions, axis=1)
  return float(np.mean(actuals[np.arange(actuals.shape[0]), top].astype(np.float64)))


def calculate_precision_at_equal_recall_rate(predictions, actuals):
  """PERR: mean over videos of the precision of the top-k classes, k = the video's label count.

  Only scores > 0 count as hits; a video without labels has k = 0 and scores 0.

  Returns:
    A float (0 for an empty batch).
  """
  predictions, actuals = _check_inputs(predictions, actuals)
  batch, num_classes = predictions.shape
  if batch == 0:
    return 0.0
  entries = _LabelEntries(actuals)
  k = int(min(max(np.max(np.trunc(entries.row_sums)), 1), num_classes, _GROUPS // 2))
  top = _top_k(predictions, k)
  top_labels = _gather(actuals, top.cols).astype(np.float64)
  return _mean(_precision_at_equal_recall(predictions, actuals, top, entries, top_labels))


def top_k_by_class(predictions, labels, k=20):
  """Each video's top-k ``(score, label)`` regrouped by class (the starter's format).

  Args:
    predictions: ``[num_videos, num_classes]`` scores.
    labels: ``[num_videos, num_classes]`` labels.
    k: classes kept per video (capped at num_classes); zero scores are kept.

  Returns:
    ``(predictions_by_class, labels_by_class, num_positives)``: two lists of ``num_classes``
    1-D arrays (items in video order) and the list of per-class label sums over the whole
    batch (positives outside the top-k included).

  Raises:
    ValueError: k <= 0 or bad shapes.
  """
  if k <= 0:
    raise ValueError("k must be a positive integer.")
  stats = _BatchStatistics(predictions, labels, k)
  labels = np.asarray(labels)
  num_classes = labels.shape[1]
  counts = np.bincount(stats.item_classes, minlength=num_classes)
  splits = np.cumsum(counts)[:-1]
  label_dtype = labels.dtype if labels.dtype.kind in "biuf" else np.float64
  return (np.split(stats.item_scores, splits),
          np.split(stats.item_labels.astype(label_dtype), splits),
          list(np.sum(labels, axis=0)))


def calculate_gap(predictions, actuals, top_k=20):
  """Global Average Precision of a batch: one AP over every video's top-k items.

  Recall counts all positive labels of the batch (also those outside the top-k).

  Returns:
    A float.
  """
  stats = _BatchStatistics(predictions, actuals, top_k)
  return _calculator_ap(stats.item_scores, stats.item_labels, None,
                        float(np.sum(stats.num_positives)))


class EvaluationMetrics:
  """Accumulates the starter's evaluation metrics over batches (plus the F1 family).

  ``accumulate`` per batch; ``get`` for the epoch: the starter's keys ``avg_hit_at_one``,
  ``avg_perr``, ``avg_loss``, ``aps`` (class APs, classes with positives only), ``gap``,
  plus ``map`` (``numpy.mean(aps)``, as the starter's epoch summary reports it; NaN when no
  class has positives), micro ``precision``, ``recall`` and ``f1`` over all (video, class)
  pairs, the other F1 candidates below, and ``num_examples``.

  F1 (``f1``, ``precision``, ``recall``): a (video, class) pair is predicted positive when
  its score is ``>= f1_threshold`` (note: ``>=``; Keras's ``Precision``/``Recall`` use
  ``>``, which differs only for scores exactly equal to the threshold) and is a true
  positive when its label is > 0. precision = TP / (TP + FP), recall = TP / (TP + FN),
  f1 = 2 TP / (2 TP + FP + FN); each 0 when its denominator is 0.

  Other F1 definitions (a paper that gives "F1" without one may mean any; docs/METRICS.md):
    ``f1_macro``: the mean over the classes with positives (those of ``aps``) of each
      class's F1 at ``f1_threshold``.
    ``f1_per_video``: the mean over videos of each video's F1 at ``f1_threshold`` (a video
      with no label and no predicted class counts 0, as scikit-learn's "samples" average).
    ``f1_top1``, ``f1_top3``, ``f1_top5``: micro-F1 when each video predicts its k
      highest-scored classes (k = 1: the class Hit@1 takes).
    ``f1_at_num_labels``: micro-F1 when each video predicts as many top classes as it has
      labels (the PERR hits, so precision = recall = F1 = sum of hits / sum of labels; the
      mean over videos of the same precision is PERR).
  """

  def __init__(self, num_class, top_k, top_n=None, *, f1_threshold=0.5, exact_ties=True):
    """Args:
      num_class: number of classes (int > 1).
      top_k: top predictions per video fed to GAP and mAP (the starter uses 20).
      top_n: None, or each class's AP only keeps its top_n scores (eval.py: None).
      f1_threshold: score threshold for precision/recall/F1.
      exact_ties: GAP and class APs order equal scores exactly as the starter (default).
        False ranks non-positives first among equal scores: faster (the starter's heap and
        shuffle order of tied items is not computed), but GAP/APs may then differ from the
        starter's in the last digits when positives and non-positives share a score (see
        AveragePrecisionCalculator).

    Raises:
      ValueError: num_class is not an int > 1 or top_k is not a positive int.
    """
    if (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)) or top_k <= 0:
      raise ValueError("top_k must be a positive integer.")
    self.map_calculator = MeanAveragePrecisionCalculator(num_class, top_n=top_n,
                                                         exact_ties=exact_ties)
    self.global_ap_calculator = AveragePrecisionCalculator(exact_ties=exact_ties)
    self.num_class = int(num_class)
    self.top_k = int(top_k)
    self.top_n = top_n
    self.f1_threshold = float(f1_threshold)
    self.clear()

  def accumulate(self, predictions, labels, loss):
    """Adds a batch.

    Args:
      predictions: ``[batch, num_class]`` scores.
      labels: ``[batch, num_class]`` labels.
      loss: the batch loss (a scalar, or per-example values: their mean is used).

    Returns:
      ``{"hit_at_one", "perr", "loss"}`` of this batch.
    """
    if np.shape(predictions)[-1:] != (self.num_class,):
      raise ValueError(f"predictions must have {self.num_class} classes, got shape "
                       f"{np.shape(predictions)}.")
    stats = _BatchStatistics(predictions, labels, self.top_k, self.f1_threshold)
    mean_loss = float(np.mean(loss))
    batch = stats.batch_size
    self.map_calculator._accumulate_arrays(  # pylint: disable=protected-access
        stats.item_classes, stats.item_scores, stats.item_labels, stats.num_positives)
    self.global_ap_calculator._store.add(  # pylint: disable=protected-access
        np.zeros(stats.item_scores.size, dtype=np.int8), stats.item_scores, stats.item_labels,
        np.array([float(np.sum(stats.num_positives))]))
    self.num_examples += batch
    self.sum_hit_at_one += stats.hit_at_one * batch
    self.sum_perr += stats.perr * batch
    self.sum_loss += mean_loss * batch
    self.true_positives += stats.true_positives
    self.predicted_positives += stats.predicted_positives
    self.label_positives += stats.label_positives
    self.class_true_positives += stats.class_true_positives
    self.class_predicted += stats.class_predicted
    self.class_positives += stats.class_positives
    self.video_f1_sum += stats.video_f1_sum
    for k, hits in stats.top_k_hits.items():
      self.top_k_hits[k] += hits
    self.equal_count_hits += stats.equal_count_hits
    self.label_count += stats.label_count
    return {"hit_at_one": stats.hit_at_one, "perr": stats.perr, "loss": mean_loss}

  def get(self):
    """The epoch's metrics (see the class docstring).

    Raises:
      ValueError: nothing was accumulated.
    """
    if self.num_examples <= 0:
      raise ValueError("total_sample must be positive.")
    aps = self.map_calculator.peek_map_at_n()
    gap = self.global_ap_calculator.peek_ap_at_n()
    tp = self.true_positives
    fp = self.predicted_positives - tp
    fn = self.label_positives - tp
    with_positives = self.class_positives > 0
    class_f1 = _f1(self.class_true_positives[with_positives],
                   self.class_predicted[with_positives] + self.class_positives[with_positives])
    top_k_f1 = {
        f"f1_top{k}": float(_f1(hits, self.num_examples * min(k, self.num_class) +
                                self.label_positives))
        for k, hits in self.top_k_hits.items()}
    return {
        "avg_hit_at_one": self.sum_hit_at_one / self.num_examples,
        "avg_perr": self.sum_perr / self.num_examples,
        "avg_loss": self.sum_loss / self.num_examples,
        "aps": aps,
        "gap": gap,
        "map": float(np.mean(aps)) if aps else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "f1_macro": float(np.mean(class_f1)) if class_f1.size else 0.0,
        "f1_per_video": self.video_f1_sum / self.num_examples,
        **top_k_f1,
        "f1_at_num_labels": (self.equal_count_hits / self.label_count
                             if self.label_count else 0.0),
        "num_examples": self.num_examples,
    }

  def clear(self):
    """Forgets everything accumulated."""
    self.sum_hit_at_one = 0.0
    self.sum_perr = 0.0
    self.sum_loss = 0.0
    self.num_examples = 0
    self.true_positives = 0
    self.predicted_positives = 0
    self.label_positives = 0
    self.class_true_positives = np.zeros(self.num_class, dtype=np.int64)
    self.class_predicted = np.zeros(self.num_class, dtype=np.int64)
    self.class_positives = np.zeros(self.num_class, dtype=np.int64)
    self.video_f1_sum = 0.0
    self.top_k_hits = dict.fromkeys(F1_TOP_KS, 0)
    self.equal_count_hits = 0.0
    self.label_count = 0.0
    self.map_calculator.clear()
    self.global_ap_calculator.clear()
