"""TFRecord framing in plain Python: checksums, headers and local record iteration.

Each record is framed as: uint64 length, masked CRC-32C of the length, data, masked
CRC-32C of the data (little-endian).
"""

import struct

HEADER_BYTES = 12  # uint64 record length + masked crc32c of those 8 bytes


def _crc32c_table():
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    table.append(crc)
  return table


_CRC32C_TABLE = _crc32c_table()


def masked_crc32c(data):
  """TFRecord's masked CRC-32C (Castagnoli) of `data` (pure Python: meant for headers)."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  crc ^= 0xFFFFFFFF
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def is_record_header(data):
  """True when `data` starts with a TFRecord header (length + its valid checksum)."""
  return (len(data) >= HEADER_BYTES and
          masked_crc32c(data[:8]) == int.from_bytes(data[8:HEADER_BYTES], "little"))


class FramingError(Exception):
  """A TFRecord file whose framing is broken (truncated, or not a TFRecord file)."""


def iterate_local_records(path):
  """Yields the serialized records of one local, uncompressed TFRecord file.

  Each length's checksum is checked (a FramingError at a broken frame); the data checksum
  is not (pure Python would be too slow), so a damaged record shows up as a record that
  does not parse or does not validate instead.
  """
  with open(path, "rb") as handle:
    index = 0
    while True:
      header = handle.read(HEADER_BYTES)
      if not header:
        return
      if len(header) < HEADER_BYTES:
        raise FramingError(f"record {index} is truncated (its header has {len(header)} of "
                           f"{HEADER_BYTES} bytes)")
      length, length_crc = struct.unpack("<QI", header)
      if masked_crc32c(header[:8]) != length_crc:
        raise FramingError(f"record {index}'s length has a wrong checksum (not a TFRecord file, "
                           "or damaged)")
      data = handle.read(length)
      if len(data) < length or len(handle.read(4)) < 4:
        raise FramingError(f"record {index} is truncated ({len(data)} of {length} bytes)")
      yield data
      index += 1
