"""Prompt search: which prompt wins per document type and field, is the win real, and the merge.

``search_prompts`` runs every candidate collection (and system prompt) of one model on one
dataset, scores them, picks per document type and field the winner with paired,
document-clustered bootstrap differences to the runner-up and to the default collection, and
exports the winners merged into one collection.
"""

from vlmhb.prompt_search.candidates import (
    Candidate,
    SearchSpec,
    spec_from_options,
    spec_from_plan,
)
from vlmhb.prompt_search.search import SearchOutcome, search_prompts

__all__ = [
    "Candidate",
    "SearchOutcome",
    "SearchSpec",
    "search_prompts",
    "spec_from_options",
    "spec_from_plan",
]
