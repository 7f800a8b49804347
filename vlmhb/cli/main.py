"""The ``vlmhb`` command: thin Click wiring over ``vlmhb.api`` and friends.

Each command parses its options, calls one library function and maps errors to exit codes:
0 all good, 1 some runs failed, 2 bad input or a vlmhb error (one line, no traceback),
3 a gate missed (``--fail-under``, ``compare --fail-on-regression``), 130 / 143 / 129
interrupted by Ctrl-C / SIGTERM / SIGHUP.
Sub-groups (``env``, ``data``, ``models``) live beside it in ``vlmhb.cli`` and are imported only
when named, so ``vlmhb --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from vlmhb import __version__
from vlmhb.cli.common import (
    EXIT_GATE,
    EXIT_RUNS_FAILED,
    reports_errors,
)

LAZY_COMMANDS = {
    "env": ("vlmhb.cli.env", "env", "Lock, build, check and list the per-model venvs."),
    "data": ("vlmhb.cli.data", "data", "Generate, check and import datasets."),
    "models": ("vlmhb.cli.models", "models", "List the known models and their envs."),
    "prompts": (
        "vlmhb.cli.prompts",
        "prompts",
        "Search the best prompt per document type and field.",
    ),
}


class LazyGroup(click.Group):
    """A group whose sub-groups are imported only when they are invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, attr, _ = LAZY_COMMANDS[name]
            try:
                return getattr(importlib.import_module(module), attr)
            except ImportError as exc:
                raise click.ClickException(f"{name}: unavailable ({exc})") from exc
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands without importing the lazy ones."""
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS:
                rows.append((name, LAZY_COMMANDS[name][2]))
            else:
                command = super().get_command(ctx, name)
                if command is not None and not command.hidden:
                    # The whole first sentence: the formatter wraps it, never cuts a phrase.
                    rows.append((name, command.get_short_help_str(limit=300)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


runs_dir_option = click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Where run folders are written.",
)
redact_option = click.option(
    "--redact/--no-redact",
    default=None,
    help="Leave document values and images out of the report and summary.md "
    "[default: redact unless every document is vlmhb-generated; a plan's redact column].",
)
isolation_option = click.option(
    "--isolation",
    type=click.Choice(["venv", "local"]),
    default=None,
    help="Default isolation for rows that do not say (venv: locked env per model; "
    "local: this interpreter). [default: local]",
)
no_cache_option = click.option(
    "--no-cache",
    is_flag=True,
    help="Ask the model every request again (no answers from the answer cache).",
)


def set_cache(enabled: bool) -> None:
    """Turn the answer cache off for this command and the processes it starts."""
    if not enabled:
        import os

        os.environ["VLMHB_NO_CACHE"] = "1"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vlmhb")
def main() -> None:
    """Benchmark vision-language models on Russian documents, one locked venv per model."""


@main.command()
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
@runs_dir_option
@isolation_option
@click.option("--dry-run", is_flag=True, help="Validate and print what would run; touch nothing.")
@click.option(
    "--skip-bad-documents",
    is_flag=True,
    help="Leave out bad annotation lines and documents with unusable images (counted in "
    "run.json) instead of refusing the plan.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Infer again: move earlier answers of these runs aside (RUN_ID.old-TIME) first.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the HTML report [default: RUNS_DIR/report.html].",
)
@click.option(
    "--gpus",
    default=None,
    help="GPU ids to fill, e.g. 0,1,2,3; each run gets the number it asks for in "
    "CUDA_VISIBLE_DEVICES [default: every GPU NVML sees; '' = CPU only].",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPU-only runs (tesseract, echo, openai) side by side.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "slurm", "ray"]),
    default="local",
    show_default=True,
    help="local: this machine's GPU slots; slurm: a job array through submitit; "
    "ray: a Ray task per run on a cluster (docs/pods.md).",
)
@click.option(
    "--ray-address",
    default=None,
    metavar="HOST:PORT",
    help="Ray: the head to join [default: RAY_ADDRESS, else a Ray started here].",
)
@click.option("--partition", default=None, help="Slurm partition.")
@click.option(
    "--gpus-per-run",
    type=click.IntRange(min=0),
    default=None,
    help="Slurm: GPUs per run [default: each run's own count].",
)
@click.option(
    "--time",
    "time_limit",
    default="60",
    show_default=True,
    metavar="MINUTES|[D-]HH:MM[:SS]",
    help="Slurm time limit per run: minutes (60 = one hour) or [D-]HH:MM[:SS].",
)
@click.option(
    "--fail-under",
    multiple=True,
    metavar="[KEY=VALUE:]METRIC=VALUE",
    help="Gate: exit 3 when a metric misses it, e.g. exact_match=0.8, cer_micro<=0.1, "
    "model=tesseract-rus:field=surname:exact_match=0.9 (see vlmhb.gate.thresholds). Repeatable.",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write JUnit XML: a testcase per run and per threshold.",
)
@no_cache_option
@redact_option
@click.option(
    "--concurrency",
    "concurrency_text",
    default=None,
    metavar="LEVELS",
    help="Load sweep for streaming rows (openai, vllm-server, sglang-server): one run per "
    "level over the same requests, e.g. 1,4,16,64.",
)
@click.option(
    "--sla",
    "sla_text",
    default=None,
    metavar="FIGURE=BOUND,...",
    help="Latency targets for sweeps, e.g. ttft_p95=2s,e2e_p95=10s: prints the highest "
    "concurrency level meeting them (see vlmhb.gate.sla).",
)
@reports_errors
def run(
    plan: Path,
    runs_dir: Path,
    isolation: str | None,
    dry_run: bool,
    skip_bad_documents: bool,
    fresh: bool,
    report_path: Path | None,
    gpus: str | None,
    jobs: int,
    executor: str,
    ray_address: str | None,
    partition: str | None,
    gpus_per_run: int | None,
    time_limit: str,
    fail_under: tuple[str, ...],
    junit: Path | None,
    no_cache: bool,
    redact: bool | None,
    concurrency_text: str | None,
    sla_text: str | None,
) -> None:
    """Run every evaluation run of PLAN (a native or VLMHyperBench v0.1 CSV).

    Exit codes: 0 all good, 1 some runs failed, 2 bad input (every problem listed, nothing
    written), 3 a --fail-under threshold was missed, 130/143/129 interrupted (Ctrl-C, SIGTERM,
    SIGHUP; answers kept).
    """
    from vlmhb import api
    from vlmhb.cli.tables import (
        print_dry_run,
        print_outcome_line,
        print_preflight_notes,
        print_summary,
    )
    from vlmhb.gate import thresholds as gate
    from vlmhb.gate.junit import write_junit
    from vlmhb.gate.sla import parse_sla
    from vlmhb.plan.sweep import parse_levels

    thresholds = gate.parse_thresholds(fail_under)
    set_cache(not no_cache)
    levels = parse_levels(concurrency_text) if concurrency_text else None
    sla = parse_sla(sla_text) if sla_text else None
    slurm = None
    if executor == "slurm":
        from vlmhb.executors.slurm import SlurmOptions, parse_minutes

        parse_minutes(time_limit)
        slurm = SlurmOptions(partition=partition, gpus_per_run=gpus_per_run, time=time_limit)
    ray = None
    if executor == "ray":
        from vlmhb.executors.ray import RayOptions

        ray = RayOptions(address=ray_address)
    result = api.run_plan(
        plan,
        runs_dir=runs_dir,
        isolation=isolation,
        dry_run=dry_run,
        report=report_path,
        gpus=gpus,
        jobs=jobs,
        executor=executor,
        slurm=slurm,
        ray=ray,
        on_outcome=print_outcome_line,
        skip_bad_documents=skip_bad_documents,
        fresh=fresh,
        on_set_aside=lambda old, moved: click.echo(
            f"fresh: earlier answers of {old.name} moved aside to {moved}"
        ),
        redact=redact,
        concurrency=levels,
    )
    print_preflight_notes(result)
    if dry_run:
        print_dry_run(result)
        return
    print_summary(result)
    if sla is not None:
        from vlmhb.cli.serving import print_sla

        print_sla(result, sla)
    checks = gate.check_gate(result.runs, thresholds) if thresholds else None
    if checks is not None:
        for check in checks.checks:
            mark = "pass" if check.passed else "FAIL"
            click.echo(f"gate {mark}: {check.threshold.spec} [{check.label}] {check.message}")
    if junit is not None:
        click.echo(f"junit: {write_junit(result.runs, checks, junit)}")
    if result.failed:
        sys.exit(EXIT_RUNS_FAILED)
    if checks is not None and checks.missed:
        sys.exit(EXIT_GATE)


@main.command()
@click.argument("run_a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--metrics",
    default="exact,anls,cer,valid_but_wrong",
    show_default=True,
    help="by_sample columns to compare (comma-separated).",
)
@click.option("--n-boot", type=click.IntRange(min=100), default=2000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--min-delta",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Only flag regressions larger than this, besides beyond the noise.",
)
@click.option("--fail-on-regression", is_flag=True, help="Exit 3 when a regression is flagged.")
@reports_errors
def compare(
    run_a: Path,
    run_b: Path,
    metrics: str,
    n_boot: int,
    seed: int,
    min_delta: float,
    fail_on_regression: bool,
) -> None:
    """Per-field deltas RUN_B - RUN_A with paired bootstrap CIs; flags regressions."""
    from vlmhb.cli.compare_table import print_comparison
    from vlmhb.gate.compare import compare_runs

    result = compare_runs(
        run_a,
        run_b,
        metrics=[m.strip() for m in metrics.split(",") if m.strip()],
        n_boot=n_boot,
        seed=seed,
        min_delta=min_delta,
    )
    print_comparison(result)
    if fail_on_regression and result.regressions:
        sys.exit(EXIT_GATE)


@main.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@runs_dir_option
@isolation_option
@no_cache_option
@reports_errors
def infer(target: Path, runs_dir: Path, isolation: str | None, no_cache: bool) -> None:
    """Answers only: resume inference of a run folder, or of every run of a plan."""
    from vlmhb.cli.tables import print_inferred
    from vlmhb.run import rerun as stages

    set_cache(not no_cache)
    print_inferred(stages.infer_target(target, runs_dir=runs_dir, isolation=isolation))


@main.command(name="eval")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--metrics", default=None, help="Comma-separated metric names (default: the run's).")
@isolation_option
@reports_errors
def eval_(run_dirs: tuple[Path, ...], metrics: str | None, isolation: str | None) -> None:
    """Metrics only: score saved answers again (new metrics, new normalization)."""
    from vlmhb.run import rerun as stages

    names = [m.strip() for m in metrics.split(",")] if metrics else None
    for line in stages.eval_targets(list(run_dirs), metrics=names, isolation=isolation):
        click.echo(line)


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("report.html"),
    show_default=True,
)
@redact_option
@reports_errors
def report(run_dirs: tuple[Path, ...], output: Path, redact: bool | None) -> None:
    """Report only: one self-contained HTML page and summary.md from run folders."""
    from vlmhb.api import write_report

    html = write_report(list(run_dirs), output, redact=redact)
    click.echo(f"wrote {html} and {html.with_name('summary.md')} (the same tables in Markdown)")


@main.command()
@click.argument(
    "runs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("runs")
)
@reports_errors
def status(runs_dir: Path) -> None:
    """Where each run folder under RUNS_DIR stands."""
    from vlmhb.cli.tables import print_status

    print_status(runs_dir)


if __name__ == "__main__":  # pragma: no cover
    main()
