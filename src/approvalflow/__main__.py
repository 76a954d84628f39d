"""``python -m approvalflow``: the same command line as ``approvalflow``."""

import sys

from approvalflow.cli import main

if __name__ == "__main__":
    sys.exit(main())
