"""The bridge between the data layer and the models: a batch's model inputs.

Frame-level features stay uint8 through the input pipeline (a quarter of the bytes of
float32) and are dequantized inside the model's graph.
"""

import logging

from yt8m_fusion import data as yt8m_data


def select_model_inputs(batch, spec):
  """The batch keys a model takes (`spec.model_input_names`; `spec`: the DataSpec)."""
  return {name: batch[name] for name in spec.model_input_names}


def load_batches(data_pattern, spec, **reader_options):
  """`data.load_dataset` in the models' input format (uint8 frames): a `data.Batches`.

  `reader_options`: the keyword arguments of `data.load_dataset` (batch_size, shuffle, ...).
  """
  batches = yt8m_data.load_dataset(data_pattern, spec, dequantize=False, **reader_options)
  logging.info("Reading %d file(s) matching %s", len(batches.files), data_pattern)
  return batches


def training_pairs(dataset, spec):
  """(inputs, labels) pairs for keras.Model.fit."""
  return dataset.map(lambda batch: (select_model_inputs(batch, spec), batch["labels"]))
