"""Russian normalization and the field-type normalizers of vlmhb.metrics."""

from __future__ import annotations

import pytest

from vlmhb.metrics import RAW, Normalization, is_mixed_script, normalize_text
from vlmhb.metrics._fields import canonical_field, field_kind


@pytest.mark.parametrize(
    ("kind", "left", "right"),
    [
        ("date", "13.09.1985", "13 сентября 1985"),
        ("date", "13.09.1985", "13.09.85"),
        ("date", "13.09.1985", "1985-09-13"),
        ("date", "05.01.1981", "5 января 1981 г."),
        ("date", "28 сентября 2010", "28.09.2010"),
        ("date", "12 февраля 2025", "«12» февраля 2025 года"),
        ("snils", "123-456-789 01", "12345678901"),
        ("passport", "4 505 679 944", "4505 679944"),
        ("passport", "4 505 679 944", "серия 4505 № 679944"),
        ("sex", "муж.", "МУЖ"),
        ("sex", "муж.", "мужской"),
        ("sex", "жен.", "Ж"),
        ("digits", "44", "№ 44"),
        ("digits", "7707083893", "7707 083 893"),
        ("amount", "1234.50", "1 234,5 руб."),
        ("text", "Карбаинов", "Фамилия: Карбаинов"),
        ("text", "Карбаинов", "surname: Карбаинов"),
        ("date", "13.09.1985", "Дата рождения - 13.09.1985"),
        ("text", "Карбаинов", "КАРБАИНОВ."),
        ("text", "Ёлкин", "Елкин"),
        ("text", "Ивaнов", "Иванов"),  # Latin a inside a Cyrillic word
        ("text", "РАО «Шашков-Меркушев»", 'РАО "Шашков—Меркушев"'),
        ("text", "Гор.  Белая\u00a0Холуница", "гор. белая холуница"),
        ("text", "Осипов", '"Осипов"'),
    ],
)
def test_equivalent_spellings_normalize_equal(kind: str, left: str, right: str) -> None:
    assert normalize_text(left, kind) == normalize_text(right, kind)


@pytest.mark.parametrize(
    ("kind", "left", "right"),
    [
        ("date", "13.09.1985", "14.09.1985"),
        ("date", "13.09.1985", "13 октября 1985"),
        ("snils", "123-456-789 01", "123-456-789 02"),
        ("passport", "4 505 679 944", "4505 679945"),
        ("sex", "муж.", "жен."),
        ("text", "Осипов", "Осипова"),
        ("digits", "44", "45"),
    ],
)
def test_different_values_stay_different(kind: str, left: str, right: str) -> None:
    assert normalize_text(left, kind) != normalize_text(right, kind)


def test_switches_are_honoured() -> None:
    assert normalize_text("Ёлкин", "text", Normalization(yo_to_ye=False)) == "ёлкин"
    assert normalize_text("Ёлкин", "text", Normalization(casefold=False)) == "Елкин"
    assert normalize_text("13.09.85", "date", Normalization(two_digit_year_pivot=None)) == (
        "13.09.85"
    )
    assert normalize_text(" Фамилия: Ёлкин. ", "text", RAW) == " Фамилия: Ёлкин. "


def test_label_echo_is_not_stripped_from_page_text() -> None:
    assert normalize_text("Фамилия: Осипов", "page") == "фамилия: осипов"


def test_homoglyph_folding_follows_the_word_majority() -> None:
    assert normalize_text("Vidеo", "text") == "video"  # Cyrillic е inside a Latin word
    assert normalize_text("ООО Рога", "text") == "ооо рога"
    assert is_mixed_script("Ивaнов")
    assert not is_mixed_script("Иванов Ivan")  # two scripts, but no mixed word


def test_field_names_and_v01_question_types_map_to_the_same_kind() -> None:
    pairs = {
        "Серия и номер паспорта": "series_number",
        "Дата рождения": "birth_date",
        "Пол": "sex",
        "Фамилия": "surname",
        "Дата счет-фактуры": "date",
        "Номер счет-фактуры": "number",
        "Покупатель": "buyer",
        "СНИЛС": "snils",
    }
    for label, name in pairs.items():
        assert canonical_field(label) == name
        assert field_kind(label) == field_kind(name)
    assert field_kind("series_number") == "passport"
    assert field_kind("something else") == "text"
