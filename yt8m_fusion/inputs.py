"""The bridge between the data layer and the models: which batch keys a model takes.

Frame-level features stay uint8 through the input pipeline (a quarter of the bytes of
float32) and are dequantized inside the model's graph.
"""

import logging

from yt8m_fusion import data as yt8m_data

# The keys of a data batch that are not model inputs.
NON_INPUT_KEYS = ("video_ids", "labels", "label_weights")


def model_input_names(config):
  names = list(config.feature_names)
  if config.frame_features:
    names.append("num_frames")
  return names


def select_model_inputs(batch, config):
  return {name: batch[name] for name in model_input_names(config)}


def load_batches(data_pattern, config, *, batch_size, max_frames=300, segment_labels=False,
                 shuffle=False, num_epochs=1, num_readers=8, skip_corrupt_records=False,
                 input_context=None, drop_remainder=False, seed=None, skip_counter=None,
                 require_labels=False):
  """Dict batches in the models' input format (uint8 frames), checked up front.

  With `skip_corrupt_records`, the dataset's `skip_counter` (or the `skip_counter`
  given, for datasets wrapped further) counts what was skipped. `require_labels`
  (training, evaluation): files without labels (the test split) are refused.
  """
  files = yt8m_data.list_files(data_pattern)
  yt8m_data.check_files(files, frame_features=config.frame_features,
                        feature_names=config.feature_names, feature_sizes=config.feature_sizes,
                        num_classes=config.num_classes, segment_labels=segment_labels,
                        max_frames=max_frames, skip_corrupt_records=skip_corrupt_records,
                        require_labels=require_labels)
  logging.info("Reading %d file(s) matching %s", len(files), data_pattern)
  return yt8m_data.load_dataset(
      files, frame_features=config.frame_features, feature_names=config.feature_names,
      feature_sizes=config.feature_sizes, num_classes=config.num_classes,
      batch_size=batch_size, max_frames=max_frames, segment_labels=segment_labels,
      shuffle=shuffle, num_epochs=num_epochs, dequantize=False, num_readers=num_readers,
      input_context=input_context, drop_remainder=drop_remainder,
      skip_corrupt_records=skip_corrupt_records, seed=seed, skip_counter=skip_counter,
      check_files=False)  # checked just above


def training_pairs(dataset, config):
  """(inputs, labels) pairs for keras.Model.fit."""
  return dataset.map(lambda batch: (select_model_inputs(batch, config), batch["labels"]))
