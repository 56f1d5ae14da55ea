"""Multi-worker training on one machine: one train.py process per worker.

    python -m yt8m_fusion.local_cluster --num_workers=2 -- <train.py flags>

starts `--num_workers` train.py processes with `--strategy=multi_worker`, each with its
own TF_CONFIG (worker i of a cluster on free 127.0.0.1 ports), streams their output
with a `[worker i]` prefix, and exits with the chief's (worker 0's) exit code. It is
the way to try MultiWorkerMirroredStrategy (and its fault handling) before launching
on several machines, where each host sets TF_CONFIG itself (docs/SCALE_OUT.md).

Ctrl-C or SIGTERM is passed on to the workers (train.py then saves a checkpoint and
stops at the same step on every worker); a worker still running
--grace_secs after the chief ended, or after a stop was asked, is killed.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

LOOPBACK = "127.0.0.1"
TRAIN_MODULE = "yt8m_fusion.cli.train"


def free_ports(count, host=LOOPBACK):
  """`count` distinct ports that were free on `host` a moment ago."""
  sockets = []
  try:
    for _ in range(count):
      sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      sock.bind((host, 0))
      sockets.append(sock)
    return [sock.getsockname()[1] for sock in sockets]
  finally:
    for sock in sockets:
      sock.close()


def tf_configs(num_workers, ports, host=LOOPBACK):
  """The TF_CONFIG (a JSON string) of each worker."""
  workers = [f"{host}:{port}" for port in ports[:num_workers]]
  return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
          for i in range(num_workers)]


def _worker_command(train_flags, program):
  for flag in train_flags:
    if flag.startswith("--strategy=") and flag != "--strategy=multi_worker":
      raise SystemExit(f"ERROR: {flag}: local_cluster runs --strategy=multi_worker")
  flags = [flag for flag in train_flags if flag != "--strategy=multi_worker"]
  return [sys.executable, "-m", program, "--strategy=multi_worker", *flags]


def _stream(process, prefix, out, lock):
  for line in iter(process.stdout.readline, ""):
    with lock:
      out.write(f"{prefix} {line}" if line.endswith("\n") else f"{prefix} {line}\n")
      out.flush()
  process.stdout.close()


class LocalCluster:
  """Starts, watches and stops the worker processes."""

  def __init__(self, num_workers, train_flags, *, grace_secs=60, program=TRAIN_MODULE,
               out=None, env=None):
    if num_workers < 1:
      print(f"ERROR: --num_workers={num_workers}: expected an integer >= 1", file=sys.stderr)
      raise SystemExit(2)
    self.num_workers = num_workers
    self.command = _worker_command(train_flags, program)
    self.grace_secs = grace_secs
    self.out = out or sys.stderr
    self.env = dict(os.environ if env is None else env)
    self.processes = []
    self._threads = []
    self._lock = threading.Lock()
    self._stop_requested = None

  def say(self, text):
    with self._lock:
      self.out.write(f"[local_cluster] {text}\n")
      self.out.flush()

  def start(self):
    ports = free_ports(self.num_workers)
    configs = tf_configs(self.num_workers, ports)
    self.say(f"{self.num_workers} worker(s) on {', '.join(f'{LOOPBACK}:{p}' for p in ports)}; "
             "worker 0 is the chief")
    for index, config in enumerate(configs):
      env = dict(self.env, TF_CONFIG=config, PYTHONUNBUFFERED="1")
      process = subprocess.Popen(self.command, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, bufsize=1,
                                 errors="replace", start_new_session=True)
      self.processes.append(process)
      thread = threading.Thread(target=_stream, args=(process, f"[worker {index}]", self.out,
                                                      self._lock), daemon=True)
      thread.start()
      self._threads.append(thread)
    return self

  def request_stop(self, signum=signal.SIGTERM):
    """Passes a stop signal to every running worker (they save and stop)."""
    if self._stop_requested is None:
      self._stop_requested = time.time()
    for process in self.processes:
      if process.poll() is None:
        try:
          process.send_signal(signum)
        except ProcessLookupError:
          pass

  def _kill_remaining(self, why):
    for index, process in enumerate(self.processes):
      if process.poll() is None:
        self.say(f"killing worker {index} ({why})")
        try:
          os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
          process.kill()

  def wait(self, poll_secs=0.2):
    """Waits for the workers; returns the chief's exit code."""
    chief = self.processes[0]
    ended_at = None  # when the chief ended, or a worker failed
    while True:
      codes = [process.poll() for process in self.processes]
      if all(code is not None for code in codes):
        break
      now = time.time()
      if ended_at is None and (codes[0] is not None or
                               any(code not in (None, 0) for code in codes)):
        ended_at = now
      deadlines = [t + self.grace_secs for t in (ended_at, self._stop_requested) if t]
      if deadlines and now > min(deadlines):
        self._kill_remaining(f"still running {self.grace_secs:g} s after "
                             f"{'the stop request' if self._stop_requested else 'the chief or a worker ended'}")
        for process in self.processes:
          process.wait()
        break
      time.sleep(poll_secs)
    for thread in self._threads:
      thread.join(timeout=5)
    codes = [process.returncode for process in self.processes]
    self.say("exit codes: " + ", ".join(f"worker {i}: {code}" for i, code in enumerate(codes)))
    if codes[0] == 0 and any(codes[1:]):
      self.say("the chief finished but another worker did not: see its log above")
    return chief.returncode


def _exit_status(code):
  """A process exit status for sys.exit: negative (killed by a signal) -> 128 + signal."""
  return 128 - code if code < 0 else code


def main(argv=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  if "--" in argv:
    split = argv.index("--")
    own, train_flags = argv[:split], argv[split + 1:]
  else:
    own, train_flags = argv, []
  parser = argparse.ArgumentParser(
      prog="python -m yt8m_fusion.local_cluster",
      description="Runs train.py as a multi-worker job on this machine (one process per "
                  "worker, MultiWorkerMirroredStrategy over 127.0.0.1).",
      epilog="Example: python -m yt8m_fusion.local_cluster --num_workers=2 -- "
             "--train_dir=/tmp/mw --train_data_pattern='/data/train*.tfrecord'")
  parser.add_argument("--num_workers", type=int, default=2, help="worker processes (default 2)")
  parser.add_argument("--grace_secs", type=float, default=60.0,
                      help="seconds the other workers get to finish after the chief ended (or "
                           "a stop was asked) before they are killed (default 60)")
  parser.add_argument("--program", default=TRAIN_MODULE, help=argparse.SUPPRESS)
  args = parser.parse_args(own)
  cluster = LocalCluster(args.num_workers, train_flags, grace_secs=args.grace_secs,
                         program=args.program)

  def on_signal(signum, frame):  # pylint: disable=unused-argument
    cluster.say(f"received signal {signum}: asking the workers to save and stop")
    cluster.request_stop(signal.SIGTERM)

  signal.signal(signal.SIGINT, on_signal)
  signal.signal(signal.SIGTERM, on_signal)
  cluster.start()
  return _exit_status(cluster.wait())


if __name__ == "__main__":
  sys.exit(main())
