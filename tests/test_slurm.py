"""``--executor slurm`` against a real single-node Slurm (slurmctld + slurmd + munged).

``scripts/slurm-local.sh`` starts a private instance (own config folder and ports) whose node
offers two stand-in GPUs (``gres.conf`` points at /dev/tty0-1, a test double for GPUs that
cannot exist here): Slurm schedules ``--gpus-per-node`` for real and hands each job
``CUDA_VISIBLE_DEVICES``. Skipped only when the Debian packages cannot be installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, make_dataset, vlmhb_cmd

from vlmhb import api
from vlmhb.executors.slurm import SLURM_LOG, SlurmOptions
from vlmhb.run.folder import iter_jsonl

pytestmark = pytest.mark.slow
SCRIPT = REPO / "scripts" / "slurm-local.sh"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running single-node Slurm; yields the environment its clients need."""
    if shutil.which("slurmctld") is None:
        install = subprocess.run(
            [str(SCRIPT), "install"], capture_output=True, text=True, check=False
        )
        if install.returncode != 0 or shutil.which("slurmctld") is None:
            pytest.skip(f"slurm-wlm/munge cannot be installed here: {install.stderr[-300:]}")
    folder = tmp_path_factory.mktemp("slurm")
    env = dict(
        os.environ,
        VLMHB_SLURM_DIR=str(folder),
        VLMHB_SLURMCTLD_PORT="16817",
        VLMHB_SLURMD_PORT="16818",
    )
    started = subprocess.run(
        [str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 0, started.stdout + started.stderr
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(folder / "etc" / "slurm.conf")
    try:
        yield {"SLURM_CONF": os.environ["SLURM_CONF"]}
    finally:
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60)


def slurm_log(runs: Path) -> list[dict]:
    return list(iter_jsonl(runs / SLURM_LOG))


def test_job_array_gpus_resubmit_and_resume(
    slurm: dict[str, str], tmp_path: Path, write_plan
) -> None:
    make_dataset(tmp_path / "ds", n_docs=2, fields=("surname", "name"))
    plan = write_plan(
        [
            {
                "dataset": "ds",
                "backend": "echo",
                "model": f"m{i}",
                "stages": "infer",
                "gpus": 1,
                "load": {"delay_s": 0.4},
            }
            for i in range(4)
        ]
    )
    runs = tmp_path / "runs"
    options = SlurmOptions(time="5", cpus_per_task=1, poll_s=1.0)
    result = api.run_plan(plan, runs_dir=runs, executor="slurm", slurm=options)
    assert [o.status for o in result.runs] == ["done"] * 4, [o.error for o in result.runs]
    entries = slurm_log(runs)
    assert len(entries) == 4 and all(e["slurm_job_id"] for e in entries)
    # Slurm gave each element one of the node's two GPUs
    assert {e["cuda_visible_devices"] for e in entries} <= {"0", "1"}
    assert len({e["cuda_visible_devices"] for e in entries}) == 2
    records = [json.loads((o.prepared.run_dir / "run.json").read_text()) for o in result.runs]
    events = sorted(
        [(r["started_at"], 1) for r in records] + [(r["finished_at"], -1) for r in records]
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= 2  # two stand-in GPUs: never more than two runs at once
    for outcome in result.runs:
        assert len(list(iter_jsonl(outcome.prepared.run_dir / "answers.jsonl"))) == 4

    # Re-submitting a finished plan submits nothing.
    again = api.run_plan(plan, runs_dir=runs, executor="slurm", slurm=options)
    assert [o.status for o in again.runs] == ["done"] * 4
    assert len(slurm_log(runs)) == 4

    # An unfinished run is submitted again (through the CLI) and resumes from its answers.
    run_dir = result.runs[2].prepared.run_dir
    record = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    answers = (run_dir / "answers.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "answers.jsonl").write_text("".join(answers[:1]))
    proc = subprocess.run(
        vlmhb_cmd(
            "run", str(plan), "--runs-dir", str(runs), "--executor", "slurm", "--time", "0:05:00"
        ),
        cwd=REPO,
        env=dict(os.environ, **slurm),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "already done" in proc.stderr
    entries = slurm_log(runs)
    assert len(entries) == 5 and entries[-1]["run_id"] == run_dir.name
    resumed = list(iter_jsonl(run_dir / "answers.jsonl"))
    assert len(resumed) == 4 and len({a["id"] for a in resumed}) == 4
    assert json.loads((run_dir / "run.json").read_text())["counts"]["answered_now"] == 3
