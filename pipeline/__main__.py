"""``python -m pipeline``."""

from __future__ import annotations

import sys

from pipeline.cli import main

if __name__ == "__main__":  # guarded: backfill worker processes (spawn) import this module again
    sys.exit(main())
