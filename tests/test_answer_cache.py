"""The answer cache with real runs: echo workers, real SQLite, concurrent runs, ``kill -9``."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO, make_dataset, vlmhb_cmd

from vlmhb import api
from vlmhb.run.answer_cache import (
    CACHE_FILE,
    AnswerCache,
    ImageHashes,
    request_key,
    settings_identity,
)
from vlmhb.run.dispatch import Sample
from vlmhb.run.folder import iter_jsonl

FIELDS = ("surname", "name", "birth_date")
ECHO = {"dataset": "ds", "backend": "echo", "model": "m", "stages": "infer"}


def _run(plan: Path, runs: Path) -> api.RunOutcome:
    (outcome,) = api.run_plan(plan, runs_dir=runs, isolation="local", progress=False).runs
    assert outcome.status == "done", outcome.error
    return outcome


def _answers(outcome: api.RunOutcome) -> dict[str, dict]:
    return {a["id"]: a for a in iter_jsonl(outcome.prepared.run_dir / "answers.jsonl")}


def _rows(folder: Path) -> int:
    with sqlite3.connect(folder / CACHE_FILE) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # The file exists a moment before the run creates its table.
        named = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'answers'"
        if not db.execute(named).fetchone()[0]:
            return 0
        return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])


def test_two_rows_sharing_prompts_ask_only_what_is_new(
    tmp_path: Path, write_plan, answer_cache: Path
) -> None:
    make_dataset(tmp_path / "ds", n_docs=4, fields=FIELDS)
    first = _run(write_plan([{**ECHO, "fields": "surname,name"}], "a.csv"), tmp_path / "runs")
    assert first.counts["reused"] == 0 and first.counts["answered_now"] == 8
    # Another row (another run id) asking all three fields: 8 requests were asked already.
    second = _run(write_plan([ECHO], "b.csv"), tmp_path / "runs")
    assert first.prepared.run_id != second.prepared.run_id
    assert second.counts["reused"] == 8 and second.counts["answered_now"] == 4
    old, new = _answers(first), _answers(second)
    assert all(new[i]["answer"] == old[i]["answer"] and new[i]["cached"] for i in old)
    assert not any(new[i].get("cached") for i in set(new) - set(old))
    record = json.loads((second.prepared.run_dir / "run.json").read_text("utf-8"))
    assert record["counts"]["reused"] == 8
    assert _rows(answer_cache) == 12


def test_differing_settings_never_share_answers(
    tmp_path: Path, write_plan, answer_cache: Path
) -> None:
    make_dataset(tmp_path / "ds", n_docs=3, fields=FIELDS)
    base = _run(write_plan([ECHO], "a.csv"), tmp_path / "runs")
    assert base.counts["reused"] == 0
    variants = [
        {"max_new_tokens": 3},  # generation settings
        {"system_prompt": "Отвечай кратко."},  # system prompt
        {"load": {"delay_s": 0}},  # load settings
        {"model": "m2"},  # model identity
        {"revision": "abc123"},  # model revision (the plan's revision column)
        {"batch_size": 2},  # batching can change what an engine answers
    ]
    for index, change in enumerate(variants):
        outcome = _run(write_plan([{**ECHO, **change}], f"v{index}.csv"), tmp_path / "runs")
        assert outcome.counts["reused"] == 0, change
    # Same images by content, other files (and another run id): a hit; changed pixels: a miss.
    make_dataset(tmp_path / "copy", n_docs=3, fields=FIELDS)
    copied = _run(write_plan([{**ECHO, "dataset": "copy", "limit": 3}], "c.csv"), tmp_path / "runs")
    assert copied.counts["reused"] == 9
    from conftest import write_png

    write_png(tmp_path / "copy" / "images" / "doc0001.png", "changed")
    changed = _run(
        write_plan([{**ECHO, "dataset": "copy", "limit": 3}], "d.csv"), tmp_path / "runs"
    )
    assert changed.counts["reused"] == 6


def test_request_key_covers_prompt_system_images_and_settings(tmp_path: Path) -> None:
    from conftest import write_png

    write_png(tmp_path / "a.png", "a")
    write_png(tmp_path / "b.png", "b")
    env = {"lock_hash": "L1", "name": "hf"}
    settings = settings_identity(backend="hf", model="m", load={}, batch_size=8, env=env)
    sample = Sample(
        "d:f", "d", "passport", "f", "field", "Фамилия?", "sys", (str(tmp_path / "a.png"),)
    )
    images = ImageHashes()
    key = request_key(settings, sample, images)
    assert key == request_key(settings, sample, ImageHashes())
    from dataclasses import replace

    others = [
        replace(sample, prompt="Имя?"),
        replace(sample, system=None),
        replace(sample, images=(str(tmp_path / "b.png"),)),
        replace(sample, generation={"max_new_tokens": 5}),
    ]
    assert len({key, *(request_key(settings, s, images) for s in others)}) == 5
    other_env = settings_identity(
        backend="hf", model="m", load={}, batch_size=8, env={"lock_hash": "L2", "name": "hf"}
    )
    assert request_key(other_env, sample, images) != key
    # The worker sees the request id, document type and field too (OCR answers by field).
    assert request_key(settings, replace(sample, id="x:f"), images) != key
    assert request_key(settings, replace(sample, field="g"), images) != key
    assert request_key(settings, replace(sample, doc_type="snils"), images) != key


def test_errors_are_never_cached(tmp_path: Path, write_plan, answer_cache: Path) -> None:
    make_dataset(tmp_path / "ds", n_docs=3, fields=FIELDS)
    failing = {**ECHO, "load": {"fail_on": "doc0001:name"}}
    first = _run(write_plan([failing], "a.csv"), tmp_path / "runs")
    assert first.counts["errors"] == 1
    again = _run(write_plan([{**failing, "limit": 3}], "b.csv"), tmp_path / "runs")
    assert again.counts["reused"] == 8 and again.counts["answered_now"] == 1
    assert again.counts["errors"] == 1


def test_no_cache_flag_asks_everything_again(
    tmp_path: Path, write_plan, answer_cache: Path
) -> None:
    make_dataset(tmp_path / "ds", n_docs=2, fields=FIELDS)
    plan = write_plan([ECHO])
    _run(plan, tmp_path / "runs")
    result = subprocess.run(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(tmp_path / "fresh"), "--no-cache"),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "fresh").glob("*/run.json")]
    assert record["counts"].get("reused", 0) == 0
    assert record["counts"]["answered_now"] == 6
    printed = subprocess.run(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(tmp_path / "third")),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    assert "6 answers reused from the cache" in printed.stderr


def _start(plan: Path, runs: Path) -> subprocess.Popen:
    return subprocess.Popen(
        vlmhb_cmd("run", str(plan), "--runs-dir", str(runs)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_concurrent_runs_share_one_cache(
    tmp_path: Path, write_plan, answer_cache: Path
) -> None:
    make_dataset(tmp_path / "ds", n_docs=40, fields=FIELDS)
    slow = {**ECHO, "batch_size": 4, "load": {"delay_s": 0.02}}
    procs = [
        _start(write_plan([slow], "a.csv"), tmp_path / "runs-a"),
        _start(write_plan([{**slow, "fields": "surname,name"}], "b.csv"), tmp_path / "runs-b"),
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    spans = []
    for runs, expected in ((tmp_path / "runs-a", 120), (tmp_path / "runs-b", 80)):
        (run_dir,) = [p.parent for p in runs.glob("*/run.json")]
        counts = Counter(a["id"] for a in iter_jsonl(run_dir / "answers.jsonl"))
        assert len(counts) == expected and max(counts.values()) == 1
        record = json.loads((run_dir / "run.json").read_text("utf-8"))
        spans.append((record["started_at"], record["finished_at"]))
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]  # they did run at once
    assert _rows(answer_cache) == 120  # each request stored once, whoever answered it first
    third = _run(write_plan([{**slow, "limit": 40}], "c.csv"), tmp_path / "runs-c")
    assert third.counts["reused"] == 120 and third.counts["answered_now"] == 0


def test_kill_9_leaves_a_sound_cache_and_the_next_run_reuses_it(
    tmp_path: Path, write_plan, answer_cache: Path
) -> None:
    make_dataset(tmp_path / "ds", n_docs=60, fields=FIELDS)
    slow = {**ECHO, "batch_size": 4, "load": {"delay_s": 0.01}}
    proc = _start(write_plan([slow], "a.csv"), tmp_path / "runs")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (answer_cache / CACHE_FILE).exists() and _rows(answer_cache) >= 30:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    stored = _rows(answer_cache)
    assert 30 <= stored < 180
    # Another run (another run id) over the same requests: what was stored is not asked again.
    other = _run(write_plan([{**slow, "limit": 60}], "b.csv"), tmp_path / "other")
    assert other.counts["reused"] >= stored
    assert other.counts["reused"] + other.counts["answered_now"] == 180
    assert _rows(answer_cache) == 180
    # The killed run resumes: its own answers are kept, the rest come from the cache.
    resumed = _run(write_plan([slow], "a.csv"), tmp_path / "runs")
    assert resumed.counts["answered_now"] == 0
    counts = Counter(a["id"] for a in iter_jsonl(resumed.prepared.run_dir / "answers.jsonl"))
    assert len(counts) == 180 and max(counts.values()) == 1


def test_cache_lookup_and_store_round_trip(tmp_path: Path) -> None:
    cache = AnswerCache(tmp_path / "c.sqlite", commit_every=2)
    cache.put("k1", {"text": "Иванов", "output_tokens": 1, "latency_s": 0.5})
    cache.put("k1", {"text": "second write loses", "output_tokens": 1})
    cache.close()
    again = AnswerCache(tmp_path / "c.sqlite")
    found = again.get("k1")
    assert found is not None and found["text"] == "Иванов" and found["latency_s"] == 0.5
    assert again.get("k2") is None and len(again) == 1
    again.close()


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_no_cache_environment_turns_it_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from vlmhb.run.answer_cache import cache_enabled, cache_setting

    monkeypatch.setenv("VLMHB_NO_CACHE", value)
    assert not cache_enabled()
    with cache_setting(True):
        assert cache_enabled()
    assert not cache_enabled()
