"""The performance benchmark's own correctness (benchmarks/run.py and its parts).

No timing is asserted here: only the arithmetic (FLOPs from the layer shapes, training FLOPs,
MFU), that the measurements return positive figures on tiny sizes, that the training and
serving measurements run the project's code on a tiny model, and the JSON's keys.
"""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import peak as peak_lib  # noqa: E402  pylint: disable=wrong-import-position
import run as run_lib  # noqa: E402  pylint: disable=wrong-import-position
import training_bench  # noqa: E402  pylint: disable=wrong-import-position

TINY_ATTEND = {"attend_hidden_size": 16, "attend_token_size": 8, "attend_num_heads": 2,
               "attend_key_dim": 4}
NUM_CLASSES = 7


def test_training_flops_and_mfu_arithmetic():
  assert peak_lib.training_flops_per_example(1_000) == 3_000
  # 10 examples/s x 3 GFLOP = 30 GFLOP/s achieved; / 60 GFLOP/s peak = 50 %.
  assert peak_lib.achieved_gflops(10, 3e9) == pytest.approx(30.0)
  assert peak_lib.mfu(10, 3e9, 60.0) == pytest.approx(0.5)
  with pytest.raises(ValueError):
    peak_lib.mfu(10, 3e9, 0.0)


def test_matmul_peak_is_positive_on_a_tiny_size():
  for dtype in ("float32", "bfloat16"):
    result = peak_lib.matmul_peak(sizes=(64, 128), dtype=dtype, seconds=0.0, products=2,
                                  min_trials=2)
    assert result["gflops"] > 0
    assert set(result["by_size"]) == {64, 128}
    assert result["gflops"] == max(result["by_size"].values())
    assert result["size"] in (64, 128) and result["dtype"] == dtype


def test_forward_flops_of_the_benchmarked_model_match_its_layer_shapes():
  from yt8m_fusion import models
  config = training_bench.make_config("AttendFusion", num_classes=NUM_CLASSES, params=TINY_ATTEND)
  net = models.build_model(config)
  width, token, heads, key = 16, 8, 2, 4
  tokens = width // token
  dense = 2 * (1024 * width + 128 * width) + 2 * (2 * width) * NUM_CLASSES
  attention = 2 * (3 * tokens * token * heads * key  # Q, K, V projections
                   + tokens * heads * key * token    # output projection
                   + 2 * tokens * tokens * heads * key)  # scores and weighted sum
  assert models.forward_flops(net) == dense + 2 * attention
  assert peak_lib.training_flops_per_example(models.forward_flops(net)) == \
      3 * (dense + 2 * attention)


def test_make_batch_has_the_readers_format():
  video = training_bench.make_config("AttendFusion", num_classes=NUM_CLASSES)
  inputs, labels = training_bench.make_batch(video, 4)
  assert inputs["mean_rgb"].shape == (4, 1024) and inputs["mean_rgb"].dtype == np.float32
  assert inputs["mean_audio"].shape == (4, 128)
  assert labels.shape == (4, NUM_CLASSES) and set(np.unique(labels)) == {0.0, 1.0}
  frame = training_bench.make_config("AttendFusion", frame_features=True,
                                     num_classes=NUM_CLASSES)
  inputs, _ = training_bench.make_batch(frame, 3, max_frames=10)
  assert inputs["rgb"].shape == (3, 10, 1024) and inputs["rgb"].dtype == np.uint8
  assert inputs["audio"].shape == (3, 10, 128)
  assert inputs["num_frames"].dtype == np.int32
  assert ((inputs["num_frames"] >= 5) & (inputs["num_frames"] <= 10)).all()


def test_measure_training_on_a_tiny_model():
  result = training_bench.measure_training(
      "AttendFusion", batch_size=8, chunks=2, steps_per_chunk=2, num_classes=NUM_CLASSES,
      params=TINY_ATTEND, peak_sizes=(64,), peak_seconds=0.0, jit_compile=False)
  assert result["steps"] == 1 + 2 * 2
  assert result["training_flops_per_example"] == 3 * result["forward_flops_per_example"]
  assert result["examples_per_second"] > 0 and result["peak_rss_bytes"] > 0
  assert len(result["mfu_chunks"]) == len(result["peak_gflops_chunks"]) == 2
  for rate, peak, mfu in zip(result["examples_per_second_chunks"],
                             result["peak_gflops_chunks"], result["mfu_chunks"]):
    assert mfu == pytest.approx(rate * result["training_flops_per_example"] / 1e9 / peak)
  assert result["mfu"] == pytest.approx(float(np.median(result["mfu_chunks"])))


def test_classifier_gradient_can_be_turned_off_in_one_model():
  import keras
  from yt8m_fusion import models
  config = training_bench.make_config("AttendFusion", num_classes=NUM_CLASSES,
                                      params=TINY_ATTEND)
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    kept, turned_off = models.build_model(config), models.build_model(config)
  finally:
    keras.mixed_precision.set_global_policy(previous)
  training_bench.disable_in_model(turned_off, ["classifier_gradient"])
  inputs = np.zeros((2, 16 * 2), np.float32)
  assert kept.get_layer("classifier")._bfloat16_cpu_path(inputs)  # pylint: disable=protected-access
  assert not turned_off.get_layer("classifier")._bfloat16_cpu_path(inputs)  # pylint: disable=protected-access
  with pytest.raises(ValueError, match="fused_adam"):
    training_bench.disable_in_model(kept, ["fused_adam"])


def test_serving_benchmark_compares_the_same_predictions(tmp_path):
  import serving_bench
  result = serving_bench.measure_serving(
      "AttendFusion", batch_size=4, batches=2, repeats=1, num_classes=NUM_CLASSES,
      params=TINY_ATTEND, export_dir=str(tmp_path))
  assert result["serving_examples_per_second"] > 0
  assert result["predict_examples_per_second"] > 0
  assert result["serving_vs_predict"] == pytest.approx(
      result["serving_examples_per_second"] / result["predict_examples_per_second"])
  assert result["max_abs_difference_top_scores"] < 1e-5


def test_summary_checks_every_target():
  results = {"training": {
      "attend_fusion": {"mfu": 0.61, "mfu_cpu": 0.7, "examples_per_second": 100.0,
                        "examples_per_cpu_second": 60.0},
      "attend_fusion_bf16": {"examples_per_second": 140.0, "examples_per_cpu_second": 93.0},
      "fc_late_fusion": {"peak_rss_bytes": 9e9}},
      "input": {"input_vs_frame_training": 2.5},
      "serving": {"serving_vs_predict": 0.79}}
  summary = run_lib.summarize(results)
  assert set(summary) == set(run_lib.TARGETS) | {"attend_fusion_mfu_cpu", "bf16_speedup_cpu",
                                                 "attend_fusion_mfu_vs_best_peak"}
  assert summary["attend_fusion_mfu"]["met"] is True
  assert summary["bf16_speedup"]["value"] == pytest.approx(1.4)
  assert summary["bf16_speedup"]["met"] is False
  assert summary["bf16_speedup_cpu"]["met"] is True
  assert summary["bf16_gap_difference"]["met"] is None  # not measured
  assert summary["attend_fusion_mfu_vs_best_peak"]["met"] is None

  assert summary["input_vs_frame_training"]["met"] is True
  assert summary["serving_vs_predict"]["met"] is False
  assert summary["fc_late_fusion_peak_rss_bytes"]["met"] is False
  assert any("serving_vs_predict" in line for line in run_lib.format_table(
      {"summary": summary, "machine": {}}))


def test_mfu_against_the_best_peak_of_the_run():
  results = {"peak": {"float32": {"gflops": 100.0}},
             "training": {"a": {"achieved_gflops": 60.0, "peak_gflops_chunks": [80.0, 120.0]},
                          "b": {"achieved_gflops": 30.0, "peak_gflops_chunks": [90.0]}}}
  run_lib.add_best_peak_mfu(results)
  assert results["best_float32_peak_gflops"] == 120.0
  assert results["training"]["a"]["mfu_vs_best_peak"] == pytest.approx(0.5)
  assert results["training"]["b"]["mfu_vs_best_peak"] == pytest.approx(0.25)


def test_run_json_has_the_expected_keys(tmp_path, capsys):
  path = tmp_path / "figures.json"
  settings = {"peak_sizes": [64], "peak_seconds": 0.0, "metrics_videos": 256,
              "metrics_reference_videos": 64}
  run_lib.main(["--quick", "--sections", "peak,metrics", "--settings", json.dumps(settings),
                "--json", str(path)])
  figures = json.loads(path.read_text())
  assert {"machine", "settings", "peak", "metrics", "summary", "targets",
          "load_average_end", "seconds"} <= set(figures)
  assert {"date", "cpu_count", "load_average", "tensorflow"} <= set(figures["machine"])
  assert figures["peak"]["float32"]["gflops"] > 0 and figures["peak"]["bfloat16"]["gflops"] > 0
  assert figures["metrics"]["vectorized_videos_per_second"] > 0
  assert "speedup" in figures["metrics"]
  assert figures["summary"]["attend_fusion_mfu"]["met"] is None  # training not run
  assert "matmul peak" in capsys.readouterr().out
