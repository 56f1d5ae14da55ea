"""YouTube-8M records parsed in plain protobuf (no TensorFlow).

Video-level records are `tf.train.Example`s: "id" (bytes; "video_id" in the 2017 data),
"labels" (int64 list), one float list per feature ("mean_rgb" 1024, "mean_audio" 128).
Frame-level records are `tf.train.SequenceExample`s: context "id", "labels" (+
"segment_labels", "segment_start_times", "segment_end_times", "segment_scores" in the 2019
segment data); feature lists "rgb" and "audio", one bytes value per frame holding D uint8
quantized values.

The messages here have the wire format of TensorFlow's Example / SequenceExample, so both
stacks parse records the same way (`parse_record`) and the validator
(`yt8m_fusion.core.validation`) reads them alike.
"""

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message as protobuf_message
from google.protobuf import message_factory

# What parsing bytes that are not such a record raises.
DECODE_ERRORS = (protobuf_message.DecodeError, ValueError, RuntimeError)

_PACKAGE = "yt8m_fusion.core.records"


def _message_classes():
  """Example-compatible messages: BytesList ... SequenceExample, field numbers as in
  tensorflow/core/example/{feature,example}.proto, in a private descriptor pool (so they
  never clash with tensorflow's own classes in a process that has both)."""
  proto = descriptor_pb2.FileDescriptorProto(name="yt8m_fusion_core_example.proto",
                                             package=_PACKAGE, syntax="proto3")
  types = descriptor_pb2.FieldDescriptorProto
  repeated, optional = types.LABEL_REPEATED, types.LABEL_OPTIONAL

  def message(name, fields, nested=()):
    msg = proto.message_type.add(name=name)
    for entry_name, value_type in nested:  # map<string, value_type> entries
      entry = msg.nested_type.add(name=entry_name)
      entry.options.map_entry = True
      entry.field.add(name="key", number=1, label=optional, type=types.TYPE_STRING)
      entry.field.add(name="value", number=2, label=optional, type=types.TYPE_MESSAGE,
                      type_name=f".{_PACKAGE}.{value_type}")
    for field_name, number, label, kind, type_name, oneof in fields:
      field = msg.field.add(name=field_name, number=number, label=label, type=kind)
      if type_name:
        field.type_name = f".{_PACKAGE}.{type_name}"
      if oneof is not None:
        if not msg.oneof_decl:
          msg.oneof_decl.add(name="kind")
        field.oneof_index = 0

  message("BytesList", [("value", 1, repeated, types.TYPE_BYTES, None, None)])
  message("FloatList", [("value", 1, repeated, types.TYPE_FLOAT, None, None)])
  message("Int64List", [("value", 1, repeated, types.TYPE_INT64, None, None)])
  message("Feature", [("bytes_list", 1, optional, types.TYPE_MESSAGE, "BytesList", 0),
                      ("float_list", 2, optional, types.TYPE_MESSAGE, "FloatList", 0),
                      ("int64_list", 3, optional, types.TYPE_MESSAGE, "Int64List", 0)])
  message("Features", [("feature", 1, repeated, types.TYPE_MESSAGE, "Features.FeatureEntry",
                        None)], nested=[("FeatureEntry", "Feature")])
  message("FeatureList", [("feature", 1, repeated, types.TYPE_MESSAGE, "Feature", None)])
  message("FeatureLists", [("feature_list", 1, repeated, types.TYPE_MESSAGE,
                            "FeatureLists.FeatureListEntry", None)],
          nested=[("FeatureListEntry", "FeatureList")])
  # A tf.train.Example is {1: Features}: it parses as a SequenceExample whose context holds
  # its features, so one message reads both formats.
  message("SequenceExample", [("context", 1, optional, types.TYPE_MESSAGE, "Features", None),
                              ("feature_lists", 2, optional, types.TYPE_MESSAGE,
                               "FeatureLists", None)])
  pool = descriptor_pool.DescriptorPool()
  pool.Add(proto)
  return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.SequenceExample"))


SequenceExample = _message_classes()


def parse_record(raw):
  """Serialized Example or SequenceExample -> a SequenceExample message.

  An Example parses as a SequenceExample whose context holds the Example's features (both
  store them in field 1), so one parser serves both formats. Raises one of DECODE_ERRORS
  for bytes that are not such a proto.
  """
  return SequenceExample.FromString(raw)


def feature_values(feature):
  """(kind, values) of a Feature: kind in {"bytes", "float", "int64", None}."""
  kind = feature.WhichOneof("kind")
  if kind == "bytes_list":
    return "bytes", list(feature.bytes_list.value)
  if kind == "float_list":
    return "float", list(feature.float_list.value)
  if kind == "int64_list":
    return "int64", list(feature.int64_list.value)
  return None, []


def video_id_of(record):
  """The record's id as bytes ("id", or "video_id" in the 2017 data); b"" if it has none."""
  for key in ("id", "video_id"):
    feature = record.context.feature.get(key)
    if feature is not None and feature.bytes_list.value and feature.bytes_list.value[0]:
      return feature.bytes_list.value[0]
  return b""
