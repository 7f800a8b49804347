"""The echo backend: no model, answers derived from the request.

What tests and the harness benchmark use. Its load options make the failure modes a real
backend has reproducible on purpose: a slow answer, a hang, a crash, a library that prints
to stdout, memory held by the process. ``oracle`` (a native dataset folder or its
``annotations.jsonl``) with ``oracle_marker`` makes the answer depend on the prompt: a prompt
containing the marker is answered with the reference (the field's value, or all fields as
JSON in document mode), any other prompt with the prompt itself, so a prompt search has
winners known in advance.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from vlmhb.worker.backends.base import LoadInfo, Result, check_image
from vlmhb.worker.protocol import Init, Request, Response


class EchoBackend:
    """Answers with the prompt (or a fixed ``answer``), after checking the images exist."""

    def __init__(self) -> None:
        self.options: dict = {}
        self._ballast: bytearray | None = None
        self._references: dict[str, dict[str, str]] = {}

    def load(self, init: Init) -> LoadInfo:
        self.options = dict(init.load)
        if self.options.get("fail_load"):
            raise RuntimeError(str(self.options["fail_load"]))
        if self.options.get("print_stdout"):
            print("a chatty library writes to stdout at load time")
            os.write(1, b"and straight to fd 1 as well\n")
        megabytes = int(self.options.get("allocate_mb", 0))
        if megabytes:
            self._ballast = bytearray(os.urandom(1024)) * (megabytes * 1024)
        if self.options.get("oracle"):
            self._references = _read_references(Path(self.options["oracle"]))
        return LoadInfo(device="cpu", versions={"python": sys.version.split()[0]})

    def generate(self, batch: list[Request]) -> list[Result]:
        return [self._answer(request) for request in batch]

    def _answer(self, request: Request) -> Result:
        opts = self.options
        marker = f"{request.id}"
        if opts.get("crash_on") and opts["crash_on"] in marker:
            os._exit(17)
        if opts.get("hang_on") and opts["hang_on"] in marker:
            time.sleep(3600)
        if opts.get("fail_on") and opts["fail_on"] in marker:
            return f"requested failure for {request.id}"
        if opts.get("print_stdout"):
            print(f"library chatter while answering {request.id}")
        delay = float(opts.get("delay_s", 0))
        if delay:
            time.sleep(delay)
        if opts.get("check_images", True):
            try:
                for image in request.images:
                    check_image(image)
            except ValueError as exc:
                return exc
        text = opts.get("answer", request.prompt)
        if opts.get("answer_field") and request.field:
            text = request.field
        oracle_marker = opts.get("oracle_marker")
        if self._references and oracle_marker and oracle_marker in request.prompt:
            text = self._reference(request)
        max_tokens = request.generation.get("max_new_tokens")
        words = text.split()
        finish = "stop"
        if max_tokens is not None and len(words) > int(max_tokens):
            text, finish = " ".join(words[: int(max_tokens)]), "length"
        return Response(
            id=request.id,
            text=text,
            prompt_tokens=len(request.prompt.split()),
            output_tokens=min(len(words), int(max_tokens or len(words))),
            finish_reason=finish,
        )

    def _reference(self, request: Request) -> str:
        """The reference answer of a request (its id is ``doc_id:field`` in field mode)."""
        if request.field:
            doc_id = request.id.removesuffix(f":{request.field}")
            return str(self._references.get(doc_id, {}).get(request.field, ""))
        return json.dumps(self._references.get(request.id, {}), ensure_ascii=False)

    def close(self) -> None:
        self._ballast = None


def _read_references(path: Path) -> dict[str, dict[str, str]]:
    """{doc id: fields} from a native ``annotations.jsonl`` (or the folder holding it)."""
    if path.is_dir():
        path = path / "annotations.jsonl"
    references = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                document = json.loads(line)
                references[str(document["id"])] = document.get("fields", {})
    return references
