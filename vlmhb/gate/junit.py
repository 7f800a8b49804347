"""JUnit XML for CI systems: a test case per run (a failed run fails) and per gate check."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vlmhb.gate.thresholds import GateResult

if TYPE_CHECKING:
    from vlmhb.run.execute import RunOutcome


def write_junit(outcomes: Sequence[RunOutcome], gate: GateResult | None, path: Path) -> Path:
    """JUnit XML: a testcase per run (failed runs fail) and per threshold check."""
    root = ET.Element("testsuites", name="vlmhb")
    runs = ET.SubElement(root, "testsuite", name="vlmhb.runs")
    failures = 0
    for outcome in outcomes:
        prepared = outcome.prepared
        case = ET.SubElement(
            runs,
            "testcase",
            classname="vlmhb.runs",
            name=f"{prepared.run.label} ({prepared.run_id})",
            time=f"{outcome.wall_s:.3f}",
        )
        summary = ", ".join(f"{k}={v:.4g}" for k, v in sorted(outcome.overall.items()))
        if not outcome.ok:
            failures += 1
            failure = ET.SubElement(
                case, "failure", message=f"run {outcome.status}", type="RunFailed"
            )
            failure.text = outcome.error or ""
        ET.SubElement(case, "system-out").text = f"{prepared.run_dir}\n{summary}"
    runs.set("tests", str(len(outcomes)))
    runs.set("failures", str(failures))
    total_tests, total_failures = len(outcomes), failures
    if gate is not None:
        suite = ET.SubElement(root, "testsuite", name="vlmhb.gate")
        for check in gate.checks:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"vlmhb.gate.{check.label}",
                name=f"{check.threshold.spec} [{check.run_id}]",
            )
            if not check.passed:
                failure = ET.SubElement(
                    case, "failure", message=check.message, type="ThresholdMissed"
                )
                failure.text = check.message
            ET.SubElement(case, "system-out").text = check.message
        suite.set("tests", str(len(gate.checks)))
        suite.set("failures", str(len(gate.missed)))
        total_tests += len(gate.checks)
        total_failures += len(gate.missed)
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
