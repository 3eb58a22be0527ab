"""Rendered results bodies of ended batches, kept so a second download is served like a file."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator

DEFAULT_MAX_BYTES = 256 << 20
STORED_CHUNK_BYTES = 1 << 20

BodyKey = tuple[str, int]
"""A batch id and how many of its requests were processed (fixed once it has ended)."""


class BodyCache:
    """Least recently used bodies, at most `max_bytes` in all (a larger body is not kept).

    An ended batch's results never change, so the API serves them as a stored file; the
    emulator renders each line the first time and afterwards writes the stored chunks.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[BodyKey, list[bytes]] = OrderedDict()
        self._held = 0

    @property
    def held(self) -> int:
        """Bytes kept now."""
        return self._held

    def get(self, key: BodyKey) -> list[bytes] | None:
        """The chunks of a stored body, or None."""
        chunks = self._bodies.get(key)
        if chunks is not None:
            self._bodies.move_to_end(key)
        return chunks

    def recording(self, key: BodyKey, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Pass `chunks` through; once all have gone out, keep them under `key`, joined
        into pieces of about `STORED_CHUNK_BYTES` (fewer, larger writes next time)."""
        kept: list[bytes] = []
        piece: list[bytes] = []
        size = held = 0
        for chunk in chunks:
            if size <= self.max_bytes:
                piece.append(chunk)
                held += len(chunk)
                size += len(chunk)
                if held >= STORED_CHUNK_BYTES:
                    kept.append(b"".join(piece))
                    piece, held = [], 0
            yield chunk
        if size <= self.max_bytes:
            if piece:
                kept.append(b"".join(piece))
            self._put(key, kept, size)

    def drop(self, batch_id: str) -> None:
        """Forget every body of a batch (it was deleted)."""
        for key in [key for key in self._bodies if key[0] == batch_id]:
            self._held -= sum(map(len, self._bodies.pop(key)))

    def _put(self, key: BodyKey, chunks: list[bytes], size: int) -> None:
        old = self._bodies.pop(key, None)
        if old is not None:
            self._held -= sum(map(len, old))
        self._bodies[key] = chunks
        self._held += size
        while self._held > self.max_bytes and self._bodies:
            _, evicted = self._bodies.popitem(last=False)
            self._held -= sum(map(len, evicted))
