"""Display strings for the leaderboard, shared by the HTML page and the Markdown summary."""

from __future__ import annotations

import math

import pandas as pd

DASH = "—"
THROUGHPUT_NOTE = (
    "Docs/s counts whole documents in every mode. Requests/s and latency are per request: "
    "one field in field mode, one document in document mode."
)
# (header, column, digits, has CI); several columns share one cell as ``a / b`` (sorted by
# the first) so the table fits a 1400 px window
DISPLAY: list[tuple[str, str | tuple[str, ...], int | None, bool]] = [
    ("Run", "label", None, False),
    ("Model", "model", None, False),
    ("Backend", "backend", None, False),
    ("Prompts", "prompts", None, False),
    ("Mode", "mode", None, False),
    ("Status", "status", None, False),
    ("Docs", "n_docs", 0, False),
    ("Exact match [95% CI]", "exact_match", 3, True),
    ("ANLS [95% CI]", "anls", 3, True),
    ("CER [95% CI]", "cer", 3, True),
    ("JSON valid", "json_valid", 3, True),
    ("Docs/s", "docs_per_s", 2, False),
    ("Requests/s", "samples_per_s", 2, False),  # over generation time only
    ("Latency s p50 / p95", ("latency_p50_s", "latency_p95_s"), 3, False),
    (
        "Start+load / generation / teardown s",
        ("start_load_s", "generation_s", "teardown_s"),
        1,
        False,
    ),
    ("Peak VRAM MB", "vram_peak_mb", 0, False),
    ("Energy J/doc", "energy_per_doc_j", 1, False),
]


def format_number(value: object, digits: int | None) -> str:
    """A number with ``digits`` decimals, a dash when missing; strings pass through."""
    if digits is None:
        return DASH if value is None or value == "" else str(value)
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DASH
    if not math.isfinite(x):
        return DASH
    return f"{x:,.{digits}f}".replace(",", " ")


def format_ci(value: float, low: float, high: float, digits: int) -> str:
    """``0.812 [0.702–0.923]``; the CI is dropped when missing or degenerate."""
    main = format_number(value, digits)
    if main == DASH or not (math.isfinite(low) and math.isfinite(high)) or low == high:
        return main
    return f"{main} [{format_number(low, digits)}–{format_number(high, digits)}]"


def display_leaderboard(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as display strings, columns named by ``DISPLAY`` headers."""
    out: dict[str, list[str]] = {}
    for header, col, digits, has_ci in DISPLAY:
        if isinstance(col, tuple):
            out[header] = [
                " / ".join(format_number(r[c], digits) for c in col)
                for r in board.to_dict("records")
            ]
        elif has_ci:
            out[header] = [
                format_ci(r[col], r[f"{col}_lo"], r[f"{col}_hi"], digits or 3)
                for r in board.to_dict("records")
            ]
        else:
            out[header] = [format_number(v, digits) for v in board[col]]
    return pd.DataFrame(out)
