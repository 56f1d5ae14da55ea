"""The data layer: YouTube-8M readers, quantization, file checks, synthetic data.

Public API:
  DataSpec(feature_names, feature_sizes, frame_features, num_classes, max_frames,
           segment_labels)          what the records hold (yt8m_fusion.core.spec);
                                    ModelConfig.data_spec() gives a model's
  load_dataset(data_pattern, spec, *, batch_size, shuffle, num_epochs, dequantize,
               num_readers, input_context, drop_remainder, skip_corrupt_records, seed, ...)
                                    -> Batches(dataset, skip_counter, files)
  parse_serialized(serialized, spec, *, dequantize=True, validate=True)
  SkipCounter                       counts of what skip_corrupt_records dropped
  list_files(pattern), check_files(files, spec, ...), explain_read_error(error, files, spec)
  check_readable(data_pattern, spec, *, require_labels)   the files exist and their first
                                    records are valid, without building a pipeline
  validate_record(raw, spec)        (problem, video_id) of one record (core.validation)
  read_vocabulary(path) -> {index: name}
  dequantize / quantize / MAX_QUANTIZED_VALUE / MIN_QUANTIZED_VALUE
  generate_dataset(output_dir, ...)  synthetic YouTube-8M data (yt8m_fusion.data.synthetic)
  ensure_demo_dataset()              the cached demo dataset (yt8m_fusion.data.demo)

Errors a user can fix are raised as `yt8m_fusion.errors.UserError` (one line naming the
file or pattern, the feature and what was expected). Errors raised by TensorFlow while
iterating a dataset are turned into such a UserError by `explain_read_error`.
"""

from yt8m_fusion.core.spec import SEGMENT_SIZE
from yt8m_fusion.core.spec import DataSpec
from yt8m_fusion.core.validation import validate_record
from yt8m_fusion.data.checks import check_files
from yt8m_fusion.data.checks import check_readable
from yt8m_fusion.data.checks import explain_read_error
from yt8m_fusion.data.checks import list_files
from yt8m_fusion.data.quantization import MAX_QUANTIZED_VALUE
from yt8m_fusion.data.quantization import MIN_QUANTIZED_VALUE
from yt8m_fusion.data.quantization import dequantize
from yt8m_fusion.data.quantization import dequantize_numpy
from yt8m_fusion.data.quantization import quantize
from yt8m_fusion.data.readers import Batches
from yt8m_fusion.data.readers import SkipCounter
from yt8m_fusion.data.readers import load_dataset
from yt8m_fusion.data.readers import parse_serialized
from yt8m_fusion.data.demo import DemoDataset
from yt8m_fusion.data.demo import ensure_demo_dataset
from yt8m_fusion.data.synthetic import generate_dataset
from yt8m_fusion.data.vocabulary import read_vocabulary


__all__ = [
    "Batches", "DataSpec", "DemoDataset", "MAX_QUANTIZED_VALUE", "MIN_QUANTIZED_VALUE",
    "SEGMENT_SIZE", "SkipCounter", "check_files", "check_readable",
    "dequantize", "dequantize_numpy", "ensure_demo_dataset", "explain_read_error",
    "generate_dataset", "list_files", "load_dataset", "parse_serialized", "quantize",
    "read_vocabulary", "validate_record",
]
