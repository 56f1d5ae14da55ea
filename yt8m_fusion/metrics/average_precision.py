"""Average precision with the YouTube-8M starter's semantics, computed with numpy.

``AveragePrecisionCalculator`` and ``MeanAveragePrecisionCalculator`` have the starter's
names, arguments and results, but keep the accumulated ``(score, label)`` pairs in numpy
arrays and compute AP with a sort and cumulative sums instead of a Python heap and loop.

The starter's AP is non-interpolated: with the list sorted by descending score,
``AP = sum over the first r = min(len, n) items that are positive (label > 0) of
(positives so far / rank) / numpos``, where ``numpos`` is the accumulated positive count (all
positives, also those that never reached the list), capped at ``n`` when ``n`` is set, and AP
is 0 when ``numpos`` is 0 or nothing was accumulated.

Tie-breaking is reproduced exactly. Among equal scores the starter orders items by their
position in its heap list after a ``random.seed(0)`` / ``random.sample`` shuffle and a stable
sort. Only runs of equal scores that mix positive and non-positive labels make the order
matter; when a calculator has such a run inside its first ``n`` items, this module finds
where the tied items sit in the starter's heap list and where the seed-0 shuffle moves them
(``_starter_order``, checked against ``heapq`` and ``random.Random(0).sample`` of the running
Python), and orders the run that way. Without ``top_n`` (nothing is ever popped, as in the
starter's eval.py) the tied items' heap positions are computed directly from the push
sequence (``_starter_order.heap_positions``; its time is in docs/PERFORMANCE.md); with
``top_n`` the heap list is rebuilt with ``heapq`` on integer keys ordered like the
``(score, label)`` tuples, pops included. Otherwise the plain sort is already exact. So
results equal the starter's also with ties; that cost is only paid by calculators with mixed
ties. ``exact_ties=False`` skips it and ranks non-positives first inside such runs
(deterministic and pessimistic: the AP can only be lower, by the effect of the tie order
alone). Python's global random state is left alone (the starter reseeds it with 0 as a side
effect). Scores equal as floats are ties
(``-0.0 == 0.0``); NaN scores are not supported.

Arithmetic is float64 throughout, in the starter's order (each term is
``positives / rank * (1 / numpos)``, summed left to right), so values are bit-identical to the
starter run under NumPy 1.x. (Under NumPy 2 the verbatim starter code adds ``numpy.float32``
positive counts and computes some AP terms in float32 when labels are float32.)
"""

import numbers

import numpy as np

from yt8m_fusion.metrics import _starter_order

__all__ = ["AveragePrecisionCalculator", "MeanAveragePrecisionCalculator"]


# --------------------------------------------------------------------------------------
# Array helpers
# --------------------------------------------------------------------------------------


def _score_dtype(dtype):
  """float32 for float16/32 and bfloat16 scores (exact), float64 for everything else."""
  dtype = np.dtype(dtype)
  if dtype == np.float32 or dtype.name in ("float16", "bfloat16"):
    return np.dtype(np.float32)
  return np.dtype(np.float64)


def _as_scores(values):
  """Scores as a 1-D float32 or float64 array (see ``_score_dtype``), values unchanged."""
  array = np.asarray(values)
  return array.astype(_score_dtype(array.dtype), copy=False).reshape(-1)


def _as_actuals(values):
  return np.asarray(values).astype(np.float64, copy=False).reshape(-1)


def _score_keys(scores):
  """uint32 sort keys: ascending key = descending score, equal scores = equal keys.

  float32 scores map bit-wise (``-0.0`` and ``0.0`` share a key); float64 scores are ranked.
  """
  if scores.dtype == np.float32:
    bits = (scores + np.float32(0)).view(np.uint32)  # a copy; -0.0 becomes 0.0
    negative = bits >= np.uint32(0x80000000)
    # Ascending order of the scores is ~bits for negatives and bits | sign for the others;
    # the complement of that is the descending order.
    np.invert(bits, out=bits, where=~negative)
    bits &= np.uint32(0x7FFFFFFF)
    bits[negative] |= np.uint32(0x80000000)
    return bits
  bits = (scores.astype(np.float64, copy=False) + 0.0).view(np.uint64)
  ascending = np.where(bits >> np.uint64(63) == 1, ~bits, bits | np.uint64(0x8000000000000000))
  return np.unique(~ascending, return_inverse=True)[1].reshape(-1).astype(np.uint32)


def _packed_sort(keys, positive, groups=None):
  """Sorted uint64 words ``group << 33 | key << 1 | positive``.

  Items of one group with equal scores form a run of words that differ at most in bit 0;
  within a run non-positives come first.
  """
  words = keys.astype(np.uint64)
  words <<= np.uint64(1)
  words |= positive
  if groups is not None:
    high = groups.astype(np.uint64)
    high <<= np.uint64(33)
    words |= high
    del high
  words.sort()
  return words


def _positive_bits(words):
  return (words & np.uint64(1)).astype(bool)


def _mixed_runs(words, limit):
  """Runs of equal scores (in ``_packed_sort`` words) that mix positives and non-positives.

  Args:
    words: sorted words from ``_packed_sort``.
    limit: only runs starting before this position count: an int, or a function from run
      start positions to their limits.

  Returns:
    None, or (start, end) position arrays of the runs.
  """
  pairs = np.flatnonzero((words[1:] ^ words[:-1]) == 1)
  if pairs.size == 0:
    return None
  starts = np.unique(np.searchsorted(words, words[pairs], side="left"))
  keep = starts < (limit(starts) if callable(limit) else limit)
  if not np.any(keep):
    return None
  starts = starts[keep]
  return starts, np.searchsorted(words, words[starts] | np.uint64(1), side="right")


class _TupleKeys:
  """Numbers ordered like the starter's ``(score, label)`` heap tuples.

  Built from the uint32 score keys: ``key = score_rank * levels + label_rank`` with
  ``score_rank = ~score_key`` (ascending scores), so ``key // levels`` orders the scores;
  ``label_values[label_rank]`` gives the labels. The keys are below ``2**32 * levels``, so
  they are exact as float64 (Python floats are the quickest items for ``heapq``) unless there
  are more than 2**21 distinct label values.
  """

  def __init__(self, score_keys, actuals, for_heapq=True):
    if np.all((actuals == 0) | (actuals == 1)):
      self.levels, label_rank = 2, actuals
      self.label_values = np.array([0.0, 1.0])
    else:
      self.label_values, label_rank = np.unique(actuals, return_inverse=True)
      self.levels = len(self.label_values)
    self.as_float = for_heapq and self.levels <= 2**21
    self.dtype = dtype = np.dtype(np.float64 if self.as_float else np.int64)
    self.keys = (~score_keys).astype(dtype)
    self.keys *= self.levels
    self.keys += label_rank.reshape(-1).astype(dtype, copy=False)

  def decode(self, items):
    """(uint32 score keys, positive flags) of heap items (a list of keys)."""
    keys = np.fromiter(items, dtype=self.dtype, count=len(items)).astype(np.int64, copy=False)
    if self.levels == 2:  # shifts: much faster than division
      return ~(keys >> 1).astype(np.uint32), (keys & 1).astype(bool)
    label_rank = keys % self.levels
    score_keys = ~(keys // self.levels).astype(np.uint32)
    return score_keys, self.label_values[label_rank] > 0


def _run_members(list_keys, run_keys):
  """Positions in a list of the items whose score key is one of ``run_keys`` (sorted).

  Returns (positions ascending, index of each item's run). A 2**20-entry table of the keys'
  low bits filters the list first, so only a few percent of it is searched.
  """
  low_bits = np.uint32((1 << 20) - 1)
  table = np.zeros(1 << 20, dtype=bool)
  table[run_keys & low_bits] = True
  candidates = np.flatnonzero(table[list_keys & low_bits])
  candidate_keys = list_keys[candidates]
  run_index = np.minimum(np.searchsorted(run_keys, candidate_keys), run_keys.size - 1)
  hit = run_keys[run_index] == candidate_keys
  return candidates[hit], run_index[hit]


def _ranges(starts, ends):
  """Concatenated ``arange(start, end)`` for each pair."""
  lengths = ends - starts
  offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
  return np.arange(lengths.sum()) + offsets


def _sum_ap_terms(ranks, numpos):
  """Starter AP from the 0-based ranks (ascending) of the counted positive items."""
  if ranks.size == 0:
    return 0.0
  terms = np.arange(1, ranks.size + 1, dtype=np.float64) / (ranks + 1) * (1.0 / numpos)
  return float(np.cumsum(terms)[-1])  # left to right, like the starter's loop


def _numpos(actuals, total_num_positives, n):
  if total_num_positives is None:
    numpos = float(np.count_nonzero(actuals > 0))
  else:
    numpos = float(total_num_positives)
  if numpos == 0:
    return 0.0
  return min(numpos, n) if n is not None else numpos


def _ap_from_keys(keys, positive, limit, numpos, words=None, runs=None):
  """The starter's ``ap_at_n`` of a list given as uint32 score keys and positive flags.

  The starter shuffles the list with the seed-0 permutation, then sorts stably by score: in
  runs of equal scores that mix positives and non-positives the shuffled order is rebuilt.
  ``words`` / ``runs``: ``_packed_sort`` / ``_mixed_runs`` results when already known.
  """
  if words is None:
    words = _packed_sort(keys, positive)
    runs = _mixed_runs(words, limit)
  if runs is None:
    return _sum_ap_terms(np.flatnonzero(_positive_bits(words)[:limit]), numpos)
  members, run_index = _run_members(keys, _run_keys(words, runs))
  return _ap_in_starter_order(words, runs, positive[members], run_index, members, keys.size,
                              limit, numpos)


def _run_keys(words, runs):
  """The uint32 score keys of the runs (ascending, like the runs)."""
  return (words[runs[0]] >> np.uint64(1)).astype(np.uint32)


def _ap_in_starter_order(words, runs, member_positive, run_index, list_positions, list_size,
                         limit, numpos):
  """AP with the tied items of ``runs`` in the starter's order.

  ``member_positive`` / ``run_index`` / ``list_positions``: each tied item's positive flag,
  run and position in the list the starter shuffles (of ``list_size`` items).
  """
  positive_sorted = _positive_bits(words)
  shuffled = _starter_order.shuffled_positions(list_size, list_positions)
  # Each run's items in the starter's order (by shuffled position), runs one after another:
  # the same places as the runs' sorted ranges.
  rearranged = np.lexsort((shuffled, run_index))
  positive_sorted[_ranges(*runs)] = member_positive[rearranged]
  return _sum_ap_terms(np.flatnonzero(positive_sorted[:limit]), numpos)


def _ap_of_list(scores, actuals, n=None, total_num_positives=None):
  """The starter's ``ap_at_n`` on lists in the given order (seed-0 shuffle included)."""
  numpos = _numpos(actuals, total_num_positives, n)
  if numpos == 0 or scores.size == 0:
    return 0.0
  limit = scores.size if n is None else min(scores.size, n)
  return _ap_from_keys(_score_keys(scores), actuals > 0, limit, numpos)


def _calculator_ap(scores, actuals, top_n, total_num_positives, exact_ties=True):
  """``peek_ap_at_n`` of a starter calculator fed ``scores``/``actuals`` in this order.

  With ``exact_ties=False`` equal scores are ranked non-positives first instead.
  """
  size = scores.size
  numpos = _numpos(actuals, total_num_positives, top_n)
  if numpos == 0 or size == 0:
    return 0.0
  limit = size if top_n is None else min(size, top_n)
  keys = _score_keys(scores)
  positive = actuals > 0
  words = _packed_sort(keys, positive)
  runs = _mixed_runs(words, limit)
  if runs is None or not exact_ties:
    # Without mixed ties the kept items' positive flags in score order do not depend on the
    # tie order (otherwise: non-positives first, as the words are sorted).
    return _sum_ap_terms(np.flatnonzero(words[:limit] & np.uint64(1)), numpos)
  if top_n is None or size <= top_n:
    # Nothing is ever popped: find where the tied items sit in the starter's heap list
    # directly (no replay of the other pushes), then apply its shuffle + stable sort.
    members, run_index = _run_members(keys, _run_keys(words, runs))
    tuple_keys = _TupleKeys(keys, actuals, for_heapq=False).keys
    heap_positions = _starter_order.heap_positions(tuple_keys, members)
    del tuple_keys
    return _ap_in_starter_order(words, runs, positive[members], run_index, heap_positions,
                                size, limit, numpos)
  # With pops (top_n): rebuild the starter's heap list with heapq, then shuffle + sort.
  tuple_keys = _TupleKeys(keys, actuals)
  key_list = tuple_keys.keys.tolist()
  del tuple_keys.keys
  heap = _starter_order.heap_layout(key_list, top_n, tuple_keys.levels)
  del key_list
  heap_keys, heap_positive = tuple_keys.decode(heap)
  del heap
  return _ap_from_keys(heap_keys, heap_positive, min(heap_keys.size, limit), numpos)


def _grouped_aps(groups, scores, actuals, num_groups, totals, top_n, exact_ties=True):
  """APs of ``num_groups`` starter calculators at once.

  ``groups[i]`` says which calculator item ``i`` was pushed to; items are in push order.
  ``totals`` are the calculators' accumulated positive counts. ``exact_ties``: see
  ``_calculator_ap``.
  """
  aps = np.zeros(num_groups, dtype=np.float64)
  size = scores.size
  if size == 0:
    return aps
  totals = np.asarray(totals, dtype=np.float64)
  numpos = totals if top_n is None else np.minimum(totals, top_n)
  words = _packed_sort(_score_keys(scores), actuals > 0, groups)
  sorted_groups = (words >> np.uint64(33)).astype(np.int32)
  counts = np.bincount(groups, minlength=num_groups)
  starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
  limits = counts if top_n is None else np.minimum(counts, top_n)
  counted = np.flatnonzero(words & np.uint64(1))  # positives, by group then score
  counted_groups = sorted_groups[counted]
  ranks = counted - starts[counted_groups]  # 0-based rank inside the group
  if top_n is not None:
    inside = ranks < limits[counted_groups]
    counted, counted_groups, ranks = counted[inside], counted_groups[inside], ranks[inside]
  first = np.concatenate([[0], np.cumsum(np.bincount(counted_groups, minlength=num_groups))[:-1]])
  positives_so_far = np.arange(1, counted.size + 1) - first[counted_groups]
  with np.errstate(divide="ignore", invalid="ignore"):
    delta = 1.0 / numpos
    terms = positives_so_far / (ranks + 1) * delta[counted_groups]
  aps[:] = np.bincount(counted_groups, weights=terms, minlength=num_groups)
  aps[(numpos == 0) | (counts == 0)] = 0.0

  # Calculators whose ties mix positives and negatives: redo them exactly.
  if not exact_ties:
    return aps
  group_end = starts + limits
  runs = _mixed_runs(words, lambda positions: group_end[sorted_groups[positions]])
  if runs is not None:
    redo = np.unique(sorted_groups[runs[0]])
    redo = redo[numpos[redo] > 0]
    if redo.size:
      # A few classes: find their items directly (a stable argsort of all items costs more).
      push_order = np.argsort(groups, kind="stable") if redo.size > 8 else None
      for group in redo.tolist():
        if push_order is None:
          members = np.flatnonzero(groups == group)
        else:
          members = push_order[starts[group]:starts[group] + counts[group]]
        aps[group] = _calculator_ap(scores[members], actuals[members], top_n, totals[group])
  return aps


def _validate_top_n(top_n):
  if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, numbers.Integral)
                            or top_n <= 0):
    raise ValueError("top_n must be a positive integer or None.")
  return None if top_n is None else int(top_n)


def _validate_num_positives(num_positives):
  if num_positives is not None and (not isinstance(num_positives, numbers.Number) or
                                    num_positives < 0):
    raise ValueError("'num_positives' was provided but it was a negative number.")


class _PushStore:
  """Accumulated pushes (group, score, label), in order, with pruning for capped heaps.

  With ``top_n`` set, an item whose score is not above the ``top_n``-th largest score
  already pushed to its calculator would be rejected by the starter's heap without changing
  it, so it is dropped on arrival; everything else is kept (also items the heap pops later,
  because they shape the heap's layout, which decides tie order).
  """

  def __init__(self, num_groups, top_n):
    self.num_groups = num_groups
    self.top_n = top_n
    self.clear()

  def clear(self):
    self._chunks = []
    self.size = 0
    self.counts = np.zeros(self.num_groups, dtype=np.int64)
    self.totals = np.zeros(self.num_groups, dtype=np.float64)
    self._threshold = None
    self._size_at_threshold = 0

  def add(self, groups, scores, actuals, totals):
    self.totals += totals
    if scores.size == 0:
      return
    if self.top_n is not None:
      if self._threshold is not None:
        keep = scores > self._threshold[groups]
        groups, scores, actuals = groups[keep], scores[keep], actuals[keep]
    self._chunks.append((groups, scores, actuals))
    self.size += scores.size
    self.counts += np.bincount(groups, minlength=self.num_groups)
    if self.top_n is not None and self.size >= 2 * max(self._size_at_threshold, 4096):
      self._update_threshold()

  def _update_threshold(self):
    groups, scores, _ = self.arrays()
    threshold = np.full(self.num_groups, -np.inf)
    full = self.counts >= self.top_n
    if np.any(full):
      order = np.lexsort((-scores.astype(np.float64), groups))
      starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
      threshold[full] = scores[order[starts[full] + self.top_n - 1]]
    self._threshold = threshold
    self._size_at_threshold = self.size

  def arrays(self):
    if not self._chunks:
      return (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32),
              np.zeros(0, dtype=np.float64))
    if len(self._chunks) > 1:
      self._chunks = [tuple(np.concatenate(parts) for parts in zip(*self._chunks))]
    return self._chunks[0]


class AveragePrecisionCalculator:
  """The starter's AP calculator (``average_precision_calculator.py``), vectorized.

  ``accumulate`` may be called many times; ``peek_ap_at_n`` returns the non-interpolated AP
  of everything accumulated (of the ``top_n`` highest scores when ``top_n`` is set).
  """

  def __init__(self, top_n=None, *, exact_ties=True):
    """Args:
      top_n: None, or keep only the ``top_n`` highest scores (a positive int).
      exact_ties: order equal scores exactly as the starter does (its heap list after the
        seed-0 shuffle). False ranks non-positives first among equal scores, which skips
        locating tied items in the starter's heap list and shuffle (measured cost in
        docs/PERFORMANCE.md) when positives and non-positives share a score; the AP then
        differs from the starter's only through the order of such ties (in the last digits
        on large, realistic data).
    """
    self._top_n = _validate_top_n(top_n)
    self._exact_ties = bool(exact_ties)
    self._store = _PushStore(1, self._top_n)

  @property
  def heap_size(self):
    """Number of items the starter's heap would hold."""
    size = int(self._store.counts[0])
    return size if self._top_n is None else min(size, self._top_n)

  @property
  def num_accumulated_positives(self):
    """Accumulated positive count (``num_positives`` given, else labels > 1e-5)."""
    return float(self._store.totals[0])

  def accumulate(self, predictions, actuals, num_positives=None):
    """Adds scores and labels (1-D sequences of equal length).

    Args:
      predictions: scores (higher = more confident).
      actuals: labels; > 0 counts as positive.
      num_positives: positives to add to the total (for recall); default: the number of
        ``actuals`` above 1e-5.

    Raises:
      ValueError: lengths differ or num_positives is negative / not a number.
    """
    if len(predictions) != len(actuals):
      raise ValueError("the shape of predictions and actuals does not match.")
    _validate_num_positives(num_positives)
    scores = _as_scores(predictions)
    labels = _as_actuals(actuals)
    if num_positives is None:
      num_positives = np.count_nonzero(labels > 1e-5)
    self._store.add(np.zeros(scores.size, dtype=np.int8), scores, labels,
                    np.array([float(num_positives)]))

  def clear(self):
    """Forgets everything accumulated."""
    self._store.clear()

  def peek_ap_at_n(self):
    """The AP of what was accumulated (at ``top_n`` if set); 0 when empty."""
    if self._store.size == 0:
      return 0.0
    _, scores, labels = self._store.arrays()
    return _calculator_ap(scores, labels, self._top_n, self._store.totals[0], self._exact_ties)

  @staticmethod
  def ap(predictions, actuals):
    """Non-interpolated AP of a list (all of it, positives counted from ``actuals``)."""
    return AveragePrecisionCalculator.ap_at_n(predictions, actuals, n=None)

  @staticmethod
  def ap_at_n(predictions, actuals, n=20, total_num_positives=None):
    """Non-interpolated AP of the ``n`` highest-scored items of a list.

    Args:
      predictions: scores.
      actuals: labels; > 0 counts as positive.
      n: None (the whole list) or a positive int; the positive count is capped at ``n``.
      total_num_positives: positives for recall; default: labels > 0 in ``actuals``.

    Raises:
      ValueError: lengths differ, or ``n`` is not None / a positive int.
    """
    if len(predictions) != len(actuals):
      raise ValueError("the shape of predictions and actuals does not match.")
    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0):
      raise ValueError("n must be 'None' or a positive integer.")
    return _ap_of_list(_as_scores(predictions), _as_actuals(actuals),
                       None if n is None else int(n), total_num_positives)

  @staticmethod
  def _zero_one_normalize(predictions, epsilon=1e-7):
    """Rescales to [0, 1] by the min and max: ``(x - min) / max(max - min, epsilon)``."""
    predictions = np.asarray(predictions, dtype=np.float64)
    low = np.min(predictions)
    return (predictions - low) / max(np.max(predictions) - low, epsilon)


class MeanAveragePrecisionCalculator:
  """The starter's per-class AP calculator (``mean_average_precision_calculator.py``).

  One AP per class; ``peek_map_at_n`` returns the list of class APs (only classes with
  accumulated positives when ``filter_empty_classes``, as in the starter). The starter's
  epoch summary reports ``numpy.mean`` of that list as MAP.
  """

  def __init__(self, num_class, filter_empty_classes=True, top_n=None, *, exact_ties=True):
    """Args:
      num_class: number of classes, an int > 1.
      filter_empty_classes: leave out classes without positives.
      top_n: None, or each class keeps its ``top_n`` highest scores.
      exact_ties: see ``AveragePrecisionCalculator``.

    Raises:
      ValueError: num_class is not an int > 1, or top_n is invalid.
    """
    if isinstance(num_class, bool) or not isinstance(num_class, numbers.Integral) or num_class <= 1:
      raise ValueError("num_class must be an integer greater than 1.")
    self._num_class = int(num_class)
    self._filter_empty_classes = filter_empty_classes
    self._top_n = _validate_top_n(top_n)
    self._exact_ties = bool(exact_ties)
    self._store = _PushStore(self._num_class, self._top_n)

  @property
  def num_class(self):
    return self._num_class

  def accumulate(self, predictions, actuals, num_positives=None):
    """Adds per-class lists (the output format of ``top_k_by_class``).

    Args:
      predictions: ``num_class`` sequences of scores.
      actuals: ``num_class`` sequences of labels, same lengths.
      num_positives: ``num_class`` positive counts (for recall); default (None or empty):
        labels above 1e-5.

    Raises:
      ValueError: wrong number of classes, lengths differ, negative num_positives.
    """
    if len(predictions) != self._num_class or len(actuals) != self._num_class:
      raise ValueError(f"predictions and actuals must have {self._num_class} class lists.")
    lengths = np.array([len(p) for p in predictions], dtype=np.int64)
    if not np.array_equal(lengths, [len(a) for a in actuals]):
      raise ValueError("the shape of predictions and actuals does not match.")
    groups = np.repeat(np.arange(self._num_class), lengths)
    scores = _as_scores(np.concatenate([_as_scores(p) for p in predictions if len(p)])
                        if lengths.sum() else np.zeros(0, np.float32))
    labels = (np.concatenate([_as_actuals(a) for a in actuals if len(a)])
              if lengths.sum() else np.zeros(0, np.float64))
    if num_positives is None or len(num_positives) == 0:
      totals = np.bincount(groups, weights=labels > 1e-5, minlength=self._num_class)
    else:
      if len(num_positives) != self._num_class:
        raise ValueError(f"num_positives must have {self._num_class} entries.")
      for value in num_positives:
        _validate_num_positives(value)
      totals = np.asarray(num_positives, dtype=np.float64)
    self._store.add(groups, scores, labels, totals)

  def _accumulate_arrays(self, classes, scores, labels, num_positives):
    """Fast path: items as arrays (class ids, scores, labels) and per-class positives."""
    self._store.add(classes, scores, labels, num_positives)

  def clear(self):
    """Forgets everything accumulated."""
    self._store.clear()

  def is_empty(self):
    """True when no class holds any item."""
    return self._store.size == 0

  def peek_ap_per_class(self):
    """AP of every class (0 for classes without positives or items), float64 array."""
    groups, scores, labels = self._store.arrays()
    return _grouped_aps(groups, scores, labels, self._num_class, self._store.totals, self._top_n,
                        self._exact_ties)

  def peek_map_at_n(self):
    """List of class APs; with ``filter_empty_classes`` only classes with positives."""
    aps = self.peek_ap_per_class()
    if self._filter_empty_classes:
      aps = aps[self._store.totals > 0]
    return aps.tolist()
