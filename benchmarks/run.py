"""The performance benchmark: training, input, serving and metrics, side by side, in one run.

    python benchmarks/run.py [--quick] [--json FILE] [--precision_check | --no_precision_check]

Measures on this machine, in this order, and prints one table (--json: every figure):

  peak       TensorFlow's dense matmul peak, float32 and bfloat16 (GFLOP/s): the reference
  training   paper-size AttendFusion and FCLateFusion (video level, batch 1024) and
             AttendFusion on frame-level features: examples/s, model FLOPs per example
             (training = 3 x forward), MFU (vs the float32 peak measured in the same process
             between the timed chunks), MFU per CPU-second, peak resident memory. Each run in
             its own process, through training.build_trainer + fit (Adam).
             AttendFusion also under --mixed_precision=mixed_bfloat16; the full run adds
             ablations (this project's speed-ups turned off, XLA, steps_per_execution)
  compare    AttendFusion float32 vs mixed_bfloat16 side by side in one process, in turns:
             the bfloat16 speed-up (the full run adds mixed_bfloat16 with ClassifierDense's
             kernel-gradient form turned off)
  input      benchmarks/input_pipeline.py on synthetic frame-level files (raw read,
             starter-style reader, ours) and input records/s / frame-level training examples/s
  serving    the exported serving_default signature on serialized tf.Examples vs
             model.predict on parsed tensors (same batch size)
  metrics    the vectorized GAP/mAP (EvaluationMetrics) vs the per-video reference loop
  precision  (full run, or --precision_check) GAP on the demo dataset after train.py with
             float32 and with mixed_bfloat16 (benchmarks/precision_check.py)

--quick: fewer steps and data (under 5 minutes on 2 idle cores). On a shared machine the
wall-clock rates follow the load (printed with the table); the ratios are measured side by
side and the per-CPU-second figures are the steadier ones.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(0, os.path.dirname(_HERE))

import peak as peak_lib  # pylint: disable=wrong-import-position
import training_bench  # pylint: disable=wrong-import-position

# The targets (ratios, so that they hold on any machine).
TARGETS = {
    "attend_fusion_mfu": 0.60,
    "bf16_speedup": 1.5,
    "bf16_gap_difference": 0.005,
    "input_vs_frame_training": 2.0,
    "serving_vs_predict": 0.80,
    "fc_late_fusion_peak_rss_bytes": 8e9,
    # From the data-layer and workflow issues, measured here too:
    "input_vs_starter_reader": 4.0,  # frame-level reader vs the starter-style reader
    "metrics_vs_per_video_loop": 20.0,  # vectorized GAP/mAP vs the per-video loop
}

QUICK = {
    "peak_sizes": (2048,), "peak_seconds": 1.0,
    "video_chunks": 3, "video_steps_per_chunk": 2,
    "fc_chunks": 2, "fc_steps_per_chunk": 1,
    "frame_batch_size": 256, "frame_chunks": 3, "frame_steps_per_chunk": 2,
    "input_videos": 256, "input_seconds": 1.0, "input_repeats": 1,
    "serving_batch_size": 512, "serving_batches": 4, "serving_repeats": 2,
    "metrics_videos": 20480, "metrics_reference_videos": 2048,
    "compare_rounds": 3, "compare_steps": 1,
    "ablations": False, "precision_check": False,
}
FULL = {
    "peak_sizes": (1024, 2048, 4096), "peak_seconds": 2.0,
    "video_chunks": 5, "video_steps_per_chunk": 3,
    "fc_chunks": 3, "fc_steps_per_chunk": 2,
    "frame_batch_size": 256, "frame_chunks": 5, "frame_steps_per_chunk": 3,
    "input_videos": 1024, "input_seconds": 3.0, "input_repeats": 3,
    "serving_batch_size": 512, "serving_batches": 8, "serving_repeats": 3,
    "metrics_videos": 102400, "metrics_reference_videos": None,  # the reference on all videos
    "compare_rounds": 5, "compare_steps": 2,
    "ablations": True, "precision_check": True,
}


def machine_info():
  info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
          "platform": platform.platform(), "python": platform.python_version(),
          "cpu_count": os.cpu_count(), "cpu_model": _cpu_model(),
          "load_average": list(os.getloadavg())}
  try:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    info["tensorflow"] = tf.__version__
    info["gpus"] = [device.name for device in tf.config.list_physical_devices("GPU")]
  except ImportError:  # pragma: no cover
    pass
  return info


def _cpu_model():
  try:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
      for line in handle:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def _log(message):
  print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {message}", flush=True)


def measure_peak(settings):
  results = {}
  for dtype in ("float32", "bfloat16"):
    results[dtype] = peak_lib.matmul_peak(settings["peak_sizes"], dtype,
                                          settings["peak_seconds"])
    _log(f"matmul peak {dtype}: {results[dtype]['gflops']:.1f} GFLOP/s "
         f"({results[dtype]['gflops_per_cpu_second']:.1f} per CPU-second)")
  return results


def training_runs(settings):
  """(name, measure_training kwargs) of the training measurements."""
  video = dict(batch_size=1024, chunks=settings["video_chunks"],
               steps_per_chunk=settings["video_steps_per_chunk"])
  runs = [
      ("attend_fusion", dict(model="AttendFusion", **video)),
      ("attend_fusion_bf16", dict(model="AttendFusion", mixed_precision="mixed_bfloat16",
                                  **video)),
      ("fc_late_fusion", dict(model="FCLateFusion", batch_size=1024,
                              chunks=settings["fc_chunks"],
                              steps_per_chunk=settings["fc_steps_per_chunk"])),
      ("attend_fusion_frame", dict(model="AttendFusion", frame_features=True,
                                   batch_size=settings["frame_batch_size"],
                                   chunks=settings["frame_chunks"],
                                   steps_per_chunk=settings["frame_steps_per_chunk"])),
  ]
  if settings["ablations"]:
    everything = list(training_bench.OPTIMIZATIONS)
    runs += [
        # Before this project's speed-ups (plain Keras layers and Adam), then each one off.
        ("attend_fusion_before", dict(model="AttendFusion", disable=everything, **video)),
        ("attend_fusion_bf16_before", dict(model="AttendFusion", disable=everything,
                                           mixed_precision="mixed_bfloat16", **video)),
        ("attend_fusion_no_attention_2d", dict(model="AttendFusion", disable=["attention_2d"],
                                               **video)),
        ("attend_fusion_no_fused_adam", dict(model="AttendFusion", disable=["fused_adam"],
                                             **video)),
        ("attend_fusion_bf16_no_fused_adam", dict(
            model="AttendFusion", mixed_precision="mixed_bfloat16", disable=["fused_adam"],
            **video)),
        # Other knobs: XLA, steps_per_execution.
        ("attend_fusion_xla", dict(model="AttendFusion", jit_compile=True, **video)),
        ("attend_fusion_bf16_xla", dict(model="AttendFusion", jit_compile=True,
                                        mixed_precision="mixed_bfloat16", **video)),
        ("attend_fusion_spe4", dict(model="AttendFusion", steps_per_execution=4,
                                    **{**video, "steps_per_chunk": 4})),
        ("fc_late_fusion_before", dict(model="FCLateFusion", disable=everything,
                                       batch_size=1024, chunks=settings["fc_chunks"],
                                       steps_per_chunk=settings["fc_steps_per_chunk"])),
    ]
  for _, kwargs in runs:
    kwargs.setdefault("peak_sizes", (2048,))
    kwargs.setdefault("peak_seconds", 0.5)
  return runs


def measure_training(settings, only=None):
  results = {}
  for name, kwargs in training_runs(settings):
    if only and name not in only:
      continue
    _log(f"training {name}: {kwargs}")
    try:
      result = training_bench.run_in_subprocess(**kwargs)
    except (RuntimeError, OSError) as error:
      _log(f"training {name} FAILED: {error}")
      results[name] = {"error": str(error)}
      continue
    results[name] = result
    _log(f"  {result['examples_per_second']:.1f} examples/s, MFU {result['mfu']:.1%} "
         f"(per CPU-second {result['mfu_cpu']:.1%}), peak RSS "
         f"{result['peak_rss_bytes'] / 2**30:.2f} GiB")
  return results


def measure_compare(settings):
  """float32 vs mixed_bfloat16 AttendFusion, side by side in one process, in turns."""
  variants = {"float32": dict(model="AttendFusion"),
              "mixed_bfloat16": dict(model="AttendFusion", mixed_precision="mixed_bfloat16")}
  if settings["ablations"]:
    variants["mixed_bfloat16_no_classifier_gradient"] = dict(
        model="AttendFusion", mixed_precision="mixed_bfloat16",
        disable=["classifier_gradient"])
  _log("side by side: AttendFusion float32 vs mixed_bfloat16")
  try:
    result = training_bench.run_in_subprocess(variants=variants,
                                              rounds=settings["compare_rounds"],
                                              steps_per_round=settings["compare_steps"])
  except (RuntimeError, OSError) as error:
    _log(f"side by side FAILED: {error}")
    return {"error": str(error)}
  bf16 = result["variants"]["mixed_bfloat16"]
  _log(f"  mixed_bfloat16 / float32: {bf16['ratio_to_first']:.2f}x "
       f"(per CPU-second {bf16['cpu_ratio_to_first']:.2f}x)")
  return result


def measure_input(settings, frame_training):
  """benchmarks/input_pipeline.py on generated frame-level files, vs the training step."""
  import input_pipeline  # pylint: disable=import-outside-toplevel

  from yt8m_fusion import data  # pylint: disable=import-outside-toplevel
  temporary = tempfile.mkdtemp(prefix="yt8m-run-input-")
  try:
    info = data.generate_dataset(temporary, num_videos=settings["input_videos"],
                                 frame_features=True, num_shards=8, min_frames=120,
                                 max_frames=300, split_fractions=(1.0, 0.0, 0.0))
    kwargs = dict(batch_size=settings["frame_batch_size"], max_frames=300,
                  min_seconds=settings["input_seconds"])
    try:
      results = input_pipeline.measure(info["frame"]["train"], repeats=settings["input_repeats"],
                                       **kwargs)
    except TypeError:  # an input_pipeline.measure without `repeats`
      results = input_pipeline.measure(info["frame"]["train"], **kwargs)
  finally:
    shutil.rmtree(temporary, ignore_errors=True)
  rates = results.get("rates", {})
  ours = rates.get("ours_u8") or rates.get("ours") or {}
  ours_rate = ours.get("records_per_s")
  training_rate = (frame_training or {}).get("examples_per_second")
  if ours_rate and training_rate:
    results["input_vs_frame_training"] = ours_rate / training_rate
    results["bound_by"] = "compute" if ours_rate >= training_rate else "input"
  _log("input: " + ", ".join(f"{name} {rate.get('records_per_s', float('nan')):.0f}/s"
                             for name, rate in rates.items()))
  return results


def measure_serving(settings):
  import serving_bench  # pylint: disable=import-outside-toplevel
  result = serving_bench.measure_serving(
      "AttendFusion", batch_size=settings["serving_batch_size"],
      batches=settings["serving_batches"], repeats=settings["serving_repeats"])
  _log(f"serving {result['serving_examples_per_second']:.0f}/s vs predict "
       f"{result['predict_examples_per_second']:.0f}/s")
  return result


def measure_metrics(settings):
  import metrics_benchmark  # pylint: disable=import-outside-toplevel
  result = metrics_benchmark.measure(num_videos=settings["metrics_videos"],
                                     reference_videos=settings["metrics_reference_videos"])
  _log(f"metrics: vectorized {result['vectorized_videos_per_second']:.0f} videos/s, "
       f"{result.get('speedup', float('nan')):.1f}x the per-video loop")
  return result


def measure_precision():
  import precision_check  # pylint: disable=import-outside-toplevel
  result = precision_check.check()
  _log("precision: " + ", ".join(f"{p} GAP {r['gap']:.4f}" for p, r in result["runs"].items()))
  return result


def add_best_peak_mfu(results):
  """MFU of every training run against the best float32 peak seen anywhere in this run.

  The conservative figure on a shared machine: a run slowed by other jobs is compared with
  the peak of the quietest moment (the per-chunk `mfu` pairs each chunk with a peak measured
  seconds before it; `mfu_cpu` compares FLOPs per CPU-second on both sides).
  """
  peaks = [((results.get("peak") or {}).get("float32") or {}).get("gflops") or 0.0]
  for run in (results.get("training") or {}).values():
    peaks.extend(run.get("peak_gflops_chunks") or [])
  best = max(peaks)
  results["best_float32_peak_gflops"] = best
  for run in (results.get("training") or {}).values():
    if best > 0 and run.get("achieved_gflops"):
      run["mfu_vs_best_peak"] = run["achieved_gflops"] / best


def summarize(results):
  """The targets' figures and whether each is met (None: not measured)."""
  training = results.get("training", {})
  summary = {}

  def figure(name, value, target, met):
    summary[name] = {"value": value, "target": target,
                     "met": None if value is None else bool(met(value))}

  attend = training.get("attend_fusion", {})
  bf16 = training.get("attend_fusion_bf16", {})
  fc_late = training.get("fc_late_fusion", {})
  figure("attend_fusion_mfu", attend.get("mfu"), TARGETS["attend_fusion_mfu"],
         lambda v: v >= TARGETS["attend_fusion_mfu"])
  figure("attend_fusion_mfu_cpu", attend.get("mfu_cpu"), TARGETS["attend_fusion_mfu"],
         lambda v: v >= TARGETS["attend_fusion_mfu"])
  figure("attend_fusion_mfu_vs_best_peak", attend.get("mfu_vs_best_peak"),
         TARGETS["attend_fusion_mfu"], lambda v: v >= TARGETS["attend_fusion_mfu"])
  side = ((results.get("compare") or {}).get("variants") or {}).get("mixed_bfloat16") or {}
  if side:  # side by side in one process, in turns: the steadier ratio
    speedup, speedup_cpu = side.get("ratio_to_first"), side.get("cpu_ratio_to_first")
  else:  # from the separate runs
    speedup = (bf16["examples_per_second"] / attend["examples_per_second"]
               if bf16.get("examples_per_second") and attend.get("examples_per_second")
               else None)
    speedup_cpu = (bf16["examples_per_cpu_second"] / attend["examples_per_cpu_second"]
                   if bf16.get("examples_per_cpu_second") and attend.get("examples_per_cpu_second")
                   else None)
  figure("bf16_speedup", speedup, TARGETS["bf16_speedup"], lambda v: v >= TARGETS["bf16_speedup"])
  figure("bf16_speedup_cpu", speedup_cpu, TARGETS["bf16_speedup"],
         lambda v: v >= TARGETS["bf16_speedup"])
  precision = results.get("precision") or {}
  difference = precision.get("gap_difference", {}).get("mixed_bfloat16")
  figure("bf16_gap_difference", difference, TARGETS["bf16_gap_difference"],
         lambda v: abs(v) <= TARGETS["bf16_gap_difference"])
  figure("input_vs_frame_training", (results.get("input") or {}).get("input_vs_frame_training"),
         TARGETS["input_vs_frame_training"], lambda v: v >= TARGETS["input_vs_frame_training"])
  figure("serving_vs_predict", (results.get("serving") or {}).get("serving_vs_predict"),
         TARGETS["serving_vs_predict"], lambda v: v >= TARGETS["serving_vs_predict"])
  figure("fc_late_fusion_peak_rss_bytes", fc_late.get("peak_rss_bytes"),
         TARGETS["fc_late_fusion_peak_rss_bytes"],
         lambda v: v < TARGETS["fc_late_fusion_peak_rss_bytes"])
  speedups = (results.get("input") or {}).get("speedup_vs_starter") or {}
  figure("input_vs_starter_reader", speedups.get("ours_u8"), TARGETS["input_vs_starter_reader"],
         lambda v: v >= TARGETS["input_vs_starter_reader"])
  metrics = results.get("metrics") or {}
  figure("metrics_vs_per_video_loop", metrics.get("speedup"), TARGETS["metrics_vs_per_video_loop"],
         lambda v: v >= TARGETS["metrics_vs_per_video_loop"])
  if metrics.get("num_videos", 0) < 100000:
    # The target is set at 100,000 videos; --quick's smaller run (whose fixed costs do not
    # shrink with the data) is shown, not judged.
    summary["metrics_vs_per_video_loop"]["met"] = None
  return summary


def _fmt(value, kind):
  if value is None:
    return "-"
  if kind == "pct":
    return f"{value:.1%}"
  if kind == "x":
    return f"{value:.2f}x"
  if kind == "gib":
    return f"{value / 2**30:.2f} GiB"
  if kind == "gflop":
    return f"{value / 1e9:.3f}"
  if kind == "int":
    return f"{value:,.0f}"
  if kind == "signed":
    return f"{value:+.4f}"
  return f"{value:.1f}"


def format_table(results):
  """The human-readable table (a list of lines)."""
  lines = []
  machine = results.get("machine", {})
  lines.append(f"{machine.get('cpu_model', '?')}, {machine.get('cpu_count', '?')} CPUs, "
               f"TensorFlow {machine.get('tensorflow', '?')}, {machine.get('date', '')}, "
               f"load average at start {', '.join(f'{x:.2f}' for x in machine.get('load_average', []))}"
               f", at end {', '.join(f'{x:.2f}' for x in results.get('load_average_end', []))}")
  peak = results.get("peak", {})
  if peak:
    lines.append("")
    lines.append("matmul peak (TensorFlow kernels)   GFLOP/s   per CPU-second")
    for dtype, value in peak.items():
      lines.append(f"  {dtype:<32} {value['gflops']:>8.1f} {value['gflops_per_cpu_second']:>14.1f}")
  training = results.get("training", {})
  if training:
    lines.append("")
    lines.append("MFU: paired with a peak measured in the same process before each chunk; "
                 "MFU/CPU: per CPU-second on both sides; MFU/best: vs the best float32 peak "
                 f"of the run ({results.get('best_float32_peak_gflops', 0):.0f} GFLOP/s). "
                 "Training FLOPs = 3 x forward.")
    lines.append(f"{'training run (batch)':<46} {'ex/s':>8} {'GFLOP/ex':>9} {'MFU':>7} "
                 f"{'MFU/CPU':>8} {'MFU/best':>8} {'peak RSS':>10}")
    for name, run in training.items():
      if "error" in run:
        lines.append(f"  {name:<44} FAILED: {run['error'].splitlines()[0][:60]}")
        continue
      label = f"{name} ({run['batch_size']})"
      lines.append(f"  {label:<44} {_fmt(run['examples_per_second'], 'f'):>8} "
                   f"{_fmt(run['training_flops_per_example'], 'gflop'):>9} "
                   f"{_fmt(run['mfu'], 'pct'):>7} {_fmt(run['mfu_cpu'], 'pct'):>8} "
                   f"{_fmt(run.get('mfu_vs_best_peak'), 'pct'):>8} "
                   f"{_fmt(run['peak_rss_bytes'], 'gib'):>10}")
  compare = results.get("compare") or {}
  if compare.get("variants"):
    lines.append("")
    lines.append(f"side by side in one process (AttendFusion, batch {compare['batch_size']}, "
                 f"{compare['rounds']} rounds in turns)   ex/s   ex/CPU-s   x float32")
    for name, item in compare["variants"].items():
      lines.append(f"  {name:<40} {item['examples_per_second']:>8.1f} "
                   f"{item['examples_per_cpu_second']:>9.1f} {item['ratio_to_first']:>7.2f}x"
                   f" (CPU {item['cpu_ratio_to_first']:.2f}x)")
  source = results.get("input")
  if source:
    lines.append("")
    lines.append(f"input pipeline (frame level, batch {source.get('batch_size')})   records/s   "
                 "CPU us/record")
    for name, rate in source.get("rates", {}).items():
      lines.append(f"  {name:<36} {_fmt(rate.get('records_per_s'), 'int'):>9} "
                   f"{_fmt(rate.get('cpu_us_per_record'), 'int'):>15}")
    if "input_vs_frame_training" in source:
      lines.append(f"  ours (uint8) / frame-level training step: "
                   f"{source['input_vs_frame_training']:.2f}x -> bound by {source['bound_by']}")
  serving = results.get("serving")
  if serving:
    lines.append("")
    lines.append(f"serving (AttendFusion, batch {serving['batch_size']})   examples/s")
    lines.append(f"  serving_default, serialized tf.Example {serving['serving_examples_per_second']:>10.0f}"
                 f"   ({serving.get('serving_examples_per_cpu_second', float('nan')):.0f} per CPU-second)")
    lines.append(f"  model.predict, parsed tensors          {serving['predict_examples_per_second']:>10.0f}"
                 f"   ({serving.get('predict_examples_per_cpu_second', float('nan')):.0f} per CPU-second)")
  metrics = results.get("metrics")
  if metrics:
    lines.append("")
    lines.append(f"metrics ({metrics['num_videos']} videos x {metrics['num_classes']} classes)")
    lines.append(f"  vectorized EvaluationMetrics: {metrics['vectorized_videos_per_second']:,.0f} "
                 f"videos/s; per-video loop: {metrics.get('speedup', float('nan')):.1f}x slower"
                 f"{' (extrapolated)' if metrics.get('reference_extrapolated') else ''}; "
                 f"max abs difference {metrics.get('max_abs_diff', float('nan')):.2g}")
  precision = results.get("precision")
  if precision:
    lines.append("")
    lines.append(f"precision check (train.py on the demo dataset, {precision['num_epochs']} "
                 f"epochs, batch {precision['batch_size'] or 'default'})")
    for policy, run in precision["runs"].items():
      lines.append(f"  {policy:<16} GAP {run['gap']:.4f}  mAP {run['map']:.4f}")
  summary = results.get("summary", {})
  if summary:
    lines.append("")
    lines.append(f"{'target':<34} {'value':>12} {'target':>10}  met")
    kinds = {"attend_fusion_mfu": ("pct", ">="), "attend_fusion_mfu_cpu": ("pct", ">="),
             "attend_fusion_mfu_vs_best_peak": ("pct", ">="),
             "bf16_speedup": ("x", ">="), "bf16_speedup_cpu": ("x", ">="),
             "bf16_gap_difference": ("signed", "|.|<="),
             "input_vs_frame_training": ("x", ">="), "serving_vs_predict": ("pct", ">="),
             "fc_late_fusion_peak_rss_bytes": ("gib", "<"),
             "input_vs_starter_reader": ("x", ">="), "metrics_vs_per_video_loop": ("x", ">=")}
    for name, item in summary.items():
      kind, relation = kinds.get(name, ("f", ""))
      met = {True: "yes", False: "NO", None: "not measured"}[item["met"]]
      if item["met"] is None and item["value"] is not None:
        met = "not judged (smaller run)"
      target = (f"{relation} {_fmt(item['target'], kind if kind != 'signed' else 'f')}"
                if kind != "gib" else f"< {item['target'] / 1e9:.0f} GB")
      if kind == "signed":
        target = f"|.| <= {item['target']}"
      lines.append(f"  {name:<32} {_fmt(item['value'], kind):>12} {target:>10}  {met}")
  return lines


def run(settings, sections=None, training_only=None):
  results = {"machine": machine_info(), "settings": {k: list(v) if isinstance(v, tuple) else v
                                                     for k, v in settings.items()}}
  wanted = lambda section: sections is None or section in sections  # noqa: E731
  started = time.perf_counter()
  if wanted("peak"):
    results["peak"] = measure_peak(settings)
  if wanted("training"):
    results["training"] = measure_training(settings, training_only)
  if wanted("compare"):
    results["compare"] = measure_compare(settings)
  if wanted("input"):
    frame = results.get("training", {}).get("attend_fusion_frame")
    results["input"] = measure_input(settings, frame if frame and "error" not in frame else None)
  if wanted("serving"):
    results["serving"] = measure_serving(settings)
  if wanted("metrics"):
    results["metrics"] = measure_metrics(settings)
  if wanted("precision") and settings.get("precision_check"):
    results["precision"] = measure_precision()
  add_best_peak_mfu(results)
  results["seconds"] = time.perf_counter() - started
  results["load_average_end"] = list(os.getloadavg())
  results["targets"] = TARGETS
  results["summary"] = summarize(results)
  return results


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--quick", action="store_true", help="fewer steps and data (< 5 min)")
  parser.add_argument("--json", default="", help="write every figure to this JSON file")
  parser.add_argument("--precision_check", dest="precision_check", action="store_true",
                      default=None, help="train float32 and mixed_bfloat16 on the demo data "
                      "and compare their GAP (default: only in the full run)")
  parser.add_argument("--no_precision_check", dest="precision_check", action="store_false")
  parser.add_argument("--sections", default="",
                      help="comma-separated subset of peak,training,compare,input,serving,"
                      "metrics,precision (default: all)")
  parser.add_argument("--training_runs", default="",
                      help="comma-separated subset of the training runs (names in the JSON)")
  parser.add_argument("--settings", default="", help="JSON overrides of the settings (tests)")
  args = parser.parse_args(argv)
  settings = dict(QUICK if args.quick else FULL)
  if args.precision_check is not None:
    settings["precision_check"] = args.precision_check
  if args.settings:
    settings.update(json.loads(args.settings))
  sections = [s.strip() for s in args.sections.split(",") if s.strip()] or None
  only = [s.strip() for s in args.training_runs.split(",") if s.strip()] or None
  results = run(settings, sections, only)
  print()
  print("\n".join(format_table(results)))
  print(f"\n({results['seconds']:.0f} s)")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as handle:
      json.dump(results, handle, indent=2, default=str)
  return results


if __name__ == "__main__":
  main()
