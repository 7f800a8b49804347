"""Turn joined run inputs into scored samples: one row per (document, field) to score.

``field`` mode: one sample per reference field. ``document`` mode: the answer is parsed once
per document (leniently, see ``_document``) and split into one sample per reference field,
with the per-document facts (parsed or not, invented keys) kept beside. ``text`` mode: one
sample per document, field ``text``, scored against the reference transcription.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field

from vlmhb.metrics._document import match_fields, parse_document_answer
from vlmhb.metrics._runfolder import Answer, RunInputs

TEXT_FIELD = "text"


@dataclass
class Samples:
    """Column lists of the samples to score, plus per-document facts in document mode."""

    sample_id: list[str] = _field(default_factory=list)
    doc_id: list[str] = _field(default_factory=list)
    doc_type: list[str] = _field(default_factory=list)
    field: list[str] = _field(default_factory=list)
    tags: list[list[str]] = _field(default_factory=list)
    reference: list[str] = _field(default_factory=list)
    answer: list[str] = _field(default_factory=list)
    missing: list[bool] = _field(default_factory=list)
    error: list[str | None] = _field(default_factory=list)
    json_ok: list[bool] = _field(default_factory=list)
    field_present: list[bool] = _field(default_factory=list)
    # document mode, one entry per document
    doc_answered: dict[str, bool] = _field(default_factory=dict)
    doc_json_ok: dict[str, bool] = _field(default_factory=dict)
    doc_invented: dict[str, int] = _field(default_factory=dict)
    doc_meta: dict[str, tuple[str, list[str]]] = _field(default_factory=dict)
    docs_without_text: int = 0

    def add(
        self,
        ref: dict,
        name: str,
        sample_id: str,
        reference: str,
        answer: Answer | None,
        text: str | None = None,
        json_ok: bool = False,
        present: bool = False,
    ) -> None:
        """Append one sample; ``text`` overrides the answer text (document mode)."""
        self.sample_id.append(sample_id)
        self.doc_id.append(ref["doc_id"])
        self.doc_type.append(ref["doc_type"])
        self.field.append(name)
        self.tags.append(ref["tags"])
        self.reference.append(reference)
        self.answer.append(text if text is not None else (answer.text if answer else ""))
        self.missing.append(answer is None)
        self.error.append(answer.error if answer else None)
        self.json_ok.append(json_ok)
        self.field_present.append(present)


def build_samples(inputs: RunInputs) -> Samples:
    """One sample per thing to score, in reference order."""
    samples = Samples()
    for ref in inputs.references:
        doc_id = ref["doc_id"]
        if inputs.mode == "field":
            for name, value in ref["fields"].items():
                answer = inputs.answers.get((doc_id, name))
                samples.add(ref, name, f"{doc_id}:{name}", value, answer)
        elif inputs.mode == "text":
            if ref["text"] is None:
                samples.docs_without_text += 1
                continue
            answer = inputs.answers.get((doc_id, None))
            samples.add(ref, TEXT_FIELD, doc_id, str(ref["text"]), answer)
        else:
            _add_document(samples, ref, inputs.answers.get((doc_id, None)))
    return samples


def _add_document(samples: Samples, ref: dict, answer: Answer | None) -> None:
    doc_id = ref["doc_id"]
    answered = answer is not None and answer.error is None  # an empty answer fails to parse
    parsed = parse_document_answer(answer.text) if answer is not None and answered else None
    values, invented = match_fields(parsed, list(ref["fields"])) if parsed is not None else ({}, 0)
    samples.doc_answered[doc_id] = answered
    samples.doc_json_ok[doc_id] = parsed is not None
    samples.doc_invented[doc_id] = invented
    samples.doc_meta[doc_id] = (ref["doc_type"], ref["tags"])
    for name, value in ref["fields"].items():
        text = values.get(name, "")
        samples.add(
            ref,
            name,
            f"{doc_id}:{name}",
            value,
            answer,
            text=text,
            json_ok=parsed is not None,
            present=name in values,
        )
