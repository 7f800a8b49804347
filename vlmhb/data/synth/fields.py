"""Generated document types: field keys, Russian labels, the text printed before each value.

A view of the form-label table (``vlmhb.form_labels``, standard library only), which owns
these facts. Every field is printed on one line as ``<anchor> <value>`` (the label first, the
value after it on the same baseline; long values wrap onto following lines at the value's x
position). Invoice ``seller_inn``/``seller_kpp`` share one line: ``ИНН/КПП продавца: <inn>/<kpp>``.
"""

from __future__ import annotations

from vlmhb.form_labels import FORMS, FormField

DOC_FIELDS: dict[str, tuple[FormField, ...]] = FORMS


def field_labels(doc_type: str) -> dict[str, str]:
    """``{key: Russian label}`` for a generated document type (empty if unknown)."""
    return {spec.key: spec.label for spec in DOC_FIELDS.get(doc_type, ())}
