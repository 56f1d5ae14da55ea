"""Mixed precision keeps the model's quality: GAP on the demo dataset, float32 vs bfloat16.

    python benchmarks/precision_check.py [--model=AttendFusion] [--num_epochs=5]
        [--batch_size=N] [--policies=float32,mixed_bfloat16] [--json FILE]

Runs train.py itself once per policy (`--mixed_precision=<policy>`, same seed, same data,
same steps) on the demo dataset (a synthetic YouTube-8M, generated once), which trains,
then evaluates on the demo validation split; reads each run's eval/metrics.json and reports
GAP, mAP, Hit@1, the training examples/s that train.py logged, and the GAP difference to
float32. The issue's bar: |GAP(mixed_bfloat16) - GAP(float32)| <= 0.005.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
GAP_TOLERANCE = 0.005


def train_and_evaluate(policy, train_dir, *, model="AttendFusion", num_epochs=5,
                       batch_size=None, seed=0, extra_flags=(), timeout=None):
  """train.py on the demo dataset with --mixed_precision=policy; returns eval/metrics.json.

  batch_size None: train.py's default on the demo dataset (and its model's learning rate).
  """
  command = [sys.executable, os.path.join(_ROOT, "train.py"), f"--model={model}",
             f"--train_dir={train_dir}", "--start_new_model", f"--mixed_precision={policy}",
             f"--num_epochs={num_epochs}", f"--seed={seed}", "--noexport",
             "--log_every_n_steps=10", *extra_flags]
  if batch_size:
    command.append(f"--batch_size={batch_size}")
  started = time.perf_counter()
  completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, check=False)
  seconds = time.perf_counter() - started
  if completed.returncode != 0:
    tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
    raise RuntimeError(f"train.py --mixed_precision={policy} failed "
                       f"(exit {completed.returncode}):\n{tail}")
  with open(os.path.join(train_dir, "eval", "metrics.json"), encoding="utf-8") as handle:
    metrics = json.load(handle)
  return {"policy": policy, "gap": float(metrics["gap"]), "map": float(metrics["map"]),
          "hit_at_one": float(metrics["avg_hit_at_one"]), "step": int(metrics["step"]),
          "train_examples_per_second": metrics.get("train_examples_per_second"),
          "seconds": seconds}


def check(policies=("float32", "mixed_bfloat16"), model="AttendFusion", num_epochs=5,
          batch_size=None, seed=0, extra_flags=(), timeout=None):
  """Trains once per policy; returns {"runs": {policy: figures}, "gap_difference": {...}}."""
  runs = {}
  base = tempfile.mkdtemp(prefix="yt8m-precision-")
  try:
    for policy in policies:
      runs[policy] = train_and_evaluate(
          policy, os.path.join(base, policy), model=model, num_epochs=num_epochs,
          batch_size=batch_size, seed=seed, extra_flags=extra_flags, timeout=timeout)
  finally:
    shutil.rmtree(base, ignore_errors=True)
  reference = runs[policies[0]]["gap"]
  differences = {policy: run["gap"] - reference for policy, run in runs.items()
                 if policy != policies[0]}
  return {"model": model, "num_epochs": num_epochs, "batch_size": batch_size, "seed": seed,
          "runs": runs, "gap_difference": differences, "tolerance": GAP_TOLERANCE,
          "within_tolerance": all(abs(d) <= GAP_TOLERANCE for d in differences.values())}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--model", default="AttendFusion")
  parser.add_argument("--num_epochs", type=int, default=5)
  parser.add_argument("--batch_size", type=int, default=None,
                      help="default: train.py's batch size on the demo dataset")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--policies", default="float32,mixed_bfloat16")
  parser.add_argument("--json", default="")
  args = parser.parse_args(argv)
  result = check(tuple(args.policies.split(",")), args.model, args.num_epochs,
                 args.batch_size, args.seed)
  for policy, run in result["runs"].items():
    difference = result["gap_difference"].get(policy)
    extra = f"  GAP - float32 GAP: {difference:+.4f}" if difference is not None else ""
    print(f"{policy:<16} GAP {run['gap']:.4f}  mAP {run['map']:.4f}  Hit@1 "
          f"{run['hit_at_one']:.4f}  step {run['step']}  {run['seconds']:.0f} s{extra}")
  print(f"within {GAP_TOLERANCE}: {result['within_tolerance']}")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as handle:
      json.dump(result, handle, indent=2)
  return result


if __name__ == "__main__":
  main()
