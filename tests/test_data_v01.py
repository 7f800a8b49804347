"""VLMHyperBench v0.1 formats, read from the project's own v0.1 tree (tests/fixtures_v01.py)."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, vlmhb_cmd
from fixtures_v01 import DOCUMENTS, MODELS, PROMPT_FILES, V01Tree

from vlmhb.data import import_v01, load_dataset, read_vlm_base
from vlmhb.errors import DatasetError
from vlmhb.plan.prompts import load_prompts


def _rows(dataset: Path) -> list[dict[str, str]]:
    with open(dataset / "annotation.csv", encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def test_the_fixture_has_the_v01_bytes(v01_tree: V01Tree) -> None:
    """BOM, ``;``, CRLF and list cells, as the v0.1 files have them."""
    raw = (v01_tree.dataset / "annotation.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfdata_index;split;image_path;") and b"\r\n" in raw
    task = v01_tree.model_eval.read_text(encoding="utf-8-sig")
    assert ";['CER'];False;['by_id', 'by_doc_question', 'by_doc_type', 'general'];" in task


def test_v01_dataset_reads_as_is(v01_tree: V01Tree) -> None:
    dataset = load_dataset(str(v01_tree.dataset))
    assert dataset.problems == []
    assert len(dataset.documents) == len(DOCUMENTS)
    assert sum(len(d.fields) for d in dataset.documents) == 22
    assert {d.doc_type for d in dataset.documents} == {"passport", "invoice"}
    first = dataset.documents[0]
    assert first.id == "1" and first.images == ((v01_tree.dataset / "images" / "1.jpg").resolve(),)
    assert first.fields["Фамилия"] == "Жаворонков"
    assert first.meta["questions"]["Фамилия"] == "Напиши Фамилия"
    assert len(first.meta["bboxes"]["Фамилия"]) == 4
    assert first.tags == ("test_clean",)
    assert all(d.problems == () for d in dataset.documents)


def test_every_v01_row_is_kept(v01_tree: V01Tree) -> None:
    """Each (image, question_type) row maps to one field, with its answer, question and bbox."""
    documents = {d.meta["data_index"]: d for d in load_dataset(str(v01_tree.dataset)).documents}
    for row in _rows(v01_tree.dataset):
        doc = documents[row["data_index"]]
        assert doc.doc_type == row["doc_class"]
        assert doc.fields[row["question_type"]] == row["answer"]
        assert doc.meta["questions"][row["question_type"]] == row["question"]
        assert doc.meta["bboxes"][row["question_type"]] == json.loads(row["answer_bbox"])


def test_prompt_lookup_by_doc_class_and_question_type(v01_tree: V01Tree) -> None:
    dataset = load_dataset(str(v01_tree.dataset))
    for path in sorted(v01_tree.prompts.glob("*.csv")):
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


def test_import_v01_is_lossless(v01_tree: V01Tree, tmp_path: Path) -> None:
    report = import_v01(v01_tree.root, tmp_path / "out")
    target = tmp_path / "out" / "Datasets" / "VQA" / "mini_ru"
    assert report.datasets == [target] and report.problems == []
    assert len(report.prompt_collections) == len(PROMPT_FILES)
    original, imported = load_dataset(str(v01_tree.dataset)), load_dataset(str(target))
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
    converted = tmp_path / "out" / "PromptCollections" / "VQA" / "mini_ru"
    for csv_path in sorted(v01_tree.prompts.glob("*.csv")):
        native = converted / f"{csv_path.stem}.json"
        a, b = load_prompts(str(csv_path)), load_prompts(str(native))
        assert a.content_hash() == b.content_hash()
    first = load_prompts(str(converted / "ours_field_prompts_a.json")).model
    assert first.doc_types["passport"].fields["Фамилия"].meta == {"cer": "0.00"}


def test_import_v01_cli(v01_tree: V01Tree, tmp_path: Path) -> None:
    result = subprocess.run(
        vlmhb_cmd("data", "import-v01", str(v01_tree.root), str(tmp_path / "o")),
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "o" / "Datasets" / "VQA" / "mini_ru") in result.stdout


def test_vlm_base(v01_tree: V01Tree) -> None:
    models = read_vlm_base(v01_tree.vlm_base)
    assert [m.model_name for m in models] == list(MODELS)
    assert models[0].framework == "Hugging Face"
    assert models[1].class_name == "Qwen2_5_VLModel" and models[1].module == "models"
    assert models[0].python_package == "model_qwen2_vl"
    assert models[0].git_python_package.startswith("git+https://")


def test_v01_problems_are_located(v01_tree: V01Tree, tmp_path: Path) -> None:
    root = tmp_path / "v01"
    (root / "images").mkdir(parents=True)
    (root / "images" / "1.jpg").write_bytes((v01_tree.dataset / "images" / "1.jpg").read_bytes())
    header = "data_index;split;image_path;question;answer;doc_class;question_type;answer_bbox"
    rows = [
        "1;test;images/1.jpg;Q;Иванов;passport;Фамилия;[1, 2, 3, 4]",
        "1;test;images/1.jpg;Q;;passport;Имя;[1, 2, 3, 4]",
        "1;test;images/1.jpg;Q;Петров;passport;Фамилия;",
        "2;test;images/2.jpg;Q;x;invoice;Продавец;",
    ]
    (root / "annotation.csv").write_text(
        "\ufeff" + "\n".join([header, *rows]) + "\n", encoding="utf-8"
    )
    dataset = load_dataset(str(root))
    where = {
        (p.row, p.column): p.message for p in [*dataset.problems, *dataset.document_problems()]
    }
    assert where[(3, "answer")] == "missing value"
    assert "duplicate field 'Фамилия'" in where[(4, "question_type")]
    assert "missing" in where[(5, "2")]
    (root / "annotation.csv").write_text("a;b\n1;2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="column missing"):
        load_dataset(str(root))
