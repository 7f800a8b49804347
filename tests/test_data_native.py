"""The native dataset reader: validation problems located by file and line, content hash, CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, vlmhb_cmd, write_png
from PIL import Image

from vlmhb.data import check_dataset, load_dataset
from vlmhb.errors import DatasetError


def _write(root: Path, lines: list[object]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = "\n".join(
        line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines
    )
    (root / "annotations.jsonl").write_text(text + "\n", encoding="utf-8")
    return root


def _doc(doc_id: object, image: object = "images/a.png", **extra: object) -> dict[str, object]:
    return {
        "id": doc_id,
        "image": image,
        "doc_type": "passport",
        "fields": {"surname": "Иванов"},
        **extra,
    }


def test_valid_dataset_reads_with_absolute_images(tmp_path: Path) -> None:
    write_png(tmp_path / "ds" / "images" / "a.png")
    write_png(tmp_path / "ds" / "images" / "b.png")
    root = _write(
        tmp_path / "ds",
        [_doc(1, tags=["clean"], meta={"k": 1}), _doc("two", ["images/a.png", "images/b.png"])],
    )
    dataset = load_dataset("ds", base=tmp_path)
    assert dataset.problems == []
    assert dataset.name == "ds"
    first, second = dataset.documents
    assert first.id == "1" and first.images == ((root / "images" / "a.png").resolve(),)
    assert first.tags == ("clean",) and first.meta == {"k": 1} and first.problems == ()
    assert len(second.images) == 2 and all(p.is_absolute() for p in second.images)
    assert check_dataset(str(root)) == []


def test_every_problem_is_located_by_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_png(root / "images" / "a.png")
    (root / "images" / "bad.png").write_bytes(b"not an image at all")
    (tmp_path / "outside.png").write_bytes((root / "images" / "a.png").read_bytes())
    _write(
        root,
        [
            _doc("ok"),  # line 1
            _doc("missing", "images/nope.png"),  # line 2
            _doc("unreadable", "images/bad.png"),  # line 3
            _doc("ok"),  # line 4: duplicate id
            {**_doc("blank"), "fields": {"surname": "", "name": None, "sex": "муж."}},  # line 5
            _doc("escape", "../outside.png"),  # line 6
            "{not json",  # line 7
            {"id": "x", "doc_type": "passport"},  # line 8: no image
            {**_doc("typo"), "field": {}},  # line 9: unknown key
            _doc("absolute", str(tmp_path / "outside.png")),  # line 10
        ],
    )
    problems = check_dataset(str(root))
    where = {(p.row, p.column): p.message for p in problems}
    file = str((root / "annotations.jsonl").resolve())
    assert all(p.file == file for p in problems)
    assert "missing" in where[(2, "missing")]
    assert "unreadable" in where[(3, "unreadable")]
    assert "duplicate id 'ok' (first on line 1)" in where[(4, "id")]
    assert where[(5, "fields.surname")] == "missing value"
    assert where[(5, "fields.name")] == "missing value"
    assert "escapes the dataset folder" in where[(6, "escape")]
    assert "not valid JSON" in where[(7, None)]
    assert (8, "image") in where
    assert (9, "field") in where
    assert "absolute" in where[(10, "absolute")]
    # Reading stays lenient: documents with image problems are kept for per-sample errors.
    dataset = load_dataset(str(root))
    by_id = {d.id: d for d in dataset.documents}
    assert set(by_id) == {"ok", "missing", "unreadable", "blank", "escape", "absolute"}
    assert by_id["ok"].problems == ()
    assert by_id["missing"].problems and by_id["escape"].problems
    assert by_id["blank"].fields == {"sex": "муж."}


def test_unusable_datasets_raise(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no annotation file"):
        load_dataset(str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(str(tmp_path / "absent"))
    (tmp_path / "latin1").mkdir()
    (tmp_path / "latin1" / "annotations.jsonl").write_bytes('{"id": "Ж"}'.encode("cp1251"))
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(str(tmp_path / "latin1"))
    with pytest.raises(DatasetError, match="unknown synthetic"):
        load_dataset("synth:nothing")


def test_content_hash_follows_image_bytes_and_annotations(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_png(root / "images" / "a.png", "one")
    _write(root, [_doc("a")])
    first = load_dataset(str(root)).content_hash()
    assert load_dataset(str(root)).content_hash() == first
    write_png(root / "images" / "a.png", "two")  # same size class, new pixels
    second = load_dataset(str(root)).content_hash()
    assert second != first
    _write(root, [{**_doc("a"), "fields": {"surname": "Петров"}}])
    assert load_dataset(str(root)).content_hash() != second


def test_the_hash_made_while_reading_equals_the_hash_recomputed(tmp_path: Path) -> None:
    """The reader hashes each document from the bytes it checked (``known_hash``); a dataset
    with every kind of image path gives the same value as hashing its documents afresh.
    Special files are real: a FIFO as an image must be refused without blocking on it."""
    import dataclasses
    import os
    import threading

    root = tmp_path / "ds"
    write_png(root / "images" / "a.png")
    write_png(root / "images" / "b.png", "other")
    (root / "images" / "link.png").symlink_to("a.png")  # inside: resolved, accepted
    (tmp_path / "secret.png").write_bytes(b"outside bytes")
    (root / "images" / "out.png").symlink_to(tmp_path / "secret.png")  # escapes
    (root / "images" / "folder.png").mkdir()
    os.mkfifo(root / "images" / "pipe.png")
    _write(
        root,
        [
            _doc("plain", text="полный текст", tags=["t"], meta={"k": [1, 2]}),
            _doc("pages", ["images/a.png", "./images/b.png"], field_types={"surname": "text"}),
            _doc("link", "images/link.png"),
            _doc("escape", "images/out.png"),
            _doc("folder", "images/folder.png"),
            _doc("pipe", "images/pipe.png"),
            _doc("gone", "images/none.png"),
            _doc("absolute", str(root / "images" / "a.png")),
            _doc("empty", []),
        ],
    )
    loaded: list[object] = []
    reader = threading.Thread(target=lambda: loaded.append(load_dataset(str(root))), daemon=True)
    reader.start()
    reader.join(30)
    assert loaded, "reading a dataset with a FIFO as an image blocked"
    dataset = loaded[0]
    assert isinstance(dataset.known_hash, str)
    assert dataclasses.replace(dataset, known_hash=None).content_hash() == dataset.known_hash
    by_id = {d.id: d for d in dataset.documents}
    real = root.resolve() / "images"
    assert by_id["link"].images == (real / "a.png",) and by_id["link"].problems == ()
    assert by_id["pages"].images == (real / "a.png", real / "b.png")
    assert "escapes the dataset folder" in by_id["escape"].problems[0]
    for doc_id, file in (("folder", "folder"), ("pipe", "pipe"), ("gone", "none")):
        assert by_id[doc_id].problems == (f"image 'images/{file}.png' is missing",), doc_id
    assert by_id["empty"].problems == ("no image",)
    # The hash follows what the reader saw: a changed image changes it, as the recomputation.
    write_png(root / "images" / "b.png", "changed")
    again = load_dataset(str(root))
    assert again.known_hash != dataset.known_hash
    assert dataclasses.replace(again, known_hash=None).content_hash() == again.known_hash


def test_content_hash_is_location_independent(tmp_path: Path) -> None:
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (8, 8), "white").save(tmp_path / name / "i.png")
        _write(tmp_path / name, [_doc("a", "i.png")])
    assert (
        load_dataset(str(tmp_path / "x")).content_hash()
        == load_dataset(str(tmp_path / "y")).content_hash()
    )


def test_cli_check_reports_problems_and_exit_code(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_png(root / "images" / "a.png")
    _write(root, [_doc("a"), _doc("a")])
    bad = subprocess.run(
        vlmhb_cmd("data", "check", str(root)), capture_output=True, text=True, cwd=REPO
    )
    assert bad.returncode == 2
    assert "annotations.jsonl:2:id: duplicate id 'a'" in bad.stdout
    _write(root, [_doc("a")])
    good = subprocess.run(
        vlmhb_cmd("data", "check", str(root)), capture_output=True, text=True, cwd=REPO
    )
    assert good.returncode == 0, good.stderr
    assert "ok: 1 documents" in good.stdout
