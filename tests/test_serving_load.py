"""Concurrent serving: an exported SavedModel's serving_default and a LiteRT file called
from many threads at once give what one call at a time gives, a malformed request mixed in
fails alone, and memory does not grow with the number of requests.

The SavedModel and the LiteRT file are written by the export code train.py and
`python -m yt8m_fusion.export` use, and loaded from disk (benchmarks/serving_load.py).
"""

import concurrent.futures
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import memory_growth  # noqa: E402  pylint: disable=wrong-import-position
import serving_load  # noqa: E402  pylint: disable=wrong-import-position
import training_bench  # noqa: E402  pylint: disable=wrong-import-position

TINY_ATTEND = {"attend_hidden_size": 16, "attend_token_size": 8, "attend_num_heads": 2,
               "attend_key_dim": 4}
NUM_CLASSES = 30
MAX_FRAMES = 20


@pytest.fixture(scope="module")
def load_result():
  return serving_load.measure_load("AttendFusion", callers=(8,), requests=48,
                                   videos_per_request=4, num_classes=NUM_CLASSES,
                                   params=TINY_ATTEND)


@pytest.mark.parametrize("path", ["saved_model", "litert_shared", "litert_per_thread"])
def test_eight_threads_give_the_sequential_results(load_result, path):
  row, = [row for row in load_result["rows"] if row["path"] == path]
  assert row["callers"] == 8 and row["answered"] == row["requests"] == 48
  assert row["max_abs_difference"] == 0.0  # the same numbers as one call at a time
  assert row["malformed_failed"] and not row["other_failures"]
  expected = "InvalidArgumentError" if path == "saved_model" else "UserError"
  assert row["malformed_error"] == expected


def test_frame_level_litert_shared_by_threads():
  """A frame-level model (uint8 frames, num_frames) through one shared interpreter."""
  result = serving_load.measure_load("FrameLevelLogisticModel", frame_features=True,
                                     callers=(8,), requests=24, videos_per_request=2,
                                     num_classes=NUM_CLASSES, max_frames=MAX_FRAMES,
                                     paths=("saved_model", "litert_shared"))
  for row in result["rows"]:
    assert row["max_abs_difference"] == 0.0, row
    assert row["malformed_failed"] and not row["other_failures"], row


@pytest.mark.parametrize("path", ["saved_model", "litert_per_thread"])
def test_memory_does_not_grow_with_requests(path, tmp_path):
  """RSS after 4 more rounds of the same load: a leak of a few KB per request would show
  (4 x 600 requests x 8 KB = 19 MB); the allowance is 2 KB per request plus 4 MB."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  config = training_bench.make_config("AttendFusion", False, NUM_CLASSES, TINY_ATTEND)
  requests = serving_load.Requests(config, 600, 4, MAX_FRAMES)
  serve, litert_path = serving_load.build_servers(config, str(tmp_path), MAX_FRAMES)
  if path == "saved_model":
    tensors = [tf.constant(records) for records in requests.records]

    def call(i):
      return serve(example_bytes=tensors[i])["predictions"].numpy()

    def malformed():
      return serve(example_bytes=tf.constant([serving_load.MALFORMED_RECORD]))
  else:
    import threading  # pylint: disable=import-outside-toplevel

    from yt8m_fusion.litert import LiteRTModel  # pylint: disable=import-outside-toplevel
    local = threading.local()

    def own():
      if not hasattr(local, "model"):
        local.model = LiteRTModel(litert_path, num_threads=1)
      return local.model

    def call(i):
      return own().predict(requests.features[i])

    def malformed():
      return own().predict(requests.malformed_features())
  with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:  # the same 8 callers
    for _ in range(2):  # warm-up: graphs, thread arenas, each thread's interpreter
      serving_load.serve_concurrently(call, requests, 8, malformed, pool=pool)
    before = memory_growth.rss_bytes()
    rounds = 4
    for _ in range(rounds):
      outputs, _, _, error, failures = serving_load.serve_concurrently(
          call, requests, 8, malformed, pool=pool)
      assert error is not None and not failures and len(outputs) == requests.count
    growth = memory_growth.rss_bytes() - before
  allowed = rounds * requests.count * 2048 + 4 * 2**20
  assert growth < allowed, f"RSS grew {growth / 2**20:.1f} MB over {rounds * 600} requests"
  assert np.isfinite(outputs[0]).all()
