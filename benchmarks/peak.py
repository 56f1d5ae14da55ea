"""This machine's dense matmul peak in TensorFlow, and the MFU arithmetic.

    python benchmarks/peak.py [--sizes 2048,4096] [--seconds 2]

`matmul_peak(...)` times square matrix products `[n, n] x [n, n]` (several independent
products per call, so the dispatch cost is amortized) with TensorFlow's own kernels (oneDNN on
x86 CPUs, cuBLAS on GPUs) and returns the best rate seen, in GFLOP/s (2 n^3 FLOPs per
product), by wall clock and per CPU-second of this process. It is the reference for every
MFU figure of benchmarks/run.py.

MFU convention (the usual one): a training step costs 3 x the forward FLOPs per example
(forward, plus a backward pass of twice the forward's products); FLOPs are counted from the
layer shapes by yt8m_fusion.models.flops.forward_flops (matrix products only).
MFU = examples/s x training FLOPs per example / the float32 matmul peak.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TRAINING_FLOPS_FACTOR = 3  # forward + backward (2 x forward)


def training_flops_per_example(forward_flops):
  """Training FLOPs per example: 3 x forward (the usual MFU convention)."""
  return TRAINING_FLOPS_FACTOR * int(forward_flops)


def achieved_gflops(examples_per_second, flops_per_example):
  return examples_per_second * flops_per_example / 1e9


def mfu(examples_per_second, flops_per_example, peak_gflops):
  """Model FLOPs utilization: achieved model FLOP/s / peak FLOP/s (a fraction)."""
  if not peak_gflops or peak_gflops <= 0:
    raise ValueError(f"peak_gflops must be positive, got {peak_gflops!r}")
  return achieved_gflops(examples_per_second, flops_per_example) / peak_gflops


def cpu_seconds():
  """User + system CPU time of this process (all threads)."""
  times = os.times()
  return times.user + times.system


def _product_function(size, dtype, products, jit_compile):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf_dtype = tf.as_dtype(dtype)
  generator = tf.random.Generator.from_seed(0)
  lefts = [tf.cast(generator.normal([size, size]), tf_dtype) for _ in range(products)]
  right = tf.cast(generator.normal([size, size]), tf_dtype)

  @tf.function(jit_compile=jit_compile)
  def run(lefts, right):
    # Independent products (no common subexpression to fold), each fully reduced (n^2
    # additions next to n^3 multiply-adds) so no compiler can skip part of a product.
    return tf.add_n([tf.reduce_sum(tf.cast(tf.matmul(left, right), tf.float32))
                     for left in lefts])

  return lambda: run(lefts, right)


def matmul_peak(sizes=(2048,), dtype="float32", seconds=1.0, products=4, jit_compile=False,
                min_trials=3):
  """Best matmul rate of TensorFlow on this machine for `dtype`.

  Args:
    sizes: square sizes n tried; the best over all of them is returned.
    dtype: "float32" or "bfloat16" (inputs; bfloat16 products accumulate in float32 inside
      oneDNN / cuBLAS).
    seconds: time spent per size (at least `min_trials` calls).
    products: independent n x n products per call.
    jit_compile: False: TensorFlow's kernels (the fastest on CPU); True: XLA's.

  Returns:
    {"gflops": best wall-clock GFLOP/s, "gflops_per_cpu_second": FLOPs per CPU-second of this
     process over all trials (steadier on a shared machine), "size": the n of the best, "dtype", "by_size":
     {n: gflops}}.
  """
  best = {"gflops": 0.0, "gflops_per_cpu_second": 0.0, "size": None, "dtype": dtype,
          "jit_compile": bool(jit_compile), "by_size": {}}
  for size in sizes:
    run = _product_function(int(size), dtype, products, jit_compile)
    float(run())  # trace, compile, warm the caches
    flops = 2.0 * size ** 3 * products
    size_best, trials, started = 0.0, 0, time.perf_counter()
    cpu_total = 0.0
    while trials < min_trials or time.perf_counter() - started < seconds:
      wall, cpu = time.perf_counter(), cpu_seconds()
      float(run())
      wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
      trials += 1
      cpu_total += cpu
      size_best = max(size_best, flops / wall / 1e9)
    if cpu_total > 0:  # os.times() ticks are 10 ms: a mean over the trials, not a best
      best["gflops_per_cpu_second"] = max(best["gflops_per_cpu_second"],
                                          flops * trials / cpu_total / 1e9)
    best["by_size"][int(size)] = size_best
    if size_best > best["gflops"]:
      best["gflops"], best["size"] = size_best, int(size)
  return best


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--sizes", default="1024,2048,4096")
  parser.add_argument("--seconds", type=float, default=2.0)
  parser.add_argument("--xla", action="store_true", help="XLA's kernels instead of TF's")
  args = parser.parse_args(argv)
  sizes = [int(s) for s in args.sizes.split(",")]
  results = {dtype: matmul_peak(sizes, dtype, args.seconds, jit_compile=args.xla)
             for dtype in ("float32", "bfloat16")}
  json.dump(results, sys.stdout, indent=2)
  print()
  return results


if __name__ == "__main__":
  main()
