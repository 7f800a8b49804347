"""Field validity: is a wrong answer one a production validator would catch?

Each sample of a typed field (SNILS, INN, dates, ... see :mod:`vlmhb.validity`) is
``correct`` (normalized exact match), ``invalid`` (wrong and failing its type, cross-field
rules included: the model's own birth date of the document bounds its issue date) or
``valid_but_wrong`` (wrong, yet passing every check: it would flow on unnoticed). An empty
or failed answer is ``invalid``. Two rate metrics over the typed samples follow, with the
usual clustered CIs per field, document type, tag and run: ``valid_but_wrong`` and
``invalid_rate`` (both lower is better).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vlmhb.metrics._registry import MetricValues, metric
from vlmhb.validity import check_document, field_type

if TYPE_CHECKING:
    from vlmhb.metrics._samples import Samples
    from vlmhb.metrics._text import PairBatch

CORRECT, INVALID, VALID_BUT_WRONG = "correct", "invalid", "valid_but_wrong"


@dataclass(frozen=True)
class Validity:
    """Per sample: the verdict (``None`` untyped) and why an answer is invalid."""

    verdicts: list[str | None]
    reasons: list[str | None]
    invalid_references: int


def sample_types(samples: Samples, references: Sequence[dict[str, Any]]) -> list[str]:
    """The type of every sample's field (``""`` for free text), declared types first."""
    declared = {ref["doc_id"]: ref.get("field_types") or {} for ref in references}
    return [
        field_type(doc_type, name, declared.get(doc_id))
        for doc_id, doc_type, name in zip(
            samples.doc_id, samples.doc_type, samples.field, strict=True
        )
    ]


def classify(
    doc_ids: Sequence[str],
    fields: Sequence[str],
    types: Sequence[str],
    answers: Sequence[str],
    references: Sequence[str],
) -> Validity:
    """Verdicts for normalized answers against normalized references, document by document."""
    by_doc: dict[str, list[int]] = defaultdict(list)
    for index, kind in enumerate(types):
        if kind:
            by_doc[doc_ids[index]].append(index)
    verdicts: list[str | None] = [None] * len(types)
    reasons: list[str | None] = [None] * len(types)
    bad_references = 0
    for rows in by_doc.values():
        doc_types = {fields[i]: types[i] for i in rows}
        answer_checks = check_document(doc_types, {fields[i]: answers[i] for i in rows})
        reference_checks = check_document(doc_types, {fields[i]: references[i] for i in rows})
        bad_references += sum(reason is not None for reason in reference_checks.values())
        for i in rows:
            reason = answer_checks.get(fields[i])
            if answers[i] == references[i]:
                verdicts[i] = CORRECT
            elif reason is not None:
                verdicts[i], reasons[i] = INVALID, reason
            else:
                verdicts[i] = VALID_BUT_WRONG
    return Validity(verdicts, reasons, bad_references)


def _rate(batch: PairBatch, verdict: str) -> MetricValues:
    typed = np.array([v is not None for v in batch.validity], float)
    hits = np.array([v == verdict for v in batch.validity], float)
    return MetricValues(np.where(typed > 0, hits, np.nan), numerator=hits, denominator=typed)


@metric("valid_but_wrong", higher_is_better=False, core=True, ratio=True)
def valid_but_wrong(batch: PairBatch) -> MetricValues:
    """Share of typed-field answers that are wrong yet pass every validator."""
    return _rate(batch, VALID_BUT_WRONG)


@metric("invalid_rate", higher_is_better=False, core=True, ratio=True, column="invalid")
def invalid_rate(batch: PairBatch) -> MetricValues:
    """Share of typed-field answers that are wrong and fail their validator."""
    return _rate(batch, INVALID)
