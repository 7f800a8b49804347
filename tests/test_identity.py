"""The run id covers what changes answers (model identity, env) and never a path."""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

import pytest
from conftest import REPO, make_dataset

from vlmhb.envs.recipe import lock_hash
from vlmhb.errors import PlanError
from vlmhb.plan.plan_csv import load_plan
from vlmhb.run.identity import folder_hash, resolve_hub_revision
from vlmhb.run.prepare import new_record, prepare_plan

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


def _model_folder(path: Path, weights: bytes = b"\x00weights") -> Path:
    """A stand-in checkpoint folder: only its bytes matter to the identity."""
    (path / "sub").mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "llava"}', encoding="utf-8")
    (path / "sub" / "model.safetensors").write_bytes(weights)
    return path


def _prepare(tmp_path: Path, write_plan, **row: str):
    if not (tmp_path / "ds").exists():
        make_dataset(tmp_path / "ds", n_docs=2)
    plan = write_plan([{"dataset": "ds", "backend": "hf", "model": "m", **row}])
    (prepared,) = prepare_plan(plan, runs_dir=tmp_path / "runs")
    return prepared


def _hub_cache(root: Path, repo_id: str, refs: dict[str, str]) -> None:
    """The Hugging Face cache layout: ``models--org--name/refs/<ref>``, ``snapshots/<sha>``."""
    folder = root / f"models--{repo_id.replace('/', '--')}"
    for ref, commit in refs.items():
        (folder / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (folder / "refs" / ref).write_text(commit, encoding="utf-8")
        (folder / "snapshots" / commit).mkdir(parents=True, exist_ok=True)


def test_a_local_model_is_identified_by_content_not_path(tmp_path: Path, write_plan) -> None:
    one = _model_folder(tmp_path / "alice" / "tiny")
    two = tmp_path / "bob" / "models" / "tiny-copy"
    shutil.copytree(one, two)
    first = _prepare(tmp_path, write_plan, model=str(one))
    second = _prepare(tmp_path, write_plan, model=str(two))
    assert first.run_id.split("-")[-1] == second.run_id.split("-")[-1]
    assert str(tmp_path) not in str(first.identity)
    assert first.identity["model"]["kind"] == "folder"
    (two / "sub" / "model.safetensors").write_bytes(b"\x00other weights")
    changed = _prepare(tmp_path, write_plan, model=str(two))
    assert changed.run_id != second.run_id


def test_folder_hash_is_cached_and_follows_edits(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "m")
    value = folder_hash(folder)
    assert folder_hash(folder) == value
    (folder / ".cache" / "huggingface").mkdir(parents=True)  # a hub download's bookkeeping
    (folder / ".cache" / "huggingface" / "config.json.metadata").write_text("etag", "utf-8")
    assert folder_hash(folder) == value
    (folder / "config.json").write_text('{"model_type": "qwen2_vl"}', encoding="utf-8")
    assert folder_hash(folder) != value


def test_a_hub_id_is_identified_by_its_cached_commit(
    tmp_path: Path, write_plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    unresolved = _prepare(tmp_path, write_plan, model="someorg/Some-VLM-1B")
    assert unresolved.identity["model"] == {
        "kind": "hub",
        "value": "someorg/Some-VLM-1B",
        "revision": None,
    }
    _hub_cache(cache, "someorg/Some-VLM-1B", {"main": COMMIT_A, "v1.0": COMMIT_B})
    at_a = _prepare(tmp_path, write_plan, model="someorg/Some-VLM-1B")
    assert new_record(at_a).model_revision == COMMIT_A
    _hub_cache(cache, "someorg/Some-VLM-1B", {"main": COMMIT_B})
    at_b = _prepare(tmp_path, write_plan, model="someorg/Some-VLM-1B")
    assert new_record(at_b).model_revision == COMMIT_B
    assert len({unresolved.run_id, at_a.run_id, at_b.run_id}) == 3


def test_a_plan_pins_a_revision(
    tmp_path: Path, write_plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vlmhb.run.infer import init_message

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    _hub_cache(tmp_path / "hub", "someorg/Some-VLM-1B", {"main": COMMIT_A, "v1.0": COMMIT_B})
    tagged = _prepare(tmp_path, write_plan, model="someorg/Some-VLM-1B", revision="v1.0")
    assert new_record(tagged).model_revision == COMMIT_B
    assert tagged.run.revision == "v1.0"
    assert init_message(tagged).load["revision"] == COMMIT_B  # the worker loads that commit
    pinned = _prepare(tmp_path, write_plan, model="someorg/Some-VLM-1B", revision=COMMIT_A)
    assert resolve_hub_revision("someorg/Some-VLM-1B") == COMMIT_A
    assert pinned.run_id != tagged.run_id
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,backend,model,revision\nds,hf,m,../../etc\n", encoding="utf-8")
    with pytest.raises(PlanError, match=r"bad\.csv:2:revision"):
        load_plan(bad)


def test_the_env_is_part_of_the_id(tmp_path: Path, write_plan) -> None:
    make_dataset(tmp_path / "ds", n_docs=2)
    plan = write_plan([{"dataset": "ds", "backend": "tesseract", "model": "tesseract-rus"}])
    (local,) = prepare_plan(plan, runs_dir=tmp_path / "runs", isolation="local")
    (venv,) = prepare_plan(plan, runs_dir=tmp_path / "runs", isolation="venv")
    assert local.run_id != venv.run_id  # switching isolation never reuses answers
    assert venv.identity["env"]["lock_hash"] == lock_hash(REPO / "lockfiles" / "tesseract.txt")
    packages = local.identity["env"]["packages"]
    assert packages["pytesseract"] == metadata.version("pytesseract")
    assert local.identity["env"]["tesseract"].startswith("tesseract ")
    record = new_record(venv)
    assert record.identity == venv.identity and record.model_revision is None


def test_a_lockfile_upgrade_changes_the_id(
    tmp_path: Path, write_plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "checkout"
    for folder in ("envs", "lockfiles"):
        shutil.copytree(REPO / folder, root / folder)
    monkeypatch.setattr("vlmhb.envs.recipe.default_root", lambda: root)
    make_dataset(tmp_path / "ds", n_docs=2)
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m", "isolation": "venv"}])
    (before,) = prepare_plan(plan, runs_dir=tmp_path / "runs")
    with (root / "lockfiles" / "echo.txt").open("a", encoding="utf-8") as handle:
        handle.write("# upgraded\n")
    (after,) = prepare_plan(plan, runs_dir=tmp_path / "runs")
    assert before.identity["env"]["lock_hash"] != after.identity["env"]["lock_hash"]
    assert before.run_id != after.run_id
