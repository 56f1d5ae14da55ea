"""The forms of a classifier's kernel gradient, side by side (float32 and bfloat16).

    python benchmarks/matmul_forms.py [--batch_size=1024] [--classes=3862]
        [--widths=16384,8192,1024] [--repeats=7]

The kernel gradient of `inputs [B, D] @ kernel [D, C]` is `inputs^T @ dy`. Autodiff writes
it as matmul(inputs, dy, transpose_a=True); `yt8m_fusion.models.layers.ClassifierDense`
materializes inputs^T first (a 3-D transpose, which TensorFlow's graph optimizer does not
fold back into the product). Per width D, this prints the median time of:

  transpose_a    matmul(inputs, dy, transpose_a=True)            (autodiff's form)
  materialized   matmul(transpose_unfolded(inputs), dy)           (ClassifierDense's form)
  plain_fold     matmul(tf.transpose(inputs), dy)                 (folded back: = transpose_a)
  layer          forward + backward of Dense vs ClassifierDense  (tf.GradientTape, in turns)

and the ratios. Each timing runs the forms in turns, so machine load hits them alike.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _median_times(functions, repeats):
  """{name: median seconds} of calling each function (already traced), in turns."""
  for function in functions.values():
    function().numpy()
  times = {name: [] for name in functions}
  for _ in range(repeats):
    for name, function in functions.items():
      start = time.perf_counter()
      function().numpy()
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(values) for name, values in times.items()}


def measure_products(batch_size, width, classes, dtype, repeats):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from yt8m_fusion.models.layers import (  # pylint: disable=import-outside-toplevel
      transpose_unfolded)
  inputs = tf.cast(tf.random.normal([batch_size, width]), dtype)
  output_gradient = tf.cast(tf.random.normal([batch_size, classes]), dtype)

  def first_row(product):  # a small result, so that fetching it costs nothing
    return tf.function(lambda: tf.reduce_sum(tf.cast(product()[:1], tf.float32)))

  functions = {
      "transpose_a": first_row(lambda: tf.matmul(inputs, output_gradient, transpose_a=True)),
      "materialized": first_row(lambda: tf.matmul(transpose_unfolded(inputs), output_gradient)),
      "plain_fold": first_row(lambda: tf.matmul(tf.transpose(inputs), output_gradient)),
  }
  return _median_times(functions, repeats)


def measure_layers(batch_size, width, classes, repeats):
  """Forward + backward of Dense and ClassifierDense (same weights) under mixed_bfloat16."""
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from yt8m_fusion.models.layers import ClassifierDense  # pylint: disable=import-outside-toplevel
  policy = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    layers = {"Dense": keras.layers.Dense(classes), "ClassifierDense": ClassifierDense(classes)}
  finally:
    keras.mixed_precision.set_global_policy(policy)
  inputs = tf.cast(tf.random.normal([batch_size, width]), tf.bfloat16)
  output_gradient = tf.cast(tf.random.normal([batch_size, classes]), tf.bfloat16)
  for layer in layers.values():
    layer.build((None, width))
  layers["ClassifierDense"].set_weights(layers["Dense"].get_weights())

  def step(layer):
    @tf.function
    def forward_backward():
      with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)
      input_gradient, kernel_gradient = tape.gradient(
          outputs, [inputs, layer.kernel], output_gradients=output_gradient)
      return (tf.reduce_sum(tf.cast(outputs[:1], tf.float32))
              + tf.reduce_sum(tf.cast(input_gradient[:1], tf.float32))
              + tf.reduce_sum(kernel_gradient[:1]))
    return forward_backward

  return _median_times({name: step(layer) for name, layer in layers.items()}, repeats)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--batch_size", type=int, default=1024)
  parser.add_argument("--classes", type=int, default=3862)
  parser.add_argument("--widths", default="16384,8192,1024")
  parser.add_argument("--repeats", type=int, default=7)
  args = parser.parse_args(argv)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  results = []
  print(f"kernel gradient inputs^T @ dy, B={args.batch_size}, C={args.classes}; median of "
        f"{args.repeats}, ms")
  print(f"{'dtype':9s} {'D':>6s} {'transpose_a':>12s} {'materialized':>13s} {'plain_fold':>11s} "
        f"{'speed-up':>9s}")
  for dtype in (tf.float32, tf.bfloat16):
    for width in (int(value) for value in args.widths.split(",")):
      times = measure_products(args.batch_size, width, args.classes, dtype, args.repeats)
      speed_up = times["transpose_a"] / times["materialized"]
      results.append({"dtype": dtype.name, "width": width, **times, "speed_up": speed_up})
      print(f"{dtype.name:9s} {width:6d} {times['transpose_a'] * 1e3:12.1f} "
            f"{times['materialized'] * 1e3:13.1f} {times['plain_fold'] * 1e3:11.1f} "
            f"{speed_up:8.2f}x", flush=True)
  print("\nforward + backward under mixed_bfloat16, ms")
  for width in (int(value) for value in args.widths.split(",")):
    times = measure_layers(args.batch_size, width, args.classes, args.repeats)
    print(f"D={width:6d}  Dense {times['Dense'] * 1e3:7.1f}  ClassifierDense "
          f"{times['ClassifierDense'] * 1e3:7.1f}  speed-up "
          f"{times['Dense'] / times['ClassifierDense']:.2f}x", flush=True)
    results.append({"layer_width": width, **times})
  return results


if __name__ == "__main__":
  main()
