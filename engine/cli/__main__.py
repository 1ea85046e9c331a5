"""``python -m engine.cli``: the ``kjobs`` command."""

import sys

from engine.cli import main

sys.exit(main())
