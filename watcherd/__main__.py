"""Allow ``python -m watcherd``."""

import sys

from watcherd.cli import main

# The guard matters: decoder worker processes are spawned and import this module anew.
if __name__ == "__main__":
    sys.exit(main())
