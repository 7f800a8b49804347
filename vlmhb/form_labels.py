"""The form-label table: each document type's fields, their Russian labels and value kinds.

The one owner of these facts, read on both sides of the venv boundary: the synthetic generator
prints ``anchor`` before each value, the Tesseract backend (inside its model env) finds values
after the ``printed`` labels, the metrics stage (inside the metrics env) maps a field name or
label (``label``, ``aliases``) to its key and picks the normalizer of its ``kind``. Standard
library only, for that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class FormField:
    """One field of a document type.

    ``label`` names it in prompts; ``anchor`` is printed before its value on generated forms;
    ``printed`` are the labels real and generated forms print beside it (what OCR anchors on);
    ``aliases`` are other names a dataset or a model may use for it (v0.1 question types);
    ``kind`` picks the metrics stage's normalizer (``KIND_NORMALIZERS`` in metrics/_fields.py).
    """

    key: str
    label: str
    anchor: str
    kind: str
    printed: tuple[str, ...]
    aliases: tuple[str, ...]


def _field(
    key: str,
    label: str,
    *,
    anchor: str | None = None,
    kind: str = "text",
    printed: tuple[str, ...] | None = None,
    aliases: tuple[str, ...] = (),
) -> FormField:
    return FormField(
        key=key,
        label=label,
        anchor=anchor if anchor is not None else label,
        kind=kind,
        printed=printed if printed is not None else (label,),
        aliases=aliases,
    )


DOC_TYPE_LABELS: dict[str, str] = {
    "passport": "паспорт гражданина Российской Федерации",
    "snils": "страховое свидетельство СНИЛС",
    "invoice": "счёт-фактура",
}

_SURNAME = _field("surname", "Фамилия")
_NAME = _field("name", "Имя")
_PATRONYMIC = _field("patronymic", "Отчество")
_SEX = _field("sex", "Пол", kind="sex")
_BIRTH_DATE = _field(
    "birth_date", "Дата рождения", kind="date", printed=("Дата рождения", "Дата и место рождения")
)
_BIRTH_PLACE = _field(
    "birth_place", "Место рождения", printed=("Место рождения", "Дата и место рождения")
)

# Fields in the order generated forms print them.
FORMS: dict[str, tuple[FormField, ...]] = {
    "passport": (
        _field(
            "issued_by", "Кем выдан", anchor="Паспорт выдан", printed=("Паспорт выдан", "Кем выдан")
        ),
        _field("issue_date", "Дата выдачи", kind="date"),
        _field("department_code", "Код подразделения"),
        _field(
            "series_number",
            "Серия и номер",
            kind="passport",
            printed=("Серия и номер", "Серия и номер паспорта"),
            aliases=("Серия и номер паспорта", "Номер паспорта"),
        ),
        _SURNAME,
        _NAME,
        _PATRONYMIC,
        _SEX,
        _BIRTH_DATE,
        _BIRTH_PLACE,
    ),
    "snils": (
        _field(
            "snils",
            "Страховой номер (СНИЛС)",
            anchor="Страховой номер",
            kind="snils",
            printed=("Страховой номер", "СНИЛС"),
            aliases=("СНИЛС", "Страховой номер"),
        ),
        _SURNAME,
        _NAME,
        _PATRONYMIC,
        _BIRTH_DATE,
        _BIRTH_PLACE,
        _SEX,
        _field("registration_date", "Дата регистрации", kind="date"),
    ),
    "invoice": (
        _field(
            "number",
            "Номер счёта-фактуры",
            anchor="СЧЁТ-ФАКТУРА №",
            kind="digits",
            printed=("Счёт-фактура №", "Номер счёт-фактуры"),
            aliases=("Номер счет-фактуры", "Номер"),
        ),
        _field(
            "date",
            "Дата счёта-фактуры",
            anchor="от",
            kind="date",
            printed=("Дата счёт-фактуры",),
            aliases=("Дата счет-фактуры", "Дата"),
        ),
        _field("seller", "Продавец", anchor="Продавец:"),
        _field(
            "seller_inn",
            "ИНН продавца",
            anchor="ИНН/КПП продавца:",
            kind="digits",
            printed=("ИНН продавца", "ИНН/КПП продавца"),
        ),
        _field(
            "seller_kpp",
            "КПП продавца",
            anchor="ИНН/КПП продавца:",
            kind="digits",
            printed=("КПП продавца", "ИНН/КПП продавца"),
        ),
        _field("buyer", "Покупатель", anchor="Покупатель:"),
        _field(
            "buyer_inn",
            "ИНН покупателя",
            anchor="ИНН/КПП покупателя:",
            kind="digits",
            printed=("ИНН покупателя", "ИНН/КПП покупателя"),
        ),
        _field(
            "buyer_kpp",
            "КПП покупателя",
            anchor="ИНН/КПП покупателя:",
            kind="digits",
            printed=("КПП покупателя", "ИНН/КПП покупателя"),
        ),
        _field(
            "total",
            "Всего к оплате",
            kind="amount",
            printed=("Всего к оплате", "Итого"),
            aliases=("Итого", "Сумма"),
        ),
    ),
}


def form_fields(doc_type: str | None) -> tuple[FormField, ...]:
    """The fields of a document type, in print order (empty if unknown)."""
    return FORMS.get(doc_type or "", ())


def all_fields() -> Iterator[FormField]:
    """Every field once (the first document type that declares a key wins)."""
    seen: set[str] = set()
    for fields in FORMS.values():
        for spec in fields:
            if spec.key not in seen:
                seen.add(spec.key)
                yield spec
