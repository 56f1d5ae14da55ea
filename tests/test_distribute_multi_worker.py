"""Multi-worker training for real: two train.py processes on 127.0.0.1 with
MultiWorkerMirroredStrategy (python -m yt8m_fusion.local_cluster), against one process.

The data make the comparison exact up to float rounding: two training files of 8
records, no shuffling. Worker i reads file i (sharding by file), 4 records per step;
the single process reads both files interleaved (record k of file 0, record k of file
1, ...), 8 per step, so each of its steps sees the union of the workers' batches, and
every epoch reads the records in the same order.

A two-worker job is started; worker 1 is killed after the first checkpoint (the chief
must stop with an error naming it, within the collective timeout); the job is started
again and must resume from the chief's checkpoint. The reference is one process
stopped at the same step and resumed the same way (a resumed run reads its epoch
from the start), so the weights must agree at both steps.
"""

import os
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from programs import run_program
from yt8m_fusion import data as yt8m_data
from yt8m_fusion.cli.local_cluster import LocalCluster

COMMON = ["--model=LogisticModel", "--num_classes=10", "--noshuffle", "--seed=1",
          "--export_model_steps=2", "--log_every_n_steps=1", "--num_epochs=100000"]
TIMEOUT_SECS = 30


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  folder = tmp_path_factory.mktemp("mw_data")
  info = yt8m_data.generate_dataset(str(folder), num_videos=24, num_classes=10, seed=1,
                                    num_shards=2, split_fractions=(2 / 3, 1 / 6, 1 / 6))
  files = sorted(tf.io.gfile.glob(info["video"]["train"]))
  assert [sum(1 for _ in tf.data.TFRecordDataset(f)) for f in files] == [8, 8]
  return info


@pytest.fixture(scope="module")
def job(dataset, tmp_path_factory):
  """Two workers killed after the first checkpoint, restarted for 2 more steps; and the
  same in one process (global batch 8), stopped at the same step and resumed."""
  root = tmp_path_factory.mktemp("multi")
  train_dir, single_dir = str(root / "train"), str(root / "single")
  temp_dirs = [root / "tmp_first", root / "tmp_second"]
  for folder in temp_dirs:
    folder.mkdir()
  data = f"--train_data_pattern={dataset['video']['train']}"
  flags = [*COMMON, f"--train_dir={train_dir}", "--batch_size=4", data,
           f"--collective_timeout_secs={TIMEOUT_SECS}"]

  log_path = root / "first.log"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(temp_dirs[0]))
  with open(log_path, "w") as log:
    cluster = LocalCluster(2, [*flags, "--max_steps=100000", "--noexport"], grace_secs=120,
                           out=log, env=env).start()
    try:
      deadline = time.time() + 240
      while not os.path.exists(os.path.join(train_dir, "model.ckpt-2.index")):
        assert time.time() < deadline, "no checkpoint within 240 s"
        assert cluster.processes[0].poll() is None, "the chief ended early"
        time.sleep(0.05)
      cluster.processes[1].kill()
      killed_at = time.time()
      chief_code = cluster.wait()
      stopped_after = time.time() - killed_at
    finally:
      for process in cluster.processes:
        if process.poll() is None:
          process.kill()
  step = latest_step(train_dir)
  first = {"log": log_path.read_text(), "chief_code": chief_code,
           "stopped_after": stopped_after, "step": step}

  # The reference (one process: to `step`, then resumed) runs beside the restarted job.
  errors = []

  def single_process():
    single = [*COMMON, f"--train_dir={single_dir}", "--batch_size=8", data, "--noexport"]
    try:
      run_program("train.py", *single, f"--max_steps={step}")
      run_program("train.py", *single, f"--max_steps={step + 2}")
    except BaseException as error:  # pylint: disable=broad-except
      errors.append(error)

  reference = threading.Thread(target=single_process)
  reference.start()
  second = run_program("yt8m_fusion.local_cluster", "--num_workers=2", "--", *flags,
                       f"--max_steps={step + 2}", env={"TMPDIR": str(temp_dirs[1])},
                       timeout=300)
  reference.join()
  if errors:
    raise errors[0]
  return {"dir": train_dir, "single": single_dir, "first": first,
          "second": second.stderr + second.stdout, "resume_steps": step + 2,
          "temp_dirs": temp_dirs}


def latest_step(train_dir):
  return int(tf.train.latest_checkpoint(train_dir).rsplit("-", 1)[1])


def weights(checkpoint):
  reader = tf.train.load_checkpoint(checkpoint)
  names = [name for name in reader.get_variable_to_shape_map()
           if name.startswith("optimizer/_trainable_variables/")]
  return {name: reader.get_tensor(name) for name in names}


def assert_same_weights(multi_checkpoint, single_checkpoint):
  multi, single = weights(multi_checkpoint), weights(single_checkpoint)
  assert sorted(multi) == sorted(single) and len(multi) >= 2
  for name, value in single.items():
    np.testing.assert_allclose(multi[name], value, rtol=1e-5, atol=1e-5, err_msg=name)


def test_a_killed_worker_stops_the_chief_with_a_clear_error(job):
  first = job["first"]
  assert first["chief_code"] == 1, first["log"][-3000:]
  assert "ERROR: worker 0: " in first["log"]
  assert "worker 1" in first["log"].split("ERROR: worker 0: ", 1)[1].splitlines()[0]
  assert first["stopped_after"] < TIMEOUT_SECS + 30
  assert "Traceback" not in first["log"]


def test_the_restarted_job_resumes_from_the_chiefs_checkpoint(job):
  log, step = job["second"], job["first"]["step"]
  assert "exit codes: worker 0: 0, worker 1: 0" in log
  assert f"[worker 0]" in log and f"Resuming from {job['dir']}/model.ckpt-{step}" in log
  assert f"[worker 1]" in log and f"worker 1: took the chief's training state at step {step}" \
      in log
  rows = open(os.path.join(job["dir"], "train_log.csv")).read().splitlines()[1:]
  steps = [int(row.split(",")[0]) for row in rows]
  assert steps == sorted(steps) and steps[-1] == job["resume_steps"]
  assert f"training step {step + 1} |" in log and "training step 1 |" not in log


def test_only_the_chief_writes_checkpoints_and_exports(job):
  names = set(os.listdir(job["dir"]))
  assert {"model_flags.json", "checkpoint", "train_log.csv"} <= names
  assert f"model.ckpt-{job['resume_steps']}.index" in names
  assert os.listdir(os.path.join(job["dir"], "export")) == [str(job["resume_steps"])]
  assert sum(name.startswith("events.out.tfevents") for name in names) == 2  # one per run
  # Worker 1 saved into a temporary folder, removed when it ended.
  assert "[worker 1]" in job["second"] and "Saved checkpoint" in job["second"]
  worker1_saves = [line for line in job["second"].splitlines()
                   if line.startswith("[worker 1]") and "Saved checkpoint" in line]
  assert worker1_saves and all(job["dir"] not in line for line in worker1_saves)
  assert os.listdir(job["temp_dirs"][1]) == []
  assert not any(line.startswith("[worker 1]") and "training step" in line
                 for line in job["second"].splitlines())


def test_two_workers_train_the_same_weights_as_one_process(job):
  # Up to the kill (plain multi-worker training), and after the restart (resumed).
  step = job["first"]["step"]
  for at in (step, job["resume_steps"]):
    assert_same_weights(os.path.join(job["dir"], f"model.ckpt-{at}"),
                        os.path.join(job["single"], f"model.ckpt-{at}"))
