"""The code shim: how a child process in another venv sees vlmhb's code and nothing else.

A folder under ``$VLMHB_HOME/code`` whose only entry is a ``vlmhb`` symlink to this package;
put on a child's ``PYTHONPATH``, it makes vlmhb importable without making any of the
orchestrator's packages importable. Standard library only (scripts run it under a model
env's Python).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import vlmhb
from vlmhb.home import vlmhb_home


def code_shim() -> Path:
    """A folder whose only entry is a ``vlmhb`` symlink to this package."""
    package = Path(vlmhb.__file__).resolve().parent
    digest = hashlib.sha256(str(package).encode()).hexdigest()[:12]
    shim = vlmhb_home() / "code" / digest
    link = shim / "vlmhb"
    if not link.exists():
        shim.mkdir(parents=True, exist_ok=True)
        tmp = shim / f".vlmhb.{os.getpid()}.{threading.get_ident()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(package, target_is_directory=True)
        os.replace(tmp, link)
    return shim
