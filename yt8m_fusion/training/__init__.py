"""Training: `run` (a whole job), `fit` (the loop), `TrainOptions`, `TrainingModel` (the step).

Modules:
  options.py      TrainOptions, each model's defaults, the optimizer and its schedule;
                  ReadOptions, how the records are read
  step.py         TrainingModel: the explicit training step (loss, clipping, metrics)
  checkpoints.py  CheckpointKeeper: model + optimizer + epoch, resume, safe saves
  monitor.py      TrainingMonitor: logs, summaries, periodic checkpoints, NaN and SIGTERM
  loop.py         run() and fit()
  lock.py         hold(train_dir): one trainer per train_dir
"""

from yt8m_fusion.training import lock
from yt8m_fusion.training.checkpoints import CheckpointKeeper
from yt8m_fusion.training.loop import RunResult
from yt8m_fusion.training.loop import TrainingDiverged
from yt8m_fusion.training.loop import TrainResult
from yt8m_fusion.training.loop import build_trainer
from yt8m_fusion.training.loop import evaluate
from yt8m_fusion.training.loop import fit
from yt8m_fusion.training.loop import out_of_memory_error
from yt8m_fusion.training.loop import run
from yt8m_fusion.training.monitor import TRAIN_LOG_COLUMNS
from yt8m_fusion.training.monitor import SigtermFlag
from yt8m_fusion.training.monitor import TrainingMonitor
from yt8m_fusion.training.options import DEMO_BATCH_SIZE
from yt8m_fusion.training.options import LEARNING_RATE_SCALING
from yt8m_fusion.training.options import OPTIMIZERS
from yt8m_fusion.training.options import PRECISION_POLICIES
from yt8m_fusion.training.options import ReadOptions
from yt8m_fusion.training.options import TrainOptions
from yt8m_fusion.training.options import build_optimizer
from yt8m_fusion.training.options import current_learning_rate
from yt8m_fusion.training.options import learning_rate_schedule
from yt8m_fusion.training.step import TrainingModel

__all__ = [
    "CheckpointKeeper", "DEMO_BATCH_SIZE", "LEARNING_RATE_SCALING", "OPTIMIZERS",
    "PRECISION_POLICIES", "ReadOptions", "RunResult", "SigtermFlag", "TRAIN_LOG_COLUMNS", "TrainOptions", "TrainResult",
    "TrainingDiverged", "TrainingModel", "TrainingMonitor", "build_optimizer", "build_trainer",
    "current_learning_rate", "evaluate", "fit", "learning_rate_schedule", "lock",
    "out_of_memory_error", "run",
]
