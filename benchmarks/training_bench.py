"""Training throughput, MFU and peak memory of one model, through the project's training path.

    python benchmarks/training_bench.py --model=AttendFusion [--frame_features]
        [--mixed_precision=mixed_bfloat16] [--batch_size=1024] [--jit_compile=auto]
        [--steps_per_execution=1] [--chunks=3] [--steps_per_chunk=2] [--json FILE]

What train.py does, minus the input files: `training.build_trainer` (Adam, the starter's
learning-rate schedule, per-tensor gradient clipping, the in-graph Hit@1 / PERR / GAP
training metrics) and `model.fit` on one in-memory batch repeated (random features; frame
level: uint8 frames and num_frames, as the reader yields them). No checkpoint is written.

Side by side: before each timed chunk of steps, the float32 matmul peak is measured again in
the same process (benchmarks/peak.py), so every MFU figure is a ratio of two rates measured
seconds apart under the same machine load. Reported:

  examples_per_second   median over the chunks (wall clock)
  mfu                   median over the chunks of chunk FLOP/s / that chunk's peak
  mfu_cpu               the same per CPU-second of this process (FLOPs / CPU time, both sides):
                        steadier when other jobs share the cores
  peak_rss_bytes        this process' peak resident memory (VmHWM): one run per process

`run_in_subprocess(**kwargs)` runs it in a fresh Python so each run's peak memory is its own.
`measure_training(disable=[...])` turns off some of the project's speed-ups (OPTIMIZATIONS) in
that process, to measure what each brings. `compare_training(variants)` trains several set-ups
in one process, in turns, and returns their ratios (e.g. mixed_bfloat16 vs float32).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.dirname(_HERE))

import peak as peak_lib  # pylint: disable=wrong-import-position

VIDEO_FEATURES = (("mean_rgb", 1024), ("mean_audio", 128))
FRAME_FEATURES = (("rgb", 1024), ("audio", 128))
JSON_PREFIX = "TRAINING_BENCH_JSON "


def peak_rss_bytes():
  """This process' peak resident set size (VmHWM; ru_maxrss as a fallback)."""
  try:
    with open("/proc/self/status", encoding="ascii") as handle:
      for line in handle:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_config(model="AttendFusion", frame_features=False, num_classes=3862, params=None,
                features=None):
  from yt8m_fusion.models.config import ModelConfig  # pylint: disable=import-outside-toplevel
  features = features or (FRAME_FEATURES if frame_features else VIDEO_FEATURES)
  return ModelConfig(model, [name for name, _ in features], [size for _, size in features],
                     frame_features=frame_features, num_classes=num_classes,
                     params=dict(params or {}))


def make_batch(config, batch_size, max_frames=300, seed=0, labels_per_video=3):
  """One in-memory (inputs, labels) batch in the format the readers yield."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  inputs = {}
  for name, size in zip(config.feature_names, config.feature_sizes):
    if config.frame_features:
      inputs[name] = rng.integers(0, 256, (batch_size, max_frames, size), dtype=np.uint8)
    else:
      inputs[name] = rng.standard_normal((batch_size, size), dtype=np.float32)
  if config.frame_features:
    inputs["num_frames"] = rng.integers(max_frames // 2, max_frames + 1, batch_size,
                                        dtype=np.int32)
  labels = np.zeros((batch_size, config.num_classes), np.float32)
  for row in range(batch_size):
    labels[row, rng.choice(config.num_classes, min(labels_per_video, config.num_classes),
                           replace=False)] = 1.0
  return inputs, labels


class _Chunks:
  """Keras callback: the matmul peak probe between chunks of steps, and their timings.

  After every execution it reads the step count; at a chunk boundary (after the warm-up and
  after each chunk) it closes the chunk that ended there, measures the float32 peak (outside
  the timed steps) and opens the next chunk.
  """

  def __init__(self, steps_per_execution, warmup, steps_per_chunk, chunks, peak_sizes,
               peak_seconds):
    import keras  # pylint: disable=import-outside-toplevel
    self.starts, self.ends, self.peaks = [], [], []
    self.steps = 0  # counted here: a loss-scaled optimizer does not count skipped steps
    outer = self

    class Callback(keras.callbacks.Callback):
      def on_train_batch_end(self, batch, logs=None):
        outer.steps += steps_per_execution
        step = outer.steps
        if step < warmup or (step - warmup) % steps_per_chunk:
          return
        now = (time.perf_counter(), peak_lib.cpu_seconds())
        if outer.starts:
          outer.ends.append(now)
        if len(outer.starts) < chunks:
          outer.peaks.append(peak_lib.matmul_peak(peak_sizes, "float32", peak_seconds))
          outer.starts.append((time.perf_counter(), peak_lib.cpu_seconds()))

    self.callback = Callback()


class _StepSpan:
  """Wall and CPU seconds from the first step's start to the last step's end of a fit() call.

  fit() itself costs more than its steps: tearing down its dataset iterator took seconds here
  (docs/PERFORMANCE.md), which would swamp a round of a few steps.
  """

  def __init__(self):
    import keras  # pylint: disable=import-outside-toplevel
    self.wall = self.cpu = 0.0
    outer = self

    class Callback(keras.callbacks.Callback):
      def on_train_begin(self, logs=None):
        outer.start = None

      def on_train_batch_begin(self, batch, logs=None):
        if outer.start is None:
          outer.start = (time.perf_counter(), peak_lib.cpu_seconds())

      def on_train_batch_end(self, batch, logs=None):
        outer.wall = time.perf_counter() - outer.start[0]
        outer.cpu = peak_lib.cpu_seconds() - outer.start[1]

    self.start = None
    self.callback = Callback()


# The project's speed-ups that `disable=` can turn off in this process, to measure what each
# one brings (the "before" of each change; the values computed are the same either way).
OPTIMIZATIONS = ("attention_2d", "fused_adam", "classifier_gradient")
# The ones that can be turned off in one model of a process (compare_training's "disable").
PER_MODEL_OPTIMIZATIONS = ("classifier_gradient",)


def disable_optimizations(names):
  """Turns off the named OPTIMIZATIONS in this process (class-level patches)."""
  import keras  # pylint: disable=import-outside-toplevel

  from yt8m_fusion import optimizers  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.models import layers  # pylint: disable=import-outside-toplevel
  unknown = set(names) - set(OPTIMIZATIONS)
  if unknown:
    raise ValueError(f"unknown optimizations {sorted(unknown)}; expected {OPTIMIZATIONS}")
  if "attention_2d" in names:  # Keras' MultiHeadAttention path
    layers.SelfAttentionBlock._fast_path_ok = lambda self, x, training: False  # pylint: disable=protected-access
  if "fused_adam" in names:  # Keras' element-wise Adam update
    optimizers.FusedAdam.update_step = keras.optimizers.Adam.update_step
  if "classifier_gradient" in names:  # autodiff's transpose_a kernel gradient
    layers.ClassifierDense._bfloat16_cpu_path = lambda self, inputs: False  # pylint: disable=protected-access


def disable_in_model(net, names):
  """Turns off the named PER_MODEL_OPTIMIZATIONS in one built, not yet traced model."""
  from yt8m_fusion.models import layers  # pylint: disable=import-outside-toplevel
  unknown = set(names) - set(PER_MODEL_OPTIMIZATIONS)
  if unknown:
    raise ValueError(f"{sorted(unknown)} cannot be turned off per model; expected some of "
                     f"{PER_MODEL_OPTIMIZATIONS}")
  if "classifier_gradient" in names:
    for layer in net._flatten_layers():  # pylint: disable=protected-access
      if isinstance(layer, layers.ClassifierDense):
        layer._bfloat16_cpu_path = lambda inputs: False  # pylint: disable=protected-access


def measure_training(model="AttendFusion", frame_features=False, mixed_precision="float32",
                     batch_size=1024, jit_compile="auto", steps_per_execution=1, chunks=3,
                     steps_per_chunk=2, warmup_steps=None, max_frames=300, num_classes=3862,
                     params=None, peak_sizes=(2048,), peak_seconds=0.5, seed=0, disable=()):
  """Trains `model` on an in-memory batch and returns the figures (see the module doc)."""
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import training  # pylint: disable=import-outside-toplevel

  started = time.perf_counter()
  disable_optimizations(disable)
  keras.mixed_precision.set_global_policy(mixed_precision)
  keras.utils.set_random_seed(seed)
  config = make_config(model, frame_features, num_classes, params)
  net = models.build_model(config)
  forward = models.forward_flops(net, max_frames=max_frames)
  per_example = peak_lib.training_flops_per_example(forward)
  options = training.TrainOptions(batch_size=batch_size, jit_compile=jit_compile,
                                  steps_per_execution=steps_per_execution, verbose=0)
  trainer = training.build_trainer(net, config, options)
  inputs, labels = make_batch(config, batch_size, max_frames, seed)
  dataset = tf.data.Dataset.from_tensors((inputs, labels)).repeat()
  built = time.perf_counter()

  spe = steps_per_execution
  steps_per_chunk = max(spe, (steps_per_chunk + spe - 1) // spe * spe)
  warmup = spe * max(1, ((warmup_steps or spe) + spe - 1) // spe)
  total_steps = warmup + chunks * steps_per_chunk
  timer = _Chunks(spe, warmup, steps_per_chunk, chunks, peak_sizes, peak_seconds)
  trainer.fit(dataset, steps_per_epoch=total_steps, epochs=1, verbose=0, shuffle=False,
          callbacks=[timer.callback])
  finished = time.perf_counter()
  if timer.steps != total_steps or len(timer.ends) != chunks:
    raise RuntimeError(f"ran {timer.steps} steps and {len(timer.ends)} chunks, expected "
                       f"{total_steps} and {chunks}")
  examples = steps_per_chunk * batch_size
  chunk_rates = [examples / (end[0] - start[0]) for start, end in zip(timer.starts, timer.ends)]
  chunk_cpu_rates = [examples / max(end[1] - start[1], 1e-9)
                     for start, end in zip(timer.starts, timer.ends)]
  peaks = timer.peaks

  mfus = [peak_lib.mfu(rate, per_example, probe["gflops"])
          for rate, probe in zip(chunk_rates, peaks)]
  mfus_cpu = [peak_lib.mfu(rate, per_example, probe["gflops_per_cpu_second"])
              for rate, probe in zip(chunk_cpu_rates, peaks) if probe["gflops_per_cpu_second"]]
  rate = statistics.median(chunk_rates)
  return {
      "model": model, "frame_features": bool(frame_features),
      "mixed_precision": mixed_precision, "batch_size": batch_size,
      "jit_compile": trainer.jit_compile, "jit_compile_option": jit_compile,
      "steps_per_execution": spe, "max_frames": max_frames if frame_features else None,
      "parameters": int(net.count_params()),
      "forward_flops_per_example": forward, "training_flops_per_example": per_example,
      "examples_per_second": rate,
      "examples_per_second_chunks": chunk_rates,
      "examples_per_cpu_second": statistics.median(chunk_cpu_rates),
      "achieved_gflops": peak_lib.achieved_gflops(rate, per_example),
      "peak_gflops_chunks": [probe["gflops"] for probe in peaks],
      "peak_gflops_per_cpu_second_chunks": [probe["gflops_per_cpu_second"] for probe in peaks],
      "mfu": statistics.median(mfus), "mfu_chunks": mfus,
      "mfu_cpu": statistics.median(mfus_cpu) if mfus_cpu else None,
      "peak_rss_bytes": peak_rss_bytes(),
      "steps": total_steps, "warmup_steps": warmup, "disabled": list(disable),
      "build_seconds": built - started, "fit_seconds": finished - built,
  }


def compare_training(variants, rounds=3, steps_per_round=2, batch_size=1024, seed=0):
  """Side by side in one process: examples/s of several training set-ups, in turns.

  `variants`: {name: dict(model=..., frame_features=..., mixed_precision=...,
  jit_compile=..., disable=[some of PER_MODEL_OPTIMIZATIONS])}. Each is built (under its own
  precision policy) and compiled with training.build_trainer, traced and warmed up; then the
  rounds run every variant in turn for `steps_per_round` steps, so a change of machine load
  hits all of them alike. Returns per variant the median examples/s (wall and per
  CPU-second) and, per pair with the first variant, the median of the per-round ratios.
  """
  import keras  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import training  # pylint: disable=import-outside-toplevel

  built = {}
  for name, spec in variants.items():
    keras.mixed_precision.set_global_policy(spec.get("mixed_precision", "float32"))
    keras.utils.set_random_seed(seed)
    config = make_config(spec.get("model", "AttendFusion"), spec.get("frame_features", False))
    net = models.build_model(config)
    disable_in_model(net, spec.get("disable", ()))
    options = training.TrainOptions(batch_size=batch_size,
                                    jit_compile=spec.get("jit_compile", "auto"), verbose=0)
    trainer = training.build_trainer(net, config, options)
    dataset = tf.data.Dataset.from_tensors(make_batch(config, batch_size, seed=seed)).repeat()
    trainer.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0)  # trace + warm up
    built[name] = (trainer, dataset)
  keras.mixed_precision.set_global_policy("float32")
  rates = {name: [] for name in variants}
  cpu_rates = {name: [] for name in variants}
  timer = _StepSpan()
  for _ in range(rounds):
    for name, (trainer, dataset) in built.items():
      trainer.fit(dataset, steps_per_epoch=steps_per_round, epochs=1, verbose=0,
              callbacks=[timer.callback])
      wall, cpu = timer.wall, timer.cpu
      rates[name].append(steps_per_round * batch_size / wall)
      cpu_rates[name].append(steps_per_round * batch_size / max(cpu, 1e-9))
  first = next(iter(variants))
  result = {"rounds": rounds, "steps_per_round": steps_per_round, "batch_size": batch_size,
            "variants": {}}
  for name in variants:
    result["variants"][name] = {
        **variants[name],
        "examples_per_second": statistics.median(rates[name]),
        "examples_per_cpu_second": statistics.median(cpu_rates[name]),
        "examples_per_second_rounds": rates[name],
        "ratio_to_first": statistics.median(a / b for a, b in zip(rates[name], rates[first])),
        "cpu_ratio_to_first": statistics.median(
            a / b for a, b in zip(cpu_rates[name], cpu_rates[first])),
    }
  result["peak_rss_bytes"] = peak_rss_bytes()
  return result


def run_in_subprocess(timeout=None, env=None, **kwargs):
  """measure_training(**kwargs) in a fresh Python process; returns its dict."""
  command = [sys.executable, os.path.abspath(__file__), "--kwargs", json.dumps(kwargs)]
  if kwargs.get("variants"):
    command.append("--compare")
  completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, **(env or {})}, check=False)
  for line in completed.stdout.splitlines():
    if line.startswith(JSON_PREFIX):
      return json.loads(line[len(JSON_PREFIX):])
  tail = "\n".join((completed.stderr or "").strip().splitlines()[-15:])
  raise RuntimeError(f"training benchmark {kwargs} failed (exit {completed.returncode}):\n{tail}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--kwargs", default="", help="measure_training keyword arguments, JSON")
  parser.add_argument("--model", default="AttendFusion")
  parser.add_argument("--frame_features", action="store_true")
  parser.add_argument("--mixed_precision", default="float32")
  parser.add_argument("--batch_size", type=int, default=1024)
  parser.add_argument("--jit_compile", default="auto")
  parser.add_argument("--steps_per_execution", type=int, default=1)
  parser.add_argument("--chunks", type=int, default=3)
  parser.add_argument("--steps_per_chunk", type=int, default=2)
  parser.add_argument("--json", default="")
  parser.add_argument("--compare", action="store_true",
                      help="--kwargs are compare_training's (variants, rounds, ...)")
  args = parser.parse_args(argv)
  if args.kwargs:
    kwargs = json.loads(args.kwargs)
  else:
    jit = {"true": True, "false": False}.get(args.jit_compile.lower(), "auto")
    kwargs = dict(model=args.model, frame_features=args.frame_features,
                  mixed_precision=args.mixed_precision, batch_size=args.batch_size,
                  jit_compile=jit, steps_per_execution=args.steps_per_execution,
                  chunks=args.chunks, steps_per_chunk=args.steps_per_chunk)
  result = compare_training(**kwargs) if args.compare else measure_training(**kwargs)
  print(JSON_PREFIX + json.dumps(result), flush=True)
  if args.json:
    with open(args.json, "w", encoding="utf-8") as handle:
      json.dump(result, handle, indent=2)
  return result


if __name__ == "__main__":
  main()
