"""The echo backend: no model, answers derived from the request.

What tests and the harness benchmark use. Its load options make the failure modes a real
backend has reproducible on purpose: a slow answer, a hang, a crash, a library that prints
to stdout, memory held by the process, a helper process it started. ``oracle`` (a native
dataset folder or its ``annotations.jsonl``) with ``oracle_marker`` makes the answer depend on
the prompt: a prompt containing the marker is answered with the reference (the field's value,
or all fields as JSON in document mode), any other prompt with the prompt itself, so a prompt
search has winners known in advance.

With ``continuous: true`` it behaves as a continuously batching engine (the worker's
continuous path, as vLLM's): ``max_num_seqs`` requests run at once, each one takes
1–3 engine steps of ``step_s`` seconds (so answers finish out of order), and the queue
behind them is admitted as slots free up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from vlmhb.worker.backends.base import Finished, LoadInfo, Result, check_image
from vlmhb.worker.protocol import Init, Request, Response


class EchoBackend:
    """Answers with the prompt (or a fixed ``answer``), after checking the images exist."""

    default_batch_size = 64

    def __init__(self) -> None:
        self.options: dict = {}
        self._ballast: bytearray | None = None
        self.continuous = False
        self._running: list[list] = []  # [request, steps left, submitted at]
        self._waiting: list[list] = []
        self._child: subprocess.Popen[bytes] | None = None
        self._references: dict[str, dict[str, str]] = {}

    def load(self, init: Init) -> LoadInfo:
        self.options = dict(init.load)
        self.continuous = bool(self.options.get("continuous", False))
        if self.options.get("fail_load"):
            raise RuntimeError(str(self.options["fail_load"]))
        if self.options.get("print_stdout"):
            print("a chatty library writes to stdout at load time")
            os.write(1, b"and straight to fd 1 as well\n")
        if self.options.get("spawn_child_s"):  # a helper process, as engines start them
            self._child = subprocess.Popen(["sleep", str(float(self.options["spawn_child_s"]))])
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

    # -- the continuous path ------------------------------------------------------------------

    def capacity(self) -> int:
        return int(self.options.get("max_num_seqs", 16))

    def submit(self, request: Request) -> Result | None:
        if self.options.get("refuse_on") and self.options["refuse_on"] in request.id:
            return f"engine refused {request.id}"
        self._waiting.append([request, 1 + len(request.id) % 3, time.perf_counter()])
        return None

    def pending(self) -> int:
        return len(self._running) + len(self._waiting)

    def poll(self) -> list[Finished]:
        free = self.capacity() - len(self._running)
        self._running += self._waiting[:free]
        del self._waiting[:free]
        time.sleep(float(self.options.get("step_s", 0)))
        finished: list[Finished] = []
        for slot in self._running:
            slot[1] -= 1
            if slot[1] == 0:
                result = self._answer(slot[0])
                if isinstance(result, Response):
                    result.latency_s = time.perf_counter() - slot[2]
                finished.append(Finished(slot[0].id, result))
        self._running = [slot for slot in self._running if slot[1] > 0]
        return finished

    def close(self) -> None:
        self._ballast = None
        if self._child is not None:
            self._child.kill()
            self._child.wait()


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
