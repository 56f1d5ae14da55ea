"""yt8m-fusion: Attend-Fusion and YouTube-8M baselines for TensorFlow 2 / Keras 3."""

import os

# TensorFlow's C++ start-up lines (oneDNN, CUDA probing) drown the programs' own log;
# set before TensorFlow is imported. Users can still raise it with TF_CPP_MIN_LOG_LEVEL=0.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
