"""The model catalogue, ``resolve_model`` and the ``vlmhb models`` command."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import COMPAT, requires_compat
from fixtures_v01 import V01Tree

from vlmhb.cli.main import main
from vlmhb.plan.catalogue import CATALOGUE, V01_FRAMEWORKS, list_models, resolve_model

ROOT = Path(__file__).resolve().parents[1]
REQUIRED_FAMILIES = {
    "Qwen2-VL",
    "Qwen2.5-VL",
    "Qwen3-VL",
    "InternVL3",
    "MiniCPM-V",
    "DeepSeek-VL2",
    "SmolVLM",
    "Gemma 3",
    "Tesseract",
    "tiny test model",
}


def test_catalogue_is_consistent() -> None:
    keys = [spec.key for spec in CATALOGUE]
    assert len(keys) == len(set(keys))
    assert {spec.family for spec in CATALOGUE} >= REQUIRED_FAMILIES
    assert {
        "qwen2-vl-2b",
        "qwen2-vl-7b",
        "qwen2.5-vl-3b",
        "qwen2.5-vl-7b",
        "qwen2.5-vl-32b",
        "qwen2.5-vl-72b",
        "tesseract-rus",
        "tiny-llava",
    } <= set(keys)
    envs_on_disk = {path.name for path in (ROOT / "envs").iterdir() if path.is_dir()}
    for spec in CATALOGUE:
        for backend in spec.backends:
            assert spec.env_for(backend) in envs_on_disk, (spec.key, backend)


def test_resolve_key_hf_id_and_v01_name() -> None:
    by_key = resolve_model("qwen2.5-vl-7b", "vllm")
    assert (by_key.model, by_key.env, by_key.spec.key) == (
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "vllm",
        "qwen2.5-vl-7b",
    )
    by_id = resolve_model("Qwen/Qwen2-VL-2B-Instruct", "hf")
    assert by_id.env == "hf-qwen" and by_id.spec.key == "qwen2-vl-2b"
    v01 = resolve_model("Qwen2.5-VL-3B-Instruct", V01_FRAMEWORKS["Hugging Face"])
    assert (v01.model, v01.env) == ("Qwen/Qwen2.5-VL-3B-Instruct", "hf-qwen")
    assert resolve_model("Qwen2.5-VL-3B-Instruct", "Hugging Face") == v01


@pytest.mark.parametrize("source", ["ours", pytest.param("real", marks=requires_compat)])
def test_every_v01_model_row_resolves(source: str, v01_tree: V01Tree) -> None:
    path = v01_tree.vlm_base if source == "ours" else COMPAT / "vlm_base.csv"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert rows
    for row in rows:
        resolved = resolve_model(row["model_name"], row["framework"])
        assert resolved.spec is not None and resolved.model.endswith(row["model_name"])


def test_unknown_ids_paths_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = resolve_model("someorg/Some-VLM-1B", "hf")
    assert (other.model, other.env, other.spec) == ("someorg/Some-VLM-1B", "hf-cpu", None)
    folder = tmp_path / "my-model"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    local = resolve_model("my-model", "vllm")
    assert (local.model, local.env) == (str(folder), "vllm-cpu")
    assert resolve_model("gpt-4o-mini", "openai").model == "gpt-4o-mini"
    monkeypatch.setenv("VLMHB_HOME", str(tmp_path / "home"))
    tiny = resolve_model("tiny-llava", "hf")
    assert (tiny.model, tiny.env) == (str(tmp_path / "home" / "models" / "tiny-llava"), "hf-cpu")
    assert resolve_model("tiny-llava", "vllm").env == "vllm-cpu"
    assert resolve_model("tesseract-rus", "tesseract").env == "tesseract"
    with pytest.raises(LookupError, match=r"did you mean qwen2\.5-vl-7b"):
        resolve_model("qwen2.5-vl-7", "hf")
    with pytest.raises(ValueError, match="runs on: vllm, sglang, openai"):
        resolve_model("minicpm-v-2.6", "hf")


def test_models_command_lists_the_catalogue() -> None:
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(CATALOGUE) + 1
    assert [line.split()[0] for line in lines[1:]] == [spec.key for spec in CATALOGUE]
    assert "Qwen/Qwen2.5-VL-72B-Instruct" in result.output and "hf(hf-qwen)" in result.output
    only = CliRunner().invoke(main, ["models", "--backend", "tesseract"])
    assert only.exit_code == 0 and only.output.splitlines()[1].startswith("tesseract-rus")
    assert len(only.output.splitlines()) == 1 + len(list_models("tesseract")) == 2
