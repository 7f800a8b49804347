"""Find and read a dataset from a spec: a folder (format detected) or ``synth:demo``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vlmhb.data.documents import Dataset
from vlmhb.errors import DatasetError, Problem

# One row per format: the file that marks it, and the module function that reads it.
READERS: tuple[tuple[str, str, str], ...] = (
    ("annotations.jsonl", "vlmhb.data.native", "read_native"),
    ("annotation.csv", "vlmhb.data.v01", "read_v01_dataset"),
    ("metadata.jsonl", "vlmhb.data.imagefolder", "read_imagefolder"),
)


def resolve_spec(spec: str, base: Path | None = None) -> Path:
    """The folder a spec names: ``synth:demo`` → the demo (generated on first use)."""
    if spec.startswith("synth:"):
        name = spec.split(":", 1)[1]
        if name != "demo":
            raise DatasetError(
                [Problem(spec, None, None, "unknown synthetic dataset; known: demo")]
            )
        from vlmhb.data.demo import ensure_demo

        return ensure_demo()
    path = Path(spec).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return path.resolve()


def _reader(folder: Path) -> Callable[[Path], Dataset]:
    if not folder.is_dir():
        raise DatasetError([Problem(str(folder), None, None, "dataset folder not found")])
    import importlib

    for marker, module, function in READERS:
        if (folder / marker).is_file():
            return getattr(importlib.import_module(module), function)
    markers = ", ".join(m for m, _, _ in READERS)
    raise DatasetError(
        [Problem(str(folder), None, None, f"no annotation file (one of: {markers})")]
    )


def load_dataset(spec: str, base: Path | None = None) -> Dataset:
    """Read the dataset ``spec`` names; per-document problems stay on the documents."""
    from vlmhb.data.images import forget_folders

    forget_folders()
    folder = resolve_spec(spec, base)
    return _reader(folder)(folder)


def check_dataset(spec: str, base: Path | None = None) -> list[Problem]:
    """Every problem in a dataset, located by file and line: dataset-level, then per document."""
    dataset = load_dataset(spec, base)
    problems = [*dataset.problems, *dataset.document_problems()]
    return sorted(problems, key=lambda p: (p.file, p.row or 0))
