"""The embedded demo dataset (``synth:demo``), generated on first use into the vlmhb home.

Four passports, four SNILS cards and four invoices; the first three of each are clean, the
fourth carries three scan artefacts at once, as real scans do. Rendered from a fixed seed in
one process, so every machine with the same Pillow, FreeType and Faker gets the same bytes and
the same numbers.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from vlmhb.data.synth.generate import RenderJob, SynthConfig, render_job
from vlmhb.home import vlmhb_home

DEMO = SynthConfig(kinds=("passport", "snils", "invoice"), n=4, seed=2024, variants=("clean",))
# Combined artefacts, as real scans have them: single mild ones leave Tesseract unmoved.
DEGRADED = {
    "passport": "rotate+noise+jpeg",
    "snils": "rotate+contrast+noise",
    "invoice": "blur+contrast+noise",
}
_DEMO_VERSION = 3


def demo_folder() -> Path:
    """Where the demo lives: ``<home>/datasets/demo-<hash of its configuration>``."""
    return vlmhb_home() / "datasets" / f"demo-{DEMO.digest()}-{_DEMO_VERSION}"


def ensure_demo() -> Path:
    """The demo folder, generated first if absent (atomically: built aside, then renamed)."""
    import json

    target = demo_folder()
    if (target / "annotations.jsonl").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".demo-", dir=target.parent))
    try:
        (work / "images").mkdir()
        lines = []
        for kind in DEMO.kinds:
            for index in range(1, DEMO.n + 1):
                variant = DEGRADED[kind] if index == DEMO.n else "clean"
                lines += render_job(RenderJob(kind, index, DEMO.seed, (variant,), str(work)))
        with open(work / "annotations.jsonl", "w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)
        try:
            work.rename(target)
        except OSError:
            if not (target / "annotations.jsonl").is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target
