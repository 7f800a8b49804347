"""Printing the ``--sla`` verdict of a plan's load sweeps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from vlmhb.gate.sla import SlaCondition, check_sla
from vlmhb.run.folder import RUN_JSON


def print_sla(result: Any, conditions: Sequence[SlaCondition]) -> None:
    """One line per sweep: the highest concurrency level meeting every condition."""
    records = []
    for outcome in result.runs:
        path = outcome.prepared.run_dir / RUN_JSON
        if path.is_file():
            records.append(json.loads(path.read_text("utf-8")))
    verdicts = check_sla(records, conditions)
    spec = ", ".join(str(c) for c in conditions)
    if not verdicts:
        click.echo(f"sla ({spec}): no streamed run to judge")
    for verdict in verdicts:
        click.echo(f"sla ({spec}) {verdict.describe()}")
