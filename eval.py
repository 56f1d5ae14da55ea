"""Entry point kept at the repository root for the starter code's command lines."""

from yt8m_fusion.cli.eval import run

if __name__ == "__main__":
  run()
