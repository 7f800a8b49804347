"""vlmhb/form_labels.py, the one form-label table that synth, OCR and the metrics all read."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

from vlmhb.data.synth.fields import DOC_FIELDS, field_labels
from vlmhb.form_labels import FORMS, all_fields, form_fields
from vlmhb.metrics._fields import KIND_NORMALIZERS, canonical_field, field_kind
from vlmhb.worker.backends import ocr_fields


def test_every_field_has_a_known_kind_and_its_label_among_the_printed_or_anchor() -> None:
    for doc_type, fields in FORMS.items():
        keys = [spec.key for spec in fields]
        assert len(keys) == len(set(keys)), doc_type
        for spec in fields:
            assert spec.kind in KIND_NORMALIZERS or spec.kind == "text", spec
            assert spec.printed and spec.anchor, spec


def test_the_generator_prints_what_the_table_says() -> None:
    assert DOC_FIELDS is FORMS
    assert field_labels("snils")["snils"] == form_fields("snils")[0].label


def test_the_extractor_looks_for_the_printed_labels_and_knows_the_aliases() -> None:
    for doc_type, fields in FORMS.items():
        assert ocr_fields.document_fields(doc_type) == [spec.key for spec in fields]
        for spec in fields:
            assert ocr_fields.labels_for(doc_type, spec.key) == spec.printed
            for name in (spec.label, *spec.aliases):
                assert ocr_fields.canonical_field(doc_type, name) == spec.key, name


def test_the_metrics_resolve_every_label_and_alias_to_the_key_and_kind() -> None:
    for spec in all_fields():
        assert canonical_field(spec.key) == spec.key
        for name in (spec.label, *spec.aliases):
            assert canonical_field(name.upper()) == spec.key, name
        assert field_kind(spec.label) == spec.kind


def test_a_new_field_in_the_table_reaches_all_three_readers() -> None:
    """One edit, three readers: add a field in a fresh interpreter and ask each of them."""
    probe = (
        "from vlmhb import form_labels as f\n"
        "f.FORMS['passport'] = (*f.FORMS['passport'], f._field('citizenship', 'Гражданство',"
        " aliases=('Гражданин',)))\n"
        "from vlmhb.data.synth.fields import field_labels\n"
        "from vlmhb.metrics._fields import canonical_field\n"
        "from vlmhb.worker.backends.ocr_fields import extract_field\n"
        "print(field_labels('passport')['citizenship'], canonical_field('гражданин'),"
        " extract_field(['Гражданство: Россия'], 'passport', 'citizenship'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Гражданство", "citizenship", "Россия"]
