"""What a prompt search compares: candidates (a collection and a system prompt) for one model.

A search is one model on one dataset under fixed settings, asked with several candidates.
It comes from command-line options (collections × system prompts) or from a plan whose rows
share dataset, backend, model and mode and differ in ``prompts``/``system_prompt`` (a v0.1
``user_config_prompt_eval.csv`` reads this way). The default collection is always a candidate:
every difference is also reported against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vlmhb.errors import PlanError, Problem
from vlmhb.plan.plan_csv import EvalRun, load_plan

DEFAULT_NAME = "default"
SEARCH_STAGES = ("infer", "eval")


@dataclass(frozen=True)
class Candidate:
    """One way of asking: a prompt collection spec and an optional system prompt override."""

    name: str
    prompts: str = DEFAULT_NAME
    system_prompt: str | None = None

    @property
    def is_default(self) -> bool:
        """Whether this is the default collection with its own system prompt."""
        return self.prompts in {"", DEFAULT_NAME} and not self.system_prompt


@dataclass(frozen=True)
class SearchSpec:
    """A whole search: one run per candidate, how to score and how to split."""

    runs: tuple[tuple[Candidate, EvalRun], ...]
    metric: str = "exact"
    confirm: float = 0.0
    seed: int = 0
    n_boot: int = 2000
    source: str = "command line"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def default(self) -> Candidate:
        """The baseline candidate (the default collection)."""
        return next(c for c, _ in self.runs if c.is_default)

    @property
    def mode(self) -> str:
        """The request mode every candidate uses."""
        return self.runs[0][1].mode


def candidate_name(prompts: str, system_prompt: str | None, index: int) -> str:
    """A readable name: the collection's file stem, and which system prompt."""
    stem = Path(prompts).stem if prompts not in {"", DEFAULT_NAME} else DEFAULT_NAME
    return f"{stem} + system {index}" if system_prompt else stem


def build_spec(
    base: EvalRun,
    candidates: Sequence[Candidate],
    *,
    metric: str = "exact",
    confirm: float = 0.0,
    seed: int = 0,
    n_boot: int = 2000,
    source: str = "command line",
) -> SearchSpec:
    """One run per candidate from ``base`` (the default collection added when missing)."""
    chosen = list(candidates)
    if not any(c.is_default for c in chosen):
        chosen.insert(0, Candidate(DEFAULT_NAME))
    _check_unique([c.name for c in chosen], source, "candidate")
    runs = tuple(
        (
            c,
            base.model_copy(
                update={
                    "prompts": None if c.prompts == DEFAULT_NAME else c.prompts,
                    "system_prompt": c.system_prompt,
                    "name": f"{base.model} · {c.name}",
                    "stages": SEARCH_STAGES,
                }
            ),
        )
        for c in chosen
    )
    return SearchSpec(runs, metric, confirm, seed, n_boot, source)


_SHARED = ("dataset", "backend", "model", "mode")


def spec_from_plan(
    plan: Path | str,
    *,
    metric: str = "exact",
    confirm: float = 0.0,
    seed: int = 0,
    n_boot: int = 2000,
    isolation: str | None = None,
) -> SearchSpec:
    """A search from a plan: each row a candidate; rows share dataset, backend, model, mode."""
    rows = load_plan(plan, isolation=isolation)  # type: ignore[arg-type]
    name = str(plan)
    first = rows[0]
    problems = [
        Problem(
            name,
            int(row.source.rsplit(":", 1)[1]),
            column,
            f"a prompt search asks one {column}: {getattr(row, column)!r} differs from "
            f"the first row's {getattr(first, column)!r}",
        )
        for row in rows[1:]
        for column in _SHARED
        if getattr(row, column) != getattr(first, column)
    ]
    if problems:
        raise PlanError(problems)
    candidates: list[tuple[Candidate, EvalRun]] = []
    for index, row in enumerate(rows, start=1):
        prompts = row.prompts or DEFAULT_NAME
        label = row.name or candidate_name(prompts, row.system_prompt, index)
        candidate = Candidate(label, prompts, row.system_prompt)
        candidates.append((candidate, row.model_copy(update={"stages": SEARCH_STAGES})))
    if not any(c.is_default for c, _ in candidates):
        # The baseline asks what every row asks together (a filter empty in one row means all).
        doc_types = () if any(not r.doc_types for r in rows) else _union(r.doc_types for r in rows)
        fields = () if any(not r.fields for r in rows) else _union(r.fields for r in rows)
        default_run = first.model_copy(
            update={
                "prompts": None,
                "system_prompt": None,
                "name": None,
                "doc_types": doc_types,
                "fields": fields,
                "stages": SEARCH_STAGES,
            }
        )
        candidates.insert(0, (Candidate(DEFAULT_NAME), default_run))
    _check_unique([c.name for c, _ in candidates], name, "name")
    return SearchSpec(tuple(candidates), metric, confirm, seed, n_boot, source=name)


def _check_unique(names: list[str], source: str, column: str) -> None:
    """Candidate names must tell the candidates apart (they key the results)."""
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PlanError(
            [Problem(source, None, column, f"duplicate candidate name {n!r}") for n in duplicates]
        )


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        seen.update(dict.fromkeys(group))
    return tuple(seen)


def parse_candidate(text: str) -> tuple[str | None, str]:
    """``NAME=SPEC`` or ``SPEC`` (a shipped name, a ``.json`` or a v0.1 ``.csv`` path)."""
    name, sep, spec = text.partition("=")
    if sep and name.strip() and not any(ch in name for ch in "/\\"):
        return name.strip(), spec.strip()
    return None, text.strip()


def spec_from_options(
    *,
    dataset: str,
    backend: str,
    model: str,
    collections: Sequence[str],
    systems: Sequence[str] = (),
    metric: str = "exact",
    confirm: float = 0.0,
    seed: int = 0,
    n_boot: int = 2000,
    base_dir: Path = Path("."),
    **run_options: object,
) -> SearchSpec:
    """A search from options: each collection, asked with each system prompt (or its own).

    ``run_options`` are further ``EvalRun`` columns (mode, doc_types, fields, limit, load,
    generation, max_new_tokens, batch_size, isolation, env).
    """
    from pydantic import ValidationError

    source = "command line"
    try:
        base = EvalRun(
            dataset=dataset,
            backend=backend,  # type: ignore[arg-type]
            model=model,
            base_dir=base_dir,
            source=source,
            **{k: v for k, v in run_options.items() if v is not None},  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        raise PlanError(
            [
                Problem(source, None, ".".join(map(str, e["loc"])) or None, e["msg"])
                for e in exc.errors(include_url=False)
            ]
        ) from exc
    if not collections:
        raise PlanError([Problem(source, None, "candidate", "give at least one candidate")])
    candidates = []
    for text in collections:
        name, spec = parse_candidate(text)
        label = name or candidate_name(spec, None, 0)
        if not systems:
            candidates.append(Candidate(label, spec))
        for index, system in enumerate(systems, start=1):
            candidates.append(Candidate(f"{label} + system {index}", spec, system))
    return build_spec(
        base, candidates, metric=metric, confirm=confirm, seed=seed, n_boot=n_boot, source=source
    )
