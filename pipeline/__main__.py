"""``python -m pipeline``."""

from __future__ import annotations

import sys

if __name__ == "__main__":  # guarded: backfill worker processes (spawn) import this module again, and need none of
    from pipeline.cli import main  # the CLI's imports: they take a worker a third of a second to load

    sys.exit(main())
