"""Reuse of earlier answers, said aloud, and ``--fresh``, which sets earlier answers aside.

A run id is a hash of everything that changes answers, so a folder that already holds answers
for the same id is reused: only missing samples are inferred. ``reuse_note`` words that for
the CLI; ``set_aside`` moves a run folder to ``<run-id>.old-<UTC time>`` (nothing is deleted)
so the next attempt starts from nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

from vlmhb.run.folder import ANSWERS


def reuse_note(counts: dict[str, int], run_id: str) -> str | None:
    """``reused 108 answers (run …)`` when answers from an earlier attempt were kept."""
    answered, now = counts.get("answered"), counts.get("answered_now")
    if answered is None or now is None or answered - now <= 0:
        return None
    reused = answered - now
    noun = "answer" if reused == 1 else "answers"
    tail = f"; answered {now} now" if now else "; nothing inferred"
    return f"reused {reused} {noun} (run {run_id}){tail}"


def set_aside(run_dir: Path) -> Path | None:
    """Move ``run_dir`` aside when it holds answers; returns where it went (None: nothing)."""
    if not (run_dir / ANSWERS).exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    suffix = 1
    while target.exists():
        suffix += 1
        target = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{suffix}")
    run_dir.rename(target)
    return target
