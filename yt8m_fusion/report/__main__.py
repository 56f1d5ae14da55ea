"""`python -m yt8m_fusion.report`: the command line of yt8m_fusion.cli.report."""

from yt8m_fusion.cli.report import run

if __name__ == "__main__":
  run()
