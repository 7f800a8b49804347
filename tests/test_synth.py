"""The synthetic generator: determinism, valid SNILS, degradations, demo, ground truth printed."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, vlmhb_cmd
from PIL import Image

from vlmhb.data import load_dataset
from vlmhb.data.synth.fields import DOC_FIELDS
from vlmhb.data.synth.generate import SynthConfig, SynthError, synthesize
from vlmhb.data.synth.values import format_snils, snils_checksum, snils_is_valid

VARIANTS = ("clean", "blur", "noise", "rotate", "jpeg", "contrast", "rotate+jpeg")


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "a"
    synthesize(out, SynthConfig(n=2, seed=7, variants=VARIANTS), workers=1)
    return out


def test_same_seed_same_bytes_whatever_the_process_count(rendered: Path, tmp_path: Path) -> None:
    synthesize(tmp_path / "b", SynthConfig(n=2, seed=7, variants=VARIANTS), workers=2)
    assert _files(rendered) == _files(tmp_path / "b")
    synthesize(tmp_path / "c", SynthConfig(n=2, seed=8, variants=("clean",)), workers=1)
    other = (tmp_path / "c" / "annotations.jsonl").read_text(encoding="utf-8")
    assert other != (rendered / "annotations.jsonl").read_text(encoding="utf-8")


def test_annotations_are_a_valid_native_dataset(rendered: Path) -> None:
    dataset = load_dataset(str(rendered))
    assert dataset.problems == [] and all(d.problems == () for d in dataset.documents)
    assert len(dataset.documents) == 3 * 2 * len(VARIANTS)
    for doc in dataset.documents:
        assert list(doc.fields) == [spec.key for spec in DOC_FIELDS[doc.doc_type]]
        assert all(doc.fields.values())
        for value in doc.fields.values():  # every value is printed, as the transcription records
            assert value in doc.text.replace("\n", " ")
        width, height = Image.open(doc.images[0]).size
        for x0, y0, x1, y1 in doc.meta["bboxes"].values():
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_variants_are_tagged_with_what_was_applied(rendered: Path) -> None:
    docs = {d.id: d for d in load_dataset(str(rendered)).documents}
    assert (
        docs["passport-0001"].tags == ("clean",) and "degradation" not in docs["passport-0001"].meta
    )
    combo = docs["passport-0001-rotate+jpeg"]
    assert combo.tags == ("rotate", "jpeg")
    assert set(combo.meta["degradation"]) == {"rotate", "jpeg"}
    assert combo.images[0].suffix == ".jpg" and Image.open(combo.images[0]).format == "JPEG"
    assert (
        combo.fields == docs["passport-0001"].fields and combo.meta["source_id"] == "passport-0001"
    )
    assert 1.0 <= abs(docs["snils-0002-rotate"].meta["degradation"]["rotate"]["degrees"]) <= 3.0
    assert docs["snils-0002-rotate"].meta["bboxes"] != docs["snils-0002"].meta["bboxes"]
    clean = Image.open(docs["invoice-0001"].images[0]).convert("L")
    for variant in ("blur", "noise", "contrast"):
        other = Image.open(docs[f"invoice-0001-{variant}"].images[0]).convert("L")
        assert other.size == clean.size and other.tobytes() != clean.tobytes()


def test_snils_checksums() -> None:
    from faker.providers.company.ru_RU import calculate_snils_checksum

    assert snils_is_valid("112-233-445 95")
    assert not snils_is_valid("112-233-445 96")
    assert format_snils("112233445") == "112-233-445 95"
    rng = random.Random(3)
    for _ in range(2000):
        digits = f"{rng.randint(1_001_999, 999_999_999):09d}"
        assert snils_checksum(digits) == calculate_snils_checksum(digits)


def test_generated_snils_are_valid(rendered: Path) -> None:
    numbers = [
        d.fields["snils"] for d in load_dataset(str(rendered)).documents if d.doc_type == "snils"
    ]
    assert numbers and all(
        re.fullmatch(r"\d{3}-\d{3}-\d{3} \d{2}", n) and snils_is_valid(n) for n in numbers
    )


def test_bad_configurations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="unknown document kind"):
        synthesize(tmp_path, SynthConfig(kinds=("visa",)))
    with pytest.raises(SynthError, match="unknown degradation"):
        synthesize(tmp_path, SynthConfig(variants=("smudge",)))


def _normal(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


@pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="needs tesseract-ocr with tesseract-ocr-rus"
)
def test_clean_renders_are_readable_by_tesseract(rendered: Path) -> None:
    """Ground truth is really on the image: Tesseract reads nearly every field of clean renders."""
    docs = [
        d
        for d in load_dataset(str(rendered)).documents
        if d.tags == ("clean",) and d.id.endswith("0001")
    ]
    found, total = 0, 0
    for doc in docs:
        result = subprocess.run(
            ["tesseract", str(doc.images[0]), "-", "-l", "rus", "--psm", "6"],
            capture_output=True, text=True, check=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        )  # fmt: skip
        ocr = _normal(result.stdout)
        for spec in DOC_FIELDS[doc.doc_type]:
            total += 1
            found += _normal(doc.fields[spec.key]) in ocr
        assert _normal(DOC_FIELDS[doc.doc_type][-1].anchor) in ocr
    assert total == sum(len(DOC_FIELDS[k]) for k in DOC_FIELDS)
    assert found / total >= 0.9, f"Tesseract read {found} of {total} fields"


def test_demo_is_identical_in_any_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = []
    for home in ("h1", "h2"):
        monkeypatch.setenv("VLMHB_HOME", str(tmp_path / home))
        dataset = load_dataset("synth:demo")
        assert dataset.root.is_relative_to(tmp_path / home / "datasets")
        hashes.append(dataset.content_hash())
    assert hashes[0] == hashes[1]
    docs = dataset.documents
    assert len(docs) == 12 and dataset.problems == []
    assert {d.doc_type for d in docs} == {"passport", "snils", "invoice"}
    assert sum(d.tags == ("clean",) for d in docs) == 9
    assert load_dataset("synth:demo").content_hash() == hashes[1]  # reused, not regenerated


def test_cli_synth(tmp_path: Path) -> None:
    result = subprocess.run(
        vlmhb_cmd("data", "synth", str(tmp_path / "s"), "--kind", "snils", "--n", "2",
                  "--degrade", "clean,blur"),
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "4 documents" in result.stdout
    lines = (tmp_path / "s" / "annotations.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["tags"] for line in lines] == [["clean"], ["blur"]] * 2
    bad = subprocess.run(
        vlmhb_cmd("data", "synth", str(tmp_path / "t"), "--kind", "visa"),
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert bad.returncode == 2 and "unknown document kind visa" in bad.stderr


def test_field_table_imports_without_orchestrator_libraries() -> None:
    """A non-VLM baseline may read the label table; it must not pull in pydantic or Pillow."""
    code = (
        "import sys, vlmhb.data.synth.fields as f; "
        "assert not {'pydantic', 'PIL', 'faker', 'pandas'} & set(sys.modules); "
        "print(f.field_labels('passport')['surname'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Фамилия"
