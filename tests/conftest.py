"""Shared test set-up: quiet TensorFlow logs; tests/ importable (programs.py)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))
