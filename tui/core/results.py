"""Result lines of an ended batch: parse one raw JSONL line into a compact index record."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields

import orjson

from tui.core.errors import RetryClass, classify

SUCCEEDED = "succeeded"
ERRORED = "errored"
CANCELED = "canceled"
EXPIRED = "expired"
MALFORMED = "malformed"
"""Index type of a line that is not a well-formed result object (kept raw, counted)."""

KNOWN_TYPES: frozenset[str] = frozenset({SUCCEEDED, ERRORED, CANCELED, EXPIRED})
ERROR_MESSAGE_CHARS = 200
MAX_TOKENS = (1 << 63) - 1  # SQLite's largest integer; orjson reads up to 2**64 - 1

# Salvages the custom_id of a line that is not valid JSON, so a cut line still names its request.
_CUSTOM_ID_RE = re.compile(rb'"custom_id"\s*:\s*"([A-Za-z0-9_-]{1,64})"')


RECORD_FIELDS: tuple[str, ...] = (
    "custom_id",
    "type",
    "error_type",
    "error_message",
    "stop_reason",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "service_tier",
)
LineRecord = tuple[
    str,  # custom_id
    str,  # type
    str | None,  # error_type (the nested one)
    str | None,  # error_message, truncated
    str | None,  # stop_reason
    str | None,  # model
    int | None,  # input_tokens
    int | None,  # output_tokens
    int | None,  # cache_creation_input_tokens
    int | None,  # cache_read_input_tokens
    str | None,  # service_tier
]
"""The fields `parse_line` reads from one line, in `RECORD_FIELDS` order."""

IndexRecord = tuple[
    int,  # seq
    str,
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    int | None,
    int | None,
    int | None,
    int | None,
    str | None,
    int,  # offset
    int,  # length
    int | None,  # cache_creation_5m
    int | None,  # cache_creation_1h
]
"""A whole index row, in `IndexRow` field order: seq, the `LineRecord` fields, offset, length,
then the 5-minute / 1-hour split of cache writes (succeeded results only). A plain tuple,
built once per result, that goes straight into SQLite."""


def bare_record(
    seq: int,
    custom_id: str,
    kind: str,
    offset: int,
    length: int,
    error_type: str | None = None,
    error_message: str | None = None,
) -> IndexRecord:
    """A row with no usage (errored, canceled, expired, unknown, malformed)."""
    return (
        seq,
        custom_id,
        kind,
        error_type,
        error_message,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        offset,
        length,
        None,
        None,
    )


def truncate_message(message: str | None, limit: int = ERROR_MESSAGE_CHARS) -> str | None:
    """Cut an error message to `limit` characters, marking the cut with an ellipsis."""
    if message is None or len(message) <= limit:
        return message
    return message[: limit - 1] + "…"


def cache_split(split: object, total: int | None) -> tuple[int, int]:
    """(5-minute, 1-hour) cache-write tokens of one result, priced 1.25x and 2x of input.

    `split` is ``usage.cache_creation``, `total` the valid ``cache_creation_input_tokens``.
    Without a split every write is a 5-minute one; the split never loses tokens the total
    counts (the rule `tui.core.cost` applies to raw usage, so both give the same cost).
    """
    write_5m = write_1h = 0
    if type(split) is dict:
        write_5m = split.get("ephemeral_5m_input_tokens", 0)
        write_1h = split.get("ephemeral_1h_input_tokens", 0)
        if type(write_5m) is not int or not 0 <= write_5m <= MAX_TOKENS:
            write_5m = 0
        if type(write_1h) is not int or not 0 <= write_1h <= MAX_TOKENS:
            write_1h = 0
    return whole_split(write_5m, write_1h, total)


def whole_split(write_5m: int, write_1h: int, total: int | None) -> tuple[int, int]:
    """A valid split that keeps every cache-write token the `total` counts: those the split
    misses are 5-minute writes."""
    if total is not None and total - write_1h > write_5m:
        write_5m = total - write_1h
    return write_5m, write_1h


def _malformed(line: bytes, seq: int, offset: int) -> IndexRecord:
    match = _CUSTOM_ID_RE.search(line)
    custom_id = match.group(1).decode("ascii") if match else ""
    return bare_record(seq, custom_id, MALFORMED, offset, len(line))


def parse_line(line: bytes) -> LineRecord:
    """Parse one results line (without its newline) into the fields the index keeps.

    Never raises: a line that is not JSON, or not shaped like a result, is ``malformed``;
    an unknown ``result.type`` is kept as it is.
    """
    return index_record(line)[1:12]


def index_record(line: bytes, seq: int = 0, offset: int = 0) -> IndexRecord:
    """`parse_line`, framed as the line's whole index row (its `seq`, byte `offset` and
    length around the parsed fields, then `cache_split`'s pair). This runs once per result
    (100,000 times for a big batch), hence one tuple per line and the inlined type checks."""
    try:
        obj = orjson.loads(line)
        custom_id = obj["custom_id"]
        result = obj["result"]
        kind = result["type"]
    except (orjson.JSONDecodeError, TypeError, KeyError, IndexError):
        return _malformed(line, seq, offset)
    if type(custom_id) is not str or type(kind) is not str or not kind:
        return _malformed(line, seq, offset)
    if kind == SUCCEEDED:
        message = result.get("message")
        if type(message) is not dict:
            message = {}
        usage = message.get("usage")
        if type(usage) is not dict:
            usage = {}
        stop = message.get("stop_reason")
        model = message.get("model")
        tokens_in = usage.get("input_tokens")
        tokens_out = usage.get("output_tokens")
        cache_write = usage.get("cache_creation_input_tokens")
        cache_read = usage.get("cache_read_input_tokens")
        tier = usage.get("service_tier")
        # `type(x) is int` also keeps booleans out; one absurd count must not sink the store.
        cache_write = (
            cache_write if type(cache_write) is int and 0 <= cache_write <= MAX_TOKENS else None
        )
        write_5m, write_1h = cache_split(usage.get("cache_creation"), cache_write)
        return (
            seq,
            custom_id,
            kind,
            None,
            None,
            stop if type(stop) is str else None,
            model if type(model) is str else None,
            tokens_in if type(tokens_in) is int and 0 <= tokens_in <= MAX_TOKENS else None,
            tokens_out if type(tokens_out) is int and 0 <= tokens_out <= MAX_TOKENS else None,
            cache_write,
            cache_read if type(cache_read) is int and 0 <= cache_read <= MAX_TOKENS else None,
            tier if type(tier) is str else None,
            offset,
            len(line),
            write_5m,
            write_1h,
        )
    if kind == ERRORED:
        # The envelope's own type is always "error"; the real type is one level down.
        envelope = result.get("error")
        inner = envelope.get("error") if type(envelope) is dict else None
        if type(inner) is not dict:
            return bare_record(seq, custom_id, kind, offset, len(line))
        error_type = inner.get("type")
        message_text = inner.get("message")
        return bare_record(
            seq,
            custom_id,
            kind,
            offset,
            len(line),
            error_type if type(error_type) is str else None,
            truncate_message(message_text) if type(message_text) is str else None,
        )
    return bare_record(seq, custom_id, kind, offset, len(line))


class LineSplitter:
    """Cuts a byte stream into ``\\n``-terminated lines whatever the chunk boundaries.

    Each line comes with the byte offset of its first byte in the stream; the line
    excludes its ``\\n`` (a ``\\r`` before it is kept, so lengths stay byte-exact).
    Blank lines are skipped.
    """

    __slots__ = ("_base", "_held", "_tail")

    def __init__(self) -> None:
        self._tail: list[bytes] = []  # pieces of the unfinished line (a long line spans chunks)
        self._held = 0
        self._base = 0  # stream offset of the first byte of the unfinished line

    @property
    def pending(self) -> int:
        """Bytes held back as an unfinished line."""
        return self._held

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        """Add bytes; return the lines they complete, each with its offset."""
        return _lines(*self.feed_parts(chunk))

    def feed_parts(self, chunk: bytes) -> tuple[int, list[bytes]]:
        """Like `feed`, for hot loops: the offset of the first completed line, and the lines,
        blank ones included (each was followed by one ``\\n``)."""
        parts = chunk.split(b"\n")
        last = parts.pop()
        base = self._base
        if not parts:  # no newline in this chunk
            if last:
                self._tail.append(last)
                self._held += len(last)
            return base, parts
        if self._tail:
            self._tail.append(parts[0])
            parts[0] = b"".join(self._tail)
        self._base = base + sum(map(len, parts)) + len(parts)
        self._tail = [last] if last else []
        self._held = len(last)
        return base, parts

    def flush(self) -> list[tuple[int, bytes]]:
        """End of stream: the unterminated last line, if any."""
        tail = b"".join(self._tail)
        base = self._base
        self._tail = []
        self._held = 0
        self._base += len(tail)
        return _lines(base, [tail]) if tail else []


def is_blank(line: bytes) -> bool:
    """Blank lines carry no result and are skipped."""
    return not line or line.isspace()


def _lines(base: int, parts: list[bytes]) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    offset = base
    for line in parts:
        if not is_blank(line):
            out.append((offset, line))
        offset += len(line) + 1
    return out


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One result as the index knows it; the full body is read from the raw store on demand."""

    seq: int
    custom_id: str
    type: str
    error_type: str | None
    error_message: str | None
    stop_reason: str | None
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cache_creation_input_tokens: int | None
    cache_read_input_tokens: int | None
    service_tier: str | None
    offset: int
    length: int
    cache_creation_5m: int | None = None
    cache_creation_1h: int | None = None

    @property
    def retry_class(self) -> RetryClass:
        return classify(self.type, self.error_type)

    @property
    def is_known_type(self) -> bool:
        return self.type in KNOWN_TYPES

    @property
    def total_input_tokens(self) -> int | None:
        """input + cache creation + cache read tokens (None when there is no usage)."""
        if self.input_tokens is None:
            return None
        return (
            self.input_tokens
            + (self.cache_creation_input_tokens or 0)
            + (self.cache_read_input_tokens or 0)
        )


INDEX_COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(IndexRow))
"""IndexRow's fields, which are also the index table's columns after ``batch_id``."""


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What the local store holds for one batch.

    `lines` counts every stored line, malformed ones included; the store is complete when
    the readable results number exactly `expected` (the batch's request total).
    """

    batch_id: str
    complete: bool
    expected: int
    lines: int
    bytes: int
    malformed: int = 0
    unknown: int = 0
    attempts: int = 0
    downloaded_at: str | None = None
    seconds: float | None = None
    last_error: str | None = None

    @property
    def results(self) -> int:
        """Stored lines that are readable results (malformed lines are kept but not counted)."""
        return self.lines - self.malformed

    @property
    def missing(self) -> int:
        """Results the batch promised that the store does not hold."""
        return max(0, self.expected - self.results)


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """Reported while results download.

    `lines` have been received and parsed; the first `stored` of them can be queried already.
    """

    batch_id: str
    attempt: int
    lines: int
    bytes: int
    expected: int
    malformed: int = 0
    unknown: int = 0
    stored: int = 0

    @property
    def fraction(self) -> float:
        return min(1.0, self.lines / self.expected) if self.expected else 0.0


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Results that failed the same way: one error type and message (or expired, malformed...)."""

    error_type: str | None
    message: str
    count: int
    retry_class: RetryClass
    result_type: str = ERRORED


@dataclass(frozen=True, slots=True)
class ModelTokenSums:
    """Token sums of the succeeded results of one model, as the index keeps them.

    Its `asdict` is what `tui.core.cost.UsageTotals.from_mapping` takes per model: the
    5-minute / 1-hour split of cache writes and `non_batch_tier`, the results whose
    ``service_tier`` is not ``batch``, included.
    """

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_5m: int = 0
    cache_creation_1h: int = 0
    non_batch_tier: int = 0


def missing_ids(submitted: Iterable[str], returned: Collection[str]) -> list[str]:
    """Submitted custom_ids absent from the results, in submission order, once each."""
    seen: set[str] = set()
    out: list[str] = []
    for custom_id in submitted:
        if custom_id not in returned and custom_id not in seen:
            seen.add(custom_id)
            out.append(custom_id)
    return out
