"""``vlmhb data``: synth, check, import-v01. Each command calls one library function."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vlmhb.cli.common import reports_errors


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@click.group()
def data() -> None:
    """Generate, check and import datasets."""


@data.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--kind",
    default="passport,snils,invoice",
    show_default=True,
    help="Document types, comma-separated.",
)
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Documents per type.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--degrade",
    default="clean",
    show_default=True,
    help="Variants per document, comma-separated: clean, blur, noise, rotate, jpeg, contrast; "
    "combine with + (rotate+jpeg); a severity 1-4 as blur:3 (also stamp:N). Each variant is "
    "its own sample, tagged with what was applied.",
)
@click.option(
    "--ladder",
    is_flag=True,
    help="Add robustness ladders: clean plus blur, jpeg, noise, rotate, contrast and stamp at "
    "severities 1-4 (tagged blur:1 ... stamp:4).",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Processes (default: the CPUs)."
)
@reports_errors
def synth(
    out: Path, kind: str, n: int, seed: int, degrade: str, ladder: bool, workers: int | None
) -> None:
    """Render synthetic Russian documents with ground truth into OUT (native format)."""
    from vlmhb.data.synth.degrade import ladder_variants
    from vlmhb.data.synth.generate import SynthConfig, synthesize

    variants = _split(degrade)
    if ladder:
        variants = tuple(dict.fromkeys((*variants, *ladder_variants())))
    config = SynthConfig(kinds=_split(kind), n=n, seed=seed, variants=variants)
    path = synthesize(out, config, workers=workers)
    count = sum(1 for _ in path.open(encoding="utf-8"))
    click.echo(f"{count} documents -> {path}")


@data.command()
@click.argument("spec")
@reports_errors
def check(spec: str) -> None:
    """Validate a dataset (folder or synth:demo); list every problem with file and line."""
    from vlmhb.data.load import check_dataset, load_dataset

    problems = check_dataset(spec, Path.cwd())
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s)", err=True)
        sys.exit(2)
    dataset = load_dataset(spec, Path.cwd())
    click.echo(f"ok: {len(dataset.documents)} documents in {dataset.root}")


@data.command(name="import-v01")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@reports_errors
def import_v01(root: Path, out: Path) -> None:
    """Convert VLMHyperBench v0.1 ROOT (Datasets/, PromptCollections/) into native files in OUT."""
    from vlmhb.data.convert import import_v01 as convert

    report = convert(root, out)
    for path in [*report.datasets, *report.prompt_collections]:
        click.echo(str(path))
    for problem in report.problems:
        click.echo(f"warning: {problem}", err=True)
