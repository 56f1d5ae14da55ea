"""`python -m yt8m_fusion.crossfit`: the command line of yt8m_fusion.cli.crossfit."""

from yt8m_fusion.cli.crossfit import run

if __name__ == "__main__":
  run()
