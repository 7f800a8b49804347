"""The built-in text metrics: exact match, NED, ANLS, CER, WER (rapidfuzz), BLEU (sacrebleu).

All edit distances go through ``rapidfuzz.process.cpdist`` (element-wise, in C++), so a batch
of 100,000 pairs costs one call per distance, not one Python call per pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from vlmhb.metrics._registry import MetricValues, metric

ANLS_THRESHOLD = 0.5


class PairBatch:
    """Aligned hypotheses (model answers) and references, with distances computed once."""

    def __init__(
        self,
        hypotheses: Sequence[str],
        references: Sequence[str],
        validity: Sequence[str | None] | None = None,
    ) -> None:
        if len(hypotheses) != len(references):
            raise ValueError("hypotheses and references differ in length")
        self.hypotheses = list(hypotheses)
        self.references = list(references)
        # per pair: "correct" / "invalid" / "valid_but_wrong", None for untyped fields
        self.validity = list(validity) if validity is not None else [None] * len(self.references)

    def __len__(self) -> int:
        return len(self.references)

    @cached_property
    def char_distance(self) -> np.ndarray:
        """Levenshtein distance between characters, per pair."""
        if not self.references:
            return np.zeros(0)
        return process.cpdist(
            self.hypotheses, self.references, scorer=Levenshtein.distance, dtype=np.int64
        ).astype(float)

    @cached_property
    def hyp_length(self) -> np.ndarray:
        """Hypothesis lengths in characters."""
        return np.fromiter(map(len, self.hypotheses), float, len(self.hypotheses))

    @cached_property
    def ref_length(self) -> np.ndarray:
        """Reference lengths in characters."""
        return np.fromiter(map(len, self.references), float, len(self.references))

    @cached_property
    def ref_words(self) -> list[list[str]]:
        """References split on whitespace."""
        return [ref.split() for ref in self.references]

    @cached_property
    def word_distance(self) -> np.ndarray:
        """Levenshtein distance between word sequences, per pair."""
        if not self.references:
            return np.zeros(0)
        hyp_words = [hyp.split() for hyp in self.hypotheses]
        return process.cpdist(
            hyp_words, self.ref_words, scorer=Levenshtein.distance, dtype=np.int64
        ).astype(float)

    @cached_property
    def ned(self) -> np.ndarray:
        """Edit distance over the longer string's length, in [0, 1]; 0 when both are empty."""
        longer = np.maximum(self.hyp_length, self.ref_length)
        return np.divide(self.char_distance, longer, out=np.zeros(len(self)), where=longer > 0)


def _rate(edits: np.ndarray, length: np.ndarray) -> MetricValues:
    """Per-sample edits / reference length (an empty reference counts as length 1)."""
    return MetricValues(edits / np.maximum(length, 1.0), numerator=edits, denominator=length)


@metric("exact_match", column="exact", core=True, aliases=("exact", "em"))
def exact_match(batch: PairBatch) -> MetricValues:
    """1 when the answer equals the reference, else 0."""
    same = [h == r for h, r in zip(batch.hypotheses, batch.references, strict=True)]
    return MetricValues(np.array(same, dtype=float))


@metric("anls", core=True)
def anls(batch: PairBatch) -> MetricValues:
    """ANLS (DocVQA): 1 - NED when NED < 0.5, else 0."""
    ned = batch.ned
    return MetricValues(np.where(ned < ANLS_THRESHOLD, 1.0 - ned, 0.0))


@metric("ned", core=True)
def ned(batch: PairBatch) -> MetricValues:
    """Normalized edit distance: Levenshtein distance / length of the longer string."""
    return MetricValues(batch.ned)


@metric("cer", core=True)
def cer(batch: PairBatch) -> MetricValues:
    """Character error rate: character edits / reference characters."""
    return _rate(batch.char_distance, batch.ref_length)


@metric("wer", core=True)
def wer(batch: PairBatch) -> MetricValues:
    """Word error rate: word edits / reference words."""
    lengths = np.fromiter(map(len, batch.ref_words), float, len(batch))
    return _rate(batch.word_distance, lengths)


@metric("bleu")
def bleu(batch: PairBatch) -> MetricValues:
    """Sentence BLEU (sacrebleu, hypothesis = answer, reference = ground truth), in [0, 1]."""
    import sacrebleu

    scores = [
        sacrebleu.sentence_bleu(hyp, [ref]).score / 100.0 if (hyp or ref) else 1.0
        for hyp, ref in zip(batch.hypotheses, batch.references, strict=True)
    ]
    return MetricValues(np.clip(np.array(scores, dtype=float), 0.0, 1.0))
