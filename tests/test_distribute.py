"""The pieces of yt8m_fusion.distribute and yt8m_fusion.local_cluster, in-process (fast),
plus one program run: a worker whose peers never join stops within the timeout.

Real multi-worker and multi-device training: test_distribute_multi_worker.py and
test_distribute_mirrored.py.
"""

import json
import os
import re
import socket
import time

import numpy as np
import pytest
import tensorflow as tf

from programs import run_program
from yt8m_fusion import data as yt8m_data
from yt8m_fusion import distribute
from yt8m_fusion.cli import local_cluster
from yt8m_fusion.errors import UserError


def cluster_config(workers=2, task_type="worker", index=0, chief=False):
  cluster = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]}
  if chief:
    cluster["chief"] = ["127.0.0.1:1999"]
  return {"cluster": cluster, "task": {"type": task_type, "index": index}}


# -- TF_CONFIG ----------------------------------------------------------------------------

def test_worker_0_is_the_chief_without_a_chief_task():
  assert distribute.parse_tf_config(cluster_config(3, index=0))[1:] == ("worker", 0, True, 3)
  assert distribute.parse_tf_config(cluster_config(3, index=2))[1:] == ("worker", 2, False, 3)


def test_a_chief_task_is_the_chief_and_counts_as_a_worker():
  assert distribute.parse_tf_config(cluster_config(2, "chief", 0, chief=True))[1:] == (
      "chief", 0, True, 3)
  assert distribute.parse_tf_config(cluster_config(2, "worker", 0, chief=True))[1:] == (
      "worker", 0, False, 3)


@pytest.mark.parametrize("config, message", [
    ({}, "needs TF_CONFIG with 'cluster' and 'task'"),
    ({"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}},
     "job(s) ps"),
    (cluster_config(2, index=2), "task worker/2 is not in the cluster"),
    (cluster_config(2, task_type="evaluator"), "task evaluator/0 is not in the cluster"),
    ({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}},
     "must be a non-empty list"),
    ({"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}},
     "must be a non-empty list"),
])
def test_bad_tf_config_is_one_clear_line(config, message):
  with pytest.raises(UserError, match=re.escape(message)):
    distribute.parse_tf_config(config)


def test_tf_config_that_is_not_json(monkeypatch):
  monkeypatch.setenv("TF_CONFIG", "{cluster: 1")
  with pytest.raises(UserError, match="TF_CONFIG is not valid JSON"):
    distribute.read_tf_config()


# -- batch and learning rate ---------------------------------------------------------------

class FakeStrategy:

  def __init__(self, replicas):
    self.num_replicas_in_sync = replicas


@pytest.mark.parametrize("rule, expected", [("none", 0.01), ("linear", 0.04), ("sqrt", 0.02)])
def test_learning_rate_scaling_rules(rule, expected):
  cluster = distribute.ClusterSetup(FakeStrategy(4))
  rate, text = cluster.scale_learning_rate(0.01, rule)
  assert rate == pytest.approx(expected)
  assert f"--learning_rate_scaling={rule}" in text
  assert cluster.global_batch_size(1024) == 4096


def test_one_replica_keeps_the_learning_rate():
  rate, _ = distribute.ClusterSetup(FakeStrategy(1)).scale_learning_rate(0.01, "linear")
  assert rate == 0.01


def test_several_steps_per_execution_are_refused_with_several_replicas():
  class Model:  # what prepare_training reads first
    steps_per_execution = 2
  with pytest.raises(UserError, match="--steps_per_execution=2 does not work with 2 replicas"):
    distribute.ClusterSetup(FakeStrategy(2)).prepare_training(Model(), keeper=None)


# -- where workers write ---------------------------------------------------------------------

def test_the_chief_writes_in_train_dir_and_other_workers_in_a_removed_temp_dir(tmp_path):
  chief = distribute.ClusterSetup(tf.distribute.get_strategy())
  assert chief.working_dir(str(tmp_path)) == str(tmp_path)
  worker = distribute.ClusterSetup(tf.distribute.get_strategy(), is_chief=False, task_id=1)
  temp_dir = worker.working_dir(str(tmp_path))
  assert temp_dir != str(tmp_path) and os.path.isdir(temp_dir)
  assert os.path.basename(temp_dir).startswith("yt8m_fusion_worker1_")
  worker.cleanup()
  assert not os.path.exists(temp_dir)


# -- sharding by file ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
  info = yt8m_data.generate_dataset(str(tmp_path_factory.mktemp("shard")), num_videos=24,
                                    num_classes=10, seed=4, num_shards=2,
                                    split_fractions=(2 / 3, 1 / 6, 1 / 6))
  return info["video"]["train"]


def read_ids(pattern, context):
  spec = yt8m_data.DataSpec(num_classes=10)
  dataset = yt8m_data.load_dataset(pattern, spec, batch_size=4, input_context=context).dataset
  return [i for batch in dataset for i in batch["video_ids"].numpy().tolist()]


def test_workers_read_disjoint_files_that_cover_the_data(two_files):
  everything = read_ids(two_files, None)
  shards = [read_ids(two_files, tf.distribute.InputContext(2, i, 2)) for i in range(2)]
  assert len(shards[0]) == len(shards[1]) == 8
  assert not set(shards[0]) & set(shards[1])
  assert sorted(shards[0] + shards[1]) == sorted(everything)


def test_fewer_files_than_workers_is_a_clear_error(two_files):
  with pytest.raises(UserError, match=r"matches 2 file\(s\) but there are 3 input pipelines"):
    read_ids(two_files, tf.distribute.InputContext(3, 0, 3))


# -- agreeing on stop / save decisions ---------------------------------------------------------

class FakeCollectives(distribute.Collectives):
  """Collectives with a scripted all-reduce: the other workers' flags are given."""

  def __init__(self, others):
    super().__init__(tf.distribute.get_strategy(), is_chief=True, name="worker 0")
    self.others = others
    self.exchanges = []

  def sum(self, tensors):
    mine = tensors[0].numpy()
    self.exchanges.append(mine.tolist())
    return [tf.constant(mine + np.array(self.others, np.int32))]


def test_flags_are_or_ed_over_workers_every_n_steps():
  cluster = FakeCollectives(others=[0, 1])
  agree = cluster.agreement(every_n_steps=10)
  assert agree(1, (False, False)) == (False, True)  # first step exchanges
  assert agree(5, (True, False)) == (False, False)  # between exchanges: wait
  assert agree(11, (True, False)) == (True, True)
  assert cluster.exchanges == [[0, 0], [1, 0]]
  assert distribute.ClusterSetup(tf.distribute.get_strategy()).agreement() is None


# -- errors ----------------------------------------------------------------------------------

def test_a_worker_that_stopped_sending_heartbeats_is_named():
  error = tf.errors.UnavailableError(None, None, (
      "Collective ops is aborted by: Error reported from /job:worker/task:1: The following "
      "tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe "
      "tasks have crashed. Check the task logs for an earlier error"))
  lost = distribute.explain_collective_error(error, "worker 0", 600)
  assert isinstance(lost, distribute.WorkerLost) and lost.exit_code == 1
  assert str(lost).startswith("worker 0: worker 1 stopped answering")
  assert "rerun every worker's command" in str(lost)


def test_a_lost_connection_names_the_peer():
  error = tf.errors.UnavailableError(None, None, (
      "{{function_node __wrapped__CollectiveReduceV2_Nordering_token_1_device_/job:worker/"
      "replica:0/task:1/device:CPU:0}} "
      "Collective ops is aborted by: recvmsg:Connection reset by peer\nAdditional GRPC error "
      "information from remote target /job:worker/replica:0/task:0 while calling "
      "/tensorflow.WorkerService/CompleteInstance"))
  lost = distribute.explain_collective_error(error, "worker 1", 600)
  assert str(lost).startswith("worker 1: lost the connection to worker 0 (Collective ops is "
                              "aborted by: recvmsg:Connection reset by peer)")


def test_a_timeout_names_the_flag():
  error = tf.errors.DeadlineExceededError(None, None,
                                          "Collective has timed out during execution.")
  lost = distribute.explain_collective_error(error, "worker 1", 30)
  assert "no answer from the other workers within --collective_timeout_secs=30 s" in str(lost)


def test_other_errors_are_left_alone():
  error = tf.errors.InvalidArgumentError(None, None, "yt8m_fusion data check: label id < 0")
  assert distribute.explain_collective_error(error, "worker 0", 30) is None
  assert distribute.ClusterSetup(tf.distribute.get_strategy()).explain_error(error) is None


# -- local_cluster ----------------------------------------------------------------------------

def test_free_ports_are_distinct_and_bindable():
  ports = local_cluster.free_ports(3)
  assert len(set(ports)) == 3
  for port in ports:
    with socket.socket() as sock:
      sock.bind(("127.0.0.1", port))


def test_each_worker_gets_its_own_tf_config():
  configs = [json.loads(c) for c in local_cluster.tf_configs(2, [1234, 5678])]
  assert [c["task"] for c in configs] == [{"type": "worker", "index": 0},
                                          {"type": "worker", "index": 1}]
  assert all(c["cluster"] == {"worker": ["127.0.0.1:1234", "127.0.0.1:5678"]} for c in configs)


def test_local_cluster_runs_train_with_multi_worker():
  command = local_cluster._worker_command(["--train_dir=/x", "--strategy=multi_worker"],  # pylint: disable=protected-access
                                          local_cluster.TRAIN_MODULE)
  assert command[1:] == ["-m", "yt8m_fusion.cli.train", "--strategy=multi_worker",
                         "--train_dir=/x"]
  with pytest.raises(SystemExit, match="local_cluster runs --strategy=multi_worker"):
    local_cluster._worker_command(["--strategy=mirrored"], local_cluster.TRAIN_MODULE)  # pylint: disable=protected-access


# -- a worker whose peers never join -----------------------------------------------------------

def test_a_worker_whose_peers_never_join_stops_within_the_timeout(two_files, tmp_path):
  port, absent = local_cluster.free_ports(2)
  config = {"cluster": {"worker": [f"127.0.0.1:{port}", f"127.0.0.1:{absent}"]},
            "task": {"type": "worker", "index": 0}}
  start = time.time()
  result = run_program("train.py", "--strategy=multi_worker", "--collective_timeout_secs=3",
                       f"--train_dir={tmp_path / 'train'}", f"--train_data_pattern={two_files}",
                       "--num_classes=10", env={"TF_CONFIG": json.dumps(config)}, check=False,
                       timeout=120)
  assert result.returncode == -9, result.stderr[-3000:]  # killed by the watchdog
  assert ("ERROR: worker 0: not all 2 workers joined within --collective_timeout_secs=3 s"
          in result.stderr)
  assert time.time() - start < 100
