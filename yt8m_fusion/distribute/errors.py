"""What a multi-worker failure means, in one line naming the worker at fault."""

import re

import tensorflow as tf

from yt8m_fusion.errors import UserError


class WorkerLost(UserError):
  """Another worker of a multi-worker job stopped, crashed or never joined."""

  exit_code = 1
  # After a failed collective, TensorFlow's eager all-reduce leaves a ThreadPool open
  # (cross_device_ops: pool.map raised before pool.close()); at interpreter shutdown its
  # __del__ may write to an already-closed pipe and print a traceback, and collective
  # threads can still be blocked. Checkpoints are written synchronously by then, so the
  # process ends at once after the error line.
  exit_immediately = True


_TASK = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")


def _tasks_named(text):
  names = []
  for job, index in _TASK.findall(text):
    name = f"{job} {index}"
    if name not in names:
      names.append(name)
  return names


def explain_collective_error(error, who, timeout_secs=None):
  """WorkerLost for a collective/coordination failure met by worker `who`, else None."""
  text = getattr(error, "message", None) or str(error)
  timeout = f"--collective_timeout_secs={timeout_secs:g}" if timeout_secs else \
      "--collective_timeout_secs"
  resume = "fix or restart it, then rerun every worker's command: training resumes from the " \
           "chief's last checkpoint"
  if isinstance(error, tf.errors.DeadlineExceededError) or "timed out" in text:
    return WorkerLost(f"{who}: no answer from the other workers within {timeout} s: one of "
                      f"them stopped or is stuck (its log says why); {resume}")
  unhealthy = re.search(r"unhealthy \(stopped sending heartbeats\):(.*?)(The tasks|$)", text,
                        re.S)
  if unhealthy:
    lost = _tasks_named(unhealthy.group(1))
    return WorkerLost(f"{who}: {' and '.join(lost) or 'a worker'} stopped answering (it ended "
                      f"on an error, crashed, or was killed or preempted: its log says why); "
                      f"{resume}")
  collective = ("Collective ops is aborted" in text or "CoordinationService" in text
                or "coordination service" in text.lower())
  if collective or isinstance(error, (tf.errors.UnavailableError, tf.errors.AbortedError)):
    lost = [name for name in _tasks_named(text) if name != who]
    reason = " ".join(re.sub(r"\{\{.*?\}\}", "", text.split("\n")[0]).split())[:200]
    return WorkerLost(f"{who}: lost the connection to {' and '.join(lost) or 'another worker'} "
                      f"({reason}); {resume}")
  return None
