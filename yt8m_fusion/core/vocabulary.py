"""The label vocabulary files of YouTube-8M without TensorFlow: class index -> name, and the
human-readable file that inference.py --vocabulary_file writes beside the Kaggle CSV.

The 2018 `vocabulary.csv` names every class (a few rows have an empty Name); its header is
`Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3,WikiDescription`.
The 2019 segment challenge's vocabulary (`Index,KnowledgeGraphId,Name,PositiveSegmentCount,
TotalSegmentCount`) names 1,000 of the same 3,862 classes. Any CSV with the columns `Index`
and `Name` is read; classes it does not name are shown as "class <index>" (`class_name`).

This is the one reader: `yt8m_fusion.data.read_vocabulary` calls it over tf.io.gfile, the
LiteRT path of inference.py over local files.
"""

import csv
import io
import os

from yt8m_fusion.core.files import LOCAL
from yt8m_fusion.core.files import atomic_output
from yt8m_fusion.errors import UserError

_EXPECTED = "expected a CSV with the columns Index,Name (YouTube-8M's vocabulary.csv)"

NAMES_HEADER = "VideoId,Predictions\n"


def read_vocabulary_rows(path, filesystem=LOCAL):
  """vocabulary.csv -> [row dict] with "Index" an int >= 0; UserError on a missing/bad file."""
  path = str(path)
  try:
    if not filesystem.exists(path):
      raise UserError(f"{path}: vocabulary file not found; {_EXPECTED}")
    with filesystem.open(path, "r") as handle:
      text = handle.read()
  except filesystem.errors as error:
    raise UserError(f"{path}: cannot read the vocabulary file "
                    f"({filesystem.describe(error)})") from None
  except UnicodeDecodeError:
    raise UserError(f"{path}: the vocabulary file is not UTF-8 text; {_EXPECTED}") from None
  if isinstance(text, bytes):
    text = text.decode("utf-8", "replace")
  reader = csv.DictReader(io.StringIO(text))
  try:
    columns = reader.fieldnames or []
    missing = [c for c in ("Index", "Name") if c not in columns]
    if missing:
      raise UserError(f"{path}: the vocabulary file lacks the column(s) {','.join(missing)} "
                      f"(header: {','.join(columns)[:200] or 'none'}); {_EXPECTED}")
    rows = []
    for line, row in enumerate(reader, start=2):
      try:
        index = int(row["Index"])
      except (TypeError, ValueError):
        index = -1
      if index < 0:
        raise UserError(f"{path}: line {line}: Index {row['Index']!r} is not a class index "
                        "(an integer >= 0)")
      row["Index"] = index
      row["Name"] = row["Name"] or ""
      rows.append(row)
  except csv.Error as error:
    raise UserError(f"{path}: not a readable CSV ({error}); {_EXPECTED}") from None
  return rows


def read_vocabulary(path, filesystem=LOCAL):
  """vocabulary.csv -> {class index (int): name (str, may be empty)}."""
  return {row["Index"]: row["Name"] for row in read_vocabulary_rows(path, filesystem)}


def class_name(vocabulary, index):
  """The name of class `index`, or "class <index>" when the vocabulary does not name it."""
  return (vocabulary or {}).get(int(index)) or f"class {int(index)}"


# ----------------------------------------------------------------------------------------
# The names file of inference.py
# ----------------------------------------------------------------------------------------

def names_file_for(output_file):
  """Where the names file of `output_file` goes: predictions.csv -> predictions.names.csv."""
  stem, extension = os.path.splitext(output_file)
  return f"{stem}.names.csv" if extension.lower() == ".csv" else f"{output_file}.names.csv"


def format_names_line(video_id, class_indexes, scores, vocabulary):
  """One line of the names file: the video id, then "index:name:score" per class, highest
  first, separated by "; " (no YouTube-8M name holds ";"; names may hold ":" and ",", so
  read a field as index = text before the first ":", score = text after the last)."""
  if isinstance(video_id, bytes):
    video_id = video_id.decode("utf-8")
  predictions = "; ".join("%i:%s:%.4f" % (int(index), class_name(vocabulary, index), score)
                          for index, score in zip(class_indexes, scores))
  buffer = io.StringIO()
  csv.writer(buffer, lineterminator="\n").writerow([video_id, predictions])
  return buffer.getvalue()


class ClassNamesWriter:
  """Wraps a `VideoSubmissionWriter` (the Kaggle CSV, unchanged) and writes the same
  predictions with class names to `names_file`; both appear on `commit()` or neither.

  The wrapped writer's `filesystem` (local files, or tf.io.gfile) writes the names file."""

  def __init__(self, writer, vocabulary, names_file):
    self._writer = writer
    self.vocabulary = vocabulary
    self.names_file = names_file
    self._context = atomic_output(names_file, filesystem=writer.filesystem)
    self._handle = self._context.__enter__()
    self._handle.write(NAMES_HEADER)

  @property
  def output_file(self):
    return self._writer.output_file

  @property
  def num_videos(self):
    return self._writer.num_videos

  def add_batch(self, video_ids, class_indexes, scores, source=""):
    self._writer.add_batch(video_ids, class_indexes, scores, source=source)
    self._handle.write("".join(
        format_names_line(video_id, indexes, values, self.vocabulary)
        for video_id, indexes, values in zip(video_ids, class_indexes, scores)))

  def commit(self):
    self._context.__exit__(None, None, None)
    self._writer.commit()

  def abort(self, error):
    try:
      self._context.__exit__(type(error), error, error.__traceback__)
    except BaseException:  # pylint: disable=broad-except
      pass
    self._writer.abort(error)


def with_class_names(writer, vocabulary_file, names_file=None):
  """`writer` plus a names file (default `names_file_for(writer.output_file)`) naming each
  predicted class from `vocabulary_file`; UserError at once on a bad vocabulary file."""
  try:
    vocabulary = read_vocabulary(vocabulary_file, writer.filesystem)
    return ClassNamesWriter(writer, vocabulary, names_file or names_file_for(writer.output_file))
  except BaseException as error:
    writer.abort(error)  # no Kaggle CSV either
    raise
