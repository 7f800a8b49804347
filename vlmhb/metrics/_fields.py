"""Field names and field-type normalizers: dates, SNILS, passport numbers, sex, digits, sums.

A field name (ours, e.g. ``birth_date``, or a v0.1 ``question_type``, e.g. ``Дата рождения``)
resolves to a canonical field and a *kind*; each kind has one normalizer that maps the
equivalent spellings of a value to one canonical string. Normalizers receive strings that are
already case-folded and whitespace-collapsed, and return the input unchanged when it does not
look like their kind (a wrong answer stays wrong, only spelling differences vanish).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from vlmhb.form_labels import all_fields


def _fold(name: str) -> str:
    return " ".join(name.casefold().replace("ё", "е").replace("_", " ").split())


# canonical field -> (kind, the labels a model may echo or a dataset may use as its name),
# from the form-label table (vlmhb.form_labels, standard library only).
FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    spec.key: (spec.kind, tuple(dict.fromkeys(_fold(n) for n in (spec.label, *spec.aliases))))
    for spec in all_fields()
}

_ALIASES: dict[str, str] = {}
for _field, (_kind, _labels) in FIELDS.items():
    _ALIASES[_field] = _field
    for _label in _labels:
        _ALIASES[_label] = _field


def canonical_field(name: str | None) -> str | None:
    """Map a field name or Russian label (any case, ё or е) to its canonical name, if known."""
    if not name:
        return None
    key = _fold(name)
    return _ALIASES.get(key) or _ALIASES.get(key.replace(" ", "_"))


def field_kind(name: str | None) -> str:
    """The normalizer kind of a field name: ``text`` when the name is unknown."""
    canonical = canonical_field(name)
    return FIELDS[canonical][0] if canonical else "text"


def field_labels() -> list[str]:
    """Every known label and field name, longest first (for label-echo stripping)."""
    labels = {label for _, labels in FIELDS.values() for label in labels}
    names = {variant for name in FIELDS for variant in (name, name.replace("_", " "))}
    return sorted(labels | names | {"ответ"}, key=len, reverse=True)


_MONTHS = (
    ("янв", 1),
    ("фев", 2),
    ("мар", 3),
    ("апр", 4),
    ("ма", 5),
    ("июн", 6),
    ("июл", 7),
    ("авг", 8),
    ("сен", 9),
    ("окт", 10),
    ("ноя", 11),
    ("дек", 12),
)
_NUMERIC_DATE = re.compile(r"^(\d{1,2})[./\- ](\d{1,2})[./\- ](\d{4}|\d{2})(?:\s*(?:г\.?|года?))?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_WORD_DATE = re.compile(
    r'^"?(\d{1,2})"?\s+(янв|фев|мар|апр|ма[йя]|июн|июл|авг|сен|окт|ноя|дек)[а-я]*\.?\s+'
    r"(\d{4}|\d{2})(?:\s*(?:г\.?|года?))?$"
)


def _expand_year(year: str, pivot: int) -> int:
    value = int(year)
    if len(year) == 2:
        value += 2000 if value <= pivot else 1900
    return value


def normalize_date(text: str, two_digit_year_pivot: int | None = 30) -> str:
    """``13 сентября 1985``, ``13.09.1985``, ``1985-09-13`` (and ``13.09.85``) -> ``13.09.1985``.

    Two-digit years expand to 20yy up to the pivot and 19yy above it; ``None`` keeps them
    as they are (then ``13.09.85`` differs from ``13.09.1985``).
    """
    match = _NUMERIC_DATE.match(text)
    if match:
        day, month, year = match.groups()
    elif match := _ISO_DATE.match(text):
        year, month, day = match.groups()
    elif match := _WORD_DATE.match(text):
        day, stem, year = match.groups()
        month = str(next(number for prefix, number in _MONTHS if stem.startswith(prefix)))
    else:
        return text
    if len(year) == 2 and two_digit_year_pivot is None:
        return text
    d, m, y = int(day), int(month), _expand_year(year, two_digit_year_pivot or 0)
    if not (1 <= d <= 31 and 1 <= m <= 12):
        return text
    return f"{d:02d}.{m:02d}.{y:04d}"


_NON_DIGIT_PARTS = re.compile(r"[\s\-./№#]|серия|номер")


def _digits_if(text: str, lengths: tuple[int, ...]) -> str:
    """The digits of ``text`` when nothing but separators surrounds them and the count fits."""
    stripped = _NON_DIGIT_PARTS.sub("", text)
    if stripped.isdigit() and (not lengths or len(stripped) in lengths):
        return stripped
    return text


def normalize_snils(text: str) -> str:
    """``123-456-789 01`` -> ``12345678901``."""
    return _digits_if(text, (11,))


def normalize_passport(text: str) -> str:
    """``4 505 679 944``, ``4505 679944``, ``серия 4505 № 679944`` -> ``4505679944``."""
    return _digits_if(text, (10,))


def normalize_digits(text: str) -> str:
    """INN, KPP, invoice numbers: ``№ 44`` -> ``44``, ``7707 083 893`` -> ``7707083893``."""
    return _digits_if(text, ())


_SEX = {
    "м": "муж",
    "муж": "муж",
    "мужской": "муж",
    "мужчина": "муж",
    "male": "муж",
    "ж": "жен",
    "жен": "жен",
    "женский": "жен",
    "женщина": "жен",
    "female": "жен",
}


def normalize_sex(text: str) -> str:
    """``Муж.``, ``МУЖ``, ``мужской`` -> ``муж``; likewise ``жен``."""
    return _SEX.get(text.rstrip(".").strip(), text)


_AMOUNT = re.compile(r"^(\d[\d ]*)(?:[.,](\d{1,2}))?\s*(?:руб(?:лей|\.)?|р\.?|₽|rub)?$")


def normalize_amount(text: str) -> str:
    """``1 234,5 руб.`` -> ``1234.50``."""
    match = _AMOUNT.match(text)
    if not match:
        return text
    whole, cents = match.groups()
    return f"{int(whole.replace(' ', ''))}.{(cents or '0').ljust(2, '0')}"


KIND_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "text": lambda text: text,
    "date": normalize_date,
    "snils": normalize_snils,
    "passport": normalize_passport,
    "digits": normalize_digits,
    "sex": normalize_sex,
    "amount": normalize_amount,
}
