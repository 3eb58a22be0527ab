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
"""The index fields of one line, in `RECORD_FIELDS` order. A plain tuple: one is built per
result and goes straight into SQLite."""


def record(
    custom_id: str, kind: str, error_type: str | None = None, error_message: str | None = None
) -> LineRecord:
    """A record with no usage (errored, canceled, expired, unknown, malformed)."""
    return (custom_id, kind, error_type, error_message, None, None, None, None, None, None, None)


def truncate_message(message: str | None, limit: int = ERROR_MESSAGE_CHARS) -> str | None:
    """Cut an error message to `limit` characters, marking the cut with an ellipsis."""
    if message is None or len(message) <= limit:
        return message
    return message[: limit - 1] + "…"


def malformed_record(line: bytes) -> LineRecord:
    """The record of a line that could not be read as a result object."""
    match = _CUSTOM_ID_RE.search(line)
    return record(match.group(1).decode("ascii") if match else "", MALFORMED)


def parse_line(line: bytes) -> LineRecord:
    """Parse one results line (without its newline) into its index record.

    Never raises: a line that is not JSON, or not shaped like a result, becomes a
    ``malformed`` record; an unknown ``result.type`` is kept as it is. This runs once per
    result (100,000 times for a big batch), hence the inlined type checks.
    """
    try:
        obj = orjson.loads(line)
        custom_id = obj["custom_id"]
        result = obj["result"]
        kind = result["type"]
    except (orjson.JSONDecodeError, TypeError, KeyError, IndexError):
        return malformed_record(line)
    if type(custom_id) is not str or type(kind) is not str or not kind:
        return malformed_record(line)
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
        # `type(x) is int` also keeps booleans out.
        return (
            custom_id,
            kind,
            None,
            None,
            stop if type(stop) is str else None,
            model if type(model) is str else None,
            tokens_in if type(tokens_in) is int else None,
            tokens_out if type(tokens_out) is int else None,
            cache_write if type(cache_write) is int else None,
            cache_read if type(cache_read) is int else None,
            tier if type(tier) is str else None,
        )
    if kind == ERRORED:
        # The envelope's own type is always "error"; the real type is one level down.
        envelope = result.get("error")
        inner = envelope.get("error") if type(envelope) is dict else None
        if type(inner) is not dict:
            return record(custom_id, kind)
        error_type = inner.get("type")
        message_text = inner.get("message")
        return record(
            custom_id,
            kind,
            error_type if type(error_type) is str else None,
            truncate_message(message_text) if type(message_text) is str else None,
        )
    return record(custom_id, kind)


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
        """Add bytes; return the lines they complete."""
        parts = chunk.split(b"\n")
        last = parts.pop()
        if not parts:  # no newline in this chunk
            if last:
                self._tail.append(last)
                self._held += len(last)
            return []
        if self._tail:
            self._tail.append(parts[0])
            parts[0] = b"".join(self._tail)
        lines, self._base = _lines(parts, self._base)
        self._tail = [last] if last else []
        self._held = len(last)
        return lines

    def flush(self) -> list[tuple[int, bytes]]:
        """End of stream: the unterminated last line, if any."""
        tail = b"".join(self._tail)
        base = self._base
        self._tail = []
        self._held = 0
        self._base += len(tail)
        return _lines([tail], base)[0] if tail else []


def _lines(parts: list[bytes], base: int) -> tuple[list[tuple[int, bytes]], int]:
    """The non-blank lines among `parts` with their offsets, and the offset after them."""
    out: list[tuple[int, bytes]] = []
    append = out.append
    offset = base
    for line in parts:
        if line and not line.isspace():
            append((offset, line))
        offset += len(line) + 1
    return out, offset


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
class UsageTotals:
    """Token sums of the succeeded results of one model."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


def missing_ids(submitted: Iterable[str], returned: Collection[str]) -> list[str]:
    """Submitted custom_ids absent from the results, in submission order, once each."""
    seen: set[str] = set()
    out: list[str] = []
    for custom_id in submitted:
        if custom_id not in returned and custom_id not in seen:
            seen.add(custom_id)
            out.append(custom_id)
    return out
