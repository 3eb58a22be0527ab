"""Index rows of raw results lines: a strict decoder of the indexed fields, the lenient parser
behind it.

A results line is about 1 KB, nearly all of it message content the index never reads.
`fast_record` decodes only the fields the index keeps (msgspec skips the rest, checking its
syntax without building Python objects: half the cost of a full parse) and insists that each
is exactly what a well-formed result has. Anything else, or anything that is not valid JSON,
goes to `tui.core.results.index_record`, which decides what it is: so both give the same row
for every line, and the lenient rules live in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

import msgspec

from tui.core.results import (
    ERRORED,
    KNOWN_TYPES,
    MALFORMED,
    MAX_TOKENS,
    SUCCEEDED,
    IndexRecord,
    bare_record,
    index_record,
    truncate_message,
    whole_split,
)

_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]


class _CacheSplit(msgspec.Struct):
    ephemeral_5m_input_tokens: _Count = 0
    ephemeral_1h_input_tokens: _Count = 0


class _Usage(msgspec.Struct):
    input_tokens: _Count | None = None
    output_tokens: _Count | None = None
    cache_creation_input_tokens: _Count | None = None
    cache_read_input_tokens: _Count | None = None
    cache_creation: _CacheSplit | None = None
    service_tier: str | None = None


class _Message(msgspec.Struct):
    model: str | None = None
    stop_reason: str | None = None
    usage: _Usage | None = None


class _ErrorBody(msgspec.Struct):
    type: str | None = None
    message: str | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | None = None  # the envelope's own type is always "error"


class _Result(msgspec.Struct):
    type: Annotated[str, msgspec.Meta(min_length=1)]
    message: _Message | None = None
    error: _ErrorEnvelope | None = None


class _Line(msgspec.Struct):
    custom_id: str
    result: _Result


_decode = msgspec.json.Decoder(_Line).decode
_NO_USAGE = _Usage()
_NO_SPLIT = _CacheSplit()  # every write a 5-minute one, as `cache_split` has it


def fast_record(line: bytes, seq: int = 0, offset: int = 0) -> IndexRecord:
    """`index_record`'s row for `line`, decoding only the indexed fields when they are
    well-formed (nearly always), else through `index_record` itself."""
    if not line.isascii():
        try:  # msgspec does not check the UTF-8 of the strings it skips; orjson does
            line.decode()
        except UnicodeDecodeError:
            return index_record(line, seq, offset)
    try:
        obj = _decode(line)
    except msgspec.DecodeError:  # not JSON, or a field of another shape: the lenient rules
        return index_record(line, seq, offset)
    result = obj.result
    kind = result.type
    if kind == SUCCEEDED:
        message = result.message
        if message is None:
            return index_record(line, seq, offset)
        usage = message.usage or _NO_USAGE
        cache_write = usage.cache_creation_input_tokens
        split = usage.cache_creation or _NO_SPLIT
        write_5m, write_1h = whole_split(
            split.ephemeral_5m_input_tokens, split.ephemeral_1h_input_tokens, cache_write)
        return (
            seq,
            obj.custom_id,
            kind,
            None,
            None,
            message.stop_reason,
            message.model,
            usage.input_tokens,
            usage.output_tokens,
            cache_write,
            usage.cache_read_input_tokens,
            usage.service_tier,
            offset,
            len(line),
            write_5m,
            write_1h,
        )
    if kind == ERRORED:
        envelope = result.error
        inner = envelope.error if envelope is not None else None
        if inner is not None:
            return bare_record(seq, obj.custom_id, kind, offset, len(line), inner.type,
                               truncate_message(inner.message))
    return bare_record(seq, obj.custom_id, kind, offset, len(line))


@dataclass(slots=True)
class LineBatch:
    """The index rows of some consecutive lines, and what they held."""

    rows: list[IndexRecord]
    malformed: int = 0
    unknown: int = 0

    def extend(self, later: LineBatch) -> None:
        """Add the rows of the lines that follow."""
        self.rows.extend(later.rows)
        self.malformed += later.malformed
        self.unknown += later.unknown


def index_lines(lines: Iterable[bytes], seq: int, offset: int) -> LineBatch:
    """Index consecutive `lines` (each was followed by one ``\\n``; blank ones are skipped
    and take no seq), the first of which starts at byte `offset` and gets `seq`."""
    batch = LineBatch([])
    append = batch.rows.append
    for line in lines:
        length = len(line)
        if length and not line.isspace():  # is_blank(), inlined: once per result
            row = fast_record(line, seq, offset)
            kind = row[2]
            if kind not in KNOWN_TYPES:
                if kind == MALFORMED:
                    batch.malformed += 1
                else:
                    batch.unknown += 1
            append(row)
            seq += 1
        offset += length + 1
    return batch
