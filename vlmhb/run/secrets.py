"""Keys never reach the disk: the values of the variables a plan row hands its worker are masked.

A row names the host variables its worker may see (``load.pass_env``, and the API key's
``load.api_key_env``, which is passed on its own). A server may echo a key back inside a
completion or an error message; every answer and error is masked with these values before
it is written, so ``answers.jsonl``, ``answers.csv``, ``run.json`` and the report never
hold one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vlmhb.run.folder import AnswerLog

MASK = "***"
MIN_SECRET_LEN = 6  # shorter values (a flag like "1") would mask ordinary text


def passed_variables(load: Mapping[str, Any]) -> tuple[str, ...]:
    """The host variables a row's worker may see: ``pass_env`` plus ``api_key_env``."""
    names = [str(name) for name in load.get("pass_env") or ()]
    key_env = load.get("api_key_env")
    if key_env and str(key_env) not in names:
        names.append(str(key_env))
    return tuple(names)


def secret_values(load: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> list[str]:
    """The values of those variables in ``environ``, longest first (so none is half-masked)."""
    values = {environ.get(name, "") for name in passed_variables(load)}
    return sorted((v for v in values if len(v) >= MIN_SECRET_LEN), key=len, reverse=True)


def mask(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class MaskedAnswerLog(AnswerLog):
    """An ``AnswerLog`` that masks secrets in each answer, error and prompt before writing."""

    def __init__(self, path: Path, secrets: list[str]) -> None:
        super().__init__(path)
        self.secrets = secrets

    def append(self, answer: dict[str, Any]) -> bool:
        """Mask, then append (see ``AnswerLog.append``)."""
        if self.secrets:
            for key in ("answer", "error", "prompt"):
                if isinstance(answer.get(key), str):
                    answer[key] = mask(answer[key], self.secrets)
        return super().append(answer)
