"""Locked per-model virtualenvs built by uv: the only package that calls uv.

``ensure_env(name)`` builds (or reuses, after a millisecond stamp check) the venv of
``lockfiles/<name>.txt`` under ``$VLMHB_HOME/envs/<name>-<lockhash12>``; ``lock_env`` writes
that lockfile from ``envs/<name>/``; the rest looks after built envs.
"""

from __future__ import annotations

from vlmhb.envs.build import BuiltEnv, ensure_env, installed_versions
from vlmhb.envs.lock import LockResult, lock_env
from vlmhb.envs.manage import (
    DriftReport,
    check_env,
    list_envs,
    plan_prune,
    prune_envs,
    remove_env,
)
from vlmhb.envs.recipe import Recipe, default_root, known_envs, load_recipe
from vlmhb.envs.store import EnvInfo, vlmhb_home

__all__ = [
    "BuiltEnv",
    "DriftReport",
    "EnvInfo",
    "LockResult",
    "Recipe",
    "check_env",
    "default_root",
    "ensure_env",
    "installed_versions",
    "known_envs",
    "list_envs",
    "load_recipe",
    "lock_env",
    "plan_prune",
    "prune_envs",
    "remove_env",
    "vlmhb_home",
]
