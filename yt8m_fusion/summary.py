"""`python -m yt8m_fusion.summary`: the command line of yt8m_fusion.cli.summary."""

from yt8m_fusion.cli.summary import run

if __name__ == "__main__":
  run()
