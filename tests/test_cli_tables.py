"""What the CLI prints about runs: ``vlmhb status`` stays light, the summary splits time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vlmhb.cli.tables import describe_timings


def test_status_imports_only_what_it_prints(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(
        json.dumps({"run_id": "r1", "model": "m", "backend": "echo", "status": "done",
                    "counts": {"answered": 3, "samples": 3, "errors": 0}})
    )  # fmt: skip
    code = (
        "import sys; from vlmhb.cli.main import main\n"
        "try:\n    main(['status', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('vlmhb.api', 'vlmhb.run.execute', 'pydantic', 'pandas', 'numpy')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "runs")],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert "r1" in out and "done" in out
    assert "HEAVY []" in out


def test_timings_line_shows_each_phase_and_the_generation_rate() -> None:
    record = {
        "timings": {"env_prepare_s": 0.01, "worker_start_s": 15.2, "load_s": 14.9,
                    "ttfa_s": 0.41, "generation_s": 3.3, "teardown_s": 2.6, "wall_s": 21.2},
        "resources": {"samples_per_s": 60.61, "output_tokens_per_s": 1939.4},
    }  # fmt: skip
    line = describe_timings(record)
    assert line == (
        "env 0.01 s | start+load 15.20 s | first answer 0.41 s | generation 3.30 s "
        "(60.6 samples/s, 1939 tok/s) | teardown 2.60 s"
    )
    assert describe_timings({}) == ""
