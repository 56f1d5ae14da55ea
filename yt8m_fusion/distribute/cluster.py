"""Who is chief, where each worker writes, how data and the model are spread.

`--batch_size` is per replica, as in the starter: the global batch is batch_size x
replicas. The learning rate follows `learning_rate_scaling` (none, the starter's rule: the
same rate whatever the number of replicas; linear; sqrt); its decay counts global examples.

Only the chief (task "chief", else worker 0) writes checkpoints, summaries,
model_flags.json, evaluation results and exports into the train_dir. Other workers take
part in every checkpoint save (a MultiWorkerMirroredStrategy requirement) but save into a
temporary folder that `cleanup()` removes.
"""

import atexit
import math
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from yt8m_fusion.distribute.collectives import AGREE_EVERY_N_STEPS
from yt8m_fusion.distribute.collectives import Collectives
from yt8m_fusion.distribute.errors import explain_collective_error
from yt8m_fusion.errors import UserError

TEMP_DIR_PREFIX = "yt8m_fusion_worker"


class ClusterSetup:
  """A strategy plus the chief/worker facts that decide who writes what."""

  def __init__(self, strategy, is_chief=True, task_id=0, *, task_type=None, num_workers=1,
               timeout_secs=None):
    self.strategy = strategy
    self.is_chief = is_chief
    self.task_id = task_id
    self.task_type = task_type
    self.num_workers = num_workers
    self.timeout_secs = timeout_secs
    self._temp_dirs = []
    self.collectives = (Collectives(strategy, is_chief=is_chief, name=self.name,
                                    timeout_secs=timeout_secs) if self.multi_worker else None)

  # -- facts ---------------------------------------------------------------------------

  @property
  def multi_worker(self):
    return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

  @property
  def num_replicas(self):
    return self.strategy.num_replicas_in_sync

  @property
  def name(self):
    """'worker 1', 'chief 0'; empty for a single process."""
    return f"{self.task_type} {self.task_id}" if self.task_type else ""

  @property
  def strategy_flag(self):
    if self.multi_worker:
      return "multi_worker"
    if isinstance(self.strategy, tf.distribute.TPUStrategy):
      return "tpu"
    if isinstance(self.strategy, tf.distribute.MirroredStrategy):
      return "mirrored"
    return "default"

  @property
  def needs_static_batches(self):
    # TPUs need fixed shapes; multi-replica steps split the batch evenly.
    return isinstance(self.strategy, tf.distribute.TPUStrategy)

  def global_batch_size(self, batch_size):
    return batch_size * self.num_replicas

  def scale_learning_rate(self, base_learning_rate, rule="none"):
    """(learning rate, a phrase explaining it) under `rule` for this many replicas."""
    replicas = self.num_replicas
    if rule == "none" or replicas == 1:
      return base_learning_rate, (f"{base_learning_rate:g} (--learning_rate_scaling={rule}: "
                                  f"not scaled with the {replicas} replica(s))")
    if rule == "linear":
      factor, how = float(replicas), f"x {replicas} replicas"
    elif rule == "sqrt":
      factor, how = math.sqrt(replicas), f"x sqrt({replicas} replicas)"
    else:
      raise UserError(f"--learning_rate_scaling={rule}: expected one of none, linear, sqrt")
    rate = base_learning_rate * factor
    return rate, (f"{rate:g} (--learning_rate_scaling={rule}: --base_learning_rate="
                  f"{base_learning_rate:g} {how})")

  # -- where each worker writes --------------------------------------------------------

  def working_dir(self, train_dir):
    """train_dir for the chief; a temporary folder for other workers."""
    if self.is_chief:
      return train_dir
    temp_dir = tempfile.mkdtemp(prefix=f"{TEMP_DIR_PREFIX}{self.task_id}_")
    if not self._temp_dirs:
      atexit.register(self.cleanup)  # also when the program stops on an error
    self._temp_dirs.append(temp_dir)
    return temp_dir

  def cleanup(self):
    for temp_dir in self._temp_dirs:
      shutil.rmtree(temp_dir, ignore_errors=True)
    self._temp_dirs = []

  # -- input ---------------------------------------------------------------------------

  def distribute_dataset(self, dataset_fn):
    """dataset_fn(input_context) -> per-replica batches; sharded by file across workers.

    With one replica the plain dataset (dataset_fn(None)); otherwise
    `distribute_datasets_from_function`: one input pipeline per worker, reading every
    num_workers-th file; each replica takes the next batch of its worker's pipeline.
    """
    if self.num_replicas == 1 and not self.multi_worker:
      return dataset_fn(None)
    return self.strategy.distribute_datasets_from_function(dataset_fn)

  # -- the model -----------------------------------------------------------------------

  def prepare_training(self, model, keeper):
    """Checks `model` (a compiled TrainingModel) against this strategy and, multi-worker,
    creates every variable now, in the same order on every worker (creating one is a
    collective broadcast): the optimizer's slots and the checkpoint's save counter, which
    the chief would otherwise create while restoring and the other workers at their first
    save. Call in `strategy.scope()` before `keeper.restore_latest()`.
    """
    steps_per_execution = int(getattr(model, "steps_per_execution", 1) or 1)
    if steps_per_execution > 1 and self.num_replicas > 1 and not self.needs_static_batches:
      # Keras 3's multi-step loop over a distributed dataset fails in TF 2.21 ("You must
      # feed a value for placeholder tensor 'while/.../cond/Placeholder'").
      raise UserError(f"--steps_per_execution={steps_per_execution} does not work with "
                      f"{self.num_replicas} replicas (--strategy={self.strategy_flag}) in "
                      "Keras 3; leave it at 1")
    if self.multi_worker:
      if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
      keeper.checkpoint.save_counter  # pylint: disable=pointless-statement  # created on access
    return model

  def model_for_chief(self, model, build_fn):
    """The trained model for chief-only work (evaluation, export) after training.

    Multi-worker: a copy outside the strategy (`build_fn()` -> an unbuilt model of the
    same config, weights copied), since the other workers no longer take part in
    collectives. Otherwise `model` itself.
    """
    if not self.multi_worker:
      return model
    copy = build_fn()
    copy.set_weights([np.asarray(w) for w in model.get_weights()])
    return copy

  # -- agreeing with the chief (multi-worker; see collectives.py) -------------------------

  def config_from_chief(self, resolve_fn, from_json):
    """The chief's `resolve_fn()` (a ModelConfig) on every worker."""
    if not self.multi_worker:
      return resolve_fn()
    return self.collectives.config_from_chief(resolve_fn, from_json)

  def sync_training_state(self, model, optimizer, keeper):
    """Multi-worker: every worker continues from the chief's model, optimizer and epoch."""
    if self.multi_worker:
      self.collectives.sync_training_state(model, optimizer, keeper)

  def agreement(self, every_n_steps=AGREE_EVERY_N_STEPS):
    """None for one worker; else agree(step, flags) -> flags OR-ed over all workers."""
    if not self.multi_worker:
      return None
    return self.collectives.agreement(every_n_steps)

  def explain_error(self, error):
    """A WorkerLost naming the lost worker for a collective failure; None otherwise."""
    if not self.multi_worker or not isinstance(error, tf.errors.OpError):
      return None
    return explain_collective_error(error, self.name or "this worker", self.timeout_secs)
