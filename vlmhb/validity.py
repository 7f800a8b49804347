"""Field types of Russian documents and their validators: would a production check catch it?

Standard library only: the metrics venv (classifying wrong answers), the synthetic generator
(its values must pass) and the Tesseract worker (values found by their type) all use it.

A *type* names a validator, ``value -> reason | None`` (``None``: the value passes). Types:
``snils`` (11 digits, checksum), ``inn`` (10 digits with one check digit, or 12 with two),
``inn_org`` / ``inn_person`` (just one of them), ``ogrn`` (13, check digit), ``ogrnip`` (15,
check digit), ``kpp`` (9: office, reason, number), ``bik`` (9, ``04…``), ``passport_number``
(series 4 + number 6 digits), ``department_code`` (``NNN-NNN``), ``date``, ``birth_date``
and ``issue_date`` (a real calendar date, not in the future; an issue date after the
document's birth date, at 14 or later), ``sex`` and ``amount``. Digit types accept spaces,
hyphens and ``№`` between digits (``4505 679944`` ≡ ``4505679944``), nothing else.

A document's field types come from its annotations (``field_types``), else from
:data:`DOC_TYPE_FIELDS` (the shipped document types) and :data:`NAME_TYPES` (field names,
including the VLMHyperBench v0.1 question types).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from functools import lru_cache

Validator = Callable[[str], "str | None"]

_SEPARATORS = re.compile(r"[\s\-./№#]+")
_MONTHS = ("янв", "фев", "мар", "апр", "ма", "июн", "июл", "авг", "сен", "окт", "ноя", "дек")
_NUMERIC_DATE = re.compile(r"^(\d{1,2})[./\- ](\d{1,2})[./\- ](\d{4})(?:\s*(?:г\.?|года?))?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_WORD_DATE = re.compile(
    r'^"?(\d{1,2})"?\s+(янв|фев|мар|апр|ма[йя]|июн|июл|авг|сен|окт|ноя|дек)[а-я]*\.?\s+(\d{4})'
    r"(?:\s*(?:г\.?|года?))?$"
)
_AMOUNT = re.compile(
    r"^\d{1,3}(?:[ \u00a0]?\d{3})*(?:[.,]\d{1,2})?(?:\s*(?:руб\.?|рублей|р\.?|₽))?$"
)
_SEX = frozenset({"м", "муж", "мужской", "ж", "жен", "женский"})
_KPP = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$")
_DEPARTMENT = re.compile(r"^(\d{2})([0-3])[\s-]?(\d{3})$")
MIN_YEAR = 1900
ISSUE_AGE = 14


def digits_of(value: str) -> str | None:
    """The digits of ``value`` when only separators lie between them, else ``None``."""
    stripped = _SEPARATORS.sub("", value.strip())
    return stripped if stripped.isdigit() else None


def _weighted(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def snils_check_digits(first9: str) -> str:
    """The two check digits of a SNILS number from its first nine digits."""
    total = sum(int(d) * w for d, w in zip(first9, range(9, 0, -1), strict=True)) % 101
    return "00" if total == 100 else f"{total:02d}"


def _digits(value: str, lengths: tuple[int, ...], name: str) -> tuple[str | None, str | None]:
    digits = digits_of(value)
    if digits is None:
        return None, f"not a {name}: characters other than digits"
    if len(digits) not in lengths:
        wanted = " or ".join(str(n) for n in lengths)
        return None, f"a {name} has {wanted} digits, not {len(digits)}"
    return digits, None


def check_snils(value: str) -> str | None:
    """11 digits; numbers above 001-001-998 carry a checksum."""
    digits, reason = _digits(value, (11,), "SNILS")
    if digits is None:
        return reason
    if int(digits[:9]) > 1_001_998 and snils_check_digits(digits[:9]) != digits[9:]:
        return "SNILS checksum does not match"
    return None


def check_inn_org(value: str) -> str | None:
    """An organisation's INN: 10 digits, the last a check digit."""
    digits, reason = _digits(value, (10,), "organisation INN")
    if digits is None:
        return reason
    if _weighted(digits, (2, 4, 10, 3, 5, 9, 4, 6, 8)) != int(digits[9]):
        return "INN check digit does not match"
    return None


def check_inn_person(value: str) -> str | None:
    """A person's INN: 12 digits, the last two check digits."""
    digits, reason = _digits(value, (12,), "personal INN")
    if digits is None:
        return reason
    first = _weighted(digits, (7, 2, 4, 10, 3, 5, 9, 4, 6, 8))
    second = _weighted(digits, (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8))
    if (first, second) != (int(digits[10]), int(digits[11])):
        return "INN check digits do not match"
    return None


def check_inn(value: str) -> str | None:
    """An INN of either kind (10 or 12 digits)."""
    digits, reason = _digits(value, (10, 12), "INN")
    if digits is None:
        return reason
    return check_inn_org(digits) if len(digits) == 10 else check_inn_person(digits)


def check_ogrn(value: str) -> str | None:
    """OGRN: 13 digits, the last = (first 12 mod 11) mod 10."""
    digits, reason = _digits(value, (13,), "OGRN")
    if digits is None:
        return reason
    return None if int(digits[:12]) % 11 % 10 == int(digits[12]) else "OGRN check digit wrong"


def check_ogrnip(value: str) -> str | None:
    """OGRNIP: 15 digits, the last = (first 14 mod 13) mod 10."""
    digits, reason = _digits(value, (15,), "OGRNIP")
    if digits is None:
        return reason
    return None if int(digits[:14]) % 13 % 10 == int(digits[14]) else "OGRNIP check digit wrong"


def check_kpp(value: str) -> str | None:
    """KPP: 4 digits (tax office), 2 digits or capitals (reason), 3 digits."""
    text = value.strip().upper()
    if not _KPP.match(text):
        return "a KPP is 4 digits, 2 digits or letters, 3 digits"
    return "KPP tax office code 0000" if text.startswith("0000") else None


def check_bik(value: str) -> str | None:
    """BIK of a Russian bank: 9 digits starting with 04."""
    digits, reason = _digits(value, (9,), "BIK")
    if digits is None:
        return reason
    return None if digits.startswith("04") else "a Russian BIK starts with 04"


def check_passport_number(value: str) -> str | None:
    """Passport series (4 digits, a region code first) and number (6 digits)."""
    text = re.sub(r"(?i)серия|номер", " ", value)
    digits, reason = _digits(text, (10,), "passport series and number")
    if digits is None:
        return reason
    if digits[:2] == "00":
        return "passport series starts with region 00"
    return "passport number 000000" if digits[4:] == "000000" else None


def check_department_code(value: str) -> str | None:
    """``NNN-NNN``: region (2 digits, not 00), department level 0-3, unit."""
    match = _DEPARTMENT.match(value.strip())
    if not match:
        return "a department code is NNN-NNN with the third digit 0-3"
    return "department code region 00" if match.group(1) == "00" else None


def parse_date(value: str) -> dt.date | None:
    """A calendar date from ``13.09.1985``, ``1985-09-13`` or ``13 сентября 1985 г.``."""
    text = " ".join(value.strip().casefold().replace("ё", "е").split())
    if match := _NUMERIC_DATE.match(text):
        day, month, year = match.groups()
    elif match := _ISO_DATE.match(text):
        year, month, day = match.groups()
    elif match := _WORD_DATE.match(text):
        day, stem, year = match.groups()
        month = str(next(i for i, prefix in enumerate(_MONTHS, 1) if stem.startswith(prefix)))
    else:
        return None
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def check_date(value: str, today: dt.date | None = None) -> str | None:
    """A real calendar date since 1900 and not in the future."""
    day = parse_date(value)
    if day is None:
        return "not a calendar date"
    if day.year < MIN_YEAR:
        return f"date before {MIN_YEAR}"
    return "date in the future" if day > (today or dt.date.today()) else None


def check_sex(value: str) -> str | None:
    """``М``/``Ж`` in any usual spelling (``муж.``, ``женский``)."""
    return None if value.strip().casefold().rstrip(".").strip() in _SEX else "not a sex"


def check_amount(value: str) -> str | None:
    """A sum of money: digits (thousands grouped or not), up to 2 decimals, optional roubles."""
    text = value.strip().casefold()
    return (
        None
        if _AMOUNT.match(text) or re.fullmatch(r"\d+(?:[.,]\d{1,2})?", text)
        else ("not an amount of money")
    )


VALIDATORS: dict[str, Validator] = {
    "snils": check_snils,
    "inn": check_inn,
    "inn_org": check_inn_org,
    "inn_person": check_inn_person,
    "ogrn": check_ogrn,
    "ogrnip": check_ogrnip,
    "kpp": check_kpp,
    "bik": check_bik,
    "passport_number": check_passport_number,
    "department_code": check_department_code,
    "date": check_date,
    "birth_date": check_date,
    "issue_date": check_date,
    "sex": check_sex,
    "amount": check_amount,
}

#: How a type's values are normalized before exact match (``vlmhb.metrics`` kinds).
NORMALIZER_KIND: dict[str, str] = {
    "snils": "snils",
    "passport_number": "passport",
    "date": "date",
    "birth_date": "date",
    "issue_date": "date",
    "sex": "sex",
    "amount": "amount",
    **dict.fromkeys(
        ("inn", "inn_org", "inn_person", "ogrn", "ogrnip", "kpp", "bik", "department_code"),
        "digits",
    ),
}

#: Field names (ours and the v0.1 question types, case and ё folded) -> type.
NAME_TYPES: dict[str, str] = {
    "snils": "snils",
    "снилс": "snils",
    "страховой номер": "snils",
    "series_number": "passport_number",
    "серия и номер паспорта": "passport_number",
    "серия и номер": "passport_number",
    "department_code": "department_code",
    "код подразделения": "department_code",
    "birth_date": "birth_date",
    "дата рождения": "birth_date",
    "issue_date": "issue_date",
    "дата выдачи": "issue_date",
    "registration_date": "date",
    "дата регистрации": "date",
    "date": "date",
    "дата счет-фактуры": "date",
    "дата счета-фактуры": "date",
    "sex": "sex",
    "пол": "sex",
    "inn": "inn",
    "инн": "inn",
    "seller_inn": "inn",
    "инн продавца": "inn",
    "buyer_inn": "inn",
    "инн покупателя": "inn",
    "kpp": "kpp",
    "кпп": "kpp",
    "seller_kpp": "kpp",
    "кпп продавца": "kpp",
    "buyer_kpp": "kpp",
    "кпп покупателя": "kpp",
    "ogrn": "ogrn",
    "огрн": "ogrn",
    "ogrnip": "ogrnip",
    "огрнип": "ogrnip",
    "bik": "bik",
    "бик": "bik",
    "total": "amount",
    "всего к оплате": "amount",
}

#: The shipped (generated) document types: every typed field they carry.
DOC_TYPE_FIELDS: dict[str, dict[str, str]] = {
    "passport": {
        "series_number": "passport_number",
        "department_code": "department_code",
        "birth_date": "birth_date",
        "issue_date": "issue_date",
        "sex": "sex",
    },
    "snils": {
        "snils": "snils",
        "birth_date": "birth_date",
        "registration_date": "date",
        "sex": "sex",
    },
    "invoice": {
        "date": "date",
        "seller_inn": "inn",
        "seller_kpp": "kpp",
        "buyer_inn": "inn",
        "buyer_kpp": "kpp",
        "total": "amount",
    },
}


def _name_key(name: str) -> str:
    return " ".join(name.casefold().replace("ё", "е").split())


def field_type(doc_type: str | None, field: str, declared: Mapping[str, str] | None = None) -> str:
    """The type of one field, ``""`` when it has none (free text)."""
    if declared and field in declared:
        return declared[field]
    shipped = DOC_TYPE_FIELDS.get(doc_type or "", {})
    return shipped.get(field) or NAME_TYPES.get(_name_key(field), "")


def check(type_name: str, value: str, today: dt.date | None = None) -> str | None:
    """Why ``value`` fails type ``type_name`` (``None``: it passes, or the type is unknown)."""
    validator = VALIDATORS.get(type_name)
    if validator is None:
        return None
    if not value.strip():
        return "empty"
    if validator is check_date:
        return check_date(value, today)
    return validator(value)


@lru_cache(maxsize=200_000)  # the same answers recur across documents and runs
def _check_cached(type_name: str, value: str) -> str | None:
    return check(type_name, value)


def check_document(
    types: Mapping[str, str], values: Mapping[str, str], today: dt.date | None = None
) -> dict[str, str | None]:
    """Every typed field's verdict, the cross-field rules included.

    An ``issue_date`` must follow the document's ``birth_date`` (when that value is itself a
    valid date) by at least :data:`ISSUE_AGE` years.
    """
    verdicts = {
        name: (_check_cached(kind, values.get(name, "")) if today is None else
               check(kind, values.get(name, ""), today))
        for name, kind in types.items()
        if kind
    }  # fmt: skip
    births = [
        parse_date(values.get(name, ""))
        for name, kind in types.items()
        if kind == "birth_date" and verdicts.get(name) is None
    ]
    born = next((day for day in births if day is not None), None)
    if born is None:
        return verdicts
    for name, kind in types.items():
        issued = parse_date(values.get(name, "")) if kind == "issue_date" else None
        if issued is None or verdicts.get(name) is not None:
            continue
        if issued <= born:
            verdicts[name] = "issued before birth"
        elif _years_between(born, issued) < ISSUE_AGE:
            verdicts[name] = f"issued before the age of {ISSUE_AGE}"
    return verdicts


def _years_between(start: dt.date, end: dt.date) -> int:
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))


def unknown_types(declared: Mapping[str, str]) -> list[str]:
    """Declared types that no validator knows (for dataset readers' error messages)."""
    return [kind for kind in declared.values() if kind and kind not in VALIDATORS]
