"""Hugging Face imagefolder datasets (``metadata.jsonl`` beside the images)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_png

from vlmhb.data import check_dataset, load_dataset


def test_imagefolder_fields_donut_ground_truth_and_problems(tmp_path: Path) -> None:
    root = tmp_path / "hf"
    write_png(root / "a.png")
    write_png(root / "sub" / "b.png")
    lines = [
        {
            "file_name": "a.png",
            "doc_type": "snils",
            "fields": {"snils": "112-233-445 95", "n": 7},
            "split": "test",
        },
        {
            "file_name": "sub/b.png",
            "ground_truth": json.dumps({"gt_parse": {"total": "1 000,00", "items": [1]}}),
        },
        {"file_name": "missing.png", "text": "Привет"},
        "{broken",
        {"file_name": "a.png"},
    ]
    text = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines)
    (root / "metadata.jsonl").write_text(text + "\n", encoding="utf-8")
    dataset = load_dataset(str(root))
    a, b, missing = dataset.documents
    assert (a.id, a.doc_type, a.fields, a.meta) == (
        "a",
        "snils",
        {"snils": "112-233-445 95", "n": "7"},
        {"split": "test"},
    )
    assert a.images == ((root / "a.png").resolve(),)
    assert (b.id, b.doc_type, b.fields) == ("b", "document", {"total": "1 000,00"})
    assert missing.text == "Привет" and missing.problems and "missing" in missing.problems[0]
    where = {(p.row, p.column): p.message for p in check_dataset(str(root))}
    assert "items" in where[(2, "fields")]
    assert "not valid JSON" in where[(4, None)]
    assert "duplicate id 'a'" in where[(5, "id")]
    assert (3, "missing") in where
