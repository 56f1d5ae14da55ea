"""Exporting a trained model: SavedModels for TF Serving, LiteRT files for devices.

    python -m yt8m_fusion.export --train_dir=DIR --format=litert \
        --quantization=dynamic_int8 --output_file=model.tflite
    python -m yt8m_fusion.export --train_dir=DIR --format=saved_model

- `saved_model`: `export_saved_model(model, config, export_base, step)` writes
  `export_base/<step>/` (what train.py writes after training); `read_export_config(dir)`;
  `export_ensemble_saved_model(models, configs, weights, ...)`: one SavedModel of several
  models' weighted mean, with the same signatures (docs/ENSEMBLES.md).
- `litert`: `export_litert(model, config, output_file, quantization=...)` writes one
  `.tflite` flatbuffer of LiteRT built-in ops (no Flex), with the model's flags and
  vocabulary inside; `yt8m_fusion.litert` runs it without TensorFlow (docs/ON_DEVICE.md).
"""

from yt8m_fusion.export.litert import QUANTIZATIONS
from yt8m_fusion.export.litert import export_litert
from yt8m_fusion.export.saved_model import PROBABILITIES_SIGNATURE
from yt8m_fusion.export.saved_model import SERVING_SIGNATURE
from yt8m_fusion.export.saved_model import TOP_PREDICTIONS_IN_OUTPUT
from yt8m_fusion.export.saved_model import build_ensemble_model
from yt8m_fusion.export.saved_model import export_ensemble_saved_model
from yt8m_fusion.export.saved_model import read_ensemble_info
from yt8m_fusion.export.saved_model import build_export_archive
from yt8m_fusion.export.saved_model import export_saved_model
from yt8m_fusion.export.saved_model import feature_signature
from yt8m_fusion.export.saved_model import read_export_config

__all__ = [
    "PROBABILITIES_SIGNATURE", "QUANTIZATIONS", "SERVING_SIGNATURE", "TOP_PREDICTIONS_IN_OUTPUT",
    "build_ensemble_model", "build_export_archive", "export_ensemble_saved_model",
    "export_litert", "export_saved_model", "feature_signature",
    "read_ensemble_info", "read_export_config",
]
