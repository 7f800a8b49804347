"""``vlmhb data import-v01``: VLMHyperBench v0.1 datasets and prompt CSVs to native files.

``ROOT/Datasets/<task>/<name>/`` becomes ``OUT/Datasets/<task>/<name>/`` (images copied with
their relative paths, ``annotations.jsonl`` written); each prompt CSV under
``ROOT/PromptCollections/`` becomes a native JSON collection at the same relative place.
Question texts, bboxes, splits and v0.1 CER notes are kept, so nothing is lost.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from vlmhb.data.native import write_native
from vlmhb.data.v01 import ANNOTATION_CSV, read_v01_dataset
from vlmhb.errors import DatasetError, Problem


@dataclass
class ImportReport:
    """What ``import_v01`` wrote, and the problems it carried over from the sources."""

    datasets: list[Path] = field(default_factory=list)
    prompt_collections: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def import_v01(root: Path, out: Path) -> ImportReport:
    """Convert every v0.1 dataset and prompt collection under ``root`` into ``out``."""
    from vlmhb.plan.prompts import v01_csv_to_native

    root, out = Path(root).resolve(), Path(out).resolve()
    sources = sorted((root / "Datasets").glob(f"*/*/{ANNOTATION_CSV}"))
    if not sources:
        raise DatasetError(
            [Problem(str(root), None, None, "no Datasets/<task>/<name>/annotation.csv")]
        )
    report = ImportReport()
    for source in sources:
        dataset = read_v01_dataset(source.parent)
        target = out / source.parent.relative_to(root)
        target.mkdir(parents=True, exist_ok=True)
        moved = []
        for doc in dataset.documents:
            images = []
            for image in doc.images:
                rel = image.relative_to(dataset.root)
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                if image.is_file():
                    shutil.copy2(image, target / rel)
                images.append(target / rel)
            moved.append(replace(doc, images=tuple(images)))
        write_native(target, moved)
        report.datasets.append(target)
        report.problems.extend([*dataset.problems, *dataset.document_problems()])
    for csv_path in sorted((root / "PromptCollections").glob("**/*.csv")):
        target = out / csv_path.relative_to(root).with_suffix(".json")
        target.parent.mkdir(parents=True, exist_ok=True)
        collection = v01_csv_to_native(csv_path)
        target.write_text(
            json.dumps(collection, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        report.prompt_collections.append(target)
    return report
