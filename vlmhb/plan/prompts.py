"""Prompt collections: what to ask per document type and field, in three request modes.

A collection (native JSON, validated with pydantic) holds an optional system prompt, default
templates per mode, and per document type: a label, mode templates and per-field labels and
prompts. VLMHyperBench v0.1 CSV collections (``prompt;doc_class_question_type;cer``) read as
they are: each row becomes the field prompt of ``"<doc_class> <question_type>"``.

Templates may use ``{doc_type}``, ``{doc_type_label}``; in ``field`` mode also ``{field}``,
``{field_label}``; in ``document`` mode ``{fields}`` (keys, comma-separated), ``{field_list}``
(one ``- key: label`` a line) and ``{fields_json}`` (``{"key": ""…}``). Other braces are text,
so JSON examples need no escaping.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vlmhb.errors import Problem, PromptError

Mode = Literal["field", "document", "text"]
MODES: tuple[str, ...] = ("field", "document", "text")
_COMMON = {"doc_type", "doc_type_label"}
PLACEHOLDERS: dict[str, set[str]] = {
    "field": _COMMON | {"field", "field_label"},
    "document": _COMMON | {"fields", "field_list", "fields_json"},
    "text": set(_COMMON),
}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldPrompt(_Strict):
    """One field of a document type: its human label, optionally its own prompt and system."""

    label: str | None = None
    prompt: str | None = None
    system: str | None = None  # field mode only; a merged prompt search sets it per field
    meta: dict[str, Any] = Field(default_factory=dict)


class Templates(_Strict):
    """Templates per request mode."""

    field: str | None = None
    document: str | None = None
    text: str | None = None


class DocTypePrompts(Templates):
    """Prompts of one document type: label, system prompt, mode templates, fields."""

    label: str | None = None
    system: str | None = None
    fields: dict[str, FieldPrompt] = Field(default_factory=dict)


class CollectionModel(_Strict):
    """The native prompt collection file (version 1)."""

    version: Literal[1] = 1
    name: str = Field(min_length=1)
    language: str = "ru"
    system: str | None = None
    defaults: Templates
    doc_types: dict[str, DocTypePrompts] = Field(default_factory=dict)


@dataclass(frozen=True)
class RenderedPrompt:
    """The system prompt (or ``None``) and the user prompt of one request."""

    system: str | None
    prompt: str


@dataclass(frozen=True)
class PromptCollection:
    """A validated collection and where it came from."""

    model: CollectionModel
    source: str

    @property
    def name(self) -> str:
        """The collection's name."""
        return self.model.name

    @cached_property
    def _hash(self) -> str:
        text = json.dumps(self.model.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def content_hash(self) -> str:
        """SHA-256 of the collection's canonical JSON (source formatting does not matter)."""
        return self._hash

    def field_label(self, doc_type: str, field: str) -> str:
        """The human label of a field (the key itself when the collection has none)."""
        spec = self.model.doc_types.get(doc_type, DocTypePrompts()).fields.get(field)
        return spec.label if spec and spec.label else field

    def render(
        self, doc_type: str, field: str | None, fields: list[str], mode: str
    ) -> RenderedPrompt:
        """The prompt of one request (``field`` mode: ``field``; ``document``: all ``fields``)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        if mode == "field" and not field:
            raise ValueError("field mode needs a field")
        kind = self.model.doc_types.get(doc_type, DocTypePrompts())
        values = {"doc_type": doc_type, "doc_type_label": kind.label or doc_type}
        system = kind.system or self.model.system
        template = self.template(doc_type, field, mode)
        if mode == "field":
            assert field is not None
            spec = kind.fields.get(field)
            system = (spec.system if spec else None) or system
            values |= {"field": field, "field_label": self.field_label(doc_type, field)}
        else:
            labels = {name: self.field_label(doc_type, name) for name in fields}
            values |= {
                "fields": ", ".join(fields),
                "field_list": "\n".join(f"- {k}: {v}" for k, v in labels.items()),
                "fields_json": json.dumps(dict.fromkeys(fields, ""), ensure_ascii=False),
            }
        if template is None:
            raise PromptError(
                [Problem(self.source, None, f"defaults.{mode}", "no template for this mode")]
            )
        prompt = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
        return RenderedPrompt(system, prompt)

    def template(self, doc_type: str, field: str | None, mode: str) -> str | None:
        """The unrendered template one request of ``mode`` uses (None: the mode has none)."""
        kind = self.model.doc_types.get(doc_type, DocTypePrompts())
        if mode == "field":
            spec = kind.fields.get(field or "")
            return (spec.prompt if spec else None) or kind.field or self.model.defaults.field
        return getattr(kind, mode) or getattr(self.model.defaults, mode)


def _template_problems(model: CollectionModel, source: str) -> list[Problem]:
    """Placeholders a template may not use (typos, or a field placeholder in document mode)."""
    places: list[tuple[str, str, str | None]] = [
        (f"defaults.{m}", m, getattr(model.defaults, m)) for m in MODES
    ]
    for name, kind in model.doc_types.items():
        places += [(f"doc_types.{name}.{m}", m, getattr(kind, m)) for m in MODES]
        places += [
            (f"doc_types.{name}.fields.{f}.prompt", "field", s.prompt)
            for f, s in kind.fields.items()
        ]
    problems = []
    for key, mode, template in places:
        for used in _PLACEHOLDER.findall(template or ""):
            if used not in PLACEHOLDERS[mode]:
                allowed = ", ".join(sorted(PLACEHOLDERS[mode]))
                problems.append(
                    Problem(
                        source,
                        None,
                        key,
                        f"unknown placeholder {{{used}}} in {mode} mode (allowed: {allowed})",
                    )
                )
    return problems


def read_native_collection(path: Path) -> PromptCollection:
    """Read and validate a native JSON collection; every problem is reported with its key."""
    source = str(path)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise PromptError([Problem(source, None, None, "file not found")]) from exc
    except json.JSONDecodeError as exc:
        raise PromptError(
            [Problem(source, exc.lineno, None, f"not valid JSON: {exc.msg}")]
        ) from exc
    try:
        model = CollectionModel.model_validate(raw)
    except ValidationError as exc:
        problems = [
            Problem(source, None, ".".join(map(str, e["loc"])) or None, e["msg"])
            for e in exc.errors(include_url=False)
        ]
        raise PromptError(problems) from exc
    problems = _template_problems(model, source)
    if problems:
        raise PromptError(problems)
    return PromptCollection(model, source)


def v01_csv_to_native(path: Path) -> dict[str, Any]:
    """A v0.1 prompt CSV as a native collection (a JSON-ready dict); ``cer`` kept in field meta."""
    from vlmhb.data.v01 import read_prompt_csv

    defaults_source = _shipped("default")
    defaults = defaults_source.model.defaults
    doc_types: dict[str, dict[str, Any]] = {}
    problems = []
    for row in read_prompt_csv(Path(path)):
        doc_class, _, question_type = row.key.partition(" ")
        if not doc_class or not question_type:
            problems.append(
                Problem(
                    str(path),
                    row.line,
                    "doc_class_question_type",
                    "expected '<doc_class> <question_type>'",
                )
            )
            continue
        known = defaults_source.model.doc_types.get(doc_class)
        entry = {"label": known.label, "fields": {}} if known and known.label else {"fields": {}}
        fields = doc_types.setdefault(doc_class, entry)["fields"]
        if question_type in fields:
            problems.append(
                Problem(
                    str(path), row.line, "doc_class_question_type", f"duplicate key {row.key!r}"
                )
            )
            continue
        for used in _PLACEHOLDER.findall(row.prompt):
            if used not in PLACEHOLDERS["field"]:
                allowed = ", ".join(sorted(PLACEHOLDERS["field"]))
                problems.append(
                    Problem(
                        str(path),
                        row.line,
                        "prompt",
                        f"unknown placeholder {{{used}}} (allowed: {allowed})",
                    )
                )
        meta = {"cer": row.cer} if row.cer else {}
        fields[question_type] = {"label": question_type, "prompt": row.prompt, "meta": meta}
    if problems:
        raise PromptError(problems)
    return {
        "version": 1,
        "name": Path(path).stem,
        "language": "ru",
        "system": None,
        "defaults": defaults.model_dump(),
        "doc_types": doc_types,
    }


def read_v01_collection(path: Path) -> PromptCollection:
    """Read a v0.1 prompt CSV as is (prompt lookup by ``"<doc_class> <question_type>"``)."""
    return PromptCollection(CollectionModel.model_validate(v01_csv_to_native(path)), str(path))


def shipped_collections() -> list[str]:
    """Names of the collections shipped with vlmhb."""
    folder = resources.files("vlmhb.plan") / "prompt_collections"
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def _shipped(name: str) -> PromptCollection:
    resource = resources.files("vlmhb.plan") / "prompt_collections" / f"{name}.json"
    with resources.as_file(resource) as path:
        return read_native_collection(path)


def load_prompts(spec: str | None, base: Path | None = None) -> PromptCollection:
    """``None``/``"default"``/a shipped name, a native ``.json`` path, or a v0.1 ``.csv`` path."""
    if spec is None or spec == "" or spec == "default":
        return _shipped("default")
    if "/" not in spec and "\\" not in spec and not spec.endswith((".json", ".csv")):
        if spec in shipped_collections():
            return _shipped(spec)
        known = ", ".join(shipped_collections())
        raise PromptError(
            [
                Problem(
                    spec, None, None, f"no shipped prompt collection of that name; known: {known}"
                )
            ]
        )
    path = Path(spec).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if path.suffix.lower() == ".csv":
        return read_v01_collection(path)
    if path.suffix.lower() == ".json":
        return read_native_collection(path)
    raise PromptError(
        [
            Problem(
                str(path), None, None, "expected a .json (native) or .csv (v0.1) prompt collection"
            )
        ]
    )
