"""The model zoo: Attend-Fusion, the paper's FC baselines and the starter code's models.

    from yt8m_fusion import models
    model = models.build_model(models.ModelConfig(
        model="AttendFusion", feature_names=["mean_rgb", "mean_audio"],
        feature_sizes=[1024, 128]))

`list_models()` names the registered models, `default_feature_names(model, frame_features)`
gives the features used when --feature_names is empty, `models.hparams` holds every model
hyper-parameter flag, `attention_scores_model(model)` exposes Attend-Fusion's attention
probabilities for heat maps, `forward_flops(model or config)` counts forward FLOPs.
"""

from yt8m_fusion.models import hparams
from yt8m_fusion.models.attend_fusion import attention_scores_model
from yt8m_fusion.models.config import ModelConfig
from yt8m_fusion.models.flops import forward_flops
from yt8m_fusion.models.registry import (REGISTRY, build_model, default_feature_names,
                                         default_params, default_training, is_frame_only,
                                         list_models)

__all__ = [
    "REGISTRY", "ModelConfig", "attention_scores_model", "build_model", "default_feature_names",
    "default_params", "default_training",
    "forward_flops", "hparams", "is_frame_only", "list_models",
]
