"""The environment a child process (worker or metrics stage) gets: the minimum, not the host's.

The variables a model process needs (``PASSED_VARIABLES`` and ``PASSED_PREFIXES``: PATH,
HOME, CUDA_*, HF_* ...), what the plan names, and the code shim on ``PYTHONPATH``. Standard
library only.
"""

from __future__ import annotations

import os

from vlmhb.run.code_shim import code_shim

PASSED_VARIABLES = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ", "TERM")
PASSED_PREFIXES = (
    "CUDA_",
    "NVIDIA_",
    "HF_",
    "TRANSFORMERS_",
    "VLLM_",
    "SGLANG_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "TESSDATA_",
    "TORCH_",
    "PYTORCH_",
    "NCCL_",
    "VLMHB_",
)


def child_environment(
    extra: dict[str, str] | None = None,
    passed: tuple[str, ...] = (),
    keep_pythonpath: bool = False,
) -> dict[str, str]:
    """A minimal environment: the variables a model process needs, nothing else.

    ``keep_pythonpath`` is for ``local`` isolation: the child is this interpreter and must see
    what the orchestrator sees, including packages reached through ``PYTHONPATH``.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key in PASSED_VARIABLES or key in passed or key.startswith(PASSED_PREFIXES)
    }
    paths = [str(code_shim())]
    if keep_pythonpath and os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.setdefault("PATH", os.defpath)
    if extra:
        env.update(extra)
    return env
