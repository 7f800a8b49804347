"""Checks of one plan row beyond its types: model × backend, metrics, env, backend options.

Everything here is known from the row alone (no dataset is read), so ``load_plan`` reports
it with the row's other problems as ``file:row:column``. Dataset-level checks (bad
annotation lines, empty datasets, filters that select nothing) come later, in
``vlmhb.run.preflight``, still before anything is written.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from vlmhb.plan.backend_options import option_problems
from vlmhb.plan.catalogue import CATALOGUE, find_spec, resolve_model
from vlmhb.plan.metric_names import METRIC_NAMES, unknown_metrics

if TYPE_CHECKING:
    from vlmhb.plan.plan_csv import EvalRun

_ENV_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def row_problems(run: EvalRun) -> list[tuple[str, str]]:
    """``(column, message)`` for each problem of a row that parsed into an ``EvalRun``."""
    problems: list[tuple[str, str]] = []
    model = model_problem(run.model, run.backend)
    if model:
        problems.append(("model", model))
    unknown = unknown_metrics(run.metrics)
    if unknown:
        known = ", ".join(sorted(METRIC_NAMES))
        problems.append(("metrics", f"unknown metric(s) {', '.join(unknown)} (known: {known})"))
    if run.env is not None:
        env = env_problem(run.env)
        if env:
            problems.append(("env", env))
    problems.extend(option_problems(run.backend, run.load, run.generation))
    return problems


def model_problem(model: str, backend: str) -> str | None:
    """Why ``model`` cannot run on ``backend``, or None.

    ``echo`` answers with the prompt whatever the name; ``openai`` sends the name to a
    server (any name, unless the catalogue knows it for other backends only); ``tesseract``
    runs only its catalogue entries (no weights to load); the model backends take a catalogue
    key, a Hugging Face id or an existing local folder.
    """
    if backend == "echo":
        return None
    spec = find_spec(model)
    if backend == "tesseract" and spec is None:
        known = ", ".join(s.key for s in CATALOGUE if "tesseract" in s.backends)
        return f"unknown model {model!r} for backend 'tesseract' (known: {known})"
    try:
        resolve_model(model, backend)
    except (LookupError, ValueError) as exc:
        return str(exc).strip("'\"")
    return None


def env_problem(env: str) -> str | None:
    """Why ``env`` is not a usable recipe name (a path, an unknown name), or None."""
    from vlmhb.envs.recipe import known_envs

    if not _ENV_NAME.match(env):
        return (
            f"env {env!r} is not a recipe name (lower-case letters, digits, '.', '_', '-'; "
            "never a path)"
        )
    known = known_envs()
    if known and env not in known:
        return f"unknown env {env!r} (known: {', '.join(known)})"
    return None
