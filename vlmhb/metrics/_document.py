"""Lenient parsing of ``document``-mode answers: one JSON object holding every field.

Models wrap JSON in code fences, add prose around it, use single quotes or write a Python
dict. :func:`parse_document_answer` tries, in order: strict JSON of the first ``{...}`` span
(``raw_decode``, so trailing text is ignored), the same without trailing commas, and
``ast.literal_eval``. An answer that still does not parse, or parses to something other than
an object, is a *failure* (``None``), never an empty dict.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from vlmhb.metrics._fields import canonical_field

_FENCE = re.compile(r"```(?:json|python|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _candidates(answer: str) -> list[str]:
    texts = [m.group(1) for m in _FENCE.finditer(answer)] + [answer]
    spans = []
    for text in texts:
        start = text.find("{")
        if start >= 0:
            end = text.rfind("}")
            spans.append(text[start : end + 1] if end > start else text[start:])
    return spans


def _try_parse(span: str) -> Any:
    decoder = json.JSONDecoder()
    for text in (span, _TRAILING_COMMA.sub(r"\1", span)):
        try:
            return decoder.raw_decode(text)[0]
        except json.JSONDecodeError:
            pass
    try:
        return ast.literal_eval(span)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_as_text(item) for item in value)
    if isinstance(value, dict):
        return " ".join(_as_text(item) for item in value.values())
    return str(value)


def parse_document_answer(answer: str) -> dict[str, str] | None:
    """The fields of a document answer as ``{key: text}``, or ``None`` when it does not parse."""
    for span in _candidates(answer):
        parsed = _try_parse(span)
        if isinstance(parsed, dict):
            return {str(key): _as_text(value) for key, value in parsed.items()}
    return None


def match_fields(parsed: dict[str, str], reference_fields: list[str]) -> tuple[dict[str, str], int]:
    """Map answer keys onto reference field names; returns (values by field, invented count).

    A key matches a reference field when both resolve to the same canonical field (so
    ``Фамилия`` answers ``surname``) or are equal ignoring case. Keys with empty values are
    treated as absent. Invented = non-empty keys that match no reference field.
    """
    by_key: dict[str, str] = {}
    for field in reference_fields:
        by_key[field.casefold()] = field
        canonical = canonical_field(field)
        if canonical:
            by_key.setdefault(canonical, field)
    values: dict[str, str] = {}
    invented = 0
    for key, value in parsed.items():
        if not value.strip():
            continue
        matched = by_key.get(key.casefold()) or by_key.get(canonical_field(key) or "\0")
        if matched is None:
            invented += 1
        elif matched not in values:
            values[matched] = value
    return values, invented
