"""Evaluation of a model on a dataset: GAP@k, Hit@1, PERR, mAP, F1, average loss.

F1 is reported under several definitions (`f1` is micro-F1 at --f1_threshold; `f1_macro`,
`f1_per_video`, `f1_top1/3/5`, `f1_at_num_labels`): docs/METRICS.md defines every metric.

Predictions are computed batch by batch in a compiled function and fed to the
starter-compatible `EvaluationMetrics`, so memory stays at num_videos x top_k, not
num_videos x num_classes.
"""

import logging
import os
import time

import numpy as np
import tensorflow as tf

from yt8m_fusion import inputs as model_inputs
from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.metrics import F1_CANDIDATE_KEYS
from yt8m_fusion.metrics import EvaluationMetrics


def make_predict_fn(model, config):
  @tf.function
  def predict(batch):
    return model(model_inputs.select_model_inputs(batch, config.data_spec()), training=False)
  return predict


def evaluate(model, dataset, config, loss_fn, *, top_k=20, f1_threshold=0.5,
             segment_labels=False, log_every_n_batches=50, error_handler=None):
  """Runs `model` over `dataset` (dict batches) and returns the metrics as a dict."""
  metrics = EvaluationMetrics(config.num_classes, top_k, None, f1_threshold=f1_threshold)
  predict = make_predict_fn(model, config)
  start = time.time()
  num_batches = 0
  iterator = iter(dataset)
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      break
    except (tf.errors.OpError, UnicodeDecodeError) as error:
      # (UnicodeDecodeError: TensorFlow could not decode an error message quoting a
      # malformed record's bytes.)
      if error_handler is None:
        raise
      raise error_handler(error) from None
    predictions = predict(batch)
    labels = batch["labels"]
    if segment_labels:
      # As the starter: only rated (segment, class) pairs count.
      predictions = predictions * batch["label_weights"]
    loss = float(loss_fn(labels, predictions))
    metrics.accumulate(predictions.numpy(), labels.numpy(), loss)
    num_batches += 1
    if log_every_n_batches and num_batches % log_every_n_batches == 0:
      logging.info("evaluated %d batches (%d examples)", num_batches, metrics.num_examples)
  elapsed = time.time() - start
  results = metrics.get()
  results["aps"] = [float(ap) for ap in results["aps"]]
  results["examples_per_second"] = results["num_examples"] / max(elapsed, 1e-9)
  results["top_k"] = top_k
  results["f1_threshold"] = f1_threshold
  results["num_classes_with_positives"] = len(results["aps"])
  return results


def summary_line(step, results):
  """The starter's epoch log line, plus F1."""
  return (f"epoch/eval number {step} | Avg_Hit@1: {results['avg_hit_at_one']:.3f} | "
          f"Avg_PERR: {results['avg_perr']:.3f} | MAP: {results['map']:.3f} | "
          f"GAP: {results['gap']:.3f} | F1: {results['f1']:.3f} | "
          f"Avg_Loss: {results['avg_loss']:f} | num_classes: {len(results['aps'])}")


def write_results(train_dir, step, results, extra=None, segment_labels=False):
  """eval/metrics-<step>.json, eval/metrics.json (latest) and TensorBoard scalars."""
  folder = train_dir_lib.eval_dir(train_dir)
  tf.io.gfile.makedirs(folder)
  record = {key: value for key, value in results.items() if key != "aps"}
  record.update({"step": int(step), "segment_labels": bool(segment_labels)})
  record.update(extra or {})
  record["per_class_ap"] = results["aps"]
  prefix = "segment_metrics" if segment_labels else "metrics"
  train_dir_lib.write_json(os.path.join(folder, f"{prefix}-{int(step)}.json"), record)
  train_dir_lib.write_json(os.path.join(folder, f"{prefix}.json"), record)
  scope = "SegEval" if segment_labels else "Eval"
  writer = tf.summary.create_file_writer(folder)
  with writer.as_default(step=int(step)):
    for name, key in (("Avg_Hit@1", "avg_hit_at_one"), ("Avg_Perr", "avg_perr"),
                      ("Avg_Loss", "avg_loss"), ("MAP", "map"), ("GAP", "gap"), ("F1", "f1")):
      tf.summary.scalar(f"Epoch/{scope}_{name}", float(results[key]))
    for key in F1_CANDIDATE_KEYS:  # the other F1 definitions (older results lack them)
      if key in results:
        tf.summary.scalar(f"Epoch/{scope}_{key}", float(results[key]))
    tf.summary.histogram(f"Epoch/{scope}_per_class_AP", np.asarray(results["aps"] or [0.0]))
  writer.flush()
  writer.close()
  return record
