"""What every ``vlmhb`` command shares: exit codes, and mapping errors to them."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from vlmhb.cli.stop_signals import Terminated, handle_stop_signals
from vlmhb.errors import VlmhbError

EXIT_RUNS_FAILED = 1
EXIT_USAGE = 2
EXIT_GATE = 3
EXIT_INTERRUPTED = 130


def reports_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Map vlmhb errors to exit 2 (message only), Ctrl-C to 130, SIGTERM/SIGHUP to 143/129."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        handle_stop_signals()
        try:
            return func(*args, **kwargs)
        except VlmhbError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt as exc:
            click.echo("interrupted: answers written so far are kept", err=True)
            sys.exit(exc.exit_code if isinstance(exc, Terminated) else EXIT_INTERRUPTED)

    return wrapper
