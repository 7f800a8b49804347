"""run/folder.py: the run record, the durable append-only answer log, its readers."""

from __future__ import annotations

import json
from pathlib import Path

from vlmhb.run.files import ANSWERS, ANSWERS_CSV, RUN_JSON
from vlmhb.run.folder import (
    AnswerLog,
    RunRecord,
    iter_jsonl,
    read_record,
    write_answers_csv,
    write_json_atomic,
    write_record,
)


def line(answer_id: str, answer: str = "x", error: str | None = None) -> dict:
    return {"id": answer_id, "answer": answer, "error": error}


def test_iter_jsonl_skips_a_torn_last_line_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    assert list(iter_jsonl(path)) == []  # absent: nothing, no error
    path.write_bytes(b'{"id": "a"}\nnot json\n{"id": "b"}\n{"id": "c", "ans')
    assert [row["id"] for row in iter_jsonl(path)] == ["a", "b"]


def test_answer_log_writes_each_id_once_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / ANSWERS
    log = AnswerLog(path)
    assert log.append(line("a", "Иванов")) is True
    assert log.append(line("b", error="boom")) is True
    assert log.answered == 2 and log.done == set()  # this session's ids are not held
    log.close()
    reopened = AnswerLog(path)
    assert reopened.done == {"a", "b"} and reopened.errors == 1 and reopened.answered == 2
    assert reopened.append(line("b")) is False and reopened.append(line("c")) is True
    reopened.close()
    rows = [json.loads(text) for text in path.read_text("utf-8").splitlines()]
    assert [(r["id"], r["answer"]) for r in rows] == [("a", "Иванов"), ("b", "x"), ("c", "x")]
    assert reopened.answered == 3


def test_a_torn_last_line_is_cut_on_reopening(tmp_path: Path) -> None:
    path = tmp_path / ANSWERS
    path.write_bytes(b'{"id": "a", "answer": "1"}\n{"id": "b", "answer": "2"}\n{"id": "c", "an')
    log = AnswerLog(path)
    assert log.done == {"a", "b"}
    log.append(line("c", "3"))
    log.close()
    assert [row["id"] for row in iter_jsonl(path)] == ["a", "b", "c"]
    assert path.read_bytes().count(b"\n") == 3


def test_a_file_of_only_a_torn_line_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / ANSWERS
    path.write_bytes(b'{"id": "half')
    AnswerLog(path).close()
    assert path.read_bytes() == b""


def test_flushed_lines_are_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / ANSWERS
    log = AnswerLog(path, flush_every=2, flush_seconds=3600)
    log.append(line("a"))
    log.append(line("b"))  # the second line reaches the flush threshold
    assert [row["id"] for row in iter_jsonl(path)] == ["a", "b"]
    log.append(line("c"))
    log.flush()
    assert len(list(iter_jsonl(path))) == 3
    log.close()


def test_answers_csv_is_the_v01_shape(tmp_path: Path) -> None:
    (tmp_path / ANSWERS).write_text(
        "\n".join(json.dumps(line(i, a), ensure_ascii=False) for i, a in
                  [("d1:surname", "Иванов; И."), ("d1:name", "Иван"), ("d1:surname", "dup")])
        + "\n",
        "utf-8",
    )  # fmt: skip
    target = write_answers_csv(tmp_path)
    assert target == tmp_path / ANSWERS_CSV
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig").splitlines() == [
        "id;model_answer",
        'd1:surname;"Иванов; И."',
        "d1:name;Иван",
    ]


def test_run_record_round_trip_is_atomic(tmp_path: Path) -> None:
    record = RunRecord(run_id="m-echo-123", status="done", counts={"answered": 3}, metrics=["CER"])
    write_record(tmp_path, record)
    assert read_record(tmp_path) == record
    assert json.loads((tmp_path / RUN_JSON).read_text("utf-8"))["version"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN_JSON]  # no temp file left
    write_json_atomic(tmp_path / "x.json", {"path": tmp_path})  # default=str for paths
    assert json.loads((tmp_path / "x.json").read_text("utf-8")) == {"path": str(tmp_path)}
