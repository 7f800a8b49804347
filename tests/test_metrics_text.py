"""Text metrics against independent implementations: jiwer (CER/WER), DocVQA ANLS, sacrebleu."""

from __future__ import annotations

import random

import jiwer
import numpy as np
import pytest
import sacrebleu

from vlmhb.metrics import METRICS, MetricsInputError, MetricValues, PairBatch, metric
from vlmhb.metrics import resolve_metrics as resolve
from vlmhb.metrics._text import anls, bleu, cer, exact_match, ned, wer

ALPHABET = "абвгдежзийклмнопрстуфхцчшщъыьэюя"


def _random_text(rng: random.Random) -> str:
    words = ["".join(rng.choices(ALPHABET, k=rng.randint(1, 9))) for _ in range(rng.randint(1, 6))]
    return " ".join(words)


def _mutate(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(0, 4)):
        op = rng.choice("sid")
        at = rng.randrange(len(chars) + 1)
        if op == "i" or not chars:
            chars.insert(at, rng.choice(ALPHABET + " "))
        elif op == "d" and at < len(chars):
            del chars[at]
        elif at < len(chars):
            chars[at] = rng.choice(ALPHABET)
    return " ".join("".join(chars).split()) or "а"


def _micro(values: MetricValues) -> float:
    assert values.numerator is not None and values.denominator is not None
    return float(values.numerator.sum() / values.denominator.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cer_and_wer_micro_agree_with_jiwer_on_random_cyrillic(seed: int) -> None:
    rng = random.Random(seed)
    refs = [_random_text(rng) for _ in range(300)]
    hyps = [_mutate(ref, rng) if rng.random() < 0.8 else _random_text(rng) for ref in refs]
    batch = PairBatch(hyps, refs)
    assert _micro(cer(batch)) == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)
    assert _micro(wer(batch)) == pytest.approx(jiwer.wer(refs, hyps), abs=1e-12)
    # per sample (macro parts) too
    per_sample = [jiwer.cer(r, h) for r, h in zip(refs[:50], hyps[:50], strict=True)]
    np.testing.assert_allclose(cer(PairBatch(hyps[:50], refs[:50])).per_sample, per_sample)


def _docvqa_anls(prediction: str, answer: str, tau: float = 0.5) -> float:
    """ANLS for one question and one answer, written from the DocVQA definition."""
    a, b = prediction, answer
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    longer = max(len(a), len(b))
    nl = previous[-1] / longer if longer else 0.0
    return 1.0 - nl if nl < tau else 0.0


ANLS_CASES = [
    ("карбаинов", "карбаинов"),  # identical: 1
    ("карбаинв", "карбаинов"),  # one deletion: 1 - 1/9
    ("абвг", "абвд"),  # NL = 0.25
    ("аб", "ав"),  # NL = 0.5 exactly: cut to 0
    ("абв", "абг"),  # NL = 1/3 < 0.5
    ("абвгд", "абвxy"),  # NL = 0.4
    ("абвгд", "абxyz"),  # NL = 0.6: 0
    ("", ""),  # both empty: 1
    ("", "осипов"),  # empty answer: 0
    ("13.09.1985", "13.09.1986"),
]


def test_anls_matches_the_docvqa_definition_including_the_cut() -> None:
    hyps, refs = [h for h, _ in ANLS_CASES], [r for _, r in ANLS_CASES]
    got = anls(PairBatch(hyps, refs)).per_sample
    expected = [_docvqa_anls(h, r) for h, r in ANLS_CASES]
    np.testing.assert_allclose(got, expected)
    assert got[3] == 0.0 and got[5] == pytest.approx(0.6) and got[6] == 0.0


def test_ned_is_in_unit_interval_and_symmetric() -> None:
    rng = random.Random(5)
    refs = [_random_text(rng) for _ in range(200)]
    hyps = [_random_text(rng) for _ in range(200)]
    forward, backward = ned(PairBatch(hyps, refs)).per_sample, ned(PairBatch(refs, hyps)).per_sample
    assert ((forward >= 0) & (forward <= 1)).all()
    np.testing.assert_allclose(forward, backward)


def test_exact_match_and_empty_reference_rates() -> None:
    batch = PairBatch(["да", "", "x"], ["да", "", ""])
    np.testing.assert_array_equal(exact_match(batch).per_sample, [1, 1, 0])
    np.testing.assert_array_equal(cer(batch).per_sample, [0, 0, 1])


def test_bleu_takes_the_answer_as_hypothesis() -> None:
    answer, reference = "кот сидит на", "кот сидит на ковре у окна"
    got = bleu(PairBatch([answer], [reference])).per_sample[0]
    assert got == pytest.approx(sacrebleu.sentence_bleu(answer, [reference]).score / 100)
    assert got != pytest.approx(sacrebleu.sentence_bleu(reference, [answer]).score / 100)


def test_plan_names_resolve_case_insensitively_and_core_is_always_there() -> None:
    names = [spec.name for spec in resolve(["CER", "WER", "BLEU"])]
    core = ["exact_match", "anls", "ned", "cer", "wer", "valid_but_wrong", "invalid_rate"]
    assert names == [*core, "bleu"]
    with pytest.raises(MetricsInputError, match="unknown metric 'rouge'"):
        resolve(["rouge"])


def test_a_new_metric_is_one_function_and_a_decorator() -> None:
    @metric("length_ratio_test", higher_is_better=True)
    def length_ratio(batch: PairBatch) -> MetricValues:
        """Answer length over reference length."""
        return MetricValues(batch.hyp_length / np.maximum(batch.ref_length, 1))

    try:
        specs = resolve(["Length_Ratio_Test"])
        assert specs[-1].function is length_ratio
        assert specs[-1].description == "Answer length over reference length."
    finally:
        del METRICS["length_ratio_test"]
