"""Generated document types: field keys, Russian labels, the text printed before each value.

Standard library only, so a non-VLM baseline (the Tesseract backend) may read the anchors.
Every field is printed on one line as ``<anchor> <value>`` (the label first, the value after
it on the same baseline; long values wrap onto following lines at the value's x position).
Invoice ``seller_inn``/``seller_kpp`` share one line: ``ИНН/КПП продавца: <inn>/<kpp>``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldSpec:
    """One field: ASCII key, Russian label (for prompts), anchor text printed before the value."""

    key: str
    label: str
    anchor: str


def _spec(key: str, label: str, anchor: str | None = None) -> FieldSpec:
    return FieldSpec(key, label, anchor if anchor is not None else label)


DOC_TYPE_LABELS: dict[str, str] = {
    "passport": "паспорт гражданина Российской Федерации",
    "snils": "страховое свидетельство СНИЛС",
    "invoice": "счёт-фактура",
}

DOC_FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "passport": (
        _spec("issued_by", "Кем выдан", "Паспорт выдан"),
        _spec("issue_date", "Дата выдачи"),
        _spec("department_code", "Код подразделения"),
        _spec("series_number", "Серия и номер"),
        _spec("surname", "Фамилия"),
        _spec("name", "Имя"),
        _spec("patronymic", "Отчество"),
        _spec("sex", "Пол"),
        _spec("birth_date", "Дата рождения"),
        _spec("birth_place", "Место рождения"),
    ),
    "snils": (
        _spec("snils", "Страховой номер (СНИЛС)", "Страховой номер"),
        _spec("surname", "Фамилия"),
        _spec("name", "Имя"),
        _spec("patronymic", "Отчество"),
        _spec("birth_date", "Дата рождения"),
        _spec("birth_place", "Место рождения"),
        _spec("sex", "Пол"),
        _spec("registration_date", "Дата регистрации"),
    ),
    "invoice": (
        _spec("number", "Номер счёта-фактуры", "СЧЁТ-ФАКТУРА №"),
        _spec("date", "Дата счёта-фактуры", "от"),
        _spec("seller", "Продавец", "Продавец:"),
        _spec("seller_inn", "ИНН продавца", "ИНН/КПП продавца:"),
        _spec("seller_kpp", "КПП продавца", "ИНН/КПП продавца:"),
        _spec("buyer", "Покупатель", "Покупатель:"),
        _spec("buyer_inn", "ИНН покупателя", "ИНН/КПП покупателя:"),
        _spec("buyer_kpp", "КПП покупателя", "ИНН/КПП покупателя:"),
        _spec("total", "Всего к оплате"),
    ),
}


def field_labels(doc_type: str) -> dict[str, str]:
    """``{key: Russian label}`` for a generated document type (empty if unknown)."""
    return {spec.key: spec.label for spec in DOC_FIELDS.get(doc_type, ())}
