"""Running the project's programs in subprocesses, as a user would."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_program(script, *args, timeout=600, env=None, check=True):
  """Runs `python <script> <args>` from the repository root; returns the CompletedProcess."""
  environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
  environment.update(env or {})
  command = [sys.executable, *([script] if script.endswith(".py") else ["-m", script]), *args]
  result = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True,
                          timeout=timeout, check=False)
  if check and result.returncode != 0:
    raise AssertionError(f"{' '.join(command)} exited {result.returncode}\n"
                         f"--- stdout ---\n{result.stdout[-4000:]}\n"
                         f"--- stderr ---\n{result.stderr[-6000:]}")
  return result
