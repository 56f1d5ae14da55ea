"""docs/DESIGN.md quotes the APIs as they are: parameter names, order and keyword-only marks."""

import importlib
import inspect
import os
import re

import pytest

from programs import REPO

DESIGN = os.path.join(REPO, "docs", "DESIGN.md")


def quoted_signatures():
  with open(DESIGN, encoding="utf-8") as handle:
    text = handle.read()
  block = re.search(r"```signatures\n(.*?)```", text, re.S)
  assert block, "docs/DESIGN.md has no ```signatures block"
  return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def resolve(dotted):
  parts = dotted.split(".")
  for split in range(len(parts), 0, -1):
    try:
      target = importlib.import_module(".".join(parts[:split]))
    except ImportError:
      continue
    for name in parts[split:]:
      target = getattr(target, name)
    return target
  raise ImportError(dotted)


def code_parameters(target):
  parameters = inspect.signature(target).parameters.values()
  names, star = [], False
  for parameter in parameters:
    if parameter.kind is parameter.KEYWORD_ONLY and not star:
      names.append("*")
      star = True
    if parameter.kind is parameter.VAR_KEYWORD:
      names.append(f"**{parameter.name}")
    elif parameter.kind is parameter.VAR_POSITIONAL:
      names.append(f"*{parameter.name}")
      star = True
    else:
      names.append(parameter.name)
  return names


@pytest.mark.parametrize("line", quoted_signatures())
def test_design_doc_signature_matches_the_code(line):
  match = re.fullmatch(r"([\w.]+)\((.*)\)", line)
  assert match, line
  quoted = [part.strip() for part in match.group(2).split(",") if part.strip()]
  assert code_parameters(resolve(match.group(1))) == quoted, line
