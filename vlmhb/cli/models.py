"""``vlmhb models``: the model catalogue as an aligned plain-text table."""

from __future__ import annotations

import click

from vlmhb.plan.catalogue import ModelSpec, list_models

COLUMNS = ("key", "family", "hugging face id", "backends (env)", "GPU GB", "notes")


def model_rows(specs: list[ModelSpec]) -> list[tuple[str, ...]]:
    """One row of cells per catalogue entry."""
    rows: list[tuple[str, ...]] = []
    for spec in specs:
        backends = " ".join(f"{backend}({spec.env_for(backend)})" for backend in spec.backends)
        vram = f"{spec.min_vram_gb:g}" if spec.min_vram_gb else "-"
        rows.append((spec.key, spec.family, spec.hf_id or "-", backends, vram, spec.notes))
    return rows


def format_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; the last column is left ragged."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@click.command(name="models")
@click.option("--backend", default=None, help="Only the models this backend runs (hf, vllm, ...).")
def models(backend: str | None) -> None:
    """List the known models: backends and their envs, Hugging Face id, rough GPU memory."""
    click.echo(format_table(COLUMNS, model_rows(list_models(backend))))
