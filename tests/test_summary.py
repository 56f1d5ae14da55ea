"""python -m yt8m_fusion.summary prints the Keras summary and the forward FLOPs."""

import os
import pathlib
import subprocess
import sys

import pytest

from yt8m_fusion.models import flops

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_summary(*args):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
             TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, "-m", "yt8m_fusion.summary", *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("model,params,flops", [
    ("AttendFusion", "72,865,046", "166,395,904"),
    ("FCLateFusion", "341,204,524", "682,295,296"),
])
def test_summary_prints_paper_totals(model, params, flops):
  result = run_summary(f"--model={model}")
  assert result.returncode == 0, result.stderr
  assert f"Total params: {params}" in result.stdout
  assert f"Forward FLOPs per example: {flops}" in result.stdout


def test_summary_frame_level_with_flags():
  result = run_summary("--model=DbofModel", "--frame_features", "--feature_names=rgb,audio",
                       "--num_classes", "10", "--dbof_cluster_size=16", "--dbof_hidden_size=8",
                       "--iterations=4", "--video_level_classifier_model=LogisticModel")
  assert result.returncode == 0, result.stderr
  assert "Total params:" in result.stdout
  # Sampled frames (4) x (1152 x 16) + 16 x 8 + 8 x 10, times 2.
  expected = 2 * (4 * 1152 * 16 + 16 * 8 + 8 * 10)
  assert f"Forward FLOPs per example (at 300 frames): {expected:,}" in result.stdout


def test_summary_list_and_user_errors():
  result = run_summary("--list")
  assert result.returncode == 0 and "AttendFusion" in result.stdout
  assert "LstmModel" in result.stdout
  result = run_summary("--model=LstmModel")
  assert result.returncode == 2
  assert "ERROR: --model=LstmModel is a frame-level model: --frame_features" in result.stderr
  assert "Traceback" not in result.stderr


def test_format_flops_and_reexport():
  assert flops.format_flops(166_395_904) == "166,395,904 (0.166 GFLOPs)"
  assert callable(flops.forward_flops)
