"""`python -m yt8m_fusion.local_cluster`: the command line of yt8m_fusion.cli.local_cluster."""

import sys

from yt8m_fusion.cli.local_cluster import main

if __name__ == "__main__":
  sys.exit(main())
