"""The yt8m-fusion LiteRT file: what it carries besides the model, and how it is checked.

A `.tflite` file is a flatbuffer (schema: ai_edge_litert.schema_py_generated). Ours holds
one metadata entry named "yt8m_fusion" whose buffer is UTF-8 JSON:

    format, format_version     "yt8m_fusion.litert", 1
    signature, output          the signature key and its output name ("probabilities")
    inputs                     [{"name", "dtype", "shape"}] (-1: any batch size)
    batch_size, max_frames     fixed batch size or null; the frames per video (frame-level)
    quantization               none / float16 / dynamic_int8 / int8
    model_flags                model_flags.json of the train_dir
    vocabulary                 {class index: name} (may be empty)
    checkpoint, step           the checkpoint it was exported from
    float_ops                  (int8) the operators left in float, e.g. for want of an int8 kernel
    file_crc32                 CRC-32 of the whole file with these 8 hex digits as "00000000"

The checksum covers every byte (operators, weights, this entry), so a truncated or damaged
copy is refused before the interpreter reads it. Nothing here imports TensorFlow.
"""

import json
import mmap
import os
import zlib

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

from yt8m_fusion.errors import UserError

METADATA_NAME = "yt8m_fusion"
FORMAT = "yt8m_fusion.litert"
FORMAT_VERSION = 1
SIGNATURE = "probabilities"
OUTPUT = "probabilities"
QUANTIZATIONS = ("none", "float16", "dynamic_int8", "int8")
_FILE_IDENTIFIER = b"TFL3"  # bytes 4-8 of every LiteRT / TFLite flatbuffer
_CHECKSUM_KEY = b'"file_crc32": "'
_CHECKSUM_PLACEHOLDER = b"00000000"
_EXPORT_HINT = "python -m yt8m_fusion.export --format=litert"
_OPERATOR_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
                   if not name.startswith("_")}


def embed(content, info):
  """The flatbuffer `content` with `info` as the "yt8m_fusion" metadata entry, checksummed.

  Args:
    content: the converter's output (bytes).
    info: a JSON-serializable dict (the keys in the module docstring, less file_crc32).

  Returns:
    The new file's bytes (a bytearray: a GB-sized model is not copied once more).
  """
  model = flatbuffer_utils.convert_bytearray_to_object(content)
  payload = dict(info, format=FORMAT, format_version=FORMAT_VERSION,
                 file_crc32=_CHECKSUM_PLACEHOLDER.decode())
  entry = schema.BufferT()
  entry.data = np.frombuffer(json.dumps(payload, sort_keys=True).encode("utf-8"), np.uint8)
  model.buffers = list(model.buffers or []) + [entry]
  metadata = schema.MetadataT()
  metadata.name = METADATA_NAME
  metadata.buffer = len(model.buffers) - 1
  model.metadata = [m for m in (model.metadata or []) if _name(m.name) != METADATA_NAME]
  model.metadata.append(metadata)
  output = flatbuffer_utils.convert_object_to_bytearray(model)
  digits_at = _locate(np.frombuffer(output, np.uint8))[1]
  output[digits_at:digits_at + 8] = b"%08x" % _crc32(memoryview(output), digits_at)
  return output


def read_info(path):
  """The "yt8m_fusion" metadata of a LiteRT file, after checking the whole file.

  Raises:
    UserError: the file is missing, is not a LiteRT model, was not exported by
      yt8m-fusion, or is damaged (its checksum does not match).
  """
  if not os.path.exists(path):
    raise UserError(f"{path} does not exist; expected a .tflite file written by {_EXPORT_HINT}")
  if os.path.isdir(path):
    raise UserError(f"{path} is a directory; expected a .tflite file written by {_EXPORT_HINT}")
  try:
    with open(path, "rb") as handle:
      size = os.fstat(handle.fileno()).st_size
      if size < 8:
        raise UserError(f"{path} is not a LiteRT model (it is {size} bytes long); expected a "
                        f".tflite file written by {_EXPORT_HINT}")
      # Mapped, not read: the file can be GBs. The map is released with its last view.
      content = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
  except OSError as error:
    raise UserError(f"cannot read {path}: {error.strerror or error}") from None
  return _checked_info(path, content)


def _checked_info(path, content):
  if content[4:8] != _FILE_IDENTIFIER:
    raise UserError(f"{path} is not a LiteRT model (no '{_FILE_IDENTIFIER.decode()}' flatbuffer "
                    f"identifier); expected a .tflite file written by {_EXPORT_HINT}")
  array = np.frombuffer(content, np.uint8)
  try:
    located = _locate(array)
  except Exception:  # pylint: disable=broad-except
    # A damaged flatbuffer can fail anywhere in the generated accessors.
    raise UserError(f"{path} is damaged: its flatbuffer cannot be read (an incomplete copy?); "
                    "export or copy it again") from None
  if located is None:
    raise UserError(f"{path} is a LiteRT model but not one exported by yt8m-fusion (it has no "
                    f"'{METADATA_NAME}' metadata: its inputs, model flags and vocabulary are "
                    f"unknown); export one with {_EXPORT_HINT}")
  payload_span, digits_at = located
  view = memoryview(content)
  try:
    stored = int(bytes(view[digits_at:digits_at + 8]), 16)
    computed = _crc32(view, digits_at)
    info = json.loads(bytes(view[payload_span[0]:payload_span[1]]).decode("utf-8"))
  except (ValueError, UnicodeDecodeError):
    stored, computed, info = None, 0, None
  finally:
    view.release()
  if stored != computed:
    raise UserError(f"{path} is damaged: its checksum does not match its content (changed or "
                    "truncated after export, e.g. an incomplete copy); export or copy it again")
  if not isinstance(info, dict):
    info = {}
  if info.get("format") != FORMAT or info.get("format_version") != FORMAT_VERSION:
    raise UserError(f"{path} has '{METADATA_NAME}' metadata of format "
                    f"{info.get('format')!r} version {info.get('format_version')!r}; this "
                    f"yt8m-fusion reads {FORMAT!r} version {FORMAT_VERSION}")
  return info


def _locate(array):
  """((start, end) of our metadata payload, position of the checksum digits) in the file
  bytes `array` (numpy uint8), or None when the file has no "yt8m_fusion" entry."""
  model = schema.Model.GetRootAs(array, 0)
  for index in range(model.MetadataLength()):
    entry = model.Metadata(index)
    if _name(entry.Name()) != METADATA_NAME:
      continue
    data = model.Buffers(entry.Buffer()).DataAsNumpy()
    if not isinstance(data, np.ndarray):
      return None
    # DataAsNumpy is a view into `array`: its address gives its place in the file.
    start = data.__array_interface__["data"][0] - array.__array_interface__["data"][0]
    found = bytes(data).find(_CHECKSUM_KEY)
    if found < 0:
      return None
    return (start, start + data.size), start + found + len(_CHECKSUM_KEY)
  return None


def _crc32(view, digits_at):
  """CRC-32 of the file bytes with the 8 checksum digits at `digits_at` read as zeros."""
  crc = zlib.crc32(view[:digits_at])
  crc = zlib.crc32(_CHECKSUM_PLACEHOLDER, crc)
  return zlib.crc32(view[digits_at + 8:], crc)


def _name(value):
  return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def operator_names(content):
  """The operator kinds of a LiteRT flatbuffer (bytes), e.g. FULLY_CONNECTED; custom operators
  as CUSTOM:<name> (TensorFlow ops kept by SELECT_TF_OPS are CUSTOM:Flex<op>)."""
  model = schema.Model.GetRootAs(content, 0)
  names = []
  for index in range(model.OperatorCodesLength()):
    code = model.OperatorCodes(index)
    builtin = flatbuffer_utils.get_builtin_code_from_operator_code(code)
    if builtin == schema.BuiltinOperator.CUSTOM:
      names.append(f"CUSTOM:{_name(code.CustomCode())}")
    else:
      names.append(_OPERATOR_NAMES.get(builtin, str(builtin)))
  return names


def float_operators(content):
  """Names of the operators of a quantized model that still compute in float32: those with a
  float32 input or output, less the QUANTIZE / DEQUANTIZE at the float interface."""
  model = schema.Model.GetRootAs(content, 0)
  kinds = operator_names(content)
  found = set()
  for graph_index in range(model.SubgraphsLength()):
    graph = model.Subgraphs(graph_index)
    for op_index in range(graph.OperatorsLength()):
      op = graph.Operators(op_index)
      kind = kinds[op.OpcodeIndex()]
      if kind in ("QUANTIZE", "DEQUANTIZE"):
        continue
      tensors = list(op.InputsAsNumpy()) + list(op.OutputsAsNumpy())
      if any(t >= 0 and graph.Tensors(int(t)).Type() == schema.TensorType.FLOAT32
             for t in tensors):
        found.add(kind)
  return sorted(found)
