"""tf.distribute for training: which strategy, who is chief, where each worker writes.

    create_strategy("default")       one device
    create_strategy("mirrored")      all local GPUs (MirroredStrategy; the logical CPU devices
                                     when there is no GPU)
    create_strategy("multi_worker")  MultiWorkerMirroredStrategy, cluster from TF_CONFIG
    create_strategy("tpu", tpu=...)  TPUStrategy

Each returns a `ClusterSetup` (cluster.py): the strategy plus the facts that decide who
writes what. Multi-worker jobs agree with the chief through `Collectives`
(collectives.py), and a lost worker becomes a one-line `WorkerLost` (errors.py): nothing
waits forever. See docs/SCALE_OUT.md.
"""

from yt8m_fusion.distribute.cluster import ClusterSetup
from yt8m_fusion.distribute.collectives import AGREE_EVERY_N_STEPS
from yt8m_fusion.distribute.collectives import Collectives
from yt8m_fusion.distribute.errors import WorkerLost
from yt8m_fusion.distribute.errors import explain_collective_error
from yt8m_fusion.distribute.strategies import STRATEGIES
from yt8m_fusion.distribute.strategies import create_strategy
from yt8m_fusion.distribute.strategies import parse_tf_config
from yt8m_fusion.distribute.strategies import read_tf_config

__all__ = [
    "AGREE_EVERY_N_STEPS", "ClusterSetup", "Collectives", "STRATEGIES", "WorkerLost",
    "create_strategy", "explain_collective_error", "parse_tf_config", "read_tf_config",
]
