"""Plans: a CSV file, one row per evaluation run, validated into frozen ``EvalRun`` objects.

Two dialects are read. The native one (``,`` separated, columns named after ``EvalRun``)
and VLMHyperBench v0.1's task CSV (``;`` separated, UTF-8 with BOM, list cells like
``['CER']``, frameworks like ``Hugging Face``), recognised from its header. Every problem in
a plan is collected and reported together as ``file:row:column: message``; nothing runs
until the whole plan is valid.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vlmhb.errors import PlanError, Problem
from vlmhb.plan.catalogue import backend_name
from vlmhb.plan.validate import row_problems

Backend = Literal[
    "hf", "vllm", "sglang", "openai", "tesseract", "echo", "vllm-server", "sglang-server"
]
BACKENDS: tuple[str, ...] = get_args(Backend)
Mode = Literal["field", "document", "text"]
Stage = Literal["infer", "eval", "report"]
Isolation = Literal["venv", "local"]

ALL_STAGES: tuple[Stage, ...] = ("infer", "eval", "report")
CPU_BACKENDS = frozenset({"tesseract", "echo", "openai"})
V01_HEADER = ("dataset", "task", "framework", "model_name")
LIST_COLUMNS = ("metrics", "stages", "doc_types", "fields", "concurrency")
JSON_COLUMNS = ("load", "generation")


class EvalRun(BaseModel):
    """One evaluation run: what to read, which model answers, how it is asked and scored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(min_length=1)
    backend: Backend
    model: str = Field(min_length=1)
    name: str | None = None
    prompts: str | None = None
    system_prompt: str | None = None
    mode: Mode = "field"
    metrics: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = ALL_STAGES
    doc_types: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    isolation: Isolation | None = None
    env: str | None = None
    # A Hugging Face revision (commit, branch or tag) to load a hub model at; the run id
    # and run.json carry the commit it resolves to.
    revision: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
    batch_size: int | None = Field(default=None, ge=1, le=4096)  # None: the backend's default
    max_new_tokens: int = Field(default=256, ge=1)
    gpus: int | None = Field(default=None, ge=0)
    timeout_s: float = Field(default=600.0, gt=0)
    limit: int | None = Field(default=None, ge=1)
    concurrency: tuple[Annotated[int, Field(ge=1)], ...] = ()  # several: a load sweep
    load: dict[str, Any] = Field(default_factory=dict)
    generation: dict[str, Any] = Field(default_factory=dict)
    redact: bool | None = None  # report without document values/images (None: auto)
    # Where relative paths resolve; the plan file's folder. Not a CSV column.
    base_dir: Path = Path(".")
    source: str = ""

    @field_validator("metrics", "doc_types", "fields")
    @classmethod
    def _strip_items(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(item.strip() for item in value if item.strip())

    @property
    def gpu_count(self) -> int:
        """GPUs this run asks for: the plan's value, else 1 for GPU backends, 0 otherwise."""
        if self.gpus is not None:
            return self.gpus
        return 0 if self.backend in CPU_BACKENDS or self.load.get("device") == "cpu" else 1

    @property
    def label(self) -> str:
        """A short human name for tables and progress lines."""
        return self.name or f"{self.model} [{self.backend}]"


def parse_list_cell(text: str) -> list[str]:
    """A list cell: ``['CER', 'WER']`` (v0.1), ``CER,WER`` or ``CER;WER``; empty = []."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"malformed list cell {text!r}") from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"list cell must hold strings: {text!r}")
        return value
    separator = ";" if ";" in text else ","
    return [item.strip() for item in text.split(separator) if item.strip()]


def _read_rows(path: Path) -> tuple[list[str], list[list[str]], str]:
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig")
    first_line = text.splitlines()[0] if text else ""
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = list(reader)
    except csv.Error as exc:  # a cell over csv.field_size_limit() (128 KB), a stray NUL
        raise PlanError(
            [Problem(str(path), reader.line_num, None, f"unreadable CSV: {exc}")]
        ) from exc
    if not rows:
        return [], [], delimiter
    return [h.strip() for h in rows[0]], rows[1:], delimiter


def _is_v01(header: list[str]) -> bool:
    return all(column in header for column in V01_HEADER)


CellErrors = list[tuple[str, str]]  # (column, message) of cells that cannot be read


def _native_row(cells: dict[str, str], errors: CellErrors) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in cells.items():
        value = value.strip()
        if value == "":
            continue
        if key in LIST_COLUMNS:
            try:
                row[key] = parse_list_cell(value)
            except ValueError as exc:
                errors.append((key, str(exc)))
        elif key in JSON_COLUMNS:
            try:
                parsed = json.loads(value)
            except ValueError as exc:
                errors.append((key, f"not a JSON object: {exc}"))
                continue
            if isinstance(parsed, dict):
                row[key] = parsed
            else:
                errors.append((key, 'must be a JSON object like {"dtype": "float16"}'))
        else:
            row[key] = value
    return row


def _v01_row(cells: dict[str, str], errors: CellErrors) -> dict[str, Any]:
    framework = cells.get("framework", "").strip()
    backend = backend_name(framework)
    if backend not in BACKENDS:
        errors.append(("framework", f"unknown framework {framework!r}"))
    task = cells.get("task", "").strip() or "VQA"
    row: dict[str, Any] = {
        "dataset": f"Datasets/{task}/{cells.get('dataset', '').strip()}",
        "backend": backend,
        "model": cells.get("model_name", "").strip(),
    }
    if cells.get("prompt_collection", "").strip():
        row["prompts"] = f"PromptCollections/{task}/{cells['prompt_collection'].strip()}"
    if cells.get("system_prompt", "").strip():
        row["system_prompt"] = cells["system_prompt"].strip()
    for column, target in (
        ("metrics", "metrics"),
        ("filter_doc_class", "doc_types"),
        ("filter_question_type", "fields"),
    ):
        try:
            row[target] = parse_list_cell(cells.get(column, ""))
        except ValueError as exc:
            errors.append((column, str(exc)))
    if cells.get("only_evaluate_metrics", "").strip().lower() == "true":
        row["stages"] = ["eval", "report"]
    return row


def _check_path(value: str, base: Path, what: str) -> str | None:
    """Why a dataset/prompt path is unusable, or None. ``synth:``/``default`` are built in."""
    if value.startswith("synth:") or value in {"default", "default-ru"}:
        return None
    candidate = Path(value)
    if candidate.is_absolute():
        resolved = candidate.resolve()
    else:
        resolved = (base / candidate).resolve()
        if not resolved.is_relative_to(base.resolve()):
            return f"{what} path {value!r} escapes the plan's folder {base}"
    if not resolved.exists():
        return f"{what} {value!r} does not exist (looked at {resolved})"
    return None


def load_plan(path: Path | str, *, isolation: Isolation | None = None) -> list[EvalRun]:
    """Read and validate a plan file; raise ``PlanError`` listing every problem."""
    runs, problems = read_plan(path, isolation=isolation)
    if problems:
        raise PlanError(problems)
    return runs


def read_plan(
    path: Path | str, *, isolation: Isolation | None = None
) -> tuple[list[EvalRun], list[Problem]]:
    """The valid rows of a plan and the problems of the others (``PlanError`` if unreadable).

    The caller checks the valid rows further (their data) and reports everything together.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise PlanError([Problem(name, None, None, "plan file not found")])
    try:
        header, rows, _ = _read_rows(path)
    except UnicodeDecodeError as exc:
        raise PlanError([Problem(name, None, None, f"not UTF-8 text: {exc}")]) from exc
    if not header:
        raise PlanError([Problem(name, 1, None, "empty plan: no header row")])
    v01 = _is_v01(header)
    problems: list[Problem] = []
    required = V01_HEADER if v01 else ("dataset", "backend", "model")
    known = set(EvalRun.model_fields) - {"base_dir", "source"}
    for column in required:
        if column not in header:
            problems.append(Problem(name, 1, column, "required column is missing"))
    for number, column in enumerate(header):
        if column and column in header[:number]:
            problems.append(Problem(name, 1, column, "duplicated column"))
    if not v01:
        for column in header:
            if column and column not in known:
                problems.append(Problem(name, 1, column, f"unknown column; known: {sorted(known)}"))
    if problems:
        raise PlanError(problems)
    base = path.parent.resolve()
    runs = list(_parse_rows(name, header, rows, base, v01, isolation, problems))
    if not runs and not problems:
        problems.append(Problem(name, None, None, "the plan has no runs"))
    return runs, problems


def _parse_rows(
    name: str,
    header: list[str],
    rows: Iterable[list[str]],
    base: Path,
    v01: bool,
    isolation: Isolation | None,
    problems: list[Problem],
) -> Iterable[EvalRun]:
    for index, cells_list in enumerate(rows, start=2):
        if not any(cell.strip() for cell in cells_list):
            continue
        if len(cells_list) > len(header):
            problems.append(
                Problem(name, index, None, f"{len(cells_list)} cells for {len(header)} columns")
            )
            continue
        cells = dict(zip(header, cells_list, strict=False))
        cell_errors: CellErrors = []
        row = _v01_row(cells, cell_errors) if v01 else _native_row(cells, cell_errors)
        problems.extend(Problem(name, index, column, text) for column, text in cell_errors)
        if isolation and "isolation" not in row:
            row["isolation"] = isolation
        try:
            run = EvalRun(**row, base_dir=base, source=f"{name}:{index}")
        except ValidationError as exc:
            for error in exc.errors():
                if cell_errors and error["type"] == "missing":
                    continue  # already reported as the unreadable cell it comes from
                column = str(error["loc"][0]) if error["loc"] else None
                problems.append(Problem(name, index, column, error["msg"]))
            continue
        if cell_errors:
            continue
        row_ok = True
        for column, text in row_problems(run):  # model x backend, metrics, env, options
            problems.append(
                Problem(name, index, _v01_source_column(column) if v01 else column, text)
            )
            row_ok = False
        for column, what in (("dataset", "dataset"), ("prompts", "prompt collection")):
            value = getattr(run, column)
            reason = _check_path(value, base, what) if value else None
            if reason:
                source_column = _v01_source_column(column) if v01 else column
                problems.append(Problem(name, index, source_column, reason))
                row_ok = False
        if row_ok:
            yield run


def _v01_source_column(column: str) -> str:
    return {"prompts": "prompt_collection", "model": "model_name"}.get(column, column)
