"""Model zoo: registry, hyper-parameters, shapes, masking, dequantization, save/load, FLOPs."""

import dataclasses
import math

import keras
import numpy as np
import pytest
from absl import flags

from test_models_util import (ALL_MODELS, FRAME_ONLY_MODELS, NUM_CLASSES, TINY, VIDEO_MODELS,
                              frame_batch, repad, starter_dequantize, tiny_config, video_batch)
from yt8m_fusion import models
from yt8m_fusion.cli import flags as yt8m_flags
from yt8m_fusion.errors import UserError
from yt8m_fusion.models import ModelConfig, registry
from yt8m_fusion.models import layers as zoo_layers
from yt8m_fusion.models.definition import hparam
from yt8m_fusion.training import TrainOptions

# --- Registry and hyper-parameters -----------------------------------------------------------


def test_registry_holds_the_paper_and_starter_models():
  assert {"AttendFusion", "FCModel", "FCRNModel", "FCRGNModel", "FCEarlyFusion", "FCMidFusion",
          "FCLateFusion", "LogisticModel", "MoeModel", "FrameLevelLogisticModel", "DbofModel",
          "LstmModel"} <= set(models.list_models())
  assert {"FrameLevelLogisticModel", "DbofModel", "LstmModel"} <= set(FRAME_ONLY_MODELS)
  assert len(set(models.list_models())) == len(models.DEFINITIONS)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_definition_declares_what_the_programs_need(name):
  spec = models.get_spec(name)
  assert spec.name == name and spec.description.strip()
  assert issubclass(spec.hparams, models.HParams)
  hp = spec.hparams()
  with pytest.raises(dataclasses.FrozenInstanceError):
    hp.input_l2_norm = "none"
  for field in spec.hparams.declared():
    assert field.help.strip(), field.name
    assert field.kind in ("integer", "float", "bool", "string", "enum")
  assert set(spec.values_before_flag_existed) <= set(spec.hparams.names())
  assert set(spec.training) <= {field.name for field in dataclasses.fields(TrainOptions)}
  config = tiny_config(name, frame_features=spec.frame_only)
  assert isinstance(spec.describe_widths(config, models.hparams_of(config)), str)
  assert spec.describe_family(2) in ("Attend-Fusion", "fusion", "one modality")


def test_unknown_model_lists_the_registry():
  with pytest.raises(UserError, match="AttendFusion.*LstmModel"):
    models.build_model(ModelConfig(model="Nope", feature_names=["mean_rgb"],
                                   feature_sizes=[1024]))


def test_default_feature_names():
  assert models.default_feature_names("LogisticModel", False) == ["mean_rgb"]
  assert models.default_feature_names("DbofModel", True) == ["rgb"]
  assert models.default_feature_names("AttendFusion", False) == ["mean_rgb", "mean_audio"]
  assert models.default_feature_names("FCLateFusion", True) == ["rgb", "audio"]
  with pytest.raises(UserError):
    models.default_feature_names("Nope", False)


def _define_on(flag_values):
  def define(define_fn, name, *args, **kwargs):
    if name not in flag_values:
      define_fn(name, *args, flag_values=flag_values, **kwargs)
  return define


def test_one_flag_per_hyper_parameter_name_of_the_registered_models():
  flag_values = flags.FlagValues()
  yt8m_flags.define_hparam_flags(_define_on(flag_values))
  yt8m_flags.define_hparam_flags(_define_on(flag_values))  # twice: no duplicate-flag error
  declared = {field.name for spec in models.DEFINITIONS for field in spec.hparams.declared()}
  assert set(registry.hparam_flags()) == declared <= set(flag_values)
  flag_values(["prog", "--moe_num_mixtures=4", "--noattend_attention",
               "--input_l2_norm=per_feature", "--dbof_pooling_method=average"])
  assert flag_values["moe_num_mixtures"].value == 4
  assert flag_values["attend_attention"].value is False
  assert flag_values["input_l2_norm"].value == "per_feature"
  with pytest.raises(flags.IllegalFlagValueError):
    flag_values["input_l2_norm"].parse("sideways")
  with pytest.raises(flags.IllegalFlagValueError):
    flag_values["lstm_cells"].parse("0")
  # The defaults differ per model: the help says so.
  assert "none for FCModel" in flag_values["input_l2_norm"].help


def test_a_name_declared_with_another_kind_is_a_programming_error():
  @dataclasses.dataclass(frozen=True)
  class CountHParams(models.HParams):
    shared_size: int = hparam(3, "a count", lower_bound=1)

  @dataclasses.dataclass(frozen=True)
  class NameHParams(models.HParams):
    shared_size: str = hparam("big", "a name")

  @dataclasses.dataclass(frozen=True)
  class OtherDefaultHParams(models.HParams):
    shared_size: int = hparam(5, "a count", lower_bound=1)

  def spec(name, hparams):
    return models.ModelDefinition(name=name, build=None, hparams=hparams, description=name)

  same = registry.hparam_flags([spec("A", CountHParams), spec("B", OtherDefaultHParams)])
  assert same["shared_size"][1] == {"A": 3, "B": 5}
  with pytest.raises(TypeError, match="'shared_size' is declared by A .* by B"):
    registry.hparam_flags([spec("A", CountHParams), spec("B", NameHParams)])


def test_starter_and_paper_defaults():
  starter_defaults = {
      "moe_num_mixtures": 2, "dbof_add_batch_norm": True, "sample_random_frames": True,
      "dbof_cluster_size": 8192, "dbof_hidden_size": 1024, "dbof_pooling_method": "max",
      "dbof_activation": "sigmoid", "video_level_classifier_model": "MoeModel",
      "iterations": 30}
  dbof = models.default_params("DbofModel")
  assert {key: dbof[key] for key in starter_defaults} == starter_defaults
  lstm = models.default_params("LstmModel")
  assert (lstm["lstm_cells"], lstm["lstm_layers"], lstm["moe_num_mixtures"]) == (1024, 2, 2)
  assert models.default_params("MoeModel")["input_l2_norm"] == "joint"
  assert models.default_params("FCLateFusion")["input_l2_norm"] == "none"
  assert models.default_params("AttendFusion")["attend_hidden_size"] == 8192
  assert models.default_params("FCModel")["fc_hidden_size"] == 8192
  # Each model stores its own fields only.
  assert set(models.default_params("LogisticModel")) == {"input_l2_norm", "frame_pooling",
                                                         "l2_penalty"}


def test_from_dict_fills_missing_and_rejects_bad_values():
  hparams = models.get_spec("LstmModel").hparams
  values = hparams.from_dict({"lstm_cells": "16", "unknown_key": 3})
  assert values.lstm_cells == 16 and values.lstm_layers == 2
  assert "unknown_key" not in values.to_dict()
  for bad in ({"lstm_cells": 0}, {"lstm_cells": "many"}, {"input_l2_norm": "sideways"},
              {"l2_penalty": -1}):
    with pytest.raises(UserError, match="--"):
      hparams.from_dict(bad)
  with pytest.raises(UserError, match="--attend_attention"):
    models.get_spec("AttendFusion").hparams.from_dict({"attend_attention": "maybe"})


def test_config_json_round_trip_rebuilds_the_same_model():
  config = tiny_config("AttendFusion")
  config.params = models.complete_params("AttendFusion", config.params)
  again = ModelConfig.from_json(config.to_json())
  assert again == config
  assert models.build_model(again).count_params() == models.build_model(config).count_params()


@pytest.mark.parametrize("name,message", [
    ("attend_activation", "--attend_activation"), ("fc_activation", "--fc_activation"),
    ("dbof_activation", "--dbof_activation"),
    ("video_level_classifier_model", "--video_level_classifier_model"),
    ("dbof_pooling_method", "--dbof_pooling_method")])
def test_bad_string_hparams_are_user_errors(name, message):
  model = {"attend_activation": "AttendFusion", "fc_activation": "FCModel"}.get(name, "DbofModel")
  with pytest.raises(UserError, match=message):
    models.build_model(tiny_config(model, frame_features=True, **{name: "nonsense"}))


def test_token_size_must_divide_hidden_size():
  with pytest.raises(UserError, match="--attend_token_size"):
    models.build_model(tiny_config("AttendFusion", attend_token_size=5))


@pytest.mark.parametrize("model", FRAME_ONLY_MODELS)
def test_frame_only_models_need_frame_features(model):
  with pytest.raises(UserError, match="--frame_features"):
    models.build_model(tiny_config(model))


# --- Paper parameter counts (the only paper-size builds) -------------------------------------


def test_attend_fusion_paper_size():
  model = models.build_model(ModelConfig(model="AttendFusion",
                                         feature_names=["mean_rgb", "mean_audio"],
                                         feature_sizes=[1024, 128]))
  params = model.count_params()
  assert 72.0e6 <= params <= 73.0e6
  # 72,732,438 for the Dense layers + 2 x 66,304 for MultiHeadAttention(4 x 32) and LayerNorm.
  assert params == 72_732_438 + 2 * (4 * (128 * 128 + 128) + 2 * 128)
  assert models.forward_flops(model) == 166_395_904


def test_fc_late_fusion_paper_size():
  model = models.build_model(ModelConfig(model="FCLateFusion",
                                         feature_names=["mean_rgb", "mean_audio"],
                                         feature_sizes=[1024, 128]))
  params = model.count_params()
  assert 340.5e6 <= params <= 341.5e6
  assert params == 341_204_524
  # Matrix products only: 2 x (weights) per example for a stack of Dense layers.
  assert models.forward_flops(model) == 2 * (params - 2 * (3 * 8192 + 3862))


@pytest.mark.parametrize("combination", ["sum_logits", "mean_probabilities"])
def test_fc_late_fusion_combinations(combination):
  """The modality classifiers' logits summed before one sigmoid, or their sigmoids averaged."""
  net = models.build_model(tiny_config("FCLateFusion", fc_late_fusion=combination))
  batch = video_batch(3)
  logits = []
  for name in ("mean_rgb", "mean_audio"):
    branch = keras.Model(net.inputs, net.get_layer(f"{name}_classifier").output)
    logits.append(np.asarray(branch(batch), np.float64))
  sigmoid = lambda x: 1 / (1 + np.exp(-x))
  expected = (sigmoid(logits[0] + logits[1]) if combination == "sum_logits"
              else (sigmoid(logits[0]) + sigmoid(logits[1])) / 2)
  np.testing.assert_allclose(np.asarray(net(batch)), expected, rtol=1e-5, atol=1e-6)
  # Same weights either way: the paper's 341,204,524 parameters do not depend on it.
  assert net.count_params() == models.build_model(tiny_config("FCLateFusion")).count_params()


# --- Shapes and dtypes -----------------------------------------------------------------------


@pytest.mark.parametrize("model", VIDEO_MODELS)
def test_video_level_output(model):
  net = models.build_model(tiny_config(model))
  assert {tensor.name for tensor in net.inputs} == {"mean_rgb", "mean_audio"}
  out = np.asarray(net(video_batch(3), training=False))
  assert out.shape == (3, NUM_CLASSES) and out.dtype == np.float32
  assert np.all((out >= 0) & (out <= 1))


@pytest.mark.parametrize("model", ALL_MODELS)
def test_frame_level_output(model):
  net = models.build_model(tiny_config(model, frame_features=True))
  dtypes = {tensor.name: tensor.dtype for tensor in net.inputs}
  assert dtypes == {"rgb": "uint8", "audio": "uint8", "num_frames": "int32"}
  out = np.asarray(net(frame_batch([5, 9, 1], 9), training=False))
  assert out.shape == (3, NUM_CLASSES) and out.dtype == np.float32
  assert np.all((out >= 0) & (out <= 1)) and np.all(np.isfinite(out))


def test_single_feature_models():
  features = (("mean_audio", 6),)
  for model in VIDEO_MODELS:
    net = models.build_model(tiny_config(model, features=features))
    assert net(video_batch(2, features=features)).shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("model", ["AttendFusion", "MoeModel", "FCLateFusion", "DbofModel"])
def test_mixed_precision_output_stays_float32(model):
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    net = models.build_model(tiny_config(model, frame_features=True))
    out = net(frame_batch([4, 2], 6), training=False)
  finally:
    keras.mixed_precision.set_global_policy(previous)
  assert out.dtype == "float32" and out.shape == (2, NUM_CLASSES)
  assert any(layer.compute_dtype == "bfloat16" for layer in net.layers
             if isinstance(layer, keras.layers.Dense))


def _dense_outputs_and_gradients(layer, inputs, output_weights):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  with tf.GradientTape() as tape:
    tape.watch(inputs)
    outputs = layer(inputs)
    loss = tf.reduce_sum(tf.cast(outputs, "float32") * output_weights)
  gradients = tape.gradient(loss, [inputs, layer.kernel, layer.bias])
  return [np.asarray(value, dtype=np.float32) for value in [outputs, *gradients]]


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_classifier_dense_matches_dense(policy):
  """ClassifierDense (bfloat16 on CPU: its own kernel-gradient form) gives Dense's outputs
  and gradients for the same weights; float32 goes through Dense's own call."""
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(policy)
  try:
    classifier, dense = zoo_layers.ClassifierDense(37), keras.layers.Dense(37)
    for layer in (classifier, dense):
      layer.build((None, 300))
    rng = np.random.default_rng(0)
    classifier.set_weights([rng.standard_normal((300, 37)).astype("float32") * 0.1,
                            rng.standard_normal(37).astype("float32")])
    dense.set_weights(classifier.get_weights())
    inputs = keras.ops.convert_to_tensor(rng.standard_normal((16, 300)).astype("float32"))
    output_weights = rng.standard_normal((16, 37)).astype("float32")
    assert classifier._bfloat16_cpu_path(inputs) == (policy == "mixed_bfloat16")  # pylint: disable=protected-access
    ours = _dense_outputs_and_gradients(classifier, inputs, output_weights)
    reference = _dense_outputs_and_gradients(dense, inputs, output_weights)
  finally:
    keras.mixed_precision.set_global_policy(previous)
  tolerance = 0 if policy == "float32" else 2.0 ** -7  # one bfloat16 rounding
  for name, value, expected in zip(["outputs", "inputs", "kernel", "bias"], ours, reference):
    assert value.shape == expected.shape, name
    scale = np.abs(expected).max()
    assert scale > 0, name
    np.testing.assert_allclose(value, expected, rtol=0, atol=tolerance * scale, err_msg=name)


def test_transpose_unfolded_with_an_unknown_batch_size():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  transpose = tf.function(zoo_layers.transpose_unfolded,
                          input_signature=[tf.TensorSpec([None, 5], tf.float32)])
  matrix = np.arange(15, dtype=np.float32).reshape(3, 5)
  result = transpose(matrix)
  assert result.shape == (5, 3)
  np.testing.assert_array_equal(result, matrix.T)


def test_paper_models_use_classifier_dense():
  for model, names in [("AttendFusion", ["classifier"]), ("FCModel", ["classifier"]),
                       ("FCLateFusion", ["mean_rgb_classifier", "mean_audio_classifier"])]:
    net = models.build_model(tiny_config(model))
    for name in names:
      assert isinstance(net.get_layer(name), zoo_layers.ClassifierDense), (model, name)


# --- Masking, dequantization, normalization --------------------------------------------------


@pytest.mark.parametrize("model", ALL_MODELS)
def test_padding_does_not_change_predictions(model):
  """The same videos padded to two lengths, with different garbage in the padding."""
  net = models.build_model(tiny_config(model, frame_features=True))
  short = frame_batch([6, 9, 1, 3], 9, seed=3)
  longer = repad(short, 16, seed=4)
  first = np.asarray(net(short, training=False))
  second = np.asarray(net(longer, training=False))
  np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)


def test_dequantization_inside_the_model_is_the_starter_formula():
  net = models.build_model(tiny_config("FCModel", frame_features=True))
  probe = keras.Model(net.input, [net.get_layer("dequantize_rgb").output,
                                  net.get_layer("dequantize_audio").output])
  batch = frame_batch([20, 7], 24, seed=5)
  batch["rgb"][0, :20] = np.arange(240, dtype=np.uint8).reshape(20, 12)  # q = 0..239
  batch["rgb"][1, :7, :] = np.arange(240, 252, dtype=np.uint8)[None, :]
  batch["rgb"][1, 6, :4] = [252, 253, 254, 255]
  rgb, audio = (np.asarray(t) for t in probe(batch))
  for values, name in ((rgb, "rgb"), (audio, "audio")):
    assert values.dtype == np.float32
    for row, count in enumerate(batch["num_frames"]):
      np.testing.assert_array_equal(values[row, :count],
                                    starter_dequantize(batch[name][row, :count]))
      assert not values[row, count:].any()  # padding zeroed after dequantization
  assert starter_dequantize(0) == np.float32(-1.9921875)
  np.testing.assert_array_equal(zoo_layers.dequantization_table(),
                                starter_dequantize(np.arange(256)))


def test_model_dequantization_matches_the_data_package():
  quantization = pytest.importorskip("yt8m_fusion.data.quantization")
  codes = np.arange(256, dtype=np.uint8)
  np.testing.assert_array_equal(zoo_layers.dequantization_table(),
                                quantization.dequantize_numpy(codes))
  np.testing.assert_array_equal(zoo_layers.dequantization_table(),
                                np.asarray(quantization.dequantize(codes)))


def _l2(x, axis=-1):
  return x / np.sqrt(np.maximum(np.sum(x * x, axis=axis, keepdims=True), 1e-12))


def test_joint_l2_normalization_video_level():
  net = models.build_model(tiny_config("LogisticModel"))
  probe = keras.Model(net.input, net.get_layer("input_l2_norm").output)
  batch = video_batch(3, seed=6)
  rgb, audio = (np.asarray(t) for t in probe(batch))
  joint = _l2(np.concatenate([batch["mean_rgb"], batch["mean_audio"]], -1))
  np.testing.assert_allclose(np.concatenate([rgb, audio], -1), joint, rtol=1e-6, atol=1e-7)


def test_per_feature_and_no_l2_normalization():
  batch = video_batch(2, seed=7)
  net = models.build_model(tiny_config("LogisticModel", input_l2_norm="per_feature"))
  rgb, audio = (np.asarray(t) for t in keras.Model(
      net.input, net.get_layer("input_l2_norm").output)(batch))
  np.testing.assert_allclose(rgb, _l2(batch["mean_rgb"]), rtol=1e-6)
  np.testing.assert_allclose(audio, _l2(batch["mean_audio"]), rtol=1e-6)
  net = models.build_model(tiny_config("LogisticModel", input_l2_norm="none"))
  assert not any(isinstance(layer, zoo_layers.L2Normalize) for layer in net.layers)


def test_frame_level_normalization_is_per_frame_and_keeps_padding_zero():
  net = models.build_model(tiny_config("FrameLevelLogisticModel", frame_features=True))
  probe = keras.Model(net.input, net.get_layer("frame_l2_norm").output)
  batch = frame_batch([3, 5], 5, seed=8)
  rgb, audio = (np.asarray(t) for t in probe(batch))
  norms = np.sqrt(np.sum(rgb ** 2, -1) + np.sum(audio ** 2, -1))
  np.testing.assert_allclose(norms[0, :3], 1.0, rtol=1e-5)
  np.testing.assert_allclose(norms[1], 1.0, rtol=1e-5)
  assert not rgb[0, 3:].any() and not audio[0, 3:].any()


def test_video_models_on_frames_pool_the_valid_frames():
  """Frame input to a video-level model = the mean of its dequantized valid frames."""
  frame_net = models.build_model(tiny_config("LogisticModel", frame_features=True))
  video_net = models.build_model(tiny_config("LogisticModel"))
  video_net.set_weights(frame_net.get_weights())
  batch = frame_batch([4, 7], 7, seed=9)
  means = {f"mean_{name}": np.stack([starter_dequantize(batch[name][row, :count]).mean(0)
                                     for row, count in enumerate(batch["num_frames"])])
           for name in ("rgb", "audio")}
  np.testing.assert_allclose(np.asarray(frame_net(batch)), np.asarray(video_net(means)),
                             rtol=1e-5, atol=1e-6)


# --- Layers ----------------------------------------------------------------------------------


def test_frame_sampler_inference_is_deterministic_and_in_range():
  sampler = zoo_layers.FrameSampler(4, random_frames=True, seed=1)
  frames = np.broadcast_to(np.arange(10, dtype=np.float32)[None, :, None], (3, 10, 2))
  num_frames = np.array([8, 3, 0], np.int32)
  picked = np.asarray(sampler(frames, num_frames, training=False))[..., 0]
  np.testing.assert_array_equal(picked, [[1, 3, 5, 7], [0, 1, 1, 2], [0, 0, 0, 0]])
  for _ in range(3):
    random = np.asarray(sampler(frames, num_frames, training=True))[..., 0]
    assert np.all(random[0] < 8) and np.all(random[1] < 3) and np.all(random[2] == 0)
  sequence = zoo_layers.FrameSampler(4, random_frames=False)
  picked = np.asarray(sequence(frames, num_frames, training=False))[..., 0]
  np.testing.assert_array_equal(picked, [[2, 3, 4, 5], [0, 1, 2, 0], [0, 0, 0, 0]])
  random = np.asarray(sequence(frames, num_frames, training=True))[..., 0]
  assert np.all(np.diff(random[0]) == 1) and random[0, 0] <= 4


def test_masked_pooling_mean_and_max():
  frames = np.array([[[0, 0, 0], [0, 1, -1], [9, 9, 9]],
                     [[0, 0, 0], [0, 2, -2], [0, 0, 0]]], np.float32)
  num_frames = np.array([2, 2], np.int32)
  mean = zoo_layers.MaskedPooling("mean")(frames, num_frames)
  np.testing.assert_allclose(mean, [[0, .5, -.5], [0, 1, -1]])
  maximum = zoo_layers.MaskedPooling("max")(frames, num_frames)
  np.testing.assert_allclose(maximum, [[0, 1, 0], [0, 2, 0]])
  empty = zoo_layers.MaskedPooling("max")(frames, np.array([0, 1], np.int32))
  np.testing.assert_allclose(empty, [[0, 0, 0], [0, 0, 0]])


def test_moe_combine_by_hand():
  gates = np.array([[1.0, 2.0, 0.0, -1.0, 0.5, 0.0]], np.float32)  # 2 classes x (2 + dummy)
  experts = np.array([[0.3, -0.2, 1.5, 0.0]], np.float32)          # 2 classes x 2
  out = np.asarray(zoo_layers.MoeCombine(2, 2)([gates, experts]))
  sigmoid = lambda v: 1 / (1 + math.exp(-v))  # pylint: disable=unnecessary-lambda-assignment
  expected = []
  for c in range(2):
    g = np.exp(gates[0, 3 * c:3 * c + 3]) / np.exp(gates[0, 3 * c:3 * c + 3]).sum()
    expected.append(g[0] * sigmoid(experts[0, 2 * c]) + g[1] * sigmoid(experts[0, 2 * c + 1]))
  np.testing.assert_allclose(out[0], expected, rtol=1e-6)


def test_moe_parameter_count_and_l2_penalty():
  net = models.build_model(tiny_config("MoeModel"))
  d, c, m = 18, NUM_CLASSES, 2
  assert net.count_params() == d * c * (m + 1) + d * c * m + c * m
  assert len(net.losses) == 2  # gates and experts penalized (starter: l2 1e-8)
  assert not models.build_model(tiny_config("MoeModel", l2_penalty=0.0)).losses


# --- Attend-Fusion specifics -----------------------------------------------------------------


@pytest.mark.parametrize("frame_features", [False, True])
def test_attend_fusion_without_attention_removes_the_attention_only(frame_features):
  with_attention = models.build_model(tiny_config("AttendFusion", frame_features=frame_features))
  without = models.build_model(tiny_config("AttendFusion", frame_features=frame_features,
                                           attend_attention=False))
  blocks = [layer for layer in with_attention.layers
            if isinstance(layer, zoo_layers.SelfAttentionBlock)]
  attention_params = sum(block.attention.count_params() for block in blocks)
  # Q, K, V: width -> 2 heads x 4 (+ bias); output 8 -> width (+ bias); per modality.
  width = 8 if frame_features else 4  # frame: 8 per frame; video: tokens of 4
  assert attention_params == 2 * (3 * (width * 8 + 8) + (8 * width + width))
  assert without.count_params() == with_attention.count_params() - attention_params
  # Everything else is there, with the same shapes: the block's LayerNorm included.
  attention_weights = {id(w) for block in blocks for w in block.attention.weights}
  kept = sorted(tuple(w.shape) for w in with_attention.weights
                if id(w) not in attention_weights)
  assert sorted(tuple(w.shape) for w in without.weights) == kept
  with pytest.raises(UserError, match="attention"):
    models.attention_scores_model(without)


def test_attend_fusion_without_attention_is_layer_norm_of_the_fc_output():
  net = models.build_model(tiny_config("AttendFusion", attend_attention=False))
  probe = keras.Model(net.input, [net.get_layer("mean_rgb_fc_0").output,
                                  net.get_layer("mean_rgb_flatten").output])
  hidden, flattened = (np.asarray(t) for t in probe(video_batch(3, seed=4)))
  tokens = hidden.reshape(3, 4, 4)  # hidden 16 = 4 tokens of 4
  mean, variance = tokens.mean(-1, keepdims=True), tokens.var(-1, keepdims=True)
  expected = (tokens - mean) / np.sqrt(variance + 1e-6)  # gamma 1, beta 0 when built
  np.testing.assert_allclose(flattened, expected.reshape(3, 16), rtol=1e-4, atol=1e-5)


def test_the_ablation_saves_and_loads(tmp_path):
  net = models.build_model(tiny_config("AttendFusion", attend_attention=False))
  batch = video_batch(2, seed=6)
  net.save(tmp_path / "ablation.keras")
  loaded = keras.models.load_model(tmp_path / "ablation.keras")
  np.testing.assert_array_equal(np.asarray(loaded.predict(batch, verbose=0)),
                                np.asarray(net.predict(batch, verbose=0)))


def test_old_no_attention_models_are_rebuilt_as_trained(tmp_path):
  """A model_flags.json written before --attend_norm_without_attention: no LayerNorm."""
  import json  # pylint: disable=import-outside-toplevel

  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from yt8m_fusion import train_dir as train_dir_lib  # pylint: disable=import-outside-toplevel

  old_params = {**TINY, "attend_attention": False}
  trained = models.build_model(tiny_config("AttendFusion", **old_params,
                                           attend_norm_without_attention=False))
  assert not [layer for layer in trained.layers
              if isinstance(layer, keras.layers.LayerNormalization)]
  tf.train.Checkpoint(model=trained).save(str(tmp_path / "model.ckpt"))
  saved = tiny_config("AttendFusion", **old_params).to_json_dict()
  assert "attend_norm_without_attention" not in saved["model_params"]
  (tmp_path / "model_flags.json").write_text(json.dumps(saved))

  # As eval.py / inference.py rebuild it: flags at their defaults take the saved values.
  requested = ModelConfig(model="AttendFusion", feature_names=["mean_rgb", "mean_audio"],
                          feature_sizes=[12, 6], num_classes=NUM_CLASSES,
                          params=models.default_params("AttendFusion"))
  merged = train_dir_lib.merge_config(train_dir_lib.load_config(str(tmp_path)), requested,
                                      set(), str(tmp_path))
  assert merged.params["attend_norm_without_attention"] is False
  rebuilt = models.build_model(merged)
  assert rebuilt.count_params() == trained.count_params()
  train_dir_lib.restore_weights(rebuilt, train_dir_lib.latest_checkpoint(str(tmp_path)))
  batch = video_batch(2, seed=5)
  np.testing.assert_array_equal(np.asarray(rebuilt(batch)), np.asarray(trained(batch)))
  # From model_flags.json alone (the report) too; a new file keeps the LayerNorm.
  alone = train_dir_lib.load_config(str(tmp_path))
  alone.params = models.params_as_trained("AttendFusion", alone.params)
  assert models.build_model(alone).count_params() == trained.count_params()
  new = tiny_config("AttendFusion", **old_params, attend_norm_without_attention=True)
  assert models.params_as_trained("AttendFusion", new.params)[
      "attend_norm_without_attention"] is True
  assert models.build_model(new).count_params() == trained.count_params() + 2 * 2 * 4


def test_attention_scores_video_level(tmp_path):
  net = models.build_model(tiny_config("AttendFusion"))
  scores = models.attention_scores_model(net)(video_batch(3, seed=10))
  assert set(scores) == {"mean_rgb", "mean_audio"}
  for value in scores.values():
    value = np.asarray(value)
    assert value.shape == (3, 2, 4, 4) and value.dtype == np.float32  # 16 = 4 tokens of 4
    np.testing.assert_allclose(value.sum(-1), 1.0, rtol=1e-5)
  path = tmp_path / "attend.keras"
  net.save(path)
  loaded = keras.models.load_model(path)
  again = models.attention_scores_model(loaded)(video_batch(3, seed=10))
  np.testing.assert_allclose(np.asarray(again["mean_rgb"]), np.asarray(scores["mean_rgb"]),
                             rtol=1e-6)


def test_attention_scores_frame_level_mask_padding():
  net = models.build_model(tiny_config("AttendFusion", frame_features=True))
  scores = models.attention_scores_model(net)(frame_batch([3, 6], 6, seed=11))
  rgb = np.asarray(scores["rgb"])
  assert rgb.shape == (2, 2, 6, 6)
  np.testing.assert_allclose(rgb.sum(-1), 1.0, rtol=1e-5)
  assert not rgb[0, :, :, 3:].any()  # no attention to padded frames


def test_frame_level_attend_fusion_defaults_are_small():
  config = ModelConfig(model="AttendFusion", feature_names=["rgb", "audio"],
                       feature_sizes=[1024, 128], frame_features=True)
  net = models.build_model(config)
  assert net.count_params() < 5e6
  assert models.forward_flops(net) < 1e9


# --- Save / load -----------------------------------------------------------------------------


@pytest.mark.parametrize("model,frame_features",
                         [(name, True) for name in ALL_MODELS] + [("AttendFusion", False),
                                                                  ("MoeModel", False)])
def test_save_load_round_trip(model, frame_features, tmp_path):
  net = models.build_model(tiny_config(model, frame_features=frame_features,
                                       fc_normalization="batch"))
  batch = frame_batch([4, 7], 7, seed=12) if frame_features else video_batch(2, seed=12)
  expected = np.asarray(net.predict(batch, verbose=0))
  path = tmp_path / f"{model}.keras"
  net.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_array_equal(np.asarray(loaded.predict(batch, verbose=0)), expected)
  assert loaded.count_params() == net.count_params()


# --- FLOPs -----------------------------------------------------------------------------------


def test_flops_tiny_attend_fusion_by_hand():
  config = tiny_config("AttendFusion")  # rgb 12, audio 6; hidden 16 = 4 tokens of 4
  net = models.build_model(config)
  dense = 2 * (12 * 16 + 6 * 16) + 2 * (2 * 16) * NUM_CLASSES
  tokens, width, heads, key = 4, 4, 2, 4
  attention = 2 * (3 * tokens * width * heads * key     # Q, K, V projections
                   + tokens * tokens * heads * key      # scores
                   + tokens * tokens * heads * key      # weighted sum of V
                   + tokens * heads * key * width)      # output projection
  assert models.forward_flops(net) == dense + 2 * attention
  assert models.forward_flops(config) == dense + 2 * attention


def test_flops_frame_level_counts_max_frames():
  config = tiny_config("FrameLevelLogisticModel", frame_features=True)
  assert models.forward_flops(config) == 2 * 18 * NUM_CLASSES  # pooled before the Dense
  config = tiny_config("AttendFusion", frame_features=True, attend_attention=False)
  frames = 300
  expected = 2 * frames * (12 * 8 + 6 * 8) + 2 * 16 * NUM_CLASSES
  assert models.forward_flops(config) == expected
  assert models.forward_flops(config, max_frames=10) == (2 * 10 * (12 * 8 + 6 * 8)
                                                         + 2 * 16 * NUM_CLASSES)
  lstm = tiny_config("LstmModel", frame_features=True, video_level_classifier_model="LogisticModel")
  expected = 2 * frames * 4 * 8 * ((18 + 8) + (8 + 8)) + 2 * 8 * NUM_CLASSES
  assert models.forward_flops(lstm) == expected


def test_tiny_hparams_cover_every_model():
  assert set(TINY) <= set(registry.hparam_flags())


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_has_positive_flops(name):
  spec = models.get_spec(name)
  for frame_features in sorted({True, spec.frame_only}):
    config = tiny_config(name, frame_features=frame_features)
    assert models.forward_flops(config) > 0


class _WeightedUnknown(keras.layers.Layer):
  def build(self, input_shape):
    self.scale = self.add_weight(shape=(input_shape[-1],), name="scale")

  def call(self, x):
    return x * self.scale


class _WeightedWithFlops(_WeightedUnknown):
  def forward_flops(self, input_shape, max_frames):
    return 7 * input_shape[-1] + max_frames


def test_flops_of_an_unknown_weighted_layer_is_an_error_not_zero():
  inputs = keras.Input((5,))
  model = keras.Model(inputs, _WeightedUnknown(name="mystery")(inputs))
  with pytest.raises(TypeError, match="'mystery'.*forward_flops"):
    models.forward_flops(model)
  # The protocol: the layer says what it costs; a layer without weights costs nothing.
  model = keras.Model(inputs, _WeightedWithFlops(name="known")(keras.layers.ReLU()(inputs)))
  assert models.forward_flops(model, max_frames=10) == 7 * 5 + 10


def test_docs_name_every_registered_model_and_hyper_parameter():
  import os  # pylint: disable=import-outside-toplevel
  path = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "MODELS.md")
  with open(path, encoding="utf-8") as handle:
    text = handle.read()
  assert not [name for name in models.list_models() if f"`{name}`" not in text]
  assert not [name for name in registry.hparam_flags()
              if f"--{name}" not in text and f"--[no]{name}" not in text]


def test_small_params_are_the_models_own_fields_and_agree():
  """The tests build every model at its definition's small sizes (test_models_util.TINY):
  each size names a field of that model, and models sharing a field agree on its size."""
  chosen = {}
  for definition in registry.DEFINITIONS:
    unknown = set(definition.small_params) - set(definition.hparams.names())
    assert not unknown, f"{definition.name}: small_params names no field {sorted(unknown)}"
    definition.hparams.from_dict(definition.small_params)  # valid values
    for name, value in definition.small_params.items():
      assert chosen.setdefault(name, value) == value, f"{name}: two small sizes"
