"""The one error the metrics stage reports: bad input, printed as one line, exit code 2.

The metrics stage runs in its own venv and imports nothing of the orchestrator, so it keeps
its own small exception; the orchestrator sees only the exit code and the stderr line.
"""

from __future__ import annotations


class MetricsInputError(Exception):
    """A run folder cannot be scored (missing or malformed file, unknown metric name)."""

    exit_code = 2

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(f"{where}{message}")
