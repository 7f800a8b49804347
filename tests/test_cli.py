"""The ``vlmhb`` command: wiring, lazy sub-groups, exit codes, one-line errors.

The commands run in-process through click's runner (real plans, real echo workers), except
the help check, which needs a fresh interpreter to see what ``--help`` imports.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_dataset, table_rows

from vlmhb import __version__
from vlmhb.cli.common import EXIT_GATE, EXIT_RUNS_FAILED, EXIT_USAGE
from vlmhb.cli.main import LAZY_COMMANDS, main
from vlmhb.run.files import METRICS_DIR, METRICS_JSON


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def echo_plan(tmp_path: Path, write_plan) -> Path:
    make_dataset(tmp_path / "ds", n_docs=3, fields=("surname", "name"))
    return write_plan(
        [
            {
                "name": "echo",
                "dataset": "ds",
                "backend": "echo",
                "model": "echo-m",
                "stages": "infer,eval",
                "load": {"answer_field": True},
            }
        ]
    )


def test_help_lists_every_command_without_importing_the_lazy_ones() -> None:
    probe = (
        "import sys\n"
        "from vlmhb.cli.main import LAZY_COMMANDS, main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0\n"
        "heavy = ['pandas', 'pydantic', 'rich', 'vlmhb.api']\n"
        "heavy += [module for module, _, _ in LAZY_COMMANDS.values()]\n"
        "print('LOADED', sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout.splitlines()[-1]
    commands = done.stdout.split("Commands:")[1].splitlines()
    listed = {match.group(1) for line in commands if (match := re.match(r"^  (\S+)  ", line))}
    assert listed == {"compare", "eval", "infer", "report", "run", "status", *LAZY_COMMANDS}


def test_version() -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and out.strip() == f"vlmhb, version {__version__}"


def test_a_bad_plan_names_file_row_and_column_without_traceback(tmp_path: Path, write_plan) -> None:
    plan = write_plan([{"dataset": "nowhere", "backend": "echo", "model": "m"}])
    code, _, err = invoke("run", str(plan), "--runs-dir", str(tmp_path / "runs"))
    assert code == EXIT_USAGE
    assert err.strip().splitlines() == [
        "error: invalid plan (1 problem(s)):",
        f"{plan}:2:dataset: dataset 'nowhere' does not exist (looked at {tmp_path / 'nowhere'})",
    ]
    assert not (tmp_path / "runs").exists()


def test_run_then_status_eval_and_report(echo_plan: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    code, out, err = invoke("run", str(echo_plan), "--runs-dir", str(runs))
    assert code == 0, err
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    code, out, _ = invoke("status", str(runs))
    (row,) = table_rows(out)
    assert (row["run id"], row["status"], row["answered"], row["samples"]) == (
        run_dir.name,
        "done",
        "6",
        "6",
    )
    assert (row["errors"], row["metrics"]) == ("0", "yes")

    (run_dir / METRICS_DIR / METRICS_JSON).unlink()
    code, out, _ = invoke("eval", str(run_dir), "--metrics", "BLEU")
    assert code == 0 and out.strip() == f"{run_dir}: scored 6 samples"
    summary = json.loads((run_dir / METRICS_DIR / METRICS_JSON).read_text("utf-8"))
    assert "bleu" in summary["metrics"] and summary["higher_is_better"]["bleu"] is True

    code, out, _ = invoke("report", str(run_dir), "-o", str(tmp_path / "r" / "page.html"))
    page, summary = tmp_path / "r" / "page.html", tmp_path / "r" / "summary.md"
    assert code == 0 and out.startswith(f"wrote {page} and {summary}"), out
    assert (tmp_path / "r" / "summary.md").is_file()


def test_failed_runs_exit_1(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=1)
    plan = write_plan(
        [{"dataset": "ds", "backend": "echo", "model": "m", "load": {"fail_load": "broken"}}]
    )
    code, out, _ = invoke("run", str(plan), "--runs-dir", str(tmp_path / "runs"))
    assert code == EXIT_RUNS_FAILED
    assert "failed" in [row.get("status") for row in table_rows(out)]


def test_a_missed_gate_exits_3_and_writes_junit(echo_plan: Path, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    code, out, _ = invoke(
        "run",
        str(echo_plan),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--fail-under",
        "exact_match=0.5",  # the echo answers "surname"/"name": exact match 0
        "--fail-under",
        "cer_micro=5",  # '=' means at most for CER (the direction metrics.json records)
        "--junit",
        str(junit),
    )
    assert code == EXIT_GATE
    gate_lines = [line for line in out.splitlines() if line.startswith("gate ")]
    assert gate_lines[0].startswith("gate FAIL: exact_match=0.5 [echo] exact_match = 0 (")
    assert gate_lines[0].endswith("misses >= 0.5")
    assert gate_lines[1].startswith("gate pass: cer_micro=5 [echo] cer_micro = ")
    assert gate_lines[1].endswith("meets <= 5")
    cases = ET.parse(junit).getroot().iter("testcase")
    failures = [case.get("name") for case in cases if case.find("failure") is not None]
    assert len(failures) == 1 and "exact_match=0.5" in str(failures[0])


def test_a_bad_threshold_is_a_usage_error_before_anything_runs(
    echo_plan: Path, tmp_path: Path
) -> None:
    code, _, err = invoke(
        "run", str(echo_plan), "--runs-dir", str(tmp_path / "runs"), "--fail-under", "exact>"
    )
    assert code == EXIT_USAGE and err.startswith("error: --fail-under 'exact>'")
    assert not (tmp_path / "runs").exists()


def test_compare_of_a_run_with_itself_flags_nothing(echo_plan: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert invoke("run", str(echo_plan), "--runs-dir", str(runs))[0] == 0
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    code, out, _ = invoke(
        "compare", str(run_dir), str(run_dir), "--fail-on-regression", "--n-boot", "100"
    )
    assert code == 0 and "REGRESSION" not in out
