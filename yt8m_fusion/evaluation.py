"""Evaluation of a model on a dataset: GAP@k, Hit@1, PERR, mAP, F1, average loss.

F1 is reported under several definitions (`f1` is micro-F1 at --f1_threshold; `f1_macro`,
`f1_per_video`, `f1_top1/3/5`, `f1_at_num_labels`): docs/METRICS.md defines every metric.

A predictor's batches (`yt8m_fusion.prediction`) are fed one by one to the
starter-compatible `EvaluationMetrics`, so memory stays at num_videos x top_k, not
num_videos x num_classes.
"""

import logging
import os
import time

import numpy as np
import tensorflow as tf

from yt8m_fusion import train_dir as train_dir_lib
from yt8m_fusion.metrics import F1_CANDIDATE_KEYS
from yt8m_fusion.metrics import EvaluationMetrics


def compute_metrics(batches, num_classes, loss_fn, *, top_k=20, f1_threshold=0.5,
                    segment_labels=False, log_every_n_batches=50):
  """The metrics dict of a predictor's labelled batches.

  Args:
    batches: `prediction.PredictionBatch`es with labels (`predictor.predictions(...,
      labels=True)`), and label_weights in segment mode.
    num_classes: the width of the probabilities.
    loss_fn: the model's label loss (`losses.get_loss`), averaged over the batches.
    top_k: predictions per video fed to GAP and mAP.
    f1_threshold: the score at or above which a class counts as predicted (micro-F1).
    segment_labels: only the rated (segment, class) pairs count, as in the starter.
    log_every_n_batches: a progress line every so many batches (0: none).
  """
  metrics = EvaluationMetrics(num_classes, top_k, None, f1_threshold=f1_threshold)
  start = time.time()
  num_batches = 0
  for batch in batches:
    predictions = batch.probabilities
    if segment_labels:
      predictions = predictions * batch.label_weights
    loss = float(loss_fn(batch.labels, predictions))
    metrics.accumulate(predictions, batch.labels, loss)
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


def write_results(train_dir, step, results, extra=None, segment_labels=False, folder=None):
  """eval/metrics-<step>.json, eval/metrics.json (latest) and TensorBoard scalars; `folder`:
  where they go instead of train_dir/eval (an ensemble's --ensemble_output_dir)."""
  folder = folder or train_dir_lib.eval_dir(train_dir)
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
