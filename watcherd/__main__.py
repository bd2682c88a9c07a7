"""Allow ``python -m watcherd``."""

import sys

from watcherd.cli import main

sys.exit(main())
