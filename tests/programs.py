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


class MainResult:
  """What `run_main` observed: the exit code and what the program printed on stderr."""

  def __init__(self, returncode, stderr):
    self.returncode = returncode
    self.stderr = stderr


def run_main(program, *args):
  """Runs train/eval/inference/export's `main` in this process, as `python <program>.py <args>`
  would (same flag parser, same exit_on_user_error), without the start-up cost of a
  new Python. Returns a MainResult; other exceptions propagate (a test sees them as
  the traceback a user would get).

  Flags are global: the programs' flags are defined once (the first definition's
  default wins, e.g. --train_dir), so pass every flag a case depends on.
  """
  import contextlib  # pylint: disable=import-outside-toplevel
  import io  # pylint: disable=import-outside-toplevel

  from absl import flags  # pylint: disable=import-outside-toplevel

  from yt8m_fusion.cli import eval as eval_cli  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.cli import export as export_cli  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.cli import inference as inference_cli  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.cli import train as train_cli  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.cli.parsing import parse_flags  # pylint: disable=import-outside-toplevel
  from yt8m_fusion.errors import exit_on_user_error  # pylint: disable=import-outside-toplevel

  modules = {"train": train_cli, "eval": eval_cli, "inference": inference_cli}
  for module in modules.values():
    module.define_flags()
  modules["export"] = export_cli  # python -m yt8m_fusion.export: its flags only when run
  module = modules[program.removesuffix(".py")]
  module.define_flags()
  stderr = io.StringIO()
  returncode = 0
  flags.FLAGS.unparse_flags()
  try:
    with contextlib.redirect_stderr(stderr):
      try:
        argv = parse_flags([f"{program.removesuffix('.py')}.py", *args])
        exit_on_user_error(module.main)(argv)
      except SystemExit as exit_:
        code = exit_.code
        returncode = 0 if code is None else code if isinstance(code, int) else 1
  finally:
    flags.FLAGS.unparse_flags()
  return MainResult(returncode, stderr.getvalue())
