"""``vlmhb prompts``: search the best prompt per document type and field for one model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from vlmhb.cli.common import reports_errors


@click.group(name="prompts")
def prompts() -> None:
    """Prompt engineering: which prompt wins per document type and field."""


def _json_object(ctx: click.Context, param: click.Parameter, value: str | None) -> dict | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter('must be a JSON object like {"dtype": "float16"}')
    return parsed


def _items(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


@prompts.command(name="search")
@click.option(
    "--plan",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Rows of one model differing in prompts/system_prompt (v0.1 "
    "user_config_prompt_eval.csv too); instead of the options below.",
)
@click.option("--dataset", default=None, help="Dataset folder or synth:demo.")
@click.option("--backend", default=None, help="hf, vllm, sglang, openai, tesseract, echo.")
@click.option("--model", default=None, help="Model key, id or path.")
@click.option(
    "--candidate",
    "candidates",
    multiple=True,
    metavar="[NAME=]SPEC",
    help="A prompt collection (shipped name, .json or v0.1 .csv). Repeatable; the "
    "default collection is always a candidate.",
)
@click.option(
    "--system",
    "systems",
    multiple=True,
    help="A system prompt to try with every candidate. Repeatable.",
)
@click.option("--mode", type=click.Choice(["field", "document", "text"]), default=None)
@click.option(
    "--metric",
    default="exact",
    show_default=True,
    help="Per-sample metric to optimise (exact, anls, cer, ned, ...).",
)
@click.option(
    "--confirm",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Fraction of documents (per document type) held out to confirm the winners on.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--n-boot", type=click.IntRange(min=100), default=2000, show_default=True)
@click.option("--doc-types", default=None, help="Only these document types (comma-separated).")
@click.option("--fields", default=None, help="Only these fields (comma-separated).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N documents.")
@click.option("--load", callback=_json_object, default=None, help="Load options as JSON.")
@click.option("--generation", callback=_json_object, default=None, help="Generation as JSON.")
@click.option("--isolation", type=click.Choice(["venv", "local"]), default=None)
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Search folder [default: RUNS_DIR/prompt-search-<id>].",
)
@click.option("--no-cache", is_flag=True, help="Ask the model again (no answer cache).")
@reports_errors
def search(plan: Path | None, **options: Any) -> None:
    """Run every candidate, pick the winner per document type and field, merge them.

    Writes prompt_search.json, merged.json (native), merged.csv (v0.1 layout, field mode)
    and report.html into the search folder.
    """
    from vlmhb import api
    from vlmhb.cli.search_table import print_search

    cache = not options.pop("no_cache")
    run_options = {
        "mode": options.pop("mode"),
        "doc_types": _items(options.pop("doc_types")),
        "fields": _items(options.pop("fields")),
        "limit": options.pop("limit"),
        "load": options.pop("load"),
        "generation": options.pop("generation"),
    }

    def say(name: str, outcome: Any) -> None:
        counts = outcome.counts
        click.echo(
            f"[{outcome.status}] {name}: {counts.get('answered', 0)} answers, "
            f"{counts.get('reused', 0)} reused from the cache, "
            f"{counts.get('answered_now', 0)} asked ({outcome.wall_s:.1f} s)",
            err=True,
        )

    # A plan names the candidates itself; otherwise the options do.
    source: dict[str, Any] = (
        {"plan": plan}
        if plan is not None
        else {
            "dataset": options["dataset"],
            "backend": options["backend"],
            "model": options["model"],
            "candidates": options["candidates"],
            "systems": options["systems"],
            **run_options,
        }
    )
    result = api.search_prompts(
        **source,
        metric=options["metric"],
        confirm=options["confirm"],
        seed=options["seed"],
        n_boot=options["n_boot"],
        runs_dir=options["runs_dir"],
        out_dir=options["out"],
        isolation=options["isolation"],
        cache=cache,
        on_run=say,
    )
    print_search(result)
