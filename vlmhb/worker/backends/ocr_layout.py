"""Field values from Tesseract's word boxes: the value nearest its label, in any direction.

Standard library only. Input is Tesseract's TSV (``tesseract IMAGE - tsv``, ``image_to_data``):
one row per word with its box. For a field, in order:

1. *Numbered fields* (:data:`NUMBERED`): forms that number their fields instead of labelling
   them (a Russian driving licence: ``1.`` surname, ``2.`` name and patronymic, ``3.`` birth
   date and place, ``4a.``/``4b.``/``4c.`` issue, expiry, issuer, ``5.`` number).
2. *Label anchored*: the field's printed labels (``ocr_fields.LABELS``, the v0.1 names, the
   field name) are matched fuzzily (``difflib``) anywhere in a line; around the best match the
   candidates are the words to its right and left on its line, then the lines below and above
   (horizontally overlapping it). A candidate that starts with another label is dropped; a
   typed field (:mod:`vlmhb.validity`) prefers a candidate that passes its type; then its own
   line wins over the lines around, and the nearest wins.
3. *By type*, when no label is printed: the first value of the field's type that passes its
   validator (a 12-digit INN with both check digits, a series-and-number, a SNILS); for dates,
   the earliest (birth) or the latest (issue) date on the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from vlmhb.validity import check, field_type, parse_date
from vlmhb.worker.backends.ocr_fields import (
    LABELS,
    MULTILINE,
    STOPPERS,
    V01_FIELDS,
    clean_value,
    normalize,
)


@dataclass(frozen=True)
class Word:
    """One recognized word and its box (pixels)."""

    text: str
    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


@dataclass(frozen=True)
class Line:
    """One text line: its words in reading order."""

    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)

    @property
    def top(self) -> int:
        return min(w.top for w in self.words)

    @property
    def bottom(self) -> int:
        return max(w.bottom for w in self.words)


def parse_tsv(tsv: str) -> list[Line]:
    """Lines of words from Tesseract's TSV output (level-5 rows with text)."""
    rows = tsv.splitlines()
    if not rows:
        return []
    header = rows[0].split("\t")
    column = {name: i for i, name in enumerate(header)}
    grouped: dict[tuple[str, str, str, str], list[Word]] = {}
    for row in rows[1:]:
        cells = row.split("\t")
        if len(cells) != len(header) or cells[column["level"]] != "5":
            continue
        text = cells[column["text"]].strip()
        if not text:
            continue
        key = tuple(cells[column[k]] for k in ("page_num", "block_num", "par_num", "line_num"))
        box = [int(cells[column[k]]) for k in ("left", "top", "width", "height")]
        grouped.setdefault(key, []).append(Word(text, *box))  # type: ignore[arg-type]
    lines = [Line(tuple(sorted(words, key=lambda w: w.left))) for words in grouped.values()]
    return sorted(lines, key=lambda line: (line.top, line.words[0].left))


# doc_type -> field -> (number printed before the value, which part of the value)
NUMBERED: dict[str, dict[str, tuple[str, str]]] = {
    "driving_licence": {
        "surname": ("1", "all"),
        "name": ("2", "first"),
        "patronymic": ("2", "rest"),
        "birth_date": ("3", "date"),
        "birth_place": ("3", "after_date"),
        "issue_date": ("4a", "date"),
        "expiry_date": ("4b", "date"),
        "issued_by": ("4c", "all"),
        "number": ("5", "all"),
        "residence": ("8", "all"),
        "categories": ("9", "all"),
    },
}
NUMBERED["driver_license"] = NUMBERED["driving_licence"]
_NUMBER_MARK = re.compile(r"(?<!\S)(\d{1,2})\s?([abcабс])?[.,)](?=\s|$)", re.IGNORECASE)
_LATIN_MARK = str.maketrans("абс", "abc")
_DATE_TEXT = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{4}|\d{1,2}\s+[а-яё]+\s+\d{4}", re.IGNORECASE)
_TYPE_PATTERNS: dict[str, re.Pattern[str]] = {
    "snils": re.compile(r"(?<!\d)\d{3}[- ]?\d{3}[- ]?\d{3}[- ]?\d{2}(?!\d)"),
    "passport_number": re.compile(r"(?<!\d)\d{2}\s?\d{2}\s?\d{6}(?!\d)"),
    "inn_person": re.compile(r"(?<!\d)\d{12}(?!\d)"),
    "inn_org": re.compile(r"(?<!\d)\d{10}(?!\d)"),
    "inn": re.compile(r"(?<!\d)\d{12}(?!\d)|(?<!\d)\d{10}(?!\d)"),
    "ogrn": re.compile(r"(?<!\d)\d{13}(?!\d)"),
    "ogrnip": re.compile(r"(?<!\d)\d{15}(?!\d)"),
    "kpp": re.compile(r"(?<!\d)\d{4}[\dA-Z]{2}\d{3}(?!\d)"),
    "bik": re.compile(r"(?<!\d)04\d{7}(?!\d)"),
    "department_code": re.compile(r"(?<!\d)\d{3}-\d{3}(?!\d)"),
}
_THRESHOLD = 0.8
_EDGE_NOISE = re.compile(r"^[^\w№«\"(]+")


def _numbered(lines: Sequence[Line], doc_type: str | None, field: str) -> str:
    spec = NUMBERED.get(doc_type or "", {}).get(field)
    if spec is None:
        return ""
    wanted, part = spec
    for line in lines:
        marks = list(_NUMBER_MARK.finditer(line.text))
        for index, match in enumerate(marks):
            mark = match.group(1) + (match.group(2) or "").lower().translate(_LATIN_MARK)
            if mark != wanted:
                continue
            end = marks[index + 1].start() if index + 1 < len(marks) else len(line.text)
            return _numbered_part(clean_value(line.text[match.end() : end]), part)
    return ""


def _numbered_part(value: str, part: str) -> str:
    """``all`` of a numbered value, its ``first`` word, the ``rest``, its ``date`` or what
    comes ``after_date`` (``3. 05.11.1988 г. Тверь``: birth date, then place)."""
    words = value.split()
    date = _DATE_TEXT.search(value)
    return {
        "all": value,
        "first": words[0] if words else "",
        "rest": " ".join(words[1:]),
        "date": date.group(0) if date else "",
        "after_date": clean_value(value[date.end() :]) if date else "",
    }[part]


def _labels(doc_type: str | None, field: str) -> list[str]:
    labels = list(LABELS.get(doc_type or "", {}).get(field, ()))
    labels += [q for q, native in V01_FIELDS.get(doc_type or "", {}).items() if native == field]
    if not labels:
        labels = [labels_ for table in LABELS.values() for labels_ in table.get(field, ())]
    return list(dict.fromkeys(labels or [field.replace("_", " ")]))


def _all_labels(doc_type: str | None) -> list[str]:
    table = LABELS.get(doc_type or "", {})
    labels = {label for labels in table.values() for label in labels}
    labels.update(STOPPERS.get(doc_type or "", ()))
    return sorted(labels, key=len, reverse=True)


def _similar(window: str, target: str) -> float:
    if len(target) <= 4:  # short labels ("Имя", "Пол") only match exactly
        return 1.0 if window == target else 0.0
    return SequenceMatcher(None, window, target).ratio()


@dataclass(frozen=True)
class _Hit:
    line: int
    start: int
    end: int  # word index after the label
    score: float


def _find_label(lines: Sequence[Line], label: str) -> _Hit | None:
    target = normalize(label)
    width = len(target.split())
    best: _Hit | None = None
    for index, line in enumerate(lines):
        texts = [word.text for word in line.words]
        for start in range(len(texts)):
            window = normalize(" ".join(texts[start : start + width]))
            score = _similar(window, target)
            if score >= _THRESHOLD and (best is None or score > best.score):
                best = _Hit(index, start, min(start + width, len(texts)), score)
    return best


def _starts_with_label(text: str, labels: Sequence[str]) -> bool:
    folded = normalize(text)
    for label in labels:
        target = normalize(label)
        head = " ".join(folded.split()[: len(target.split())])
        if head and _similar(head, target) >= 0.9:
            return True
    return False


def _segment(words: Sequence[Word], anchor_left: int, anchor_right: int, gap: int) -> list[Word]:
    """The run of words overlapping ``[anchor_left, anchor_right]`` plus its close neighbours."""
    overlapping = [
        i for i, w in enumerate(words) if w.right >= anchor_left and w.left <= anchor_right
    ]
    if not overlapping:
        return []
    first = last = overlapping[0]
    while first > 0 and words[first].left - words[first - 1].right <= gap:
        first -= 1
    while last + 1 < len(words) and words[last + 1].left - words[last].right <= gap:
        last += 1
    return list(words[first : last + 1])


def _until_label(words: Sequence[Word], labels: Sequence[str]) -> list[Word]:
    """Words up to (not including) the first that starts another label."""
    for i in range(1, len(words)):
        if _starts_with_label(" ".join(w.text for w in words[i:]), labels):
            return list(words[:i])
    return list(words)


def _candidates(
    lines: Sequence[Line], hit: _Hit, labels: Sequence[str]
) -> list[tuple[int, float, str]]:
    """(rank, distance, text) of the words right of, left of, below and above the label.

    Words on the label's own line rank first (0): a form reads label-value along a line, and
    the line above a label may be a heading. Lines below and above rank 1.
    """
    line = lines[hit.line]
    label_words = line.words[hit.start : hit.end]
    left, right = label_words[0].left, label_words[-1].right
    top, bottom = min(w.top for w in label_words), max(w.bottom for w in label_words)
    height = max(bottom - top, 8)
    gap = 3 * height
    found: list[tuple[int, float, str]] = []
    after = _until_label(line.words[hit.end :], labels)
    if after:
        found.append((0, 0.5 * (after[0].left - right), " ".join(w.text for w in after)))
    before = _until_label(list(reversed(line.words[: hit.start])), labels)[::-1]
    if before:  # the same line: however far, a candidate (the nearest wins)
        found.append((0, left - before[-1].right, " ".join(w.text for w in before)))
    for other in lines:
        if other is line:
            continue
        if other.top >= bottom - height // 3:
            distance = other.top - bottom
        elif other.bottom <= top + height // 3:
            distance = top - other.bottom
        else:
            continue
        if distance > 3 * height:
            continue
        words = _segment(other.words, left - height, right + height, gap)
        if words:
            found.append((1, max(distance, 0) + 1, " ".join(w.text for w in words)))
    return found


def _typed_value(text: str, kind: str) -> str:
    """The part of ``text`` that looks like a value of ``kind`` (``text`` if nothing does)."""
    if kind in ("date", "birth_date", "issue_date"):
        match = _DATE_TEXT.search(text)
        return match.group(0) if match else text
    pattern = _TYPE_PATTERNS.get(kind)
    match = pattern.search(text) if pattern else None
    return match.group(0) if match else text


def _near_label(lines: Sequence[Line], doc_type: str | None, field: str, kind: str) -> str:
    hits = [hit for label in _labels(doc_type, field) if (hit := _find_label(lines, label))]
    if not hits:
        return ""
    hit = max(hits, key=lambda h: (h.score, -h.line))
    others = _all_labels(doc_type)
    options = []
    for rank, distance, text in _candidates(lines, hit, others):
        value = clean_value(text, end=field not in MULTILINE)
        if not value or _starts_with_label(value, others):
            continue
        if kind:
            value = _typed_value(value, kind)
        valid = not kind or check(kind, value) is None
        options.append((not valid, rank, distance, value))
    if not options:
        return ""
    value = min(options)[3]
    if field in MULTILINE:
        value = _continued(lines, value, others)
    return value


def _continued(lines: Sequence[Line], value: str, labels: Sequence[str]) -> str:
    """A wrapped value: up to two following lines starting where the value starts."""
    index = next((i for i, line in enumerate(lines) if value in line.text), None)
    if index is None:
        return clean_value(value)
    start = lines[index].words[0]
    first_word = value.split()[0]
    anchor = next((w for w in lines[index].words if w.text.startswith(first_word)), start)
    parts = [value]
    bottom = lines[index].bottom
    for line in lines[index + 1 : index + 3]:
        words = [w for w in line.words if abs(w.left - anchor.left) <= 2 * anchor.height]
        if not words or line.top - bottom > 1.5 * anchor.height:
            break
        if any(w.right < words[0].left - anchor.height for w in line.words):
            break  # words left of the value's column: another labelled row
        text = clean_value(" ".join(w.text for w in line.words if w.left >= words[0].left), False)
        if not text or _starts_with_label(text, labels):
            break
        parts.append(text)
        bottom = line.bottom
    return clean_value(" ".join(parts))


def _by_type(lines: Sequence[Line], field: str, kind: str) -> str:
    text = "\n".join(line.text for line in lines)
    if kind in ("date", "birth_date", "issue_date"):
        dates = [(parse_date(m.group(0)), m.group(0)) for m in _DATE_TEXT.finditer(text)]
        dates = [(day, raw) for day, raw in dates if day is not None and check(kind, raw) is None]
        if not dates:
            return ""
        pick = min if kind == "birth_date" else max
        return pick(dates)[1] if kind != "date" else dates[0][1]
    pattern = _TYPE_PATTERNS.get(kind)
    if pattern is None:
        return ""
    for match in pattern.finditer(text):
        if check(kind, match.group(0)) is None:
            return match.group(0)
    return ""


def extract_from_boxes(lines: Sequence[Line], doc_type: str | None, field: str) -> str:
    """The value of one (canonical) field from word-box lines, ``""`` when not found."""
    value = _numbered(lines, doc_type, field)
    if value:
        return value
    kind = field_type(doc_type, field)
    value = _near_label(lines, doc_type, field, kind)
    if field == "birth_place":  # "Дата и место рождения: 01.02.1990 г. Москва"
        value = clean_value(_DATE_TEXT.sub("", value, count=1))
    if value and (not kind or check(kind, value) is None):
        return value
    return (_by_type(lines, field, kind) if kind else "") or value


def zone_value(text: str, doc_type: str | None, field: str) -> str:
    """A field's value from the text OCR'd inside its box (zonal OCR).

    A label caught in the box is dropped; a typed field keeps the part that looks like its type.
    """
    value = clean_value(_EDGE_NOISE.sub("", text))  # a crop's edge reads as stray marks
    for label in _labels(doc_type, field):
        target = normalize(label)
        words = value.split()
        width = len(target.split())
        if len(words) > width and _similar(normalize(" ".join(words[:width])), target) >= 0.8:
            value = clean_value(" ".join(words[width:]))
            break
    kind = field_type(doc_type, field)
    return _typed_value(value, kind) if kind else value
