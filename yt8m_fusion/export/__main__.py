"""python -m yt8m_fusion.export: see yt8m_fusion/cli/export.py."""

from yt8m_fusion.cli.export import run

run()
