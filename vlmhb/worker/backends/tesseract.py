"""The ``tesseract`` backend: the classical OCR baseline (pytesseract over Debian's tesseract).

Each image is recognized once (``--psm 6``, ``OMP_THREAD_LIMIT=1``) into word boxes
(Tesseract's TSV) kept in a bounded LRU cache, so the many field requests of one document cost
one OCR. What a request gets back depends on what it asks for:

* ``field`` set → that field's value, found as the load option ``extraction`` says:
  ``layout`` (default: the value nearest its label in any direction, numbered fields, values
  found by type; ``ocr_layout``, with the line rules of ``ocr_fields`` for the generator's
  invoice header and INN/KPP pairs, and as a fallback), ``lines`` (the line rules only), or
  ``zones`` (OCR only the field's box, ``generation["zone"]`` = ``[x0, y0, x1, y1]`` pixels,
  which the runner sends where the dataset has ``meta.bboxes``: zonal OCR; ``layout`` where a
  field has no box or nothing is read in it);
* ``generation["mode"] == "document"``, or no field but ``generation["fields"]`` → a JSON
  object of the fields found (``doc_type`` says which form);
* otherwise (``mode`` ``text``, or a plain prompt) → the full transcription.

A field not found is looked for again in the page read with ``fallback_psm`` (4, one column of
text of varying sizes; ``0`` turns it off), which reads table rows that ``--psm 6`` garbles.

Load options: ``lang`` (``rus+eng``), ``psm`` (6), ``fallback_psm`` (4), ``extraction``
(``layout``), ``cache_size`` (64 pages), ``parallel`` (1: images recognized at once in a
batch), ``tesseract_cmd`` (path to the binary), ``timeout_s`` (120: one page's OCR; past
it, that request is an error).
Latency per request is its share of the OCR time of its images plus extraction; there are
no tokens.
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vlmhb.validity import check, field_type
from vlmhb.worker.backends.base import LoadInfo, Result, check_image, package_versions
from vlmhb.worker.backends.ocr_fields import (
    canonical_field,
    document_fields,
    extract_field,
    has_line_rule,
)
from vlmhb.worker.backends.ocr_layout import Line, extract_from_boxes, parse_tsv, zone_value
from vlmhb.worker.protocol import Init, Request, Response

APT_HINT = "apt-get install tesseract-ocr tesseract-ocr-rus"
EXTRACTIONS = ("layout", "lines", "zones")


def _lang_packages(langs: list[str]) -> str:
    return " ".join(f"tesseract-ocr-{lang}" for lang in langs)


class TesseractBackend:
    """OCR with Tesseract; answers fields, whole documents as JSON, or full text."""

    def __init__(self) -> None:
        self.lang = "rus+eng"
        self.psm = 6
        self.fallback_psm: int | None = 4
        self.cache_size = 64
        self.parallel = 1
        self.timeout_s = 120.0
        self.extraction = "layout"
        self._cache: OrderedDict[tuple[str, float, int, int], list[Line]] = OrderedDict()
        self._zones: OrderedDict[tuple[str, tuple[int, ...]], str] = OrderedDict()
        self._pytesseract: Any = None
        self._image_module: Any = None

    def load(self, init: Init) -> LoadInfo:
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        try:
            import pytesseract
            from PIL import Image
        except ImportError as exc:
            raise RuntimeError(
                f"tesseract backend needs the Python packages pytesseract and pillow in its env "
                f"({exc.name} is missing)"
            ) from None
        opts = init.load
        if opts.get("tesseract_cmd"):
            pytesseract.pytesseract.tesseract_cmd = str(opts["tesseract_cmd"])
        self.lang = str(opts.get("lang", "rus+eng"))
        self.psm = int(opts.get("psm", 6))
        fallback = opts.get("fallback_psm", 4)
        self.fallback_psm = int(fallback) if fallback and int(fallback) != self.psm else None
        self.cache_size = max(1, int(opts.get("cache_size", 64)))
        self.parallel = max(1, int(opts.get("parallel", 1)))
        self.timeout_s = float(opts.get("timeout_s", 120.0))
        self.extraction = str(opts.get("extraction", "layout"))
        if self.extraction not in EXTRACTIONS:
            known = ", ".join(EXTRACTIONS)
            raise RuntimeError(f"tesseract extraction {self.extraction!r} unknown (one of {known})")
        self._pytesseract, self._image_module = pytesseract, Image
        version = self._check_installation()
        versions = {"tesseract": version, **package_versions("pytesseract", "pillow")}
        return LoadInfo(device="cpu", versions=versions)

    def _check_installation(self) -> str:
        """The tesseract version; raise a one-line reason naming the apt packages if unusable."""
        pytesseract = self._pytesseract
        try:
            version = str(pytesseract.get_tesseract_version()).split()[0]
        except (pytesseract.TesseractNotFoundError, OSError):
            raise RuntimeError(f"the tesseract binary is not installed; {APT_HINT}") from None
        wanted = [lang for lang in self.lang.split("+") if lang]
        try:
            available = set(pytesseract.get_languages(config=""))
        except pytesseract.TesseractError as exc:
            raise RuntimeError(f"tesseract cannot list its languages ({exc}); {APT_HINT}") from None
        missing = [lang for lang in wanted if lang not in available]
        if missing:
            where = os.environ.get("TESSDATA_PREFIX") or "tesseract's default tessdata folder"
            raise RuntimeError(
                f"tesseract language data missing: {'+'.join(missing)} (looked in {where}); "
                f"apt-get install tesseract-ocr {_lang_packages(missing)}"
            )
        return version

    def generate(self, batch: list[Request]) -> list[Result]:
        ocr_cost, failures = self._recognize_batch(batch)
        return [self._answer(request, ocr_cost, failures) for request in batch]

    def close(self) -> None:
        self._cache.clear()
        self._zones.clear()

    def _recognize_batch(self, batch: list[Request]) -> tuple[dict[str, float], dict[str, str]]:
        """OCR the batch's images not cached yet: (cost per request sharing each, failures)."""
        users: dict[str, int] = {}
        for request in batch:
            for path in dict.fromkeys(request.images):
                users[path] = users.get(path, 0) + 1
        todo = [path for path in users if self._cached(path, self.psm) is None]
        if self.parallel > 1 and len(todo) > 1:
            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                outcomes = dict(zip(todo, pool.map(self._recognize_timed, todo), strict=True))
        else:
            outcomes = {path: self._recognize_timed(path) for path in todo}
        cost = {path: seconds / users[path] for path, (seconds, _) in outcomes.items()}
        failures = {path: error for path, (_, error) in outcomes.items() if error}
        return cost, failures

    def _recognize_timed(self, path: str) -> tuple[float, str | None]:
        start = time.perf_counter()
        error = None
        try:
            self._recognize(path, self.psm)
        except Exception as exc:  # one unreadable image is one error response
            error = f"{type(exc).__name__}: {exc}"
        return time.perf_counter() - start, error

    def _key(self, path: str, psm: int) -> tuple[str, float, int, int] | None:
        try:
            stat = Path(path).stat()
        except OSError:
            return None
        return (path, stat.st_mtime, stat.st_size, psm)

    def _cached(self, path: str, psm: int) -> list[Line] | None:
        key = self._key(path, psm)
        if key is None or key not in self._cache:
            return None
        self._cache.move_to_end(key)
        return self._cache[key]

    def _recognize(self, path: str, psm: int) -> list[Line]:
        """The text lines of one image, with word boxes (cached by path, mtime, size, psm)."""
        cached = self._cached(path, psm)
        if cached is not None:
            return cached
        check_image(path)
        with self._image_module.open(path) as image:
            image.load()
            tsv = self._pytesseract.image_to_data(
                image, lang=self.lang, config=f"--psm {psm}", timeout=self.timeout_s
            )
        lines = parse_tsv(tsv)
        key = self._key(path, psm)
        if key is not None:
            self._cache[key] = lines
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return lines

    def _answer(
        self, request: Request, ocr_cost: dict[str, float], failures: dict[str, str]
    ) -> Result:
        start = time.perf_counter()
        failed = [failures[path] for path in request.images if path in failures]
        if failed:
            return f"cannot OCR {request.id}: {failed[0]}"
        try:
            zone = request.generation.get("zone")
            text = ""
            if self.extraction == "zones" and request.field and _is_box(zone):
                assert zone is not None  # _is_box checked it
                text = zone_value(
                    self._read_zone(request.images[0], zone),
                    request.doc_type,
                    canonical_field(request.doc_type, request.field),
                )
            if not text:  # no box, or nothing read inside it: the page's word boxes
                lines = self._lines(request, self.psm)
                text = answer_text(request, lines, self._fallback(request), self.extraction)
        except Exception as exc:  # evicted from the cache and now unreadable
            return f"cannot OCR {request.id}: {type(exc).__name__}: {exc}"
        latency = (
            time.perf_counter() - start + sum(ocr_cost.get(p, 0.0) for p in set(request.images))
        )
        return Response(id=request.id, text=text, latency_s=latency, finish_reason="stop")

    def _lines(self, request: Request, psm: int) -> list[Line]:
        return [line for path in request.images for line in self._recognize(path, psm)]

    def _read_zone(self, path: str, box: list[float]) -> str:
        """The text inside one box of a page (a little margin around it), cached."""
        key = (path, tuple(int(v) for v in box))
        if key in self._zones:
            return self._zones[key]
        check_image(path)
        x0, y0, x1, y1 = key[1]
        margin = max(4, (y1 - y0) // 4)
        with self._image_module.open(path) as image:
            image.load()
            crop = image.crop((x0 - margin, y0 - margin, x1 + margin, y1 + margin))
        # a box twice as tall as wide holds vertical text (a passport's number on its edge):
        # read it turned both ways and keep the reading with more letters and digits
        turns = (0,) if y1 - y0 < 2 * (x1 - x0) else (-90, 90)
        readings = [
            self._pytesseract.image_to_string(
                crop.rotate(turn, expand=True) if turn else crop,
                lang=self.lang,
                config="--psm 6",
                timeout=self.timeout_s,
            )
            for turn in turns
        ]
        text = max(readings, key=lambda r: sum(c.isalnum() for c in r))
        self._zones[key] = " ".join(text.split())
        while len(self._zones) > 64 * self.cache_size:
            self._zones.popitem(last=False)
        return self._zones[key]

    def _fallback(self, request: Request) -> Callable[[], list[Line]] | None:
        """Lines read again with the fallback page segmentation, for fields not found."""
        psm = self.fallback_psm
        if psm is None:
            return None
        return lambda: self._lines(request, psm)


def answer_mode(request: Request) -> str:
    """``field``, ``document`` or ``text``: what the request asks for."""
    mode = request.generation.get("mode")
    if request.field:
        return "field"
    if mode in ("document", "text"):
        return str(mode)
    if request.generation.get("fields") or (request.doc_type and "json" in request.prompt.lower()):
        return "document"
    return "text"


def _is_box(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) for v in value)
        and value[2] > value[0]
        and value[3] > value[1]
    )


def field_value(lines: list[Line], doc_type: str | None, field: str, extraction: str) -> str:
    """One field from a page's lines: the line rules, the word boxes, or both (see module)."""
    texts = [line.text for line in lines]
    if extraction == "lines":
        return extract_field(texts, doc_type, field)
    name = canonical_field(doc_type, field)
    if has_line_rule(doc_type, name):  # the invoice header, INN/KPP pairs
        by_rule = extract_field(texts, doc_type, field)
        kind = field_type(doc_type, name)
        if by_rule and (not kind or check(kind, by_rule) is None):
            return by_rule
        return extract_from_boxes(lines, doc_type, name) or by_rule
    return extract_from_boxes(lines, doc_type, name) or extract_field(texts, doc_type, field)


def answer_text(
    request: Request,
    lines: list[Line],
    fallback: Callable[[], list[Line]] | None = None,
    extraction: str = "layout",
) -> str:
    """The answer to one request from the recognized lines of its images.

    Fields not found in ``lines`` are looked for again in ``fallback()`` (the page read with
    another segmentation: tables defeat ``--psm 6`` now and then).
    """
    mode = answer_mode(request)
    doc_type = request.doc_type
    if mode == "field":
        value = field_value(lines, doc_type, str(request.field), extraction)
        if not value and fallback is not None:
            value = field_value(fallback(), doc_type, str(request.field), extraction)
        return value
    if mode == "document":
        asked = request.generation.get("fields")
        names = list(asked) if isinstance(asked, list) and asked else document_fields(doc_type)
        found = {name: field_value(lines, doc_type, name, extraction) for name in names}
        missing = [name for name in names if not found[name]]
        if missing and fallback is not None:
            again = fallback()
            found.update({name: field_value(again, doc_type, name, extraction) for name in missing})
        return json.dumps({name: found[name] for name in names if found[name]}, ensure_ascii=False)
    return "\n".join(line.text for line in lines)
