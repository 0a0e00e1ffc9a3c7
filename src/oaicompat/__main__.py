"""``python -m oaicompat``: the same command as ``oaicompat``."""

import sys

from oaicompat.cli import main

sys.exit(main())
