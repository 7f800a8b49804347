"""Field values from OCR'd lines of a Russian document, anchored on the printed labels.

Standard library only (``difflib`` for fuzzy matching; rapidfuzz is not in the tesseract env).
For each (doc_type, field) the form-label table (``vlmhb.form_labels``) lists the labels
printed on the form; the value is what follows the best-matching label on the same line, or
the next line when the label stands alone (label-above-value layouts). A few fields have their
own pattern (invoice number and date from the "Счёт-фактура № N от DATE" header, SNILS and
passport numbers, INN/KPP pairs).
Field names are the native ones (``surname``) or the VLMHyperBench v0.1 question types
(``Фамилия``), which map onto them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from vlmhb.form_labels import FORMS

# doc_type -> field -> the labels printed beside it, from the form-label table.
LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    doc_type: {spec.key: spec.printed for spec in fields} for doc_type, fields in FORMS.items()
}

# Fields whose value may wrap onto the following lines.
MULTILINE = frozenset({"birth_place", "issued_by", "seller", "buyer"})
# Other printed labels: a wrapped value stops before them.
STOPPERS: dict[str, tuple[str, ...]] = {
    "passport": ("Личная подпись", "М.П.", "Российская Федерация"),
    "snils": ("Дата регистрации", "Страховое свидетельство"),
    "invoice": (
        "Адрес",
        "Грузоотправитель и его адрес",
        "Грузополучатель и его адрес",
        "К платёжно-расчётному документу",
        "Валюта",
    ),
}

# doc_type -> a name a dataset may give a field (label or alias: v0.1 question types) -> key.
V01_FIELDS: dict[str, dict[str, str]] = {
    doc_type: {name: spec.key for spec in fields for name in (spec.label, *spec.aliases)}
    for doc_type, fields in FORMS.items()
}

_HOMOGLYPHS = str.maketrans("aeopcxykmhtbABEKMHOPCTXY", "аеорсхукмнтвАВЕКМНОРСТХУ")
_DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{1,2}\s+[а-яё]+\s+\d{4}", re.IGNORECASE)
_SNILS = re.compile(r"\d{3}[- ]?\d{3}[- ]?\d{3}[- ]?\d{2}")
_PASSPORT = re.compile(r"\d{2}\s?\d{2}\s?\d{6}")
_INVOICE = re.compile(
    r"сч[её]т[- ]?фактур[аы]\s*(?:(?:№|N[еоeo°]?|[МM#])\s*)?([\w/-]+)\s*от\s*(.+)", re.IGNORECASE
)
_FOOTNOTE = re.compile(r"\s*\(\s*[0-9а-яa-z]{1,3}\s*\)\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"\d[\d\s]*(?:[.,]\d+)?")
_INN_KPP = re.compile(r"(\d{9,12})\s*/\s*(\d{9})")


@dataclass(frozen=True)
class LabelHit:
    """Where a label was found: line index, the value after it, and the match score."""

    line: int
    value: str
    score: float


def normalize(text: str) -> str:
    """Lower case, ё→е, Latin homoglyphs folded to Cyrillic, punctuation dropped."""
    text = text.translate(_HOMOGLYPHS).lower().replace("ё", "е")
    return " ".join(re.sub(r"[^\w/№]+", " ", text).split())


def canonical_field(doc_type: str | None, field: str) -> str:
    """The native field name for ``field`` (a native name or a v0.1 question type)."""
    table = V01_FIELDS.get(doc_type or "", {})
    if field in table:
        return table[field]
    folded = normalize(field)
    for question, native in table.items():
        if normalize(question) == folded:
            return native
    return field


def labels_for(doc_type: str | None, field: str) -> tuple[str, ...]:
    """Printed labels for a field; an unknown field is looked for by its own name."""
    labels = LABELS.get(doc_type or "", {}).get(field)
    if labels:
        return labels
    for table in LABELS.values():
        if field in table:
            return table[field]
    return (field.replace("_", " "),)


def _similar(a: str, b: str) -> float:
    if len(b) <= 4:  # short labels ("Имя", "Пол") only match exactly
        return 1.0 if a == b else 0.0
    return SequenceMatcher(None, a, b).ratio()


def find_label(lines: Sequence[str], label: str, threshold: float = 0.82) -> LabelHit | None:
    """The best fuzzy match of ``label`` at a word boundary of some line, with its value."""
    target = normalize(label)
    width = len(target.split())
    best: LabelHit | None = None
    for index, line in enumerate(lines):
        words = line.split()
        for start in range(min(len(words), 4)):  # a label starts a line, give or take noise
            window = normalize(" ".join(words[start : start + width]))
            score = _similar(window, target) - 0.01 * start
            if score >= threshold and (best is None or score > best.score):
                best = LabelHit(index, " ".join(words[start + width :]), score)
    return best


def clean_value(value: str, end: bool = True) -> str:
    """Strip separators, form-line underscores and footnote markers like ``(2а)``.

    ``end=False`` keeps a trailing comma (the value goes on on the next line).
    """
    value = value.replace("_", " ")
    value = _FOOTNOTE.sub("", value)
    return " ".join(
        value.lstrip(" :;-—–|.,\t").rstrip(" :;-—–|,\t" if end else " :;-—–|\t").split()
    )


def _value_near(
    lines: Sequence[str], labels: tuple[str, ...], doc_type: str | None, multiline: bool = False
) -> str:
    """The value after the best-matching label, or on the next line if the label is alone.

    A ``multiline`` value (places, names of organisations) takes up to two more lines while
    they do not start with a label of the form.
    """
    hits = [hit for label in labels if (hit := find_label(lines, label))]
    if not hits:
        return ""
    hit = max(hits, key=lambda h: h.score)
    parts = [clean_value(hit.value, end=False)] if clean_value(hit.value) else []
    wanted = (3 if multiline else 1) - len(parts)
    if parts and _FOOTNOTE.search(hit.value):  # a form's "(2)" marks the end of its value
        wanted = 0
    for line in lines[hit.line + 1 : hit.line + 1 + max(wanted, 0)]:
        if _starts_with_label(line, doc_type):
            break
        parts.append(clean_value(line, end=False))
    return clean_value(" ".join(part for part in parts if part))


def _starts_with_label(line: str, doc_type: str | None) -> bool:
    labels = {label for group in LABELS.get(doc_type or "", {}).values() for label in group}
    labels.update(STOPPERS.get(doc_type or "", ()))
    return any(find_label([line], label, threshold=0.9) for label in labels)


def _invoice_header(lines: Sequence[str]) -> tuple[str, str]:
    for line in lines:
        match = _INVOICE.search(line.translate(_HOMOGLYPHS))
        if match:
            date = match.group(2).replace('"', " ").replace("«", " ").replace("»", " ")
            found = _DATE.search(" ".join(date.split()))
            return match.group(1).strip(" №"), found.group(0) if found else clean_value(date)
    return "", ""


def _pattern_anywhere(lines: Sequence[str], pattern: re.Pattern[str]) -> str:
    for line in lines:
        match = pattern.search(line)
        if match:
            return match.group(0)
    return ""


def extract_field(lines: Sequence[str], doc_type: str | None, field: str) -> str:
    """The value of one field, ``""`` when it cannot be found."""
    name = canonical_field(doc_type, field)
    special = _SPECIAL.get((doc_type or "", name))
    if special is not None:
        return special(lines, doc_type)
    value = _value_near(lines, labels_for(doc_type, name), doc_type, name in MULTILINE)
    if name == "birth_date":
        match = _DATE.search(value)
        return match.group(0) if match else value
    if name == "birth_place":
        return clean_value(_DATE.sub("", value, count=1))
    return value


def _number_or_pattern(label_value: str, pattern: re.Pattern[str], lines: Sequence[str]) -> str:
    match = pattern.search(label_value)
    return match.group(0) if match else _pattern_anywhere(lines, pattern)


def _snils(lines: Sequence[str], doc_type: str | None) -> str:
    return _number_or_pattern(_value_near(lines, LABELS["snils"]["snils"], doc_type), _SNILS, lines)


def _series_number(lines: Sequence[str], doc_type: str | None) -> str:
    near = _value_near(lines, LABELS["passport"]["series_number"], doc_type)
    return _number_or_pattern(near, _PASSPORT, lines) or near


def _inn_kpp(field: str) -> Callable[[Sequence[str], str | None], str]:
    def extract(lines: Sequence[str], doc_type: str | None) -> str:
        value = _value_near(lines, LABELS["invoice"][field], doc_type)
        pair = _INN_KPP.search(value)
        if pair:
            return pair.group(1 if field.endswith("inn") else 2)
        digits = re.search(r"\d{9,12}", value)
        return digits.group(0) if digits else value

    return extract


def _total(lines: Sequence[str], doc_type: str | None) -> str:
    value = _value_near(lines, LABELS["invoice"]["total"], doc_type)
    numbers = [n.strip() for n in _NUMBER.findall(value) if n.strip()]
    return numbers[-1] if numbers else value


def _invoice_number(lines: Sequence[str], doc_type: str | None) -> str:
    return _invoice_header(lines)[0] or _value_near(lines, LABELS["invoice"]["number"], doc_type)


def _invoice_date(lines: Sequence[str], doc_type: str | None) -> str:
    return _invoice_header(lines)[1] or _value_near(lines, LABELS["invoice"]["date"], doc_type)


_SPECIAL: dict[tuple[str, str], Callable[[Sequence[str], str | None], str]] = {
    ("snils", "snils"): _snils,
    ("passport", "series_number"): _series_number,
    ("invoice", "number"): _invoice_number,
    ("invoice", "date"): _invoice_date,
    ("invoice", "total"): _total,
    **{("invoice", f): _inn_kpp(f) for f in ("seller_inn", "seller_kpp", "buyer_inn", "buyer_kpp")},
}


def has_line_rule(doc_type: str | None, field: str) -> bool:
    """Whether a (canonical) field has its own line rule (invoice header, INN/KPP pairs)."""
    return (doc_type or "", field) in _SPECIAL


def document_fields(doc_type: str | None) -> list[str]:
    """Every field this module knows for ``doc_type`` (empty if unknown)."""
    return list(LABELS.get(doc_type or "", {}))


def extract_document(
    lines: Sequence[str], doc_type: str | None, fields: Sequence[str] | None
) -> dict[str, str]:
    """All requested fields (default: every known field of ``doc_type``) that were found."""
    names = list(fields) if fields else document_fields(doc_type)
    found = {name: extract_field(lines, doc_type, name) for name in names}
    return {name: value for name, value in found.items() if value}
