"""Memory over long runs: does a process grow with each checkpoint, evaluation or video?

    python benchmarks/memory_growth.py --out=/tmp/memory [--cases=eval_watch,train_runs,...]
        [--checkpoints=24] [--runs=20] [--videos=1100000]

Each case runs the project's programs (or its Python API, as the experiments do) in a
fresh process, samples that process' resident memory (VmRSS from /proc) as it goes, and
appends its rows to <out>/<case>.jsonl as soon as they are known (a long run can be read
while it goes); <out>/summary.md gets the table of docs/RELIABILITY.md.

  eval_watch      eval.py without --run_once watching a train_dir of AttendFusion (the
                  paper's size), through `checkpoints` checkpoints (a feeder points the
                  `checkpoint` index at each in turn, as a training does); RSS when each
                  evaluation's JSON appears.
  train_runs      one process calling training.run `runs` times on one train_dir of
                  `model` (MoeModel), each a few more steps then an evaluation (a long
                  training evaluated often, as the paper experiment's chunks); RSS after each.
  new_models      the same with a new model (new train_dir) each time: the paper
                  experiment's family trained in one process.
  train_long      train.py (AttendFusion) over `epochs` epochs of 4 real shards; RSS over
                  time.
  eval_full       eval.py --run_once over `videos` videos (the real shards repeated by links;
                  LogisticModel, so that reading dominates).
  inference_full  inference.py over `videos` videos (copies of the real shards with unique
                  ids: a submission refuses repeated ids); RSS over time.

The growth per step is the least-squares slope of RSS over the last two thirds of the
points (the first third warms up: graphs traced, allocator pools filled).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(_HERE)
REAL_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "yt8m-2018-video")
if not os.path.isdir(REAL_DATA):
  REAL_DATA = "/work/shared/data/yt8m-2018-video"
TRAIN_PATTERN = os.path.join(REAL_DATA, "train", "validate000[0-3].tfrecord")
EVAL_PATTERN = os.path.join(REAL_DATA, "validate", "validate010[0-1].tfrecord")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
MODEL_FLAGS = ("--model=AttendFusion", "--feature_names=mean_rgb,mean_audio",
               "--feature_sizes=1024,128")
CASES = ("eval_watch", "train_runs", "new_models", "train_long", "eval_full",
         "inference_full")


def rss_bytes(pid="self"):
  """The resident set size (VmRSS) of process `pid` now; 0 once it is gone."""
  try:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
      for line in handle:
        if line.startswith("VmRSS:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return 0


def slope(values):
  """Least-squares slope of `values` against their index (per step)."""
  count = len(values)
  if count < 2:
    return 0.0
  mean_x = (count - 1) / 2
  mean_y = sum(values) / count
  covariance = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
  return covariance / sum((i - mean_x) ** 2 for i in range(count))


def growth_per_step(values):
  """The slope over the last two thirds of `values` (after the warm-up)."""
  return slope(values[len(values) // 3:])


class RssSampler:
  """Samples a process' RSS every `interval` seconds in a thread: (seconds, bytes) pairs."""

  def __init__(self, pid, interval=0.5):
    self.pid = pid
    self.interval = interval
    self.samples = []
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._loop, daemon=True)
    self._start = time.time()
    self._thread.start()

  def _loop(self):
    while not self._stop.is_set():
      value = rss_bytes(self.pid)
      if value:
        self.samples.append((time.time() - self._start, value))
      self._stop.wait(self.interval)

  def stop(self):
    self._stop.set()
    self._thread.join()
    return self.samples

  @property
  def latest(self):
    return self.samples[-1][1] if self.samples else 0

  @property
  def peak(self):
    return max((value for _, value in self.samples), default=0)


class Results:
  """Rows appended to <out>/<case>.jsonl as they come."""

  def __init__(self, out, case):
    self.path = os.path.join(out, f"{case}.jsonl")
    open(self.path, "w").close()

  def add(self, **row):
    with open(self.path, "a", encoding="utf-8") as handle:
      handle.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def _program(*args):
  return [sys.executable, *args]


def _train(train_dir, max_steps, *extra, model_flags=MODEL_FLAGS):
  subprocess.run(_program("train.py", *model_flags, f"--train_dir={train_dir}",
                          f"--train_data_pattern={TRAIN_PATTERN}", "--noexport",
                          f"--max_steps={max_steps}", "--batch_size=64", "--num_epochs=1000",
                          *extra),
                 cwd=REPO, env=ENV, check=True, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)


def _point_index_at(train_dir, step):
  """The `checkpoint` index names model.ckpt-<step> as the latest (written atomically)."""
  temporary = os.path.join(train_dir, ".checkpoint.feeder")
  with open(temporary, "w", encoding="utf-8") as handle:
    handle.write(f'model_checkpoint_path: "model.ckpt-{step}"\n'
                 f'all_model_checkpoint_paths: "model.ckpt-{step}"\n')
  os.replace(temporary, os.path.join(train_dir, "checkpoint"))


def case_eval_watch(out, workdir, checkpoints, **_):
  results = Results(out, "eval_watch")
  train_dir = os.path.join(workdir, "eval_watch")
  if not os.path.exists(os.path.join(train_dir, "checkpoint")):
    _train(train_dir, 1)
  watch_checkpoints(train_dir, checkpoints, EVAL_PATTERN, results.add)


def watch_checkpoints(train_dir, checkpoints, eval_pattern, add_row, batch_size=256):
  """eval.py (a subprocess, without --run_once) watching `train_dir` through `checkpoints`
  checkpoints; `add_row(checkpoint=, rss_mb=, peak_mb=, seconds=)` after each evaluation.

  Checkpoints 2..N are hard links to the files of checkpoint 1 (the same weights under new
  steps: eval.py restores and evaluates each, without N x the model's size on disk); the
  `checkpoint` index names each in turn once the previous one is evaluated.
  """
  for name in os.listdir(train_dir):
    if name.startswith("model.ckpt-1."):
      for step in range(2, checkpoints + 1):
        link = os.path.join(train_dir, name.replace("model.ckpt-1.", f"model.ckpt-{step}."))
        if not os.path.exists(link):
          os.link(os.path.join(train_dir, name), link)
  shutil.rmtree(os.path.join(train_dir, "eval"), ignore_errors=True)
  _point_index_at(train_dir, 1)
  process = subprocess.Popen(
      _program("eval.py", f"--train_dir={train_dir}", f"--eval_data_pattern={eval_pattern}",
               "--eval_interval_secs=1", "--eval_timeout_secs=120",
               f"--batch_size={batch_size}"),
      cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  sampler = RssSampler(process.pid, 0.1)
  try:
    for step in range(1, checkpoints + 1):
      _point_index_at(train_dir, step)
      metrics = os.path.join(train_dir, "eval", f"metrics-{step}.json")
      while not os.path.exists(metrics):
        if process.poll() is not None:
          raise RuntimeError(f"eval.py ended (exit {process.returncode}) at step {step}: "
                             f"{process.stderr.read()[-2000:]}")
        time.sleep(0.05)
      time.sleep(0.15)  # a sample after the evaluation
      add_row(checkpoint=step, rss_mb=sampler.latest / 2**20, peak_mb=sampler.peak / 2**20,
              seconds=sampler.samples[-1][0] if sampler.samples else 0)
  finally:
    process.terminate()
    process.communicate()
    sampler.stop()


def child_train_runs(out, workdir, runs, new_models, model, **_):
  """In the child process: training.run `runs` times (the Python API, as the experiments)."""
  from yt8m_fusion import models  # pylint: disable=import-outside-toplevel
  from yt8m_fusion import training  # pylint: disable=import-outside-toplevel
  config = models.ModelConfig(model=model, feature_names=["mean_rgb", "mean_audio"],
                              feature_sizes=[1024, 128], num_classes=3862)
  case = "new_models" if new_models else "train_runs"
  results = Results(out, case)
  for run in range(1, runs + 1):
    train_dir = os.path.join(workdir, case, str(run) if new_models else "")
    # (num_epochs: a run stopped by max_steps counts its epoch as done.)
    options = training.TrainOptions.for_model(model, batch_size=64, verbose=0, num_epochs=1000,
                                              max_steps=3 if new_models else 3 * run)
    started = time.time()
    result = training.run(config, train_dir, TRAIN_PATTERN, options=options,
                          eval_data_pattern=EVAL_PATTERN, export=False,
                          reading=training.ReadOptions(num_readers=2))
    results.add(run=run, step=result.train.step, rss_mb=rss_bytes() / 2**20,
                gap=result.eval_results["gap"], seconds=time.time() - started)
    if new_models:
      shutil.rmtree(train_dir, ignore_errors=True)


def case_train_runs(out, workdir, runs, new_models=False, model="AttendFusion", **_):
  subprocess.run(_program(os.path.abspath(__file__), f"--out={out}", f"--workdir={workdir}",
                          f"--runs={runs}", f"--child={'new_models' if new_models else 'train_runs'}",
                          f"--model={model}"),
                 cwd=REPO, env=dict(ENV, PYTHONPATH=REPO), check=True)


def case_train_long(out, workdir, epochs, **_):
  results = Results(out, "train_long")
  train_dir = os.path.join(workdir, "train_long")
  command = _program("train.py", *MODEL_FLAGS, f"--train_dir={train_dir}",
                     f"--train_data_pattern={TRAIN_PATTERN}", "--noexport",
                     f"--num_epochs={epochs}", "--batch_size=256", "--log_every_n_steps=10",
                     "--export_model_steps=20")
  process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  _sample_until_exit(process, results)


def _sample_until_exit(process, results, every_secs=10.0):
  sampler = RssSampler(process.pid, 0.5)
  last = 0.0
  while process.poll() is None:
    time.sleep(0.5)
    if sampler.samples and sampler.samples[-1][0] - last >= every_secs:
      last = sampler.samples[-1][0]
      results.add(seconds=last, rss_mb=sampler.latest / 2**20, peak_mb=sampler.peak / 2**20)
  samples = sampler.stop()
  results.add(seconds=samples[-1][0] if samples else 0, rss_mb=None,
              peak_mb=sampler.peak / 2**20, exit=process.returncode)
  if process.returncode != 0:
    raise RuntimeError(f"{process.args[1]} exited {process.returncode}")


def _all_shards():
  return sorted(os.path.join(REAL_DATA, split, name) for split in ("train", "validate")
                for name in os.listdir(os.path.join(REAL_DATA, split))
                if name.endswith(".tfrecord"))


def linked_shards(folder, videos):
  """Links to the real shards, repeated until they hold `videos` videos; the pattern."""
  os.makedirs(folder, exist_ok=True)
  shards = _all_shards()
  per_pass = 34550  # the sample's videos (its README)
  repeats = -(-videos // per_pass)
  for repeat in range(repeats):
    for shard in shards:
      link = os.path.join(folder, f"r{repeat:03d}-{os.path.basename(shard)}")
      if not os.path.lexists(link):
        os.symlink(shard, link)
  return os.path.join(folder, "*.tfrecord"), repeats * per_pass


def unique_id_shards(folder, videos):
  """Copies of the real shards with new 4-character ids, unique over `videos` videos."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  os.makedirs(folder, exist_ok=True)
  alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
  count = 0
  repeat = 0
  done = os.path.join(folder, ".complete")
  if os.path.exists(done):
    return os.path.join(folder, "*.tfrecord"), int(open(done).read())
  while count < videos:
    for shard in _all_shards():
      path = os.path.join(folder, f"r{repeat:03d}-{os.path.basename(shard)}")
      with tf.io.TFRecordWriter(path) as writer:
        for raw in tf.data.TFRecordDataset(shard).as_numpy_iterator():
          example = tf.train.Example.FromString(raw)
          number, new_id = count, ""
          for _ in range(4):
            number, digit = divmod(number, len(alphabet))
            new_id += alphabet[digit]
          example.features.feature["id"].bytes_list.value[:] = [new_id.encode()]
          writer.write(example.SerializeToString())
          count += 1
    repeat += 1
  with open(done, "w") as handle:
    handle.write(str(count))
  return os.path.join(folder, "*.tfrecord"), count


def case_full(out, workdir, videos, program, **_):
  case = f"{program}_full"
  results = Results(out, case)
  train_dir = os.path.join(workdir, "full_model")
  model_flags = ("--model=LogisticModel", "--feature_names=mean_rgb,mean_audio",
                 "--feature_sizes=1024,128")
  if not os.path.exists(os.path.join(train_dir, "checkpoint")):
    _train(train_dir, 5, model_flags=model_flags)
  if program == "eval":
    pattern, count = linked_shards(os.path.join(workdir, "linked"), videos)
    command = _program("eval.py", f"--train_dir={train_dir}", f"--eval_data_pattern={pattern}",
                       "--run_once", "--batch_size=1024")
  else:
    pattern, count = unique_id_shards(os.path.join(workdir, "unique"), videos)
    command = _program("inference.py", f"--train_dir={train_dir}",
                       f"--input_data_pattern={pattern}", "--batch_size=1024",
                       f"--output_file={os.path.join(workdir, 'predictions.csv')}")
  results.add(videos=count, model="LogisticModel", seconds=0, rss_mb=None)
  process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(workdir, f"{case}.log"), "w"))
  _sample_until_exit(process, results)


def summarize(out):
  """The markdown table of every case found in `out`."""
  lines = ["| case | points | RSS first -> last (MB) | peak (MB) | growth per step (MB) |",
           "|---|---|---|---|---|"]
  for case in CASES:
    path = os.path.join(out, f"{case}.jsonl")
    if not os.path.exists(path):
      continue
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    values = [row["rss_mb"] for row in rows if row.get("rss_mb")]
    if not values:
      continue
    peak = max([row.get("peak_mb") or 0 for row in rows] + values)
    unit = {"eval_watch": "checkpoint", "train_runs": "run", "new_models": "run"}.get(
        case, "10 s")
    lines.append(f"| {case} | {len(values)} | {values[0]:.0f} -> {values[-1]:.0f} | "
                 f"{peak:.0f} | {growth_per_step(values):+.2f} per {unit} |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--workdir", default="")
  parser.add_argument("--cases", default=",".join(CASES))
  parser.add_argument("--checkpoints", type=int, default=24)
  parser.add_argument("--runs", type=int, default=20)
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--videos", type=int, default=1_100_000)
  parser.add_argument("--model", default="MoeModel", help="train_runs / new_models")
  parser.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  workdir = args.workdir or os.path.join(args.out, "work")
  os.makedirs(workdir, exist_ok=True)
  if args.child:
    child_train_runs(args.out, workdir, args.runs, args.child == "new_models", args.model)
    return
  options = dict(out=args.out, workdir=workdir, checkpoints=args.checkpoints, runs=args.runs,
                 epochs=args.epochs, videos=args.videos, model=args.model)
  cases = {
      "eval_watch": lambda: case_eval_watch(**options),
      "train_runs": lambda: case_train_runs(**options),
      "new_models": lambda: case_train_runs(**dict(options, new_models=True)),
      "train_long": lambda: case_train_long(**options),
      "eval_full": lambda: case_full(**options, program="eval"),
      "inference_full": lambda: case_full(**options, program="inference"),
  }
  for case in args.cases.split(","):
    print(f"== {case}", flush=True)
    cases[case]()
    with open(os.path.join(args.out, "summary.md"), "w", encoding="utf-8") as handle:
      handle.write(summarize(args.out) + "\n")
  print(summarize(args.out))


if __name__ == "__main__":
  main()
