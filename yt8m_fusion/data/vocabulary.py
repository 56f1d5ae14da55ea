"""The label vocabulary files of YouTube-8M: class index -> name.

The 2018 `vocabulary.csv` names every class; its header is
`Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3,WikiDescription`.
The 2019 segment challenge's vocabulary (`Index,KnowledgeGraphId,Name,PositiveSegmentCount,
TotalSegmentCount`) names 1,000 of the same 3,862 classes. Any CSV with the columns `Index`
and `Name` is read; classes it does not name are shown as "class <index>" (`class_name`).
"""

import csv
import io

import tensorflow as tf

from yt8m_fusion.errors import UserError

VOCABULARY_COLUMNS = ("Index", "TrainVideoCount", "KnowledgeGraphId", "Name", "WikiUrl",
                      "Vertical1", "Vertical2", "Vertical3", "WikiDescription")


def read_vocabulary(path):
  """vocabulary.csv -> {class index (int): name (str)}. UserError on a missing/bad file."""
  try:
    with tf.io.gfile.GFile(str(path), "r") as handle:
      text = handle.read()
  except tf.errors.NotFoundError:
    raise UserError(f"{path}: vocabulary file not found; expected a CSV with the columns "
                    "Index,Name (YouTube-8M's vocabulary.csv)") from None
  except tf.errors.OpError as error:
    raise UserError(f"{path}: cannot read the vocabulary file ({error.message})") from None
  reader = csv.DictReader(io.StringIO(text))
  columns = reader.fieldnames or []
  missing = [c for c in ("Index", "Name") if c not in columns]
  if missing:
    raise UserError(f"{path}: the vocabulary file lacks the column(s) {','.join(missing)} "
                    f"(header: {','.join(columns) or 'none'}); expected a CSV with the columns "
                    "Index,Name")
  vocabulary = {}
  for line, row in enumerate(reader, start=2):
    try:
      index = int(row["Index"])
    except (TypeError, ValueError):
      raise UserError(f"{path}: line {line}: Index {row['Index']!r} is not an integer") from None
    vocabulary[index] = row["Name"] or ""
  return vocabulary


def class_name(vocabulary, index):
  """The name of class `index`, or "class <index>" when the vocabulary does not name it."""
  return (vocabulary or {}).get(int(index)) or f"class {int(index)}"


def write_vocabulary(path, rows):
  """Writes vocabulary.csv; `rows` are dicts keyed by VOCABULARY_COLUMNS (missing -> "")."""
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=VOCABULARY_COLUMNS, lineterminator="\n")
  writer.writeheader()
  for row in rows:
    writer.writerow({key: row.get(key, "") for key in VOCABULARY_COLUMNS})
  with tf.io.gfile.GFile(str(path), "w") as handle:
    handle.write(buffer.getvalue())
