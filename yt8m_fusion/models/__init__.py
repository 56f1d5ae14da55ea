"""The model zoo: Attend-Fusion, the paper's FC baselines and the starter code's models.

    from yt8m_fusion import models
    model = models.build_model(models.ModelConfig(
        model="AttendFusion", feature_names=["mean_rgb", "mean_audio"],
        feature_sizes=[1024, 128]))

Each model is a module declaring a `ModelDefinition` (models/definition.py: its builder,
typed hyper-parameters, training defaults, description); `REGISTRY` maps the names to them.
`list_models()` names the registered models, `default_feature_names(model, frame_features)`
gives the features used when --feature_names is empty, `params_as_trained(model, params)`
reads a saved model_flags.json's hyper-parameters, `attention_scores_model(model)` exposes
Attend-Fusion's attention probabilities for heat maps, `forward_flops(model or config)`
counts forward FLOPs.
"""

from yt8m_fusion.models.attend_fusion import attention_scores_model
from yt8m_fusion.models.config import ModelConfig
from yt8m_fusion.models.definition import HParams, ModelDefinition
from yt8m_fusion.models.flops import forward_flops
from yt8m_fusion.models.registry import (DEFINITIONS, REGISTRY, build_model, complete_params,
                                         default_feature_names, default_params,
                                         default_training, get_spec, has_attention, hparams_of,
                                         is_frame_only, list_models, params_as_trained)

__all__ = [
    "DEFINITIONS", "HParams", "ModelConfig", "ModelDefinition", "REGISTRY",
    "attention_scores_model", "build_model", "complete_params", "default_feature_names",
    "default_params", "default_training", "forward_flops", "get_spec", "has_attention",
    "hparams_of", "is_frame_only", "list_models", "params_as_trained",
]
