"""TFRecord framing checksums in plain Python (no TensorFlow: the LiteRT runtime uses it too).

Each record is framed as: uint64 length, masked CRC-32C of the length, data, masked
CRC-32C of the data (little-endian).
"""


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
