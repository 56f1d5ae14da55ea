"""One writer per train_dir (yt8m_fusion/training/lock.py), with real processes.

A second train.py on a held train_dir exits 2 with one line naming the holder while the
first finishes normally; eval.py and inference.py run beside a live hold; a SIGKILLed
trainer's hold is taken over by the next run (same machine: the pid is gone); a hold of
another host is live while its heartbeat is fresh and taken over once it is stale, on a
local folder and on a tf.io.gfile file system (ram://, where a pid means nothing).
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from programs import REPO
from yt8m_fusion import data as yt8m_data
from yt8m_fusion.errors import UserError
from yt8m_fusion.training import lock

NUM_CLASSES = 10
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
TIMEOUT = 300


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  return yt8m_data.generate_dataset(str(tmp_path_factory.mktemp("lock_data")), num_videos=40,
                                    num_classes=NUM_CLASSES, seed=3, num_shards=2)


def _train_args(train_dir, dataset, max_steps):
  return ["train.py", "--model=LogisticModel", f"--num_classes={NUM_CLASSES}", "--batch_size=2",
          f"--train_dir={train_dir}", f"--train_data_pattern={dataset['video']['train']}",
          "--export_model_steps=2", "--num_epochs=1000", f"--max_steps={max_steps}"]


def _start(log_path, *args):
  with open(log_path, "w") as log:
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=ENV, stdout=log,
                            stderr=subprocess.STDOUT)


def _run(*args):
  return subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True,
                        text=True, timeout=TIMEOUT, check=False)


def _holder(train_dir):
  try:
    with open(lock.lock_path(train_dir)) as handle:
      return json.load(handle)
  except (OSError, ValueError):
    return None


def _wait_for_holder(train_dir, process):
  deadline = time.time() + TIMEOUT
  while time.time() < deadline:
    holder = _holder(train_dir)
    if holder and holder.get("pid") == process.pid:
      return holder
    if process.poll() is not None:
      raise AssertionError(f"train.py ended (exit {process.returncode}) before holding "
                           f"{train_dir}")
    time.sleep(0.05)
  process.kill()
  raise AssertionError("timed out waiting for the hold")


def _error_lines(stderr):
  return [line for line in stderr.splitlines() if line.startswith("ERROR:")]


@pytest.fixture(scope="module")
def two_trainers(dataset, tmp_path_factory):
  """train.py A holds the train_dir (paused by SIGSTOP, so the timing is certain) while a
  second train.py, eval.py and inference.py run; then A goes on and finishes."""
  root = tmp_path_factory.mktemp("lock")
  train_dir = str(root / "train")
  first = _run(*_train_args(train_dir, dataset, 2), "--noexport")
  assert first.returncode == 0, first.stderr[-3000:]
  result = {"dir": train_dir}
  holder = _start(str(root / "holder.log"), *_train_args(train_dir, dataset, 6), "--noexport")
  try:
    result["holder_record"] = _wait_for_holder(train_dir, holder)
    holder.send_signal(signal.SIGSTOP)
    result["before"] = sorted(os.listdir(train_dir))
    result["second"] = _run(*_train_args(train_dir, dataset, 6))
    result["second_new_model"] = _run(*_train_args(train_dir, dataset, 6), "--start_new_model")
    result["after"] = sorted(os.listdir(train_dir))
    result["eval"] = _run("eval.py", f"--train_dir={train_dir}", "--run_once",
                          f"--eval_data_pattern={dataset['video']['validate']}")
    result["inference"] = _run("inference.py", f"--train_dir={train_dir}",
                               f"--input_data_pattern={dataset['video']['test']}",
                               f"--output_file={root / 'predictions.csv'}")
  finally:
    holder.send_signal(signal.SIGCONT)
  result["holder_rc"] = holder.wait(timeout=TIMEOUT)
  result["holder_log"] = open(root / "holder.log").read()
  return result


def test_second_trainer_is_refused_in_one_line(two_trainers):
  holder = two_trainers["holder_record"]
  for name in ("second", "second_new_model"):
    run = two_trainers[name]
    assert run.returncode == 2, run.stderr[-3000:]
    errors = _error_lines(run.stderr)
    assert len(errors) == 1 and "Traceback" not in run.stderr
    line = errors[0]
    assert f"--train_dir={two_trainers['dir']} is in use" in line
    assert f"pid {holder['pid']} on host {socket.gethostname()}" in line
    assert f"since {holder['started']}" in line
    assert lock.lock_path(two_trainers["dir"]) in line and "wait for it to finish" in line
  # Nothing written or removed by the refused runs (--start_new_model removes nothing).
  assert two_trainers["after"] == two_trainers["before"]


def test_holder_finishes_normally_and_releases(two_trainers):
  assert two_trainers["holder_rc"] == 0, two_trainers["holder_log"][-3000:]
  assert "Taking over" not in two_trainers["holder_log"]
  assert not os.path.exists(lock.lock_path(two_trainers["dir"]))
  with open(os.path.join(two_trainers["dir"], "checkpoint")) as handle:
    assert 'model_checkpoint_path: "model.ckpt-6"' in handle.read()


def test_readers_run_beside_a_live_hold(two_trainers):
  for name in ("eval", "inference"):
    run = two_trainers[name]
    assert run.returncode == 0, f"{name}: {run.stderr[-3000:]}"
  assert os.path.isfile(os.path.join(two_trainers["dir"], "eval", "metrics-2.json"))


def test_sigkilled_trainer_is_taken_over(dataset, tmp_path):
  train_dir = str(tmp_path / "train")
  process = _start(str(tmp_path / "killed.log"), *_train_args(train_dir, dataset, 1000000),
                   "--noexport")
  record = _wait_for_holder(train_dir, process)
  process.send_signal(signal.SIGKILL)
  process.wait(timeout=TIMEOUT)
  assert _holder(train_dir) == record  # SIGKILL leaves the hold behind...
  rerun = _run(*_train_args(train_dir, dataset, 2), "--noexport")
  assert rerun.returncode == 0, rerun.stderr[-3000:]  # ...and the next run takes it over
  assert (f"is stale (process {record['pid']} no longer exists)" in rerun.stderr
          and "Taking over" in rerun.stderr)
  assert not os.path.exists(lock.lock_path(train_dir))


def test_sigterm_before_training_releases_the_hold(dataset, tmp_path):
  """SIGTERM while train.py holds the train_dir but has not started training (here:
  paused just after taking it) ends the process through `finally`: no hold is left."""
  train_dir = str(tmp_path / "train")
  process = _start(str(tmp_path / "terminated.log"), *_train_args(train_dir, dataset, 4),
                   "--noexport")
  _wait_for_holder(train_dir, process)
  process.send_signal(signal.SIGTERM)
  assert process.wait(timeout=TIMEOUT) == 143
  assert not os.path.exists(lock.lock_path(train_dir))


# -- the staleness rules, in this process --------------------------------------------------

def _record(**fields):
  now = lock._utc_now()  # pylint: disable=protected-access
  record = {"host": "other-host", "pid": 4242, "process_start": 1, "boot_id": "b",
            "started": now, "heartbeat": now, "token": "t"}
  record.update(fields)
  return record


def _ago(secs):
  return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() - secs))


def test_stale_rules():
  here = lock._own_record()  # pylint: disable=protected-access
  assert lock.stale_reason(_record()) is None  # another host, fresh heartbeat
  assert "no heartbeat for 60 min" in lock.stale_reason(_record(heartbeat=_ago(3600)))
  same = dict(host=here["host"], boot_id=here["boot_id"])
  sleeper = subprocess.Popen(["sleep", "60"])
  try:
    started = lock.process_start_time(sleeper.pid)
    assert lock.stale_reason(_record(pid=sleeper.pid, process_start=started, **same,
                                     heartbeat=_ago(3600))) is None  # a live pid wins
    assert "now belongs to another process" in lock.stale_reason(
        _record(pid=sleeper.pid, process_start=started + 1, **same))
  finally:
    sleeper.kill()
    sleeper.wait()
  assert "no longer exists" in lock.stale_reason(_record(pid=sleeper.pid, **same))
  assert "restarted since" in lock.stale_reason(_record(host=here["host"], boot_id="old"))


def test_live_pid_without_flock_is_respected(tmp_path):
  """A hold naming a live process on this machine is refused even when no flock backs it
  (a file system without file locks); once that process is gone it is taken over."""
  here = lock._own_record()  # pylint: disable=protected-access
  sleeper = subprocess.Popen(["sleep", "60"])
  path = lock.lock_path(str(tmp_path))
  try:
    with open(path, "w") as handle:
      json.dump(_record(host=here["host"], boot_id=here["boot_id"], pid=sleeper.pid,
                        process_start=lock.process_start_time(sleeper.pid)), handle)
    with pytest.raises(UserError, match=f"pid {sleeper.pid} on host {here['host']}"):
      with lock.hold(str(tmp_path)):
        pass
  finally:
    sleeper.kill()
    sleeper.wait()
  with lock.hold(str(tmp_path)) as held:
    assert _holder(str(tmp_path))["token"] == held.record["token"]
  assert not os.path.exists(path)


@pytest.mark.parametrize("storage", ["local", "ram"])
def test_foreign_host_by_heartbeat(storage, tmp_path, monkeypatch, caplog):
  """Another host's hold: refused while its heartbeat is fresh, taken over when stale; on
  a local folder and on a tf.io.gfile file system without file locks (ram://)."""
  monkeypatch.setattr(lock, "VERIFY_DELAY_SECS", 0.0)
  folder = str(tmp_path) if storage == "local" else f"ram://lock-{os.getpid()}/train"
  tf.io.gfile.makedirs(folder)
  path = lock.lock_path(folder)

  def plant(record):
    if tf.io.gfile.exists(path):  # (ram:// appends to an existing file)
      tf.io.gfile.remove(path)
    with tf.io.gfile.GFile(path, "w") as handle:
      handle.write(json.dumps(record))

  plant(_record())
  with pytest.raises(UserError, match="pid 4242 on host other-host"):
    with lock.hold(folder):
      pass
  assert json.loads(tf.io.gfile.GFile(path).read())["token"] == "t"  # left in place
  plant(_record(heartbeat=_ago(2 * lock.STALE_AFTER_SECS)))
  with caplog.at_level(logging.WARNING):
    with lock.hold(folder) as held:
      assert json.loads(tf.io.gfile.GFile(path).read())["token"] == held.record["token"]
      with lock.hold(folder) as nested:  # this process again (train.py around run())
        assert nested is held
  assert "Taking over" in caplog.text and "no heartbeat for 20 min" in caplog.text
  assert not tf.io.gfile.exists(path)


def test_released_on_error(tmp_path):
  with pytest.raises(UserError):
    with lock.hold(str(tmp_path)):
      raise UserError("bad data")
  assert not os.path.exists(lock.lock_path(str(tmp_path)))


def test_heartbeat_is_refreshed(tmp_path, monkeypatch):
  monkeypatch.setattr(lock, "HEARTBEAT_SECS", 0.05)
  with lock.hold(str(tmp_path)) as held:
    held.record["started"] = "marker"  # written again with each heartbeat
    deadline = time.time() + 30
    while _holder(str(tmp_path)).get("started") != "marker" and time.time() < deadline:
      time.sleep(0.05)
    assert _holder(str(tmp_path))["started"] == "marker"
