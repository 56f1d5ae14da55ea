"""Reliability, part 2: no fault loses work, and serving survives malformed requests.

Real signals to real training processes: SIGKILL mid-training then resume (the step
count continues, every checkpoint restores); SIGTERM (preemption) saves and exits 143;
SIGKILL while the SavedModel and the CSV are being written leaves no final file (and
the hidden temporary one is not mistaken for an export). In this process: a NaN loss
stops training naming the step and keeps the last good checkpoint; a full disk while
saving gives one clear line and leaves the previous checkpoint usable (a real small
tmpfs when this runs as root, else skipped; plus an injected ENOSPC that always runs).
"""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from programs import REPO, run_main
from yt8m_fusion import data as yt8m_data
from yt8m_fusion import io_utils
from yt8m_fusion import models
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion import training
from yt8m_fusion.errors import UserError

NUM_CLASSES = 10
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
TIMEOUT = 240


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  return yt8m_data.generate_dataset(str(tmp_path_factory.mktemp("faults_data")), num_videos=40,
                                    num_classes=NUM_CLASSES, seed=11, num_shards=2)


def _train_args(train_dir, dataset):
  return ["--model=LogisticModel", f"--num_classes={NUM_CLASSES}", "--batch_size=2",
          f"--train_dir={train_dir}", f"--train_data_pattern={dataset['video']['train']}",
          "--export_model_steps=2", "--log_every_n_steps=1", "--num_epochs=1000",
          "--max_checkpoints_to_keep=3"]


def _start(log_path, script, *args):
  log = open(log_path, "w")
  process = subprocess.Popen([sys.executable, script, *args], cwd=REPO, env=ENV,
                             stdout=log, stderr=subprocess.STDOUT)
  log.close()
  return process


def _wait_for(condition, process, what, interval=0.02):
  """Polls `condition()` until it returns something true; fails if the process ends first."""
  deadline = time.time() + TIMEOUT
  while time.time() < deadline:
    found = condition()
    if found:
      return found
    if process.poll() is not None:
      raise AssertionError(f"the process ended (exit {process.returncode}) before {what}")
    time.sleep(interval)
  process.kill()
  raise AssertionError(f"timed out waiting for {what}")


def _latest_step(train_dir):
  try:
    text = open(os.path.join(train_dir, "checkpoint")).read()
  except OSError:
    return None
  match = re.search(r'^model_checkpoint_path: "model\.ckpt-(\d+)"', text, re.M)
  return int(match.group(1)) if match else None


def _logged_steps(log_path):
  return [int(step) for step in re.findall(r"training step (\d+) \|", open(log_path).read())]


def _hidden_temp(folder, prefix):
  """Names in `folder` starting with `prefix` (a temporary file being written)."""
  try:
    return [name for name in os.listdir(folder) if name.startswith(prefix)]
  except FileNotFoundError:
    return []


def _export_is_complete(path):
  return (os.path.isfile(os.path.join(path, "saved_model.pb"))
          and os.path.isdir(os.path.join(path, "variables"))
          and os.path.isfile(os.path.join(path, "assets.extra", "model_flags.json")))


@pytest.fixture(scope="module")
def interrupted_run(dataset, tmp_path_factory):
  """SIGKILL mid-training, resume, SIGTERM, resume and SIGKILL while exporting, rerun."""
  root = tmp_path_factory.mktemp("faults")
  train_dir = str(root / "train")
  args = _train_args(train_dir, dataset)
  logs = {name: str(root / f"{name}.log") for name in ("killed", "terminated", "export_killed",
                                                       "finished")}
  run = {"dir": train_dir, "logs": logs, "root": str(root)}

  # 1. SIGKILL once a few checkpoints exist.
  process = _start(logs["killed"], "train.py", *args, "--max_steps=1000000", "--noexport")
  _wait_for(lambda: (_latest_step(train_dir) or 0) >= 4, process, "checkpoint 4")
  process.send_signal(signal.SIGKILL)
  run["killed_rc"] = process.wait(timeout=TIMEOUT)
  run["killed_checkpoint"] = _latest_step(train_dir)
  run["killed_last_logged"] = max(_logged_steps(logs["killed"]))

  # 2. The same command resumes; SIGTERM (preemption) a few steps later.
  process = _start(logs["terminated"], "train.py", *args, "--max_steps=1000000", "--noexport")
  _wait_for(lambda: any(step >= run["killed_checkpoint"] + 3
                        for step in _logged_steps(logs["terminated"])), process,
            "3 steps after resuming")
  process.send_signal(signal.SIGTERM)
  run["terminated_rc"] = process.wait(timeout=TIMEOUT)
  run["terminated_checkpoint"] = _latest_step(train_dir)

  # 3. Resume to a bounded --max_steps; SIGKILL as soon as the export's temporary folder
  #    appears (the SavedModel is being written).
  export_base = os.path.join(train_dir, "export")
  run["final_step"] = run["terminated_checkpoint"] + 2
  bounded = [*args, f"--max_steps={run['final_step']}"]
  process = _start(logs["export_killed"], "train.py", *bounded)
  run["export_temp_seen"] = _wait_for(lambda: _hidden_temp(export_base, ".tmp-"), process,
                                      "the export's temporary folder", interval=0.001)
  process.send_signal(signal.SIGKILL)
  run["export_killed_rc"] = process.wait(timeout=TIMEOUT)
  run["export_after_kill"] = sorted(os.listdir(export_base))

  # 4. The same command again: nothing left to train; it exports.
  process = _start(logs["finished"], "train.py", *bounded)
  run["finished_rc"] = process.wait(timeout=TIMEOUT)
  run["export"] = os.path.join(export_base, str(run["final_step"]))
  return run


def test_sigkill_then_the_same_command_resumes_and_the_step_count_continues(interrupted_run):
  run = interrupted_run
  assert run["killed_rc"] == -signal.SIGKILL
  killed = run["killed_checkpoint"]
  assert killed >= 4
  log = open(run["logs"]["terminated"]).read()
  assert f"Resuming from {run['dir']}/model.ckpt-{killed} (step {killed}" in log
  steps = _logged_steps(run["logs"]["terminated"])
  assert steps[0] == killed + 1 and steps == sorted(steps)


def test_sigterm_saves_a_checkpoint_then_exits_143(interrupted_run):
  run = interrupted_run
  assert run["terminated_rc"] == 143
  log = open(run["logs"]["terminated"]).read()
  stopped = _logged_steps(run["logs"]["terminated"])[-1]
  assert run["terminated_checkpoint"] == stopped, "the checkpoint is at the step it stopped"
  assert f"Received SIGTERM: saved {run['dir']}/model.ckpt-{stopped}" in log
  assert "Traceback" not in log
  assert f"Resuming from {run['dir']}/model.ckpt-{stopped}" in open(
      run["logs"]["export_killed"]).read()


def test_every_listed_checkpoint_restores(interrupted_run):
  state = tf.train.get_checkpoint_state(interrupted_run["dir"])
  paths = list(state.all_model_checkpoint_paths)
  assert len(paths) == 3 and paths[-1].endswith(f"model.ckpt-{interrupted_run['final_step']}")
  config = train_dir_lib.load_config(interrupted_run["dir"])
  for path in paths:
    model = models.build_model(config)
    train_dir_lib.restore_weights(model, os.path.join(interrupted_run["dir"], path))
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_killed_while_exporting_leaves_no_export_and_a_rerun_exports(interrupted_run):
  run = interrupted_run
  assert run["export_killed_rc"] == -signal.SIGKILL
  assert run["export_temp_seen"] and all(n.startswith(".") for n in run["export_temp_seen"])
  versions = [name for name in run["export_after_kill"] if name.isdigit()]
  # TF Serving loads numeric folders only: none, or a complete one.
  assert all(_export_is_complete(os.path.join(run["dir"], "export", v)) for v in versions)
  assert str(run["final_step"]) not in versions, "killed while writing: no version folder"
  assert run["finished_rc"] == 0, open(run["logs"]["finished"]).read()[-3000:]
  log = open(run["logs"]["finished"]).read()
  assert f"Already at step {run['final_step']}" in log
  assert _export_is_complete(run["export"])
  # The rerun also removed the killed export's hidden temporary folder.
  assert os.listdir(os.path.join(run["dir"], "export")) == [str(run["final_step"])]


def test_serving_survives_malformed_requests(interrupted_run, dataset, tmp_path):
  """serving_default with malformed bytes fails that request only; later ones still work."""
  script = textwrap.dedent(f"""
      import sys
      import tensorflow as tf
      files = sorted(tf.io.gfile.glob({dataset['video']['test']!r}))
      good = [r.numpy() for r in tf.data.TFRecordDataset(files)]
      serve = tf.saved_model.load({interrupted_run['export']!r}).signatures["serving_default"]
      before = serve(example_bytes=tf.constant(good))["predictions"].numpy()
      failures = []
      for request in ([b"garbage"], [good[0], b"\\xff\\xfe\\x00garbage\\x88"], [b""],
                      [good[0][:-9]]):
        try:
          serve(example_bytes=tf.constant(request))
          failures.append("accepted")
        except tf.errors.InvalidArgumentError:
          failures.append("InvalidArgumentError")
        except UnicodeDecodeError:
          # The eager Python runtime fails to decode a message that quotes binary bytes;
          # still an error for this request only (TF Serving returns INVALID_ARGUMENT).
          failures.append("error")
      after = serve(example_bytes=tf.constant(good))["predictions"].numpy()
      assert "yt8m_fusion" not in sys.modules
      print("FAILURES", ",".join(failures))
      print("SAME", bool((before == after).all()), len(good))
      """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=ENV, timeout=TIMEOUT, check=False)
  assert result.returncode == 0, result.stderr[-4000:]
  failures = re.search(r"FAILURES (.*)", result.stdout).group(1).split(",")
  assert failures[0] == "InvalidArgumentError"
  assert "accepted" not in failures, failures
  assert "SAME True" in result.stdout


def test_killed_while_writing_the_csv_leaves_no_csv(interrupted_run, dataset, tmp_path):
  output = str(tmp_path / "predictions.csv")
  process = _start(str(tmp_path / "inference.log"), "inference.py",
                   f"--train_dir={interrupted_run['dir']}", f"--output_file={output}",
                   f"--input_data_pattern={dataset['video']['train']}", "--batch_size=1")
  seen = _wait_for(lambda: _hidden_temp(str(tmp_path), ".predictions.csv.tmp-"), process,
                   "the CSV's temporary file", interval=0.001)
  process.send_signal(signal.SIGKILL)
  assert process.wait(timeout=TIMEOUT) == -signal.SIGKILL
  assert not os.path.exists(output), "no final CSV after a kill while writing"
  assert sorted(os.listdir(tmp_path)) == sorted(["inference.log", *seen])
  assert all(name.startswith(".") for name in seen)


def test_an_error_while_writing_keeps_the_previous_file_whole(tmp_path):
  path = str(tmp_path / "predictions.csv")
  io_utils.write_text_atomic(path, "VideoId,LabelConfidencePairs\nold,1 0.5\n")
  with pytest.raises(RuntimeError):
    with io_utils.atomic_output(path) as handle:
      handle.write("VideoId,LabelConfidencePairs\nnew,")
      raise RuntimeError("killed mid-write")
  assert open(path).read() == "VideoId,LabelConfidencePairs\nold,1 0.5\n"
  assert os.listdir(tmp_path) == ["predictions.csv"]


def test_nan_loss_stops_training_naming_the_step_and_keeps_the_last_good_checkpoint(
    dataset, tmp_path):
  train_dir = str(tmp_path / "train")
  result = run_main("train", *_train_args(train_dir, dataset), "--export_model_steps=1",
                    "--max_steps=20", "--optimizer=SGD", "--clip_gradient_norm=0",
                    "--base_learning_rate=1e38", "--noexport")
  assert result.returncode == 2 and "Traceback" not in result.stderr
  match = re.search(r"ERROR: the training loss became NaN or Inf at step (\d+); .*"
                    r"the last good checkpoint is (\S+) ", result.stderr)
  assert match, result.stderr
  step, last_good = int(match.group(1)), match.group(2)
  assert last_good == os.path.join(train_dir, f"model.ckpt-{step - 1}")
  assert _latest_step(train_dir) == step - 1
  assert not [n for n in os.listdir(train_dir) if n.startswith(f"model.ckpt-{step}.")]
  model = models.build_model(train_dir_lib.load_config(train_dir))
  train_dir_lib.restore_weights(model, last_good)
  assert all(np.isfinite(w).all() for w in model.get_weights())


def _mount_tmpfs(path, size):
  if os.geteuid() != 0 or not shutil.which("mount"):
    pytest.skip("mounting a small tmpfs needs root")
  os.makedirs(path, exist_ok=True)
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                          capture_output=True, text=True, check=False)
  if result.returncode != 0:
    pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


def _fill(folder, leave_bytes):
  """Fills the file system of `folder` until `leave_bytes` (about) are left."""
  stats = os.statvfs(folder)
  free = stats.f_bavail * stats.f_frsize
  with open(os.path.join(folder, f"filler-{leave_bytes}"), "wb") as handle:
    try:
      handle.write(b"\0" * max(0, free - leave_bytes))
    except OSError as error:
      assert error.errno == errno.ENOSPC


def test_full_disk_while_saving_a_checkpoint_or_a_csv(dataset, tmp_path):
  disk = str(tmp_path / "disk")
  _mount_tmpfs(disk, "2m")
  try:
    train_dir = os.path.join(disk, "train")
    args = [*_train_args(train_dir, dataset), "--noexport"]
    assert run_main("train", *args, "--max_steps=2").returncode == 0
    _fill(disk, 64 * 1024)  # room for model_flags.json and logs, not for a checkpoint
    result = run_main("train", *args, "--max_steps=4")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "could not save a checkpoint" in errors[0], result.stderr
    assert "at step 4: the disk is full (No space left on device)" in errors[0]
    assert f"the previous checkpoint {train_dir}/model.ckpt-2 is intact" in errors[0]
    assert _latest_step(train_dir) == 2
    assert not [name for name in os.listdir(train_dir) if name.startswith("model.ckpt-4")]
    model = models.build_model(train_dir_lib.load_config(train_dir))
    train_dir_lib.restore_weights(model, os.path.join(train_dir, "model.ckpt-2"))

    _fill(disk, 0)
    output = os.path.join(disk, "predictions.csv")
    result = run_main("inference", f"--train_dir={train_dir}", f"--output_file={output}",
                      f"--input_data_pattern={dataset['video']['test']}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"ERROR: cannot write {output}: the disk is full" in result.stderr
    assert not [name for name in os.listdir(disk) if "predictions.csv" in name]

    for name in os.listdir(disk):
      if name.startswith("filler"):
        os.remove(os.path.join(disk, name))
    result = run_main("train", *args, "--max_steps=4")
    assert result.returncode == 0 and _latest_step(train_dir) == 4
  finally:
    subprocess.run(["umount", disk], check=False)


def test_injected_enospc_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
  """The same path without root: the checkpoint write fails with ENOSPC."""
  config = models.ModelConfig(model="LogisticModel", feature_names=["mean_rgb"],
                              feature_sizes=[1024], num_classes=NUM_CLASSES)
  model = models.build_model(config)
  options = training.TrainOptions(batch_size=2)
  optimizer = training.build_trainer(model, config, options).optimizer
  keeper = training.CheckpointKeeper(str(tmp_path), model, optimizer)
  first = keeper.save()
  optimizer.iterations.assign(7)

  def full_disk(*unused_args, **unused_kwargs):
    os.makedirs(os.path.join(str(tmp_path), "model.ckpt-7_temp"))
    raise tf.errors.ResourceExhaustedError(
        None, None, f"{tmp_path}/model.ckpt-7_temp/part-00000; No space left on device")

  monkeypatch.setattr(keeper.checkpoint, "_write", full_disk)  # pylint: disable=protected-access
  with pytest.raises(UserError) as info:
    keeper.save()
  message = str(info.value)
  assert "at step 7: the disk is full (No space left on device)" in message
  assert f"the previous checkpoint {first} is intact" in message and "\n" not in message
  assert keeper.manager.latest_checkpoint == first
  assert not [name for name in os.listdir(tmp_path) if name.startswith("model.ckpt-7")]
  train_dir_lib.restore_weights(models.build_model(config), first)
