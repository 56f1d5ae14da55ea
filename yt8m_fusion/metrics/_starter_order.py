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
    self.buffer = self._generator.random_raw(max(int(expected), 1024)).astype(np.int64)

  def ensure(self, end):
    """Makes ``buffer`` hold at least ``end`` draws."""
    if end > self.buffer.size:
      extra = max(end - self.buffer.size, self.buffer.size // 4, 1024)
      more = self._generator.random_raw(extra).astype(np.int64)
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
