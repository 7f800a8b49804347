"""Which string ids a pass has met, held as 128-bit digests: ~75 B an id, not ~110 B and up.

Readers of ``answers.jsonl`` count a repeated id once; at a million samples the ids
themselves would be the largest thing in memory. A 128-bit digest collides with odds
below 1e-26 at that size (run ids rest on the same kind of hash).
"""

from __future__ import annotations

import hashlib


class SeenIds:
    """``add`` says whether an id is new, and remembers it."""

    __slots__ = ("_digests",)

    def __init__(self) -> None:
        self._digests: set[int] = set()

    def add(self, key: str) -> bool:
        """Whether ``key`` was not seen before (it is seen from now on)."""
        raw = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        digest = int.from_bytes(raw, "little")
        if digest in self._digests:
            return False
        self._digests.add(digest)
        return True

    def __len__(self) -> int:
        return len(self._digests)
