"""The teachers' cost in distillation: a teacher forward in every step vs a cached lookup.

    python benchmarks/distillation_cost.py [--batch_size=256] [--steps=8] [--chunks=3]
        [--student_hidden=1024] [--teacher_hidden=4096] [--num_videos=4096] [--json FILE]

Three ways to train the same student (AttendFusion, video level, 3,862 classes) for a few
steps on in-memory batches, in turns, in one process:

  labels    the label loss alone (the reference)
  soft_loss distillation against targets already in the batch (in-memory dense targets): the
            loss's own cost, without looking anything up
  cached    distillation against the teachers' probabilities looked up per video id from a
            teacher predictions file (`distillation.TeacherTargets`, top-100 per video), as
            train.py --teacher / --teacher_predictions train
  forward   distillation against the teacher run on the same batch inside every step (the
            teacher's weights frozen, in the training process)

Reported: the median seconds per step of each, the ratios forward / cached and
cached / labels, the teacher's forward seconds per example (what predicting once costs per
video) and from those the teacher's cost over E epochs both ways: predicting once costs one
forward per video; forwarding in every step costs E per video, plus the teacher's weights in
the training process. docs/DISTILLATION.md and docs/PERFORMANCE.md quote the figures.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))

import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position

from yt8m_fusion import distillation  # pylint: disable=wrong-import-position
from yt8m_fusion import models  # pylint: disable=wrong-import-position
from yt8m_fusion import training  # pylint: disable=wrong-import-position

NUM_CLASSES = 3862
FEATURES = (("mean_rgb", 1024), ("mean_audio", 128))


def attend_fusion(params, num_classes=NUM_CLASSES):
  """AttendFusion at video level with `params` (an int: attend_hidden_size)."""
  if isinstance(params, int):
    params = {"attend_hidden_size": params}
  return models.ModelConfig(model="AttendFusion", feature_names=[n for n, _ in FEATURES],
                            feature_sizes=[s for _, s in FEATURES], num_classes=num_classes,
                            params=params)


class ForwardEveryStep(training.TrainingModel):
  """The step with the teacher run on the batch first (its weights frozen)."""

  def __init__(self, network, teacher, label_loss, **kwargs):
    super().__init__(network, label_loss, **kwargs)
    self.teacher = teacher
    self.teacher.trainable = False

  def train_step(self, data):
    inputs, labels = data
    targets = {"probabilities": tf.stop_gradient(self.teacher(inputs, training=False)),
               "found": tf.ones(tf.shape(labels)[:1])}
    return super().train_step((inputs, labels, targets))


def _batches(num_videos, batch_size, num_classes, seed=0):
  """In-memory video-level batches with ids, random features and 3 labels per video."""
  rng = np.random.default_rng(seed)
  ids = np.array([f"v{i:07d}".encode() for i in range(num_videos)], dtype=object)
  features = {name: rng.standard_normal((num_videos, size)).astype(np.float32)
              for name, size in FEATURES}
  labels = np.zeros((num_videos, num_classes), np.float32)
  labels[np.arange(num_videos)[:, None], rng.integers(0, num_classes, (num_videos, 3))] = 1
  dataset = tf.data.Dataset.from_tensor_slices(
      {"video_ids": list(ids), **features, "labels": labels})
  return ids, dataset.batch(batch_size, drop_remainder=True).cache().repeat()


def _random_predictions(ids, num_classes, top_k, seed=1):
  rng = np.random.default_rng(seed)
  indexes = np.argsort(rng.random((len(ids), num_classes)), axis=1)[:, :top_k]
  probabilities = np.sort(rng.random((len(ids), top_k)), axis=1)[:, ::-1]
  header = {"format": distillation.FORMAT, "num_classes": num_classes, "top_k": top_k,
            "tail_mass_mean": 0.0}
  return distillation.TeacherPredictions(ids, indexes.astype(np.int16),
                                         probabilities.astype(np.float16), header, "<memory>")


def measure(batch_size=256, steps=8, chunks=3, student_hidden=1024, teacher_hidden=4096,
            num_videos=4096, num_classes=NUM_CLASSES, top_k=100):
  """The figures as a dict (see the module docstring); student_hidden and teacher_hidden:
  attend_hidden_size, or dicts of AttendFusion hyper-parameters."""
  from yt8m_fusion import losses  # pylint: disable=import-outside-toplevel
  tf.keras.utils.set_random_seed(0)
  names = [n for n, _ in FEATURES]
  ids, batches = _batches(num_videos, batch_size, num_classes)
  targets = distillation.TeacherTargets(_random_predictions(ids, num_classes, top_k),
                                        num_classes)
  pairs = batches.map(lambda b: ({n: b[n] for n in names}, b["labels"]))
  triples = batches.map(lambda b: ({n: b[n] for n in names}, b["labels"],
                                   targets(b["video_ids"])))
  # The same targets computed once and kept in memory (the batches repeat in one order).
  num_batches = num_videos // batch_size
  precomputed = triples.take(num_batches).cache().repeat()
  options = training.TrainOptions(batch_size=batch_size, verbose=0)
  student_config = attend_fusion(student_hidden, num_classes)
  teacher = models.build_model(attend_fusion(teacher_hidden, num_classes))

  def trainer(kind):
    network = models.build_model(student_config)
    label_loss = losses.get_loss()
    distill = losses.DistillationLoss(label_loss, 0.5, 1.0)
    if kind == "forward":
      model = ForwardEveryStep(network, teacher, label_loss, distillation=distill)
    else:
      model = training.TrainingModel(network, label_loss,
                                     distillation=None if kind == "labels" else distill)
    model.compile(optimizer=training.build_optimizer(options), jit_compile=False)
    return model

  runs = {"labels": (trainer("labels"), pairs),
          "soft_loss": (trainer("soft_loss"), precomputed),
          "cached": (trainer("cached"), triples), "forward": (trainer("forward"), pairs)}
  for model, data in runs.values():  # compile and warm up
    model.fit(data, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
  seconds = {kind: [] for kind in runs}
  for _ in range(chunks):
    for kind, (model, data) in runs.items():
      started = time.perf_counter()
      model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
      seconds[kind].append((time.perf_counter() - started) / steps)
  per_step = {kind: statistics.median(values) for kind, values in seconds.items()}

  @tf.function
  def predict(inputs):
    return teacher(inputs, training=False)

  sample = next(iter(pairs))[0]
  predict(sample)
  started = time.perf_counter()
  for _ in range(steps):
    predict(sample).numpy()
  teacher_forward = (time.perf_counter() - started) / steps / batch_size
  return {
      "batch_size": batch_size, "num_classes": num_classes, "top_k": top_k,
      "student_parameters": int(runs["labels"][0].network.count_params()),
      "teacher_parameters": int(teacher.count_params()),
      "seconds_per_step": per_step,
      "forward_over_cached": per_step["forward"] / per_step["cached"],
      "cached_over_labels": per_step["cached"] / per_step["labels"],
      "soft_loss_over_labels": per_step["soft_loss"] / per_step["labels"],
      "teacher_forward_seconds_per_example": teacher_forward,
      "student_step_seconds_per_example": per_step["cached"] / batch_size,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--steps", type=int, default=8)
  parser.add_argument("--chunks", type=int, default=3)
  parser.add_argument("--student_hidden", type=int, default=1024)
  parser.add_argument("--teacher_hidden", type=int, default=4096)
  parser.add_argument("--num_videos", type=int, default=4096)
  parser.add_argument("--json", default="")
  args = parser.parse_args()
  result = measure(batch_size=args.batch_size, steps=args.steps, chunks=args.chunks,
                   student_hidden=args.student_hidden, teacher_hidden=args.teacher_hidden,
                   num_videos=args.num_videos)
  steps = result["seconds_per_step"]
  print(f"student {result['student_parameters'] / 1e6:.1f}M parameters, teacher "
        f"{result['teacher_parameters'] / 1e6:.1f}M, batch {result['batch_size']}")
  for kind in ("labels", "soft_loss", "cached", "forward"):
    print(f"  {kind:8s} {steps[kind] * 1000:8.1f} ms/step")
  print(f"  forward / cached: {result['forward_over_cached']:.2f}x; cached / labels: "
        f"{result['cached_over_labels']:.2f}x; soft_loss / labels: "
        f"{result['soft_loss_over_labels']:.2f}x")
  print(f"  teacher forward: {result['teacher_forward_seconds_per_example'] * 1e3:.3f} ms per "
        f"video (predicting once); student step: "
        f"{result['student_step_seconds_per_example'] * 1e3:.3f} ms per video")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as handle:
      json.dump(result, handle, indent=2)


if __name__ == "__main__":
  main()
