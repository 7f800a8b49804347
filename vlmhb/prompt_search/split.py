"""The overfitting guard: a seeded split of documents into search and confirm parts.

Stratified by document type: each type gives ``round(fraction * n)`` of its documents to the
confirm part (at least one when the fraction is positive and the type has two or more), so
winners are chosen on one part and reported on documents they were not chosen on.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class DocumentSplit:
    """Document ids of the search and the confirm part."""

    search: frozenset[str]
    confirm: frozenset[str]
    fraction: float
    seed: int


def split_documents(doc_types: Mapping[str, str], fraction: float, seed: int) -> DocumentSplit:
    """Split ``{doc_id: doc_type}``; ``fraction`` 0 keeps every document for the search."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"--confirm must be in [0, 1), got {fraction}")
    by_type: dict[str, list[str]] = defaultdict(list)
    for doc_id, doc_type in doc_types.items():
        by_type[doc_type].append(doc_id)
    rng = random.Random(seed)
    confirm: set[str] = set()
    for doc_type in sorted(by_type):
        ids = sorted(by_type[doc_type])
        rng.shuffle(ids)
        take = round(fraction * len(ids))
        if fraction > 0 and take == 0 and len(ids) >= 2:
            take = 1
        confirm.update(ids[: min(take, len(ids) - 1)])
    search = frozenset(doc_types) - confirm
    return DocumentSplit(search, frozenset(confirm), fraction, seed)
