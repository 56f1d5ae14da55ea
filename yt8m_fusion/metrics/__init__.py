"""Evaluation metrics of the YouTube-8M starter code, vectorized, plus in-graph Keras metrics.

numpy (same names, arguments and results as the starter's ``eval_util``,
``average_precision_calculator`` and ``mean_average_precision_calculator``):
``calculate_hit_at_one``, ``calculate_precision_at_equal_recall_rate``, ``calculate_gap``,
``top_k_by_class``, ``flatten``, ``AveragePrecisionCalculator``,
``MeanAveragePrecisionCalculator``, ``EvaluationMetrics`` (+ mAP, F1, precision, recall, and
the other F1 definitions named in ``F1_CANDIDATE_KEYS``; docs/METRICS.md).

Keras (training logs, ``keras.metrics.Metric``): ``HitAtOne`` ("hit_at_one"),
``PrecisionAtEqualRecallRate`` ("perr"), ``GlobalAveragePrecision`` ("gap").
"""

from yt8m_fusion.metrics.average_precision import AveragePrecisionCalculator
from yt8m_fusion.metrics.average_precision import MeanAveragePrecisionCalculator
from yt8m_fusion.metrics.eval_util import EvaluationMetrics
from yt8m_fusion.metrics.eval_util import F1_CANDIDATE_KEYS
from yt8m_fusion.metrics.eval_util import calculate_gap
from yt8m_fusion.metrics.eval_util import calculate_hit_at_one
from yt8m_fusion.metrics.eval_util import calculate_precision_at_equal_recall_rate
from yt8m_fusion.metrics.eval_util import flatten
from yt8m_fusion.metrics.eval_util import top_k_by_class
from yt8m_fusion.metrics.keras_metrics import GlobalAveragePrecision
from yt8m_fusion.metrics.keras_metrics import HitAtOne
from yt8m_fusion.metrics.keras_metrics import PrecisionAtEqualRecallRate

__all__ = [
    "AveragePrecisionCalculator",
    "EvaluationMetrics",
    "F1_CANDIDATE_KEYS",
    "GlobalAveragePrecision",
    "HitAtOne",
    "MeanAveragePrecisionCalculator",
    "PrecisionAtEqualRecallRate",
    "calculate_gap",
    "calculate_hit_at_one",
    "calculate_precision_at_equal_recall_rate",
    "flatten",
    "top_k_by_class",
]
