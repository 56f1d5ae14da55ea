"""The label vocabulary files of YouTube-8M over tf.io.gfile (local paths, gs://): the reader
is `yt8m_fusion.core.vocabulary` (the 2018 and 2019 files, "class <index>" for classes a
file does not name); this module adds tf.io.gfile and a writer for the synthetic data.
"""

import csv
import io

import tensorflow as tf

from yt8m_fusion import io_utils
from yt8m_fusion.core import vocabulary as core_vocabulary
from yt8m_fusion.core.vocabulary import class_name  # pylint: disable=unused-import

VOCABULARY_COLUMNS = ("Index", "TrainVideoCount", "KnowledgeGraphId", "Name", "WikiUrl",
                      "Vertical1", "Vertical2", "Vertical3", "WikiDescription")


def read_vocabulary_rows(path):
  """vocabulary.csv -> [row dict] (Index an int); UserError on a missing/bad file."""
  return core_vocabulary.read_vocabulary_rows(path, io_utils.GFILE)


def read_vocabulary(path):
  """vocabulary.csv -> {class index (int): name (str)}. UserError on a missing/bad file."""
  return core_vocabulary.read_vocabulary(path, io_utils.GFILE)


def write_vocabulary(path, rows):
  """Writes vocabulary.csv; `rows` are dicts keyed by VOCABULARY_COLUMNS (missing -> "")."""
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=VOCABULARY_COLUMNS, lineterminator="\n")
  writer.writeheader()
  for row in rows:
    writer.writerow({key: row.get(key, "") for key in VOCABULARY_COLUMNS})
  with tf.io.gfile.GFile(str(path), "w") as handle:
    handle.write(buffer.getvalue())
