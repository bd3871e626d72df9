"""`NEURONA_DEBUG`: 0 quiet, 1 logs each trace (retraces included) and skipped fusions,
2 also prints the IR after each pass. Read at each use, so it can be set at run time.
May import: nothing from neurona.
"""
from __future__ import annotations

import os


def debug_level() -> int:
    """The NEURONA_DEBUG level (0 when unset or not a number)."""
    try:
        return int(os.environ.get("NEURONA_DEBUG", "0"))
    except ValueError:
        return 0
