"""Chat messages from a ``Request``: system prompt, images, then the prompt.

Standard library only; shared by the chat-style backends (openai, sglang, hf, vllm). The
message shape is the OpenAI one, ``[{"role": ..., "content": [parts]}]``; how an image part
looks depends on the engine, so the caller passes a function building it from a path.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vlmhb.worker.protocol import Request

Message = dict[str, Any]
ImagePart = Callable[[str], dict[str, Any]]

_MIME_BY_SUFFIX = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def local_image_part(path: str) -> dict[str, Any]:
    """An image part naming a local file (what transformers chat templates accept)."""
    return {"type": "image", "image": path}


def url_image_part(path: str) -> dict[str, Any]:
    """An image part carrying the file as a data URL (what OpenAI-compatible servers accept)."""
    return {"type": "image_url", "image_url": {"url": image_data_url(path)}}


def image_mime(path: str) -> str:
    """The MIME type of an image file, from its suffix (``image/png`` when unknown)."""
    suffix = Path(path).suffix.lower()
    return _MIME_BY_SUFFIX.get(suffix) or mimetypes.guess_type(path)[0] or "image/png"


def image_data_url(path: str) -> str:
    """``data:<mime>;base64,<bytes>`` for an image file."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:{image_mime(path)};base64,{data}"


def build_messages(request: Request, image_part: ImagePart = local_image_part) -> list[Message]:
    """The chat for one request: an optional system message, then one user message.

    The user message holds one part per image (in order) followed by the prompt text. An
    empty or blank system prompt adds no system message.
    """
    messages: list[Message] = []
    if request.system and request.system.strip():
        messages.append({"role": "system", "content": request.system})
    content: list[dict[str, Any]] = [image_part(path) for path in request.images]
    content.append({"type": "text", "text": request.prompt})
    messages.append({"role": "user", "content": content})
    return messages


def merged_generation(defaults: dict[str, Any], request: Request) -> dict[str, Any]:
    """Generation parameters: the init's defaults overridden by the request's own.

    Runner bookkeeping keys (``fields``, ``mode``, ``zone``) are dropped: they are not
    sampling options.
    """
    merged = {**defaults, **request.generation}
    for key in ("fields", "mode", "zone"):
        merged.pop(key, None)
    return merged
