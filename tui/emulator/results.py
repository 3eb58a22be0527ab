"""The results stream of an ended batch: JSONL lines generated on the fly, in completion order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from tui.emulator.content import error_envelope, message
from tui.emulator.model import BatchRecord

CHUNK_BYTES = 64 * 1024
_NEWLINE = orjson.OPT_APPEND_NEWLINE


def _unknown_line(custom_id: str, rank: int) -> bytes:
    """A result type this client has never seen, plus unknown fields (forward compatibility)."""
    return orjson.dumps({
        "custom_id": custom_id,
        "result": {"type": "deferred", "deferred_until": None, "shard": rank % 16,
                   "reason": {"kind": "capacity", "detail": "re-queued"}},
        "trace": {"region": "global", "attempt": 2},
    }, option=_NEWLINE)


def result_lines(record: BatchRecord, processed: int, *,
                 unknown: frozenset[int] = frozenset(),
                 malformed: frozenset[int] = frozenset()) -> Iterator[bytes]:
    """One `\\n`-terminated line per request, every custom_id exactly once (plus any malformed
    lines asked for, each a truncated copy inserted before the line it copies)."""
    source, walk, errors, key, style = (record.source, record.walk, record.errors, record.key,
                                        record.style)
    creator = source.cache_creator()
    unrun = b"canceled" if record.cancel_initiated is not None else b"expired"
    final = b'","result":{"type":"' + unrun + b'"}}\n'
    for rank in range(record.count):
        index = walk.index(rank)
        custom_id = source.custom_id(index)
        if rank in unknown:
            line = _unknown_line(custom_id, rank)
        elif rank >= processed:
            line = b'{"custom_id":"' + custom_id.encode() + final
        elif index in errors:
            line = orjson.dumps({"custom_id": custom_id, "result": {
                "type": "errored", "error": error_envelope(errors[index])}}, option=_NEWLINE)
        else:
            traits = source.traits(index)
            role = None
            if traits.cache_ttl is not None:
                role = "create" if index == creator else "read"
            line = orjson.dumps({"custom_id": custom_id, "result": {
                "type": "succeeded",
                "message": message(traits, key, index, style=style, cache_role=role)}},
                option=_NEWLINE)
        if rank in malformed:
            yield line[: max(1, len(line) // 2)] + b"\n"
        yield line


def chunked(lines: Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Group lines into writes of about `size` bytes."""
    buffer: list[bytes] = []
    held = 0
    for line in lines:
        buffer.append(line)
        held += len(line)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


def cut_short(lines: Iterable[bytes], at_line: int) -> Iterator[bytes]:
    """The lines up to `at_line`, then half of that line, then nothing (a cut connection)."""
    for number, line in enumerate(lines):
        if number >= at_line:
            yield line[: max(1, len(line) // 2)]
            return
        yield line
