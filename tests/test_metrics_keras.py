"""In-graph Keras metrics agree with the numpy metrics (no ties), under tf.function and XLA."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from yt8m_fusion import metrics


def _batch(rng, batch, num_classes, many_labels_row=False):
  """Random batch whose scores are all distinct (no ties inside videos or across the batch)."""
  assert batch * num_classes <= 2**17
  labels = (rng.random((batch, num_classes)) < 4.0 / num_classes).astype(np.float32)
  labels[0] = 0.0  # a video without labels
  if many_labels_row:
    labels[1, :40] = 1.0  # more labels than the static top-k of PERR
  # Distinct ranks over the whole batch, positives tending higher; exact in float32.
  ranks = np.argsort(np.argsort((rng.random(labels.shape) + 0.6 * labels).reshape(-1)))
  scores = ((ranks + 1) * 2.0**-17).reshape(labels.shape).astype(np.float32)
  assert np.unique(scores).size == scores.size
  return scores, labels


def _numpy_values(batches, top_k=20):
  sizes = np.array([len(p) for p, _ in batches], dtype=np.float64)
  hit = [metrics.calculate_hit_at_one(p, l) for p, l in batches]
  perr = [metrics.calculate_precision_at_equal_recall_rate(p, l) for p, l in batches]
  gap = [metrics.calculate_gap(p, l, top_k) for p, l in batches]
  weighted = lambda values: float(np.sum(np.array(values) * sizes) / sizes.sum())
  return {"hit_at_one": weighted(hit), "perr": weighted(perr), "gap": weighted(gap)}


def _keras_metrics(top_k=20):
  return [metrics.HitAtOne(), metrics.PrecisionAtEqualRecallRate(),
          metrics.GlobalAveragePrecision(top_k=top_k)]


@pytest.mark.parametrize("mode", ["eager", "function", "xla"])
def test_keras_metrics_agree_with_numpy(mode):
  rng = np.random.default_rng(0)
  batches = [_batch(rng, 64, 500, many_labels_row=True), _batch(rng, 37, 500),
               _batch(rng, 128, 500)]
  expected = _numpy_values(batches)
  for metric in _keras_metrics():
    update = metric.update_state
    if mode != "eager":
      update = tf.function(update, jit_compile=(mode == "xla"))
    for predictions, labels in batches:
      update(tf.constant(labels), tf.constant(predictions))
    assert float(metric.result()) == pytest.approx(expected[metric.name], abs=2e-6), metric.name
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_keras_metrics_accept_bfloat16_and_bool_labels():
  rng = np.random.default_rng(1)
  predictions, labels = _batch(rng, 32, 300)
  for metric in _keras_metrics():
    metric.update_state(tf.constant(labels.astype(bool)), tf.constant(predictions, tf.bfloat16))
    value = float(metric.result())
    assert 0.0 <= value <= 1.0
    reference = type(metric)(**({"top_k": 20} if metric.name == "gap" else {}))
    reference.update_state(labels, tf.cast(tf.constant(predictions, tf.bfloat16), tf.float32))
    assert value == pytest.approx(float(reference.result()))


def test_sample_weight_weights_videos():
  rng = np.random.default_rng(2)
  predictions, labels = _batch(rng, 40, 300)
  weights = np.zeros(40, np.float32)
  weights[:10] = 1.0
  for metric, function in ((metrics.HitAtOne(), metrics.calculate_hit_at_one),
                           (metrics.PrecisionAtEqualRecallRate(),
                            metrics.calculate_precision_at_equal_recall_rate)):
    metric.update_state(labels, predictions, sample_weight=weights)
    assert float(metric.result()) == pytest.approx(function(predictions[:10], labels[:10]),
                                                   abs=1e-6)


def test_serialization_round_trip():
  for metric in (metrics.HitAtOne(), metrics.PrecisionAtEqualRecallRate(name="my_perr"),
                 metrics.GlobalAveragePrecision(top_k=5)):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(restored) is type(metric)
    assert restored.get_config() == metric.get_config()
  assert metrics.GlobalAveragePrecision(top_k=5).get_config()["top_k"] == 5
  assert metrics.HitAtOne().name == "hit_at_one"
  assert metrics.PrecisionAtEqualRecallRate().name == "perr"
  assert metrics.GlobalAveragePrecision().name == "gap"
  with pytest.raises(ValueError):
    metrics.GlobalAveragePrecision(top_k=0)


def test_metrics_in_model_fit_and_saved_model_file(tmp_path):
  rng = np.random.default_rng(3)
  _, labels = _batch(rng, 64, 50)
  inputs = keras.Input((8,))
  model = keras.Model(inputs, keras.layers.Dense(50, activation="sigmoid")(inputs))
  model.compile(optimizer="adam", loss="binary_crossentropy", metrics=_keras_metrics(5))
  history = model.fit(rng.random((64, 8)).astype(np.float32), labels, batch_size=16, epochs=1,
                      verbose=0)
  for name in ("hit_at_one", "perr", "gap"):
    assert name in history.history
  path = str(tmp_path / "model.keras")
  model.save(path)
  restored = keras.models.load_model(path)  # the metrics deserialize by registered name
  logs = restored.evaluate(rng.random((16, 8)).astype(np.float32), labels[:16], verbose=0,
                           return_dict=True)
  assert {"hit_at_one", "perr", "gap"} <= set(logs)
