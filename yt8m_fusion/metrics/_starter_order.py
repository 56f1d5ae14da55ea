"""The order in which the starter's average precision sees tied scores, reproduced exactly.

The starter's ``AveragePrecisionCalculator`` keeps ``(score, label)`` tuples in a ``heapq``
min-heap. Before computing AP it shuffles the heap's list with ``random.seed(0)`` +
``random.sample(range(n), n)`` and then sorts it stably by descending score, so among equal
scores the order is: heap position -> seed-0 permutation. This module reproduces both steps
without touching Python's global random state:

* ``heap_layout``: the heap list after the starter's pushes (and pops when ``top_n`` is set),
  computed with ``heapq`` on integer keys that order like the ``(score, label)`` tuples;
* ``shuffled_positions(n, positions)`` / ``seed0_permutation(n)``: where
  ``random.Random(0).sample(range(n), n)`` (what the starter's ``random.seed(0);
  random.sample(...)`` returns) moves given list positions. Small ``n`` call Python's
  ``random`` directly; large ``n`` are vectorized with numpy: the Mersenne Twister stream of
  ``Random(0)`` is drawn with ``numpy.random.MT19937`` (state copied from
  ``random.Random(0)``), ``_randbelow``'s rejection sampling is solved chunk by chunk as a
  fixed point, and only the requested items are tracked through ``sample``'s pool swaps.
"""

import collections
import functools
import heapq
import random

import numpy as np

# Below this size the permutation is taken from random.Random(0).sample directly.
_PYTHON_SAMPLE_MAX = 20000
# When the remaining range of _randbelow is below this, finish with a plain loop.
_SMALL_RANGE = 4096


class _RawStream:
  """The 32-bit outputs of ``random.Random(0)``'s Mersenne Twister, as a numpy array."""

  def __init__(self, expected):
    state = random.Random(0).getstate()[1]
    self._generator = np.random.MT19937(0)
    self._generator.state = {
        "bit_generator": "MT19937",
        "state": {"key": np.asarray(state[:624], dtype=np.uint32), "pos": state[624]},
    }
    self.buffer = self._generator.random_raw(max(int(expected), 1024)).astype(np.uint32)

  def ensure(self, end):
    """Makes ``buffer`` hold at least ``end`` draws."""
    if end > self.buffer.size:
      extra = max(end - self.buffer.size, self.buffer.size // 4, 1024)
      more = self._generator.random_raw(extra).astype(np.uint32)
      self.buffer = np.concatenate([self.buffer, more])


def _randbelow_sequence(n):
  """``[rng._randbelow(n - i) for i in range(n)]`` for ``rng = random.Random(0)``.

  ``_randbelow(m)`` draws ``getrandbits(k) = raw32 >> (32 - k)`` with ``k = m.bit_length()``
  until the value is below ``m``. Within a run of equal ``k`` the accepted count before each
  draw is the fixed point of ``A = exclusive_cumsum(r < m0 - A)``; on chunks much shorter than
  ``2**k`` the iteration from the expected count converges in a few steps (an error of ``e``
  flips a decision with probability ``e / 2**k``), and the fixed point is unique (each
  iteration makes at least one more prefix position exact).
  """
  out = np.empty(n, dtype=np.int64)
  stream = _RawStream(n * 1.45 + 4096)
  ptr = 0
  i = 0
  while i < n:
    m = n - i
    if m <= _SMALL_RANGE:
      budget = 4 * m + 4096  # draws needed: about 1.4 * m
      stream.ensure(ptr + budget)
      draws = stream.buffer[ptr:ptr + budget].tolist()
      q = 0
      for step in range(i, n):
        m = n - step
        shift = 32 - m.bit_length()
        while True:
          if q >= len(draws):  # pragma: no cover - astronomically unlikely
            budget *= 2
            stream.ensure(ptr + budget)
            draws = stream.buffer[ptr:ptr + budget].tolist()
          r = draws[q] >> shift
          q += 1
          if r < m:
            break
        out[step] = r
      break
    k = m.bit_length()
    shift = 32 - k
    need = m - (1 << (k - 1)) + 1  # acceptances while m keeps this bit length
    chunk = max(256, min(1 << (k - 6), 1 << 16))
    probability = m / float(1 << k)
    guess_steps = np.arange(chunk, dtype=np.float64)
    while need > 0:
      stream.ensure(ptr + chunk)
      r = stream.buffer[ptr:ptr + chunk] >> shift
      accepted_before = (guess_steps * probability).astype(np.int64)
      fresh = np.empty(chunk, dtype=np.int64)
      fresh[0] = 0
      while True:
        accept = r < (m - accepted_before)
        np.cumsum(accept[:-1], out=fresh[1:])
        if np.array_equal(fresh, accepted_before):
          break
        accepted_before, fresh = fresh, accepted_before
      positions = np.flatnonzero(accept)
      take = min(positions.size, need)
      out[i:i + take] = r[positions[:take]]
      consumed = positions[take - 1] + 1 if take == need else chunk
      ptr += int(consumed)
      i += take
      m -= take
      need -= take
      probability = max(m, 1) / float(1 << k)
  return out


@functools.lru_cache(maxsize=2)
def _draws_by_slot(n):
  """(draws, keys): ``draws[i] = randbelow(n - i)`` and the sorted ``draws * n + step``."""
  draws = _randbelow_sequence(n)
  keys = np.sort(draws * n + np.arange(n, dtype=np.int64))
  draws.setflags(write=False)
  keys.setflags(write=False)
  return draws, keys


def _shuffled_positions_large(n, positions):
  """Tracks list items through ``random.sample``'s pool loop.

  The loop is ``result[i] = pool[j[i]]; pool[j[i]] = pool[n-1-i]`` with ``pool = range(n)``.
  An item sitting in slot ``s`` from step ``t`` on leaves at the first step ``i >= t`` with
  ``j[i] == s`` (it becomes ``result[i]``) unless step ``n-1-s`` comes first: there slot ``s``
  is the last live one and the item moves to slot ``j[n-1-s]``. Each item needs a few such
  hops (one ``searchsorted`` for all items per hop).
  """
  draws, keys = _draws_by_slot(n)
  slot = np.array(positions, dtype=np.int64)
  start = np.zeros(slot.size, dtype=np.int64)
  result = np.empty(slot.size, dtype=np.int64)
  active = np.arange(slot.size)
  while active.size:
    active = active[np.argsort(slot[active] * n + start[active])]  # sorted queries: faster
    s = slot[active]
    found = np.searchsorted(keys, s * n + start[active])
    found_key = keys[np.minimum(found, n - 1)]
    read = np.where((found < n) & (found_key // n == s), found_key % n, n)
    move = n - 1 - s
    done = read <= move
    result[active[done]] = read[done]
    moving = active[~done]
    slot[moving] = draws[move[~done]]
    start[moving] = move[~done] + 1
    active = moving
  return result


@functools.lru_cache(maxsize=8)
def _small_inverse(n):
  inverse = np.empty(n, dtype=np.int64)
  inverse[np.asarray(random.Random(0).sample(range(n), n), dtype=np.int64)] = np.arange(n)
  inverse.setflags(write=False)
  return inverse


def shuffled_positions(n, positions):
  """Where the starter's shuffle of an ``n``-list moves the items at ``positions``.

  The starter shuffles with ``random.seed(0); order = random.sample(range(n), n)`` and uses
  ``items[order]``; the item at position ``p`` ends at ``q`` with ``order[q] == p``. Returns
  ``q`` for each ``p`` (int64 array), using ``random.Random(0)`` (no global side effect).
  """
  positions = np.asarray(positions, dtype=np.int64)
  if n <= _PYTHON_SAMPLE_MAX:
    return _small_inverse(int(n))[positions]
  if n >= 2**31:  # beyond the one-word getrandbits draws emulated here
    inverse = np.empty(n, dtype=np.int64)
    inverse[seed0_permutation(n)] = np.arange(n)
    return inverse[positions]
  return _shuffled_positions_large(int(n), positions)


def clear_caches():
  """Forgets the cached shuffle draws (for benchmarks that time cold runs)."""
  _draws_by_slot.cache_clear()
  _small_inverse.cache_clear()


def seed0_permutation(n):
  """``random.Random(0).sample(range(n), n)`` as an int64 array (the starter's shuffle order)."""
  n = int(n)
  return np.asarray(random.Random(0).sample(range(max(n, 0)), max(n, 0)), dtype=np.int64)


def heap_layout(keys, top_n=None, label_levels=1):
  """The list of a starter heap after pushing ``keys`` in order.

  Args:
    keys: numbers (integer-valued) ordered like the starter's ``(score, label)`` tuples,
      with ``key // label_levels`` ordered like the scores alone.
    top_n: None (push everything) or the heap capacity: when full, an element replaces the
      smallest (``heappop`` then ``heappush``) only if its score is strictly larger.
    label_levels: see ``keys``.

  Returns:
    The heap as a list of keys.
  """
  heap = []
  if top_n is None or len(keys) <= top_n:
    collections.deque(map(functools.partial(heapq.heappush, heap), keys), maxlen=0)
    return heap
  push, pop = heapq.heappush, heapq.heappop
  for key in keys[:top_n]:
    push(heap, key)
  for key in keys[top_n:]:
    if key // label_levels > heap[0] // label_levels:
      pop(heap)
      push(heap, key)
  return heap


# --------------------------------------------------------------------------------------
# Where pushed items end up in a heapq list, without replaying the heap.
# --------------------------------------------------------------------------------------
#
# In a heap filled only by heappush (the starter's AP calculator without top_n), push t
# appends the item at index t and moves it up past every ancestor it is strictly smaller
# than. Three facts make single items traceable:
#   * the value at a node only decreases over time (a push moves values down a path);
#   * node a first holds a value <= k at T_a(k) = the first push s in a's subtree with
#     s > T_parent(a)(k) and key_s <= k (T_root(k) = the first push with key <= k);
#   * an item with key k sitting at node p moves to p's child towards s at the first later
#     push s in p's subtree with key_s < k, and otherwise never moves.
# So the item pushed at tau with key k settles at the first node a on the path from the
# root to tau with T_a(k) == tau, then follows those later pushes down. Each step asks for
# the first index after some time in a subtree whose key is below a bound: subtree levels are
# contiguous index ranges, answered with a block-minimum sparse table (vectorized over all
# the items asked about). Identical keys are interchangeable (same score and label).

_BLOCK = 16
_WINDOW = 4


def _floor_log2(values):
  """floor(log2(v)) for positive integers below 2**53 (exact, via frexp)."""
  return np.frexp(np.asarray(values, dtype=np.float64))[1].astype(np.int64) - 1


class _FirstBelow:
  """``first(lo, hi, bound)``: the smallest i in [lo, hi] with keys[i] < bound, else -1."""

  def __init__(self, keys):
    self.keys = keys
    self.size = size = keys.size
    blocks = -(-size // _BLOCK)
    full = size // _BLOCK
    levels = max(int(blocks).bit_length(), 1)
    # table[j, b] = min of blocks b .. b + 2**j - 1 (a sparse table over the block minima).
    self.table = np.full((levels, blocks), np.iinfo(np.int64).max, dtype=np.int64)
    self.table[0, :full] = keys[:full * _BLOCK].reshape(full, _BLOCK).min(axis=1)
    if full < blocks:
      self.table[0, full] = keys[full * _BLOCK:].min()
    for level in range(1, levels):
      width = 1 << (level - 1)
      np.minimum(self.table[level - 1, :blocks - width], self.table[level - 1, width:],
                 out=self.table[level, :blocks - width])
    self._offsets = np.arange(_BLOCK)
    self._window = np.arange(_WINDOW)

  def _range_min(self, first, last):
    """Minimum key over blocks first..last (first <= last)."""
    level = _floor_log2(last - first + 1)
    return np.minimum(self.table[level, first], self.table[level, last - (1 << level) + 1])

  def _scan(self, block, start, stop, bound):
    """First index of `block` within [start, stop] whose key is below bound, else -1."""
    cells = block[:, None] * _BLOCK + self._offsets
    hit = ((self.keys[np.minimum(cells, self.size - 1)] < bound[:, None])
           & (cells >= start[:, None]) & (cells <= stop[:, None]))
    column = hit.argmax(axis=1)
    rows = np.arange(cells.shape[0])
    return np.where(hit[rows, column], cells[rows, column], -1)

  def __call__(self, lo, hi, bound):
    # The first _WINDOW indices of every range, gathered at once: usually enough.
    cells = lo[:, None] + self._window
    hit = (self.keys[np.minimum(cells, self.size - 1)] < bound[:, None]) & (cells <= hi[:, None])
    column = hit.argmax(axis=1)
    found = hit[np.arange(lo.size), column]
    result = np.where(found, lo + column, -1)
    rest = np.flatnonzero(~found & (lo + _WINDOW <= hi))
    if rest.size == 0:
      return result
    lo, hi, bound = lo[rest] + _WINDOW, hi[rest], bound[rest]
    answer = np.full(rest.size, -1, dtype=np.int64)
    open_ = lo <= hi
    lo_block, hi_block = lo // _BLOCK, hi // _BLOCK
    rows = np.flatnonzero(open_)
    answer[rows] = self._scan(lo_block[rows], lo[rows], hi[rows], bound[rows])
    # Whole blocks between lo's and hi's: binary search for the first with a key below.
    rows = np.flatnonzero(open_ & (answer < 0) & (hi_block - lo_block >= 2))
    if rows.size:
      first, last = lo_block[rows] + 1, hi_block[rows] - 1
      some = self._range_min(first, last) < bound[rows]
      rows, first, last = rows[some], first[some], last[some]
      while True:
        wide = last > first
        if not np.any(wide):
          break
        half = (last - first + 1) // 2
        left = np.where(wide, first + np.maximum(half, 1) - 1, first)
        in_left = self._range_min(first, left) < bound[rows]
        last = np.where(wide & in_left, left, last)
        first = np.where(wide & ~in_left, left + 1, first)
      answer[rows] = self._scan(first, first * _BLOCK, first * _BLOCK + _BLOCK - 1,
                                bound[rows])
    rows = np.flatnonzero(open_ & (answer < 0) & (hi_block > lo_block))
    answer[rows] = self._scan(hi_block[rows], hi_block[rows] * _BLOCK, hi[rows], bound[rows])
    result[rest] = answer
    return result


def _first_in_subtree_after(first_below, node, time, bound):
  """The first push s > time in node's subtree with key_s < bound, else -1 (vectorized)."""
  size = first_below.size
  # Level j of node's subtree holds indices (node+1)*2**j - 1 .. (node+2)*2**j - 2; start at
  # the first level that reaches past `time`: the smallest j with (node+2)*2**j >= time+3.
  ratio = -(-(time + 3) // (node + 2))
  level = np.where(ratio <= 1, 0, _floor_log2(np.maximum(ratio - 1, 1)) + 1)
  result = np.full(node.size, -1, dtype=np.int64)
  active = np.arange(node.size)
  while active.size:
    n, j = node[active], level[active]
    start = ((n + 1) << j) - 1
    exists = start < size
    active, n, j, start = active[exists], n[exists], j[exists], start[exists]
    if not active.size:
      break
    end = np.minimum(((n + 2) << j) - 2, size - 1)
    found = first_below(np.maximum(start, time[active] + 1), end, bound[active])
    result[active[found >= 0]] = found[found >= 0]
    active = active[found < 0]
    level[active] += 1
  return result


def heap_positions(keys, pushes):
  """Where heapq.heappush of ``keys`` (in order) leaves the items pushed at ``pushes``.

  Args:
    keys: int64 array, the pushed keys in push order (compared as numbers).
    pushes: int64 array of push indices to locate.

  Returns:
    int64 array: each item's index in the final heap list. Items with identical keys are
    interchangeable: their positions are those of heapq's as a set.
  """
  keys = np.asarray(keys, dtype=np.int64)
  pushes = np.asarray(pushes, dtype=np.int64)
  if pushes.size == 0:
    return np.zeros(0, dtype=np.int64)
  first_below = _FirstBelow(keys)
  bound = keys[pushes]
  # Settle: walk down the path from the root to the push's own index.
  depth = _floor_log2(pushes + 1)
  node = np.zeros(pushes.size, dtype=np.int64)
  previous = np.full(pushes.size, -1, dtype=np.int64)
  active = np.arange(pushes.size)
  step = 0
  while active.size:
    tau = pushes[active]
    ancestor = ((tau + 1) >> (depth[active] - step)) - 1
    first = _first_in_subtree_after(first_below, ancestor, previous[active],
                                    bound[active] + 1)  # key <= bound
    settled = (first < 0) | (first >= tau)  # the item itself is the first: it stops here
    node[active[settled]] = ancestor[settled]
    previous[active[~settled]] = first[~settled]
    active = active[~settled]
    step += 1
  # Descend: later, smaller keys pushed into the item's subtree move it down, one level each.
  time = pushes.copy()
  active = np.arange(pushes.size)
  while active.size:
    later = _first_in_subtree_after(first_below, node[active], time[active], bound[active])
    moves = later >= 0
    active, later = active[moves], later[moves]
    here = node[active]
    node[active] = ((later + 1) >> (_floor_log2(later + 1) - _floor_log2(here + 1) - 1)) - 1
    time[active] = later
  return node
