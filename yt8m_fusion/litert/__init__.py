"""Running exported LiteRT models without TensorFlow (ai_edge_litert, numpy and protobuf only).

- `LiteRTModel(path)`: checks a `.tflite` file written by `python -m yt8m_fusion.export
  --format=litert` (its metadata and checksum) and predicts class probabilities.
- `write_submission(model, data_pattern, output_file)`: the Kaggle CSV of local TFRecords.
- `records`: local TFRecord files read into model inputs in plain Python (framing, parsing
  and validation from `yt8m_fusion.core`, shared with the TensorFlow readers).
- `model_file`: the file's metadata (model flags, vocabulary, inputs, quantization) and the
  operator listing (`operator_names`) the tests use to check that no Flex op is inside.

Nothing in this package imports TensorFlow, so `inference.py --litert_model` runs where only
ai-edge-litert is installed (docs/ON_DEVICE.md).
"""

from yt8m_fusion.litert.runtime import LiteRTModel
from yt8m_fusion.litert.runtime import write_submission

__all__ = ["LiteRTModel", "write_submission"]
