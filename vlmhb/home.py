"""Where vlmhb keeps what it builds and caches: envs, uv's cache, generated datasets, models.

``$VLMHB_HOME`` when set, else ``~/.cache/vlmhb``. Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path


def vlmhb_home() -> Path:
    """``$VLMHB_HOME``, or ``~/.cache/vlmhb``."""
    value = os.environ.get("VLMHB_HOME")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "vlmhb"
