"""What both stacks need, without TensorFlow: importable with numpy, protobuf and the stdlib.

The TensorFlow stack (`yt8m_fusion.data`, `io_utils`, `submission`) and the LiteRT runtime
(`yt8m_fusion.litert`, which must never import TensorFlow) build on these modules:

  spec.py               DataSpec: what the records hold (features, level, classes, frames)
  validation.py         what a valid video-level, frame-level and segment record is: rules
                        driven by a DataSpec, applied to parsed records here and to tensors
                        by data/readers.py; the one-line problem of a bad record
  records.py            Example / SequenceExample messages parsed in plain protobuf
  framing.py            TFRecord framing: masked CRC-32C, headers, local record iteration
  files.py              atomic writes, writability checks and file listing (globs, comma
                        lists) over a FileSystem: LOCAL here, io_utils.GFILE for gs://
  submission_format.py  the video-level Kaggle CSV writer
  skipping.py           SkipCounter: what skip_corrupt_records dropped, for one log line
"""
