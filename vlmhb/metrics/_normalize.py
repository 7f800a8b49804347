"""Russian-aware text normalization, explicit and recorded: one frozen settings object.

Steps, in order (each switchable in :class:`Normalization`): Unicode NFC; quotes and dashes
unified (``«» „“ " '`` -> ``"``, ``– — ‑ −`` -> ``-``); Latin/Cyrillic homoglyphs folded inside
mixed-script words (a Latin ``a`` in ``Ивaнов`` becomes Cyrillic); case folding; ``ё`` -> ``е``;
label echo stripped (``Фамилия: Осипов`` -> ``Осипов``); whitespace collapsed; edge punctuation
stripped; then the field-type normalizer (dates, SNILS, passport, sex, digits, sums).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from typing import Any

from vlmhb.metrics._fields import KIND_NORMALIZERS, field_labels, normalize_date


@dataclass(frozen=True)
class Normalization:
    """Which normalization steps run; recorded verbatim in ``metrics.json``."""

    nfc: bool = True
    unify_punctuation: bool = True
    fold_homoglyphs: bool = True
    casefold: bool = True
    yo_to_ye: bool = True
    strip_label_echo: bool = True
    collapse_whitespace: bool = True
    strip_edge_punctuation: bool = True
    field_normalizers: bool = True
    two_digit_year_pivot: int | None = 30

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data."""
        return asdict(self)


#: No normalization at all: the ``*_raw`` scores compare the strings exactly as written.
RAW = Normalization(
    nfc=False,
    unify_punctuation=False,
    fold_homoglyphs=False,
    casefold=False,
    yo_to_ye=False,
    strip_label_echo=False,
    collapse_whitespace=False,
    strip_edge_punctuation=False,
    field_normalizers=False,
    two_digit_year_pivot=None,
)

_PUNCTUATION = str.maketrans(
    {
        **dict.fromkeys("«»„“”‟″‘’‚‛'`´", '"'),
        **dict.fromkeys("‐‑‒–—―−", "-"),
        **dict.fromkeys("\u00a0\u2007\u2009\u202f\u200a", " "),
        "\u200b": None,
        "\ufeff": None,
    }
)
# Latin -> Cyrillic look-alikes (upper and lower case) and the reverse map.
_LATIN = "AaBCcEeHKkMOoPpTXxYy"
_CYRILLIC = "АаВСсЕеНКкМОоРрТХхУу"
_TO_CYRILLIC = str.maketrans(_LATIN, _CYRILLIC)
_TO_LATIN = str.maketrans(_CYRILLIC, _LATIN)
_HAS_LATIN = re.compile(r"[A-Za-z]")
_HAS_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_WORD = re.compile(r"[A-Za-zА-Яа-яЁё]+")
_EDGE = " .,;:!?"


def is_mixed_script(text: str) -> bool:
    """True when some word mixes Latin and Cyrillic letters (``Ивaнов`` with a Latin ``a``)."""
    if not (_HAS_LATIN.search(text) and _HAS_CYRILLIC.search(text)):
        return False
    return any(
        _HAS_LATIN.search(word) and _HAS_CYRILLIC.search(word) for word in _WORD.findall(text)
    )


def _fold_word(match: re.Match[str]) -> str:
    word = match.group(0)
    latin = len(_HAS_LATIN.findall(word))
    if latin == 0 or latin == len(word):
        return word
    cyrillic = len(_HAS_CYRILLIC.findall(word))
    return word.translate(_TO_LATIN if latin > cyrillic else _TO_CYRILLIC)


def fold_homoglyphs(text: str) -> str:
    """Inside each mixed-script word, turn the minority script's look-alikes into the majority's."""
    if not (_HAS_LATIN.search(text) and _HAS_CYRILLIC.search(text)):
        return text
    return _WORD.sub(_fold_word, text)


_LABEL_ECHO = re.compile(
    r"^\s*(?:" + "|".join(re.escape(label) for label in field_labels()) + r")\s*(?::|=| - )\s*",
    re.IGNORECASE,
)


def _normalizer(kind: str, settings: Normalization) -> Any:
    if kind == "date":
        return partial(normalize_date, two_digit_year_pivot=settings.two_digit_year_pivot)
    return KIND_NORMALIZERS.get(kind, KIND_NORMALIZERS["text"])


@lru_cache(maxsize=200_000)
def normalize_text(text: str, kind: str = "text", settings: Normalization = Normalization()) -> str:
    """Normalize one answer or reference for a field of normalizer ``kind`` (see module doc)."""
    s = settings
    if s.nfc and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if s.unify_punctuation:
        text = text.translate(_PUNCTUATION)
    if s.fold_homoglyphs:
        text = fold_homoglyphs(text)
    if s.casefold:
        text = text.casefold()
    if s.yo_to_ye:
        text = text.replace("ё", "е").replace("Ё", "Е")
    if s.strip_label_echo and kind != "page" and (":" in text or "=" in text or " - " in text):
        text = _LABEL_ECHO.sub("", text, count=1)
    if s.collapse_whitespace:
        text = " ".join(text.split())
    if s.strip_edge_punctuation:
        text = text.strip(_EDGE)
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1].strip(_EDGE)
    if s.field_normalizers and kind not in ("text", "page"):
        text = _normalizer(kind, s)(text)
    return text
