"""NeXtVLAD (yt8m_fusion/models/nextvlad.py): the layer's arithmetic and masking, the paper-size
parameter count, FLOPs, serialization, a few training steps on real frame-level TFRecords
(synthetic SequenceExamples written here), and its LiteRT export.
"""

import keras
import numpy as np
import pytest

from yt8m_fusion import data as yt8m_data
from yt8m_fusion import export
from yt8m_fusion import inputs as model_inputs
from yt8m_fusion.errors import UserError
from yt8m_fusion.litert import LiteRTModel
from yt8m_fusion.litert import model_file
from yt8m_fusion.models import common
from yt8m_fusion.models import flops
from yt8m_fusion.models import nextvlad
from yt8m_fusion.models.config import ModelConfig

MAX_FRAMES = 12
NUM_CLASSES = 10
TINY = dict(nextvlad_cluster_size=4, nextvlad_expansion=2, nextvlad_groups=4,
            nextvlad_hidden_size=16, nextvlad_gating_reduction=4, nextvlad_dropout=0.0)


def _config(feature_sizes=(16, 8), num_classes=NUM_CLASSES):
  names = ("rgb", "audio")[:len(feature_sizes)]
  return ModelConfig(model="NeXtVLAD", feature_names=names, feature_sizes=feature_sizes,
                     frame_features=True, num_classes=num_classes)


def _build(config, **params):
  inputs = common.build_inputs(config)
  return keras.Model(inputs, nextvlad.build(config, inputs, nextvlad.NeXtVLADHParams(**params)),
                     name="NeXtVLAD")


def _random_inputs(config, count, seed=0):
  rng = np.random.default_rng(seed)
  features = {name: rng.integers(0, 256, (count, MAX_FRAMES, size), dtype=np.uint8)
              for name, size in zip(config.feature_names, config.feature_sizes)}
  features["num_frames"] = rng.integers(1, MAX_FRAMES + 1, count).astype(np.int32)
  return features


def _called_layer(cluster_size=3, expansion=2, groups=4, feature_size=6, seed=1):
  layer = nextvlad.NeXtVLAD(cluster_size, expansion, groups)
  layer.build((None, None, feature_size))
  rng = np.random.default_rng(seed)
  layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])
  return layer


def _reference(layer, frames, count):
  """The paper's formula, written with loops over frames, groups and clusters."""
  weights = {w.name: w.numpy() for w in layer.weights}
  groups, clusters = layer.groups, layer.cluster_size
  output = np.zeros((clusters, layer.group_size))
  for frame in frames[:count]:
    expanded = frame @ weights["expansion_kernel"] + weights["expansion_bias"]
    attention = 1 / (1 + np.exp(-(expanded @ weights["attention_kernel"]
                                  + weights["attention_bias"])))
    logits = (expanded @ weights["assignment_kernel"]
              + weights["assignment_bias"]).reshape(groups, clusters)
    assignment = np.exp(logits - logits.max(-1, keepdims=True))
    assignment /= assignment.sum(-1, keepdims=True)
    parts = expanded.reshape(groups, layer.group_size)
    for g in range(groups):
      for k in range(clusters):
        output[k] += attention[g] * assignment[g, k] * (parts[g] - weights["centers"][k])
  output /= np.sqrt(np.maximum((output ** 2).sum(-1, keepdims=True), 1e-12))
  return output.reshape(-1)


# ----------------------------------------------------------------------------------------
# The layer
# ----------------------------------------------------------------------------------------

def test_the_layer_computes_the_papers_formula():
  layer = _called_layer()
  frames = np.random.default_rng(2).normal(size=(2, 7, 6)).astype("float32")
  num_frames = np.array([7, 4], dtype="int32")
  output = layer(frames, num_frames).numpy()
  assert output.shape == (2, 3 * (2 * 6 // 4))
  for index in range(2):
    np.testing.assert_allclose(output[index], _reference(layer, frames[index],
                                                         num_frames[index]),
                               rtol=1e-4, atol=1e-5)


def test_padded_frames_change_nothing():
  layer = _called_layer()
  rng = np.random.default_rng(3)
  frames = rng.normal(size=(3, 9, 6)).astype("float32")
  num_frames = np.array([9, 5, 1], dtype="int32")
  noisy = frames.copy()
  for index, count in enumerate(num_frames):
    noisy[index, count:] = rng.normal(scale=50.0, size=noisy[index, count:].shape)
  np.testing.assert_allclose(layer(noisy, num_frames).numpy(),
                             layer(frames, num_frames).numpy(), rtol=1e-5, atol=1e-6)
  # The same video with less padding gives the same output.
  np.testing.assert_allclose(layer(frames[1:2, :5], num_frames[1:2]).numpy(),
                             layer(frames[1:2], num_frames[1:2]).numpy(), rtol=1e-5, atol=1e-6)


def test_padding_changes_nothing_in_the_whole_model():
  config = _config()
  model = _build(config, **TINY)
  features = _random_inputs(config, 4)
  features["num_frames"] = np.array([1, 3, 5, 6], dtype=np.int32)
  # The same videos with 6 frame slots instead of MAX_FRAMES: padded slots hold zeros after
  # the dequantization, which the expansion's bias would turn into weight without the mask.
  shorter = {name: features[name][:, :6] for name in config.feature_names}
  shorter["num_frames"] = features["num_frames"]
  np.testing.assert_allclose(model(shorter, training=False).numpy(),
                             model(features, training=False).numpy(), rtol=1e-5, atol=1e-6)


def test_groups_must_divide_the_expanded_size():
  config = _config(feature_sizes=(16, 7))
  with pytest.raises(UserError, match=r"--nextvlad_groups=4 .*feature 'audio' \(2 x 7\)"):
    _build(config, **TINY)
  with pytest.raises(UserError, match="--nextvlad_dropout=1.0"):
    _build(_config(), **dict(TINY, nextvlad_dropout=1.0))


# ----------------------------------------------------------------------------------------
# Size and FLOPs
# ----------------------------------------------------------------------------------------

def test_the_paper_size_model_has_the_formulas_parameter_count():
  hp = nextvlad.NeXtVLADHParams()
  assert (hp.nextvlad_cluster_size, hp.nextvlad_expansion, hp.nextvlad_groups,
          hp.nextvlad_hidden_size, hp.nextvlad_gating_reduction) == (128, 2, 8, 2048, 8)
  config = _config(feature_sizes=(1024, 128), num_classes=3862)
  model = _build(config)
  assert model.count_params() == nextvlad.parameter_count((1024, 128), 3862, hp) == 89_025_574
  # Each NeXtVLAD with its share of the FC kernel is the paper's
  # lambda N (N + G + K (G + (H + 1) / G)), plus its biases (lambda N + G + G K).
  lam, groups, clusters, hidden = 2, 8, 128, 2048
  for name, size in (("rgb", 1024), ("audio", 128)):
    expanded = lam * size
    share_of_fc = clusters * expanded // groups * hidden
    paper = expanded * (size + groups + clusters * (groups + (hidden + 1) / groups))
    biases = expanded + groups + groups * clusters
    assert model.get_layer(f"{name}_nextvlad").count_params() + share_of_fc == paper + biases


def _model_flops(model, max_frames):
  """Forward FLOPs: models/flops.py for the Keras layers, the layer's own forward_flops for
  NeXtVLAD."""
  total = 0
  for layer in model.layers:
    if isinstance(layer, nextvlad.NeXtVLAD):
      total += layer.forward_flops(tuple(layer.input[0].shape[1:]), max_frames)
    else:
      total += flops.layer_flops(layer, max_frames)
  return total


def test_forward_flops_equal_a_hand_count():
  layer = _called_layer(cluster_size=3, expansion=2, groups=4, feature_size=6)
  # T = 5 frames, N = 6, lambda N = 12, G = 4, K = 3, group size 3; per frame:
  # expansion 6 x 12 = 72, attention 12 x 4 = 48, assignment 12 x 12 = 144,
  # weighted sum of the grouped frame 4 x 3 x 3 = 36: 300 multiply-adds, x 5 frames x 2.
  assert layer.forward_flops((None, 6), 5) == 3000
  assert layer.forward_flops([(None, 6), ()], 5) == 3000

  config = _config(feature_sizes=(16, 8))
  model = _build(config, **TINY)
  # rgb: N 16, lambda N 32, G 4, K 4 -> 16*32 + 32*4 + 32*16 + 4*4*8 = 1280 per frame;
  # audio: N 8, lambda N 16 -> 8*16 + 16*4 + 16*16 + 4*4*4 = 512 per frame;
  # FC (4*8 + 4*4 = 48) -> 16, gating 16 -> 4 -> 16, logistic 16 -> 10.
  hand = 2 * (MAX_FRAMES * (1280 + 512) + 48 * 16 + 16 * 4 + 4 * 16 + 16 * NUM_CLASSES)
  assert _model_flops(model, MAX_FRAMES) == hand


# ----------------------------------------------------------------------------------------
# Serialization
# ----------------------------------------------------------------------------------------

def test_config_and_weights_round_trip(tmp_path):
  config = _config()
  model = _build(config, **TINY)
  features = _random_inputs(config, 3)
  expected = model(features, training=False).numpy()

  rebuilt = keras.Model.from_config(model.get_config())
  rebuilt.set_weights(model.get_weights())
  np.testing.assert_allclose(rebuilt(features, training=False).numpy(), expected, rtol=1e-6)

  weights = str(tmp_path / "nextvlad.weights.h5")
  model.save_weights(weights)
  fresh = _build(config, **TINY)
  fresh.load_weights(weights)
  np.testing.assert_allclose(fresh(features, training=False).numpy(), expected, rtol=1e-6)

  path = str(tmp_path / "nextvlad.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  layer = loaded.get_layer("rgb_nextvlad")
  assert (type(layer), layer.cluster_size, layer.expansion, layer.groups) == (
      nextvlad.NeXtVLAD, 4, 2, 4)
  np.testing.assert_allclose(loaded(features, training=False).numpy(), expected, rtol=1e-6)


# ----------------------------------------------------------------------------------------
# Training and export
# ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def frame_data(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp("nextvlad_frames"))
  return yt8m_data.generate_dataset(folder, num_videos=96, frame_features=True,
                                    num_classes=NUM_CLASSES, seed=7, num_shards=2,
                                    min_frames=3, max_frames=MAX_FRAMES + 4)["frame"]


def test_a_few_training_steps_reduce_the_loss(frame_data):
  keras.utils.set_random_seed(0)
  config = _config(feature_sizes=(1024, 128))
  model = _build(config, **dict(TINY, nextvlad_dropout=0.5))
  spec = config.data_spec(max_frames=MAX_FRAMES)
  batch = next(iter(model_inputs.load_batches(frame_data["train"], spec, batch_size=32,
                                               num_readers=1).dataset))
  features = model_inputs.select_model_inputs(batch, spec)
  labels = batch["labels"]
  loss = keras.losses.BinaryCrossentropy()
  model.compile(optimizer=keras.optimizers.Adam(0.003), loss=loss)
  before = float(loss(labels, model(features, training=False)))
  model.fit(features, labels, batch_size=32, epochs=20, verbose=0)
  after = float(loss(labels, model(features, training=False)))
  assert np.isfinite(after) and after < 0.9 * before


@pytest.mark.parametrize("quantization,tolerance", [("none", 1e-4), ("dynamic_int8", 0.05)])
def test_litert_export_holds_builtin_ops_and_matches_keras(quantization, tolerance, tmp_path):
  config = _config(feature_sizes=(1024, 128))
  model = _build(config, **TINY)
  features = _random_inputs(config, 5)
  path = str(tmp_path / "nextvlad.tflite")
  export.export_litert(model, config, path, quantization=quantization, max_frames=MAX_FRAMES)
  operators = model_file.operator_names(open(path, "rb").read())
  assert operators and not [op for op in operators if op.startswith(("CUSTOM", "FLEX"))]
  np.testing.assert_allclose(LiteRTModel(path).predict(features),
                             model(features, training=False).numpy(), atol=tolerance, rtol=0)
