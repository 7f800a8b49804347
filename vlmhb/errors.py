"""The exception tree: one root, subclasses that carry context and build their message.

Standard library only, so both sides of a process boundary can raise them. The CLI prints
a ``VlmhbError`` as one line (no traceback) and exits 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class VlmhbError(Exception):
    """Root of every error vlmhb reports to a user."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file: ``file:row:column: message``."""

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f":{self.row}"
        if self.column:
            where += f":{self.column}"
        return f"{where}: {self.message}"


class InputError(VlmhbError):
    """A user file (plan, dataset, prompt collection) is invalid; lists every problem."""

    def __init__(self, problems: Sequence[Problem], what: str = "input") -> None:
        self.problems = list(problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"invalid {what} ({len(self.problems)} problem(s)):\n{lines}")


class PlanError(InputError):
    """The plan file is invalid."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems, what="plan")


class DatasetError(InputError):
    """A dataset folder or annotation file is invalid."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems, what="dataset")


class PromptError(InputError):
    """A prompt collection is invalid."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems, what="prompt collection")


class EnvError(VlmhbError):
    """An environment cannot be locked, built or found."""

    def __init__(self, env: str, message: str, stderr_tail: str = "") -> None:
        self.env = env
        self.stderr_tail = stderr_tail
        text = f"env {env!r}: {message}"
        if stderr_tail:
            text += f"\n{stderr_tail}"
        super().__init__(text)


class WorkerError(VlmhbError):
    """The worker process could not start, or died more often than allowed."""

    def __init__(self, run: str, message: str) -> None:
        self.run = run
        super().__init__(f"run {run}: {message}")


class RunDirError(VlmhbError):
    """A run folder is missing something a stage needs."""
