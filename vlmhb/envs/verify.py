"""Verify a built env's installed files against the ``RECORD`` of each ``.dist-info``.

Every installer writes, per distribution, the path, sha256 and size of each file it put in
place. ``verify_env(path, full=True)`` (``vlmhb env check``) hashes every file; the quick
form (before each run) compares sizes and presence only, a stat per file, so an edited,
truncated or deleted file is caught without reading gigabytes of wheels. Files the
installer did not hash (``RECORD`` itself, bytecode) are not checked.
"""

from __future__ import annotations

import base64
import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from vlmhb.envs import store


@dataclass(frozen=True)
class FileMismatch:
    """One installed file that differs from what its distribution recorded."""

    distribution: str
    path: str
    reason: str  # missing | size | hash

    def __str__(self) -> str:
        return f"{self.path} ({self.distribution}: {self.reason} differs from RECORD)"


def _sha256_b64(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


def verify_env(path: Path, *, full: bool) -> list[FileMismatch]:
    """Files of the venv at ``path`` that are missing or differ from their ``RECORD``."""
    site = store.site_packages(path)
    if site is None:
        return []
    mismatches: list[FileMismatch] = []
    for record in sorted(site.glob("*.dist-info/RECORD")):
        distribution = record.parent.name[: -len(".dist-info")]
        with record.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        for row in rows:
            if len(row) < 3 or not row[1].startswith("sha256="):
                continue
            name, recorded, size = row[0], row[1].removeprefix("sha256="), row[2]
            if name.endswith(".pyc"):
                continue  # bytecode a wheel ships is rewritten by Python when stale: derived
            target = site / name
            try:
                actual_size = target.stat().st_size
            except OSError:
                mismatches.append(FileMismatch(distribution, name, "missing"))
                continue
            if size.isdigit() and int(size) != actual_size:
                mismatches.append(FileMismatch(distribution, name, "size"))
            elif full and _sha256_b64(target) != recorded:
                mismatches.append(FileMismatch(distribution, name, "hash"))
    return mismatches
