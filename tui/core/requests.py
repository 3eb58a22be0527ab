"""Batch request files: defensive JSONL parsing, validation by line, splitting, token sizes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tui.core.sanitize import safe_cell

MAX_REQUESTS_PER_BATCH = 100_000
DEFAULT_MAX_PER_BATCH = 10_000
MAX_BATCH_BYTES = 256 * 1000 * 1000
"""The API's 256 MB body limit, read as decimal megabytes: the smaller reading is the safe one."""
ENVELOPE_BYTES = 1_000_000
"""Headroom under MAX_BATCH_BYTES for `{"requests":[...]}` and serializer differences."""
DEFAULT_MAX_BATCH_BYTES = MAX_BATCH_BYTES - ENVELOPE_BYTES
MAX_LINE_BYTES = 32 * 1000 * 1000
"""A single Messages request may be at most 32 MB; a longer line cannot be a valid request."""
MAX_PROBLEMS = 1_000
MAX_DUMP_DEPTH = 254
"""orjson serialises at most this many nested levels (it parses up to 1024)."""

CUSTOM_ID_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_BOM = b"\xef\xbb\xbf"
# `{"custom_id":"` + `","params":` + `}` around the id and the params, plus the list comma.
_ITEM_OVERHEAD = len(b'{"custom_id":"","params":}') + 1
_REQUEST_KEYS = frozenset({"custom_id", "params"})
# The docs list each of these as a validation error inside a batch.
_FORBIDDEN_PARAMS: Mapping[str, str] = {
    "stream": "streaming is not supported in a batch; remove `stream`",
    "speed": "`speed` is not allowed in a batch",
    "store": "`store` is not allowed in a batch",
    "previous_thread_event_id": "`previous_thread_event_id` is not allowed in a batch",
    "cache_hint": "`cache_hint` is not allowed in a batch",
    "context_hint": "`context_hint` is not allowed in a batch",
}
_CHARS_PER_TOKEN = 4
_TOKENS_PER_BINARY_BLOCK = 1_600  # an image or document sent as base64: counted flat, not by size


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """Stands in for a line longer than the reader's limit; its bytes were never kept."""

    size: int


@dataclass(frozen=True, slots=True)
class RequestProblem:
    """One thing wrong with a request file: 1-based line (0: the whole file), field, message."""

    line: int
    field: str
    message: str

    def describe(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        head = f"{where}: {self.field}" if self.field else where
        return f"{head}: {self.message}"


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One valid request: its custom_id, params, where it came from and its size in the body."""

    custom_id: str
    params: dict[str, Any]
    line: int = 0
    size_bytes: int = 0
    params_json: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def build(cls, custom_id: str, params: dict[str, Any], line: int = 0) -> BatchRequest:
        """Make a request from known-good params (a retry from the ledger, a test)."""
        encoded = orjson.dumps(params)
        return cls(custom_id, params, line, _item_size(custom_id, encoded), encoded)

    def to_api(self) -> dict[str, Any]:
        return {"custom_id": self.custom_id, "params": self.params}


@dataclass(frozen=True, slots=True)
class ParsedRequests:
    """The outcome of reading a request file: the valid requests and every problem found."""

    source: str
    requests: list[BatchRequest]
    problems: list[RequestProblem]
    problem_count: int
    lines: int

    @property
    def ok(self) -> bool:
        return self.problem_count == 0 and bool(self.requests)

    @property
    def omitted_problems(self) -> int:
        """Problems counted but not listed (the list is capped)."""
        return self.problem_count - len(self.problems)

    @property
    def total_bytes(self) -> int:
        return sum(request.size_bytes for request in self.requests)

    def report(self) -> list[str]:
        """One line per problem, naming file and line, then "... and N more problems"."""
        out = [problem.describe(self.source) for problem in self.problems]
        if self.omitted_problems:
            out.append(f"... and {self.omitted_problems} more problems")
        return out


def _item_size(custom_id: str, params_json: bytes) -> int:
    return _ITEM_OVERHEAD + len(custom_id) + len(params_json)


def iter_lines(chunks: Iterable[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[
    bytes | LineTooLong
]:
    """Cut a byte stream into lines (without ``\\n``) holding at most `max_line_bytes` of one.

    A longer line is dropped as it streams past and reported as `LineTooLong`, so a 1 GB
    line never sits in memory. Every line is yielded, blank ones too, so numbers stay right.
    """
    pending = bytearray()
    dropped = 0  # bytes of the current line already discarded because it is too long
    for chunk in chunks:
        start = 0
        while True:
            cut = chunk.find(b"\n", start)
            end = len(chunk) if cut < 0 else cut
            piece_len = end - start
            if dropped or len(pending) + piece_len > max_line_bytes:
                dropped += len(pending) + piece_len
                pending.clear()
            elif cut >= 0 and not pending:
                pass  # the common case: a whole line inside one chunk, yielded below
            else:
                pending += chunk[start:end]
            if cut < 0:
                break
            if dropped:
                yield LineTooLong(dropped)
                dropped = 0
            elif pending:
                yield bytes(pending)
                pending.clear()
            else:
                yield chunk[start:end]
            start = cut + 1
    if dropped:
        yield LineTooLong(dropped)
    elif pending:
        yield bytes(pending)


class _Problems:
    """Collects problems, keeping the first `limit` and counting the rest."""

    __slots__ = ("count", "items", "limit")

    def __init__(self, limit: int) -> None:
        self.items: list[RequestProblem] = []
        self.count = 0
        self.limit = limit

    def add(self, line: int, field_name: str, message: str) -> None:
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append(RequestProblem(line, field_name, message))


def _shown(value: object, limit: int = 40) -> str:
    """A short, inert rendering of an untrusted value for a message (controls made visible)."""
    if isinstance(value, str):
        return f"'{safe_cell(value, limit)}'"
    return safe_cell(repr(value), limit)


def _json_error(line: bytes, exc: orjson.JSONDecodeError) -> tuple[str, str]:
    """Explain why a line is not JSON: (field, message)."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return "", f"invalid UTF-8 at byte {bad.start + 1} (save the file as UTF-8)"
    text = str(exc)
    if "depth" in text or "ecursion" in text:
        return "", "JSON nested deeper than 1024 levels"
    return "", f"invalid JSON: {text}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_params(params: object) -> list[tuple[str, str]]:
    """Every problem with a request's `params`, as (field, message) pairs."""
    if not isinstance(params, dict):
        if params is None:
            return [("params", "missing (every request needs params)")]
        return [("params", f"must be an object, not {type(params).__name__}")]
    out: list[tuple[str, str]] = []
    model = params.get("model")
    if model is None:
        out.append(("params.model", "missing"))
    elif not isinstance(model, str) or not model.strip():
        out.append(("params.model", f"must be a non-empty string, not {_shown(model)}"))
    max_tokens = params.get("max_tokens")
    if max_tokens is None:
        out.append(("params.max_tokens", "missing"))
    elif not _is_int(max_tokens):
        out.append(("params.max_tokens", f"must be an integer, not {_shown(max_tokens)}"))
    elif max_tokens < 1:
        out.append(("params.max_tokens", f"must be at least 1, not {max_tokens}"))
    out.extend(_check_messages(params.get("messages")))
    for key, message in _FORBIDDEN_PARAMS.items():
        if key in params:
            out.append((f"params.{key}", message))
    if params.get("research_preview_2026_02") == "active":
        out.append(("params.research_preview_2026_02", "research previews are not allowed here"))
    return out


def _check_messages(messages: object) -> list[tuple[str, str]]:
    if messages is None:
        return [("params.messages", "missing")]
    if not isinstance(messages, list):
        return [("params.messages", f"must be a list, not {type(messages).__name__}")]
    if not messages:
        return [("params.messages", "must hold at least one message")]
    out: list[tuple[str, str]] = []
    for n, message in enumerate(messages):
        where = f"params.messages[{n}]"
        if not isinstance(message, dict):
            out.append((where, f"must be an object, not {type(message).__name__}"))
            continue
        if message.get("role") not in ("user", "assistant"):
            role = _shown(message.get("role"))
            out.append((f"{where}.role", f"must be 'user' or 'assistant', not {role}"))
        if not isinstance(message.get("content"), str | list):
            out.append((f"{where}.content", "missing (a string or a list of content blocks)"))
    return out


def check_custom_id(custom_id: object) -> str | None:
    """Why `custom_id` is not acceptable, or None."""
    if custom_id is None:
        return "missing"
    if not isinstance(custom_id, str):
        return f"must be a string, not {type(custom_id).__name__}"
    if not custom_id:
        return "must not be empty"
    if len(custom_id) > 64:
        return f"is {len(custom_id)} characters; at most 64 are allowed"
    if not _CUSTOM_ID.fullmatch(custom_id):
        return f"{_shown(custom_id)} may hold only letters, digits, '_' and '-'"
    return None


def parse_request_lines(
    lines: Iterable[bytes | LineTooLong],
    source: str,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_problems: int = MAX_PROBLEMS,
) -> ParsedRequests:
    """Parse and validate JSONL request lines; collect every problem with its line number.

    Blank lines are skipped. Requests are kept only when they are valid; callers must not
    submit anything unless ``problem_count == 0``.
    """
    problems = _Problems(max_problems)
    requests: list[BatchRequest] = []
    first_line: dict[str, int] = {}
    number = 0
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, LineTooLong) or len(raw) > max_line_bytes:
            size = raw.size if isinstance(raw, LineTooLong) else len(raw)
            problems.add(number, "", f"line is {size:,} bytes; a request may be at most "
                                     f"{max_line_bytes:,} bytes")
            continue
        line = raw.strip()
        if not line:
            continue
        marked = line.startswith(_BOM)
        if marked:
            where = "the file starts" if number == 1 else "the line starts"
            problems.add(number, "", f"{where} with a UTF-8 byte order mark (BOM); save the file "
                                     "as UTF-8 without BOM")
            line = line[len(_BOM):].strip()
        nul = line.find(b"\x00")
        if nul >= 0:
            problems.add(number, "", f"NUL byte at column {nul + 1}")
            continue
        request = _parse_line(line, number, problems, first_line)
        if request is not None and not marked:
            requests.append(request)
    if not requests and problems.count == 0:
        problems.add(0, "", "no requests in the file")
    return ParsedRequests(source, requests, problems.items, problems.count, number)


def _parse_line(
    line: bytes, number: int, problems: _Problems, first_line: dict[str, int]
) -> BatchRequest | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        problems.add(number, *_json_error(line, exc))
        return None
    if not isinstance(obj, dict):
        problems.add(number, "", f"must be a JSON object with custom_id and params, not "
                                 f"{type(obj).__name__}")
        return None
    before = problems.count
    for key in sorted(set(obj) - _REQUEST_KEYS):
        problems.add(number, _shown(key), "unexpected key (a request has custom_id and params)")
    custom_id = obj.get("custom_id")
    bad_id = check_custom_id(custom_id)
    if bad_id is not None or not isinstance(custom_id, str):
        problems.add(number, "custom_id", bad_id or "must be a string")
    elif custom_id in first_line:
        problems.add(number, "custom_id", f"duplicate {_shown(custom_id)} (first on line "
                                          f"{first_line[custom_id]})")
    else:
        first_line[custom_id] = number
    params = obj.get("params")
    for field_name, message in check_params(params):
        problems.add(number, field_name, message)
    if problems.count != before or not isinstance(custom_id, str) or not isinstance(params, dict):
        return None
    try:
        encoded = orjson.dumps(params)
    except orjson.JSONEncodeError:
        problems.add(number, "params", f"nested deeper than {MAX_DUMP_DEPTH} levels")
        return None
    return BatchRequest(custom_id, params, number, _item_size(custom_id, encoded), encoded)


def parse_request_chunks(
    chunks: Iterable[bytes],
    source: str,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_problems: int = MAX_PROBLEMS,
) -> ParsedRequests:
    """Parse a request file given as a stream of byte chunks (see `iter_lines`)."""
    return parse_request_lines(
        iter_lines(chunks, max_line_bytes), source,
        max_line_bytes=max_line_bytes, max_problems=max_problems,
    )


def plan_split(
    requests: Sequence[BatchRequest],
    max_per_batch: int = DEFAULT_MAX_PER_BATCH,
    max_bytes: int = DEFAULT_MAX_BATCH_BYTES,
) -> list[list[BatchRequest]]:
    """Cut requests, in order, into batches of at most `max_per_batch` requests and `max_bytes`.

    `max_per_batch` is capped at the API's 100,000. A request that alone exceeds
    `max_bytes` raises ValueError: no batch could carry it.
    """
    if max_per_batch < 1:
        raise ValueError("max_per_batch must be at least 1")
    per_batch = min(max_per_batch, MAX_REQUESTS_PER_BATCH)
    batches: list[list[BatchRequest]] = []
    current: list[BatchRequest] = []
    used = 0
    for request in requests:
        size = request.size_bytes
        if size > max_bytes:
            raise ValueError(f"request {request.custom_id} is {size:,} bytes, more than the "
                             f"{max_bytes:,} bytes a batch may hold")
        if current and (len(current) >= per_batch or used + size > max_bytes):
            batches.append(current)
            current, used = [], 0
        current.append(request)
        used += size
    if current:
        batches.append(current)
    return batches


# -- token sizes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenEstimate:
    """Rough tokens of one request: input from its text, output bounded by max_tokens."""

    input_tokens: int
    output_tokens_max: int


def _text_chars(value: object) -> tuple[int, int]:
    """(characters of text, binary blocks) in a params subtree."""
    chars = 0
    blocks = 0
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, dict):
            if item.get("type") == "base64" and isinstance(item.get("data"), str):
                blocks += 1
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return chars, blocks


def estimate_tokens(params: Mapping[str, Any]) -> TokenEstimate:
    """Characters / 4 over messages, system and tools; base64 images/documents count flat."""
    chars, blocks = _text_chars([params.get(key) for key in ("system", "messages", "tools")])
    max_tokens = params.get("max_tokens")
    output = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0
    return TokenEstimate(
        input_tokens=-(-chars // _CHARS_PER_TOKEN) + blocks * _TOKENS_PER_BINARY_BLOCK,
        output_tokens_max=max(0, output),
    )
