"""yt8m-fusion: Attend-Fusion and YouTube-8M baselines for TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
