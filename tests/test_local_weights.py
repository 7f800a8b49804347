"""Weights a catalogue entry builds locally (the tiny LLaVA) are built on first use, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_dataset

from tests.fixtures_models import hf_python  # noqa: F401 - fixture
from vlmhb.plan.catalogue import find_spec
from vlmhb.run.isolation import ChildPython
from vlmhb.run.local_weights import ensure_local_weights
from vlmhb.run.prepare import prepare_plan


def prepared_for(tmp_path: Path, write_plan, backend: str, model: str):
    make_dataset(tmp_path / "ds", n_docs=1)
    plan = write_plan([{"dataset": "ds", "backend": backend, "model": model}])
    (prepared,) = prepare_plan(plan, runs_dir=tmp_path / "runs")
    return prepared


def test_the_catalogue_says_which_weights_are_built_here() -> None:
    tiny = find_spec("tiny-llava")
    assert tiny is not None and tiny.build_module == "vlmhb.worker.tiny_model"
    assert tiny.local_dir == "models/tiny-llava"
    qwen = find_spec("qwen2.5-vl-7b")
    assert qwen is not None and not qwen.build_module and not qwen.local_dir


def test_models_not_built_locally_are_left_alone(tmp_path: Path, write_plan) -> None:
    prepared = prepared_for(tmp_path, write_plan, "echo", "echo-model")
    python = ChildPython(python=Path("/nonexistent/python"), isolation="venv")
    ensure_local_weights(prepared, python)  # would fail if it tried to run that interpreter


def test_the_tiny_model_is_built_in_its_env_on_first_use_only(
    tmp_path: Path,
    write_plan,
    monkeypatch: pytest.MonkeyPatch,
    hf_python: Path,  # noqa: F811
) -> None:
    monkeypatch.setenv("VLMHB_HOME", str(tmp_path / "home"))
    prepared = prepared_for(tmp_path, write_plan, "hf", "tiny-llava")
    target = tmp_path / "home" / "models" / "tiny-llava"
    assert Path(prepared.model) == target and not target.exists()
    python = ChildPython(python=hf_python, isolation="venv")
    ensure_local_weights(prepared, python)
    config = target / "config.json"
    assert config.is_file() and (target / "model.safetensors").is_file()
    assert [p.name for p in target.parent.iterdir()] == ["tiny-llava"]  # no temp folder left
    built_at = config.stat().st_mtime_ns
    ensure_local_weights(prepared, python)
    assert config.stat().st_mtime_ns == built_at


def test_the_tiny_model_is_built_in_the_env_the_catalogue_names(
    tmp_path: Path,
    write_plan,
    monkeypatch: pytest.MonkeyPatch,
    hf_python: Path,  # noqa: F811
) -> None:
    """A vllm run of the tiny model builds it with hf-cpu (vllm-cpu lacks its processor)."""
    import vlmhb.run.local_weights as local_weights

    monkeypatch.setenv("VLMHB_HOME", str(tmp_path / "home"))
    make_dataset(tmp_path / "ds", n_docs=1)
    plan = write_plan(
        [{"dataset": "ds", "backend": "vllm", "model": "tiny-llava", "isolation": "venv"}]
    )
    (prepared,) = prepare_plan(plan, runs_dir=tmp_path / "runs")
    asked: list[tuple[str, str]] = []

    def built_env(isolation: str, env_name: str) -> ChildPython:
        asked.append((isolation, env_name))
        return ChildPython(python=hf_python, isolation="venv")

    monkeypatch.setattr(local_weights, "child_python", built_env)
    run_env = ChildPython(python=Path("/nonexistent/vllm-cpu/python"), isolation="venv")
    ensure_local_weights(prepared, run_env)  # would fail if it used the run's own env
    assert asked == [("venv", "hf-cpu")]
    assert (tmp_path / "home" / "models" / "tiny-llava" / "config.json").is_file()
