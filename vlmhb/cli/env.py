"""``vlmhb env``: lock, build, check, list, rm, prune. Each command calls one library function."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from vlmhb.cli.common import reports_errors

F = TypeVar("F", bound=Callable[..., Any])


def root_option(func: F) -> F:
    """``--root``: the checkout holding ``envs/`` and ``lockfiles/``."""
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder holding envs/ and lockfiles/ (default: this checkout).",
    )(func)


def home_option(func: F) -> F:
    """``--home``: where built envs and uv's cache live."""
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="VLMHB_HOME",
        default=None,
        help="Where envs are built ($VLMHB_HOME, default ~/.cache/vlmhb).",
    )(func)


@click.group(name="env")
def env() -> None:
    """Locked per-model virtualenvs (built with uv)."""


@env.command(name="lock")
@click.argument("names", nargs=-1, required=True)
@click.option("--upgrade", is_flag=True, help="Ignore the current pins; take the newest versions.")
@root_option
@home_option
@reports_errors
def lock_cmd(names: tuple[str, ...], upgrade: bool, root: Path | None, home: Path | None) -> None:
    """Compile envs/NAME/requirements.in into lockfiles/NAME.txt (hashed, pinned)."""
    from vlmhb.envs import lock_env

    for name in names:
        result = lock_env(name, root=root, home=home, upgrade=upgrade)
        state = "written" if result.changed else "unchanged"
        click.echo(
            f"{name}: {result.lockfile} {state}, {result.packages} packages, "
            f"lock {result.lock_hash[:12]}"
        )


@env.command(name="build")
@click.argument("names", nargs=-1, required=True)
@root_option
@home_option
@reports_errors
def build_cmd(names: tuple[str, ...], root: Path | None, home: Path | None) -> None:
    """Build NAME's venv from its lockfile (a no-op when already built)."""
    from vlmhb.envs import ensure_env

    for name in names:
        built = ensure_env(name, root=root, home=home)
        how = "reused" if built.reused else f"built in {built.build_s:.2f} s"
        click.echo(f"{name}: {how}: {built.path} (python {built.python_version})")


@env.command(name="check")
@click.argument("names", nargs=-1, required=True)
@root_option
@home_option
@reports_errors
def check_cmd(names: tuple[str, ...], root: Path | None, home: Path | None) -> None:
    """Report drift between NAME's built venv and its lockfile (offline); exit 1 on drift."""
    from vlmhb.envs import check_env

    drifted = False
    for name in names:
        report = check_env(name, root=root, home=home)
        click.echo(f"{name}: {'ok' if report.ok else 'DRIFT'}: {report.path}")
        if not report.ok:
            drifted = True
            click.echo(report.details)
    if drifted:
        sys.exit(1)


@env.command(name="list")
@click.option("--recipes", is_flag=True, help="List the recipes in the checkout instead.")
@root_option
@home_option
@reports_errors
def list_cmd(recipes: bool, root: Path | None, home: Path | None) -> None:
    """Show built envs: name, lock hash, Python, size, age."""
    from vlmhb.envs import known_envs, list_envs
    from vlmhb.envs.manage import describe_recipe, human_age, human_size

    if recipes:
        for name in known_envs(root):
            click.echo(describe_recipe(name, root))
        return
    rows = list_envs(home)
    if not rows:
        click.echo("no built envs")
        return
    click.echo(f"{'ENV':<28} {'LOCK':<12} {'PYTHON':<8} {'SIZE':>9} {'AGE':>5}  STATE")
    for info in rows:
        state = "ok" if info.complete else "incomplete"
        click.echo(
            f"{info.key:<28} {info.lock_hash[:12]:<12} {info.python_version:<8} "
            f"{human_size(info.size_bytes):>9} {human_age(info.age_s):>5}  {state}"
        )


@env.command(name="rm")
@click.argument("targets", nargs=-1, required=True)
@home_option
@reports_errors
def rm_cmd(targets: tuple[str, ...], home: Path | None) -> None:
    """Remove built envs: NAME (all its builds) or NAME-LOCKHASH12."""
    from vlmhb.envs import remove_env

    for target in targets:
        removed = remove_env(target, home=home)
        for path in removed:
            click.echo(f"removed {path}")


@env.command(name="prune")
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@root_option
@home_option
@reports_errors
def prune_cmd(dry_run: bool, root: Path | None, home: Path | None) -> None:
    """Remove envs whose lock hash matches no current lockfile, and killed builds."""
    from vlmhb.envs import prune_envs

    doomed = prune_envs(root=root, home=home, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for info in doomed:
        click.echo(f"{verb} {info.path}")
    if not doomed:
        click.echo("nothing to prune")
