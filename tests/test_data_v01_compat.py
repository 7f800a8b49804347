"""The real VLMHyperBench v0.1 files, an extra check beside the project's own fixtures.

They live in ``../shared/compat/`` (never copied into the repo); every test here skips, saying
why, when that folder is absent, e.g. in a fresh clone. ``test_data_v01.py`` covers the same
formats with the tree ``tests/fixtures_v01.py`` writes.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from conftest import COMPAT, requires_compat

from vlmhb.data import import_v01, load_dataset, read_vlm_base
from vlmhb.plan.plan_csv import load_plan
from vlmhb.plan.prompts import load_prompts

DATASET = COMPAT / "Datasets" / "VQA" / "demo_mini"
PROMPTS = COMPAT / "PromptCollections" / "VQA" / "demo_mini"
pytestmark = requires_compat


def _rows() -> list[dict[str, str]]:
    with open(DATASET / "annotation.csv", encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def test_compat_dataset_reads_as_is() -> None:
    dataset = load_dataset(str(DATASET))
    assert dataset.problems == []
    assert len(dataset.documents) == 4
    assert sum(len(d.fields) for d in dataset.documents) == 22
    assert {d.doc_type for d in dataset.documents} == {"passport", "invoice"}
    first = dataset.documents[0]
    assert first.id == "1" and first.images == ((DATASET / "images" / "1.jpg").resolve(),)
    assert first.fields["Фамилия"] == "Карбаинов"
    assert first.meta["questions"]["Фамилия"] == "Напиши Фамилия"
    assert first.meta["bboxes"]["Фамилия"] == [780, 110, 1060, 170]
    assert first.tags == ("test_clean",)
    assert all(d.problems == () for d in dataset.documents)


def test_every_compat_row_is_kept() -> None:
    """Each (image, question_type) row maps to one field, with its answer, question and bbox."""
    documents = {d.meta["data_index"]: d for d in load_dataset(str(DATASET)).documents}
    for row in _rows():
        doc = documents[row["data_index"]]
        assert doc.doc_type == row["doc_class"]
        assert doc.fields[row["question_type"]] == row["answer"]
        assert doc.meta["questions"][row["question_type"]] == row["question"]
        assert doc.meta["bboxes"][row["question_type"]] == json.loads(row["answer_bbox"])


def test_prompt_lookup_by_doc_class_and_question_type() -> None:
    dataset = load_dataset(str(DATASET))
    for path in sorted(PROMPTS.glob("*.csv")):
        collection = load_prompts(str(path))
        with open(path, encoding="utf-8-sig", newline="") as handle:
            table = {
                r["doc_class_question_type"]: r["prompt"]
                for r in csv.DictReader(handle, delimiter=";")
            }
        for doc in dataset.documents:
            for field in doc.fields:
                rendered = collection.render(doc.doc_type, field, list(doc.fields), "field")
                assert rendered.prompt == table[f"{doc.doc_type} {field}"]
                assert rendered.system is None


def test_import_v01_is_lossless(tmp_path: Path) -> None:
    report = import_v01(COMPAT, tmp_path / "out")
    target = tmp_path / "out" / "Datasets" / "VQA" / "demo_mini"
    assert report.datasets == [target] and report.problems == []
    assert len(report.prompt_collections) == 4
    original, imported = load_dataset(str(DATASET)), load_dataset(str(target))
    assert (target / "annotations.jsonl").is_file() and imported.problems == []
    assert [d.id for d in imported.documents] == [d.id for d in original.documents]
    for old, new in zip(original.documents, imported.documents, strict=True):
        assert (new.doc_type, new.fields, new.tags, new.meta) == (
            old.doc_type,
            old.fields,
            old.tags,
            old.meta,
        )
        assert [p.read_bytes() for p in new.images] == [p.read_bytes() for p in old.images]
    assert imported.content_hash() == original.content_hash()
    # The converted prompt collections render the same prompts as the CSVs they came from.
    for csv_path in sorted(PROMPTS.glob("*.csv")):
        native = (
            tmp_path / "out" / "PromptCollections" / "VQA" / "demo_mini" / f"{csv_path.stem}.json"
        )
        a, b = load_prompts(str(csv_path)), load_prompts(str(native))
        assert a.content_hash() == b.content_hash()
        assert b.model.doc_types["passport"].fields["Фамилия"].meta == {"cer": "0.0"}


def test_vlm_base() -> None:
    models = read_vlm_base(COMPAT / "vlm_base.csv")
    assert [m.model_name for m in models] == [
        "Qwen2.5-VL-3B-Instruct",
        "Qwen2.5-VL-7B-Instruct",
        "Qwen2-VL-2B-Instruct",
        "Qwen2-VL-7B-Instruct",
    ]
    assert models[0].framework == "Hugging Face"
    assert models[0].class_name == "Qwen2_5_VLModel" and models[0].module == "models"
    assert models[2].python_package == "model_qwen2_vl"
    assert models[0].git_python_package.startswith("git+https://")


def test_v01_plans_from_compat_files(tmp_path: Path) -> None:
    root = tmp_path / "v01"
    shutil.copytree(COMPAT, root)  # a copy in tmp: the compat folder is read-only
    runs = load_plan(root / "user_config_model_eval.csv")
    assert [(r.backend, r.model) for r in runs] == [
        ("hf", "Qwen2-VL-2B-Instruct"),
        ("hf", "Qwen2.5-VL-3B-Instruct"),
    ]
    assert runs[0].dataset == "Datasets/VQA/demo_mini" and runs[0].metrics == ("CER",)
    filtered = load_plan(root / "user_config_prompt_eval.csv")
    assert filtered[0].doc_types == ("passport",)
    assert filtered[0].fields == ("Серия и номер паспорта",)
