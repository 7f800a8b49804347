"""No stage opens a path outside the dataset folder; an oversized image is one sample's error."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_dataset, write_png

from vlmhb import api
from vlmhb.report.thumbs import thumbnail_data_url


def _oversized_png(path: Path) -> None:
    """A real 30000 x 30000 PNG (900 Mpx, past Pillow's decompression-bomb limit), ~100 KB."""
    from PIL import Image

    Image.new("1", (30_000, 30_000)).save(path)


def test_escaping_and_oversized_images_are_sample_errors_and_never_reach_the_report(
    tmp_path: Path, write_plan
) -> None:
    root = make_dataset(tmp_path / "ds", n_docs=4)
    outside = tmp_path / "secret-scan.png"
    write_png(outside, "private")
    (root / "images" / "doc0001.png").unlink()
    (root / "images" / "doc0001.png").symlink_to(outside)  # a symlink pointing out
    _oversized_png(root / "images" / "doc0002.png")
    records = [json.loads(x) for x in (root / "annotations.jsonl").read_text().splitlines()]
    records[3]["image"] = str(outside)  # an absolute path
    (root / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    plan = write_plan([{"dataset": "ds", "backend": "echo", "model": "m"}])
    runs = tmp_path / "runs"

    # Not redacted (the default for data vlmhb did not generate): thumbnails are what is checked.
    result = api.run_plan(plan, runs_dir=runs, isolation="local", progress=False, redact=False)

    assert not result.failed, result.runs[0].error
    (run_dir,) = [p.parent for p in runs.glob("*/run.json")]
    answers = [json.loads(x) for x in (run_dir / "answers.jsonl").read_text().splitlines()]
    errors = {a["doc_id"]: a["error"] for a in answers}
    assert errors["doc0000"] is None
    assert "escapes the dataset folder" in errors["doc0001"]
    assert "too large to decode safely" in errors["doc0002"]
    assert "is absolute" in errors["doc0003"]
    assert (run_dir / "metrics" / "overall.csv").is_file()
    assert result.report is not None
    html = result.report.read_text(encoding="utf-8")
    outside_thumb = thumbnail_data_url(outside)
    assert outside_thumb is not None
    assert outside_thumb.split(",", 1)[1] not in html
    assert outside.as_uri() not in html
    inside_thumb = thumbnail_data_url(root / "images" / "doc0000.png")
    assert inside_thumb is not None and inside_thumb.split(",", 1)[1] in html
