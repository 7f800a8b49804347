"""The live run board names the long wait before a run's first answer (env, model load)."""

from __future__ import annotations

import io
from types import SimpleNamespace

from vlmhb.run.progress import Board


def test_a_new_line_says_it_is_starting_until_the_first_answer(monkeypatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())  # rich draws into it, not the terminal
    prepared = SimpleNamespace(run=SimpleNamespace(label="Tiny", gpu_count=0), n_samples=3)
    with Board(True) as board:
        tracker = board.track(prepared, None)
        assert tracker is not None
        (task,) = board._progress.tasks
        assert task.fields["rate"] == "starting: env, model load"
        tracker.watch(SimpleNamespace(snapshot=dict))  # the worker is ready
        assert task.fields["rate"] == "model loaded, answering"
        tracker.advance()
        assert task.fields["rate"].endswith("/s")
