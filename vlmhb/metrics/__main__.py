"""``python -m vlmhb.metrics RUN_DIR [--metrics ...]``: a thin wrapper around score_run.

Bad input prints one line to stderr and exits 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vlmhb.metrics import MetricsInputError, Normalization, score_run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vlmhb.metrics", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="run folder (references.jsonl, answers.jsonl)")
    parser.add_argument("--metrics", help="comma-separated extra metrics (default: run.json's)")
    parser.add_argument("--no-yo-fold", action="store_true", help="keep ё distinct from е")
    parser.add_argument("--case-sensitive", action="store_true", help="no case folding")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, score the run, print a one-line summary; returns the exit code."""
    args = _parser().parse_args(argv)
    settings = Normalization(yo_to_ye=not args.no_yo_fold, casefold=not args.case_sensitive)
    metrics = args.metrics.split(",") if args.metrics is not None else None
    try:
        result = score_run(args.run_dir, metrics, settings, seed=args.seed, n_boot=args.n_boot)
    except MetricsInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    overall = result["overall"]
    shown = ", ".join(
        f"{k}={overall[k]:.4f}" for k in ("exact_match", "anls", "cer_micro") if k in overall
    )
    print(f"scored {result['n_samples']} samples of {result['n_docs']} documents: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
