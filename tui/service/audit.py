"""The append-only JSONL audit log: one fsynced file per batch, safe across processes."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import getpass
import hashlib
import itertools
import logging
import os
import re
import secrets as _random
import socket
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os
import orjson

from tui.core.audit_filter import AuditEntry, audit_entries, record_seq
from tui.core.events import AUDIT_DROPPED, Event
from tui.core.models import parse_time
from tui.core.timefmt import iso_millis, utcnow
from tui.paths import ensure_private_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
GLOBAL_FILE = "batchtop.jsonl"
MAX_OPEN_FILES = 64
MAX_PENDING = 10_000
SCRUBBED = "***"
MIN_SECRET_LENGTH = 6
FOLLOW_POLL_S = 0.5

# Read access too: before each append the last byte is checked, so a line torn by a crash
# (of this or another process) is terminated instead of swallowing the next record.
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_DUMP_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS

Record = dict[str, Any]


def audit_file_name(batch_id: str | None) -> str:
    """``batch_<id>.jsonl``, or ``batchtop.jsonl`` for events that concern no batch.

    An id that is not a plain ``[A-Za-z0-9_-]`` token (it came over the network) never
    becomes a path: it is replaced by its hash. Records always carry the real id.
    """
    if batch_id is None:
        return GLOBAL_FILE
    if _SAFE_ID.fullmatch(batch_id):
        return f"batch_{batch_id}.jsonl"
    digest = hashlib.sha256(batch_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"batch_sha256={digest}.jsonl"


def default_actor() -> str:
    """``user@host`` of whoever runs this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, no login name (containers)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def new_session_id() -> str:
    """An id for one run of batchtop, shared by every record it writes."""
    return f"ses_{_random.token_hex(8)}"


def _jsonable(value: Any) -> Any:
    """`value` reduced to what JSON can hold (the slow path, for odd event data)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, datetime):
        return iso_millis(value)
    if isinstance(value, dict):
        return {str(_jsonable(key)): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    return str(value)


def _scrub(value: Any, secrets: Iterable[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, SCRUBBED)
        return value
    if isinstance(value, dict):
        return {_scrub(key, secrets): _scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    return value


def _default(value: Any) -> Any:
    """orjson's hook for types it does not know: sets become lists, the rest text."""
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def _dumps(record: Record) -> bytes:
    try:
        return orjson.dumps(record, default=_default, option=_DUMP_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        return orjson.dumps(_jsonable(record), option=_DUMP_OPTIONS)


@dataclass(frozen=True, slots=True)
class _Line:
    name: str
    data: bytes


class AuditLog:
    """Writer of audit records; `record` returns once the line is on disk (fsynced).

    I/O failures (disk full, permissions, directory removed) never escape `record`: the
    line waits in a bounded queue, is retried on the next record or `flush_pending`, and
    `pending_count` / `last_error` let the UI say so. Appends hold an exclusive ``flock``
    on the file, so concurrent batchtop processes never interleave lines of any length.
    """

    def __init__(
        self,
        directory: Path,
        *,
        actor: str | None = None,
        session: str | None = None,
        secrets: Iterable[str | None] = (),
        clock: Callable[[], datetime] = utcnow,
        max_open_files: int = MAX_OPEN_FILES,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.directory = Path(directory)
        self.actor = actor or default_actor()
        self.session = session or new_session_id()
        self.last_error: str | None = None
        self.dropped = 0
        self._clock = clock
        self._seq = itertools.count()
        self._listeners: list[Callable[[bytes], None]] = []
        self._secrets: list[str] = []
        self._secret_forms: list[bytes] = []
        for secret in secrets:
            self.add_secret(secret)
        self._max_open = max(1, max_open_files)
        self._max_pending = max(1, max_pending)
        self._pending: deque[_Line] = deque()
        self._handles: OrderedDict[str, int] = OrderedDict()
        self._dir_ready = False
        self._unreported_drops = 0
        self._in_flight = 0
        self._lock = asyncio.Lock()
        self._write_groups_async = aiofiles.os.wrap(self._write_groups)

    # -- public API ---------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Records accepted but not yet on disk (queued or being written)."""
        return len(self._pending) + self._in_flight

    @property
    def open_files(self) -> int:
        return len(self._handles)

    def add_secret(self, secret: str | None) -> None:
        """Never write `secret` (an API key): it is replaced by ``***`` wherever it appears."""
        if not secret or len(secret) < MIN_SECRET_LENGTH or secret in self._secrets:
            return
        self._secrets.append(secret)
        self._secrets.sort(key=len, reverse=True)  # a longer secret may contain a shorter one
        self._secret_forms.append(secret.encode("utf-8", "surrogatepass"))
        self._secret_forms.append(orjson.dumps(_jsonable(secret))[1:-1])

    def encode(self, event: Event) -> bytes:
        """The JSONL line (newline included) for `event`, stamped now, secrets scrubbed."""
        record: Record = {
            "timestamp": iso_millis(self._clock()),
            "event": event.event,
            "batch_id": event.batch_id,
            "data": event.data,
            "actor": self.actor,
            "session": self.session,
            "seq": next(self._seq),
            "schema": SCHEMA_VERSION,
        }
        line = _dumps(record)
        if any(form in line for form in self._secret_forms):
            line = orjson.dumps(_scrub(_jsonable(record), self._secrets), option=_DUMP_OPTIONS)
        return line

    async def record(self, event: Event) -> None:
        """Append `event`; returns when it is fsynced, or queued if the disk refused it."""
        await self.record_many((event,))

    async def record_many(self, events: Iterable[Event]) -> None:
        """Append several events, one write and one fsync per file."""
        lines = [_Line(audit_file_name(e.batch_id), self.encode(e)) for e in events]
        self._enqueue(lines)
        await self.flush_pending()
        for listener in tuple(self._listeners):
            for line in lines:
                listener(line.data)

    def listen(self, listener: Callable[[bytes], None]) -> Callable[[], None]:
        """Call `listener` with each line this log takes, as written, once it is on disk (or
        held for a retry); returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def flush_pending(self) -> bool:
        """Retry queued records; True when nothing is left waiting."""
        if not self._pending and not self._unreported_drops and not self._lock.locked():
            return True
        # Shielded: a caller's cancellation must not lose track of lines already written.
        return await asyncio.shield(asyncio.ensure_future(self._flush()))

    async def close(self) -> None:
        """Flush what can be flushed and close every file."""
        with contextlib.suppress(Exception):
            await self.flush_pending()
        async with self._lock:
            for name in list(self._handles):
                self._close_handle(name)

    async def __aenter__(self) -> AuditLog:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- queue --------------------------------------------------------------------------

    def _enqueue(self, lines: list[_Line]) -> None:
        self._pending.extend(lines)
        self._trim()

    def _trim(self) -> None:
        excess = len(self._pending) - self._max_pending
        for _ in range(max(0, excess)):
            self._pending.popleft()  # oldest first: keep the most recent history
        if excess > 0:
            self.dropped += excess
            self._unreported_drops += excess

    async def _flush(self) -> bool:
        async with self._lock:
            if not self._pending and not self._unreported_drops:
                return True
            batch = list(self._pending)
            self._pending.clear()
            groups: dict[str, list[bytes]] = {}
            for line in batch:
                groups.setdefault(line.name, []).append(line.data)
            drops = self._unreported_drops
            if drops:
                notice = Event(AUDIT_DROPPED, None, {"count": drops, "reason": self.last_error})
                groups.setdefault(GLOBAL_FILE, []).append(self.encode(notice))
            self._in_flight = len(batch)
            try:
                errors = await self._write_groups_async(groups)
            except Exception as exc:  # a bug below must not lose the batch or kill the app
                errors = dict.fromkeys(groups, repr(exc))
            finally:
                self._in_flight = 0
            if drops and GLOBAL_FILE not in errors:
                self._unreported_drops -= drops
            self._pending.extendleft(reversed([line for line in batch if line.name in errors]))
            self._trim()
            if errors:
                self.last_error = "; ".join(f"{name}: {error}" for name, error in errors.items())
            elif not self._pending:
                self.last_error = None
            return not self._pending and not self._unreported_drops

    # -- blocking part, run in a worker thread --------------------------------------------

    def _write_groups(self, groups: dict[str, list[bytes]]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for name, lines in groups.items():
            try:
                self._append(name, b"".join(lines))
            except OSError as exc:
                self._close_handle(name)
                errors[name] = exc.strerror or str(exc)
        return errors

    def _append(self, name: str, data: bytes) -> None:
        fd = self._handle(name)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _handle(self, name: str) -> int:
        path = self.directory / name
        fd = self._handles.get(name)
        if fd is not None:
            if _same_file(path, fd):
                self._handles.move_to_end(name)
                return fd
            self._close_handle(name)  # removed or replaced underneath us: reopen by name
        fd = self._open(path)
        self._handles[name] = fd
        while len(self._handles) > self._max_open:
            self._close_handle(next(iter(self._handles)))
        return fd

    def _open(self, path: Path) -> int:
        if not self._dir_ready:
            ensure_private_dir(self.directory)
            self._dir_ready = True
        try:
            fd = os.open(path, _OPEN_FLAGS, 0o600)
        except FileNotFoundError:
            ensure_private_dir(self.directory)
            fd = os.open(path, _OPEN_FLAGS, 0o600)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
        except OSError:
            os.close(fd)
            raise
        return fd

    def _close_handle(self, name: str) -> None:
        fd = self._handles.pop(name, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _same_file(path: Path, fd: int) -> bool:
    try:
        on_disk = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_ino, on_disk.st_dev) == (held.st_ino, held.st_dev)


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRead:
    """Records merged across files in time order, plus the lines that had to be skipped.

    `torn`: an unterminated or unparsable last line of a file (a write cut short);
    `bad`: an unparsable line anywhere else. Both as ``"<file name>:<line number>"``.
    """

    records: list[Record]
    torn: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)


def _parse_record(raw: bytes) -> tuple[datetime, Record] | None:
    try:
        record = orjson.loads(raw)
        if not isinstance(record, dict) or not isinstance(record.get("event"), str):
            return None
        moment = parse_time(record.get("timestamp"))
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    return (moment, record) if moment is not None else None


Item = tuple[datetime, int, Record]
"""A parsed record with its time and its line number in its file."""


class EventFilter:
    """Which event kinds a read keeps; a line that cannot be one of them is not even parsed."""

    def __init__(self, events: Iterable[str]) -> None:
        self.events = frozenset(events)
        # The name as it appears JSON-encoded in a line: a cheap test before orjson.
        self._needles = tuple(orjson.dumps(name) for name in self.events)

    def may_match(self, raw: bytes) -> bool:
        return any(needle in raw for needle in self._needles)

    def keeps(self, record: Record) -> bool:
        return record.get("event") in self.events


def _parse_lines(
    lines: list[bytes], name: str, first_line: int, only: EventFilter | None = None
) -> tuple[list[Item], list[str]]:
    """Parse complete lines; returns the records and the ``file:line`` of bad ones.

    With `only`, lines that cannot hold one of its events are skipped unparsed (and so are
    never reported bad), and records of other events are left out.
    """
    parsed: list[Item] = []
    bad: list[str] = []
    for number, raw in enumerate(lines, start=first_line):
        if not raw.strip() or (only is not None and not only.may_match(raw)):
            continue
        item = _parse_record(raw)
        if item is None:
            bad.append(f"{name}:{number}")
        elif only is None or only.keeps(item[1]):
            parsed.append((item[0], number, item[1]))
    return parsed, bad


def _audit_files(directory: Path, batch_id: str | None) -> list[Path]:
    if batch_id is not None:
        path = directory / audit_file_name(batch_id)
        return [path] if path.is_file() else []
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.glob("*.jsonl") if path.is_file())


def _keep(item: Item, batch_id: str | None, since: datetime | None) -> bool:
    moment, _, record = item
    if batch_id is not None and record.get("batch_id") != batch_id:
        return False
    return since is None or moment >= since


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _in_order(items: list[Item]) -> list[Record]:
    """Oldest first. Records of the same millisecond go in their writer's `seq` order, so one
    session's records read back in the order it wrote them, whichever files they are in.
    `items` come file by file, each in line (write) order, and the sort is stable: remaining
    ties (records without `seq`) keep their file's order, then the files' order by name."""
    items.sort(key=lambda item: (item[0], record_seq(item[2])))
    return [record for _, _, record in items]


def read_audit(
    directory: Path,
    *,
    batch_id: str | None = None,
    since: datetime | None = None,
    events: Iterable[str] | None = None,
) -> AuditRead:
    """Every record under `directory` (or only `batch_id`'s), oldest first, from `since` on.

    `events` keeps only records of those kinds; other lines are skipped before parsing
    (cheap on a long history) and are then not checked for being unreadable either.
    """
    since = _aware(since)
    only = EventFilter(events) if events is not None else None
    items: list[Item] = []
    torn: list[str] = []
    bad: list[str] = []
    for path in _audit_files(Path(directory), batch_id):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        if not data:
            continue
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        if tail.strip():
            torn.append(f"{path.name}:{len(lines) + 1}")
        elif lines and lines[-1].strip() and _parse_record(lines[-1]) is None:
            torn.append(f"{path.name}:{len(lines)}")
            lines.pop()
        parsed, file_bad = _parse_lines(lines, path.name, 1, only)
        bad.extend(file_bad)
        items.extend(item for item in parsed if _keep(item, batch_id, since))
    return AuditRead(records=_in_order(items), torn=torn, bad=bad)


@dataclass(slots=True)
class _Cursor:
    inode: int
    offset: int
    line: int  # number of the next line to be read


def _scan(directory: Path, batch_id: str | None) -> dict[Path, tuple[int, int]]:
    found: dict[Path, tuple[int, int]] = {}
    for path in _audit_files(directory, batch_id):
        with contextlib.suppress(OSError):
            status = path.stat()
            found[path] = (status.st_ino, status.st_size)
    return found


_scan_async = aiofiles.os.wrap(_scan)


async def _read_from(path: Path, offset: int) -> bytes:
    try:
        async with aiofiles.open(path, "rb") as handle:
            await handle.seek(offset)
            data: bytes = await handle.read()
            return data
    except OSError:
        return b""


async def follow_audit(
    directory: Path,
    *,
    batch_id: str | None = None,
    since: datetime | None = None,
    poll_s: float = FOLLOW_POLL_S,
    from_start: bool = True,
) -> AsyncGenerator[Record, None]:
    """Yield records as they are appended (``batchtop audit --follow``); runs until closed.

    Existing records come first (unless `from_start` is False), then each poll's new
    complete lines in time order. A line still being written is waited for, not skipped;
    a file that is replaced or truncated is read again from its start.
    """
    directory = Path(directory)
    since = _aware(since)
    cursors: dict[Path, _Cursor] = {}
    if not from_start:
        for path, (inode, size) in (await _scan_async(directory, batch_id)).items():
            cursors[path] = _Cursor(inode, size, line=0)
    while True:
        items: list[Item] = []
        for path, (inode, size) in (await _scan_async(directory, batch_id)).items():
            cursor = cursors.get(path)
            if cursor is None or cursor.inode != inode or size < cursor.offset:
                cursor = cursors[path] = _Cursor(inode, 0, line=1)
            if size == cursor.offset:
                continue
            chunk = await _read_from(path, cursor.offset)
            end = chunk.rfind(b"\n") + 1
            if not end:
                continue
            lines = chunk[: end - 1].split(b"\n")
            parsed, _bad = _parse_lines(lines, path.name, cursor.line)
            items.extend(item for item in parsed if _keep(item, batch_id, since))
            cursor.offset += end
            cursor.line += len(lines)
        for record in _in_order(items):
            yield record
        await asyncio.sleep(poll_s)


# -- history shared by the services that seed from it -----------------------------------------


@dataclass(frozen=True, slots=True)
class AuditHistory:
    """The records of a few event kinds, read in one pass over the log, oldest first."""

    events: frozenset[str]
    records: list[Record]

    @classmethod
    def load(cls, directory: Path, *, events: Iterable[str]) -> AuditHistory:
        """Read `directory` once, keeping only `events` (blocking: call it from a thread)."""
        kinds = frozenset(events)
        return cls(kinds, read_audit(directory, events=kinds).records)

    def of(self, event: str) -> list[Record]:
        """The records of one kind (it must be one of `events`)."""
        if event not in self.events:
            raise KeyError(f"{event} was not read")
        return [record for record in self.records if record.get("event") == event]


class SharedAuditHistory:
    """One read of the audit log for every service that needs part of its history at start.

    The first `get` reads (in a worker thread); everyone else gets that same read. A failed
    read gives an empty history: history is a nicety, never a reason not to start.
    """

    def __init__(self, directory: Path, events: Iterable[str]) -> None:
        self.directory = Path(directory)
        self.events = frozenset(events)
        self._history: AuditHistory | None = None
        self._loading: asyncio.Future[AuditHistory] | None = None

    def covers(self, event: str) -> bool:
        return event in self.events

    async def get(self) -> AuditHistory:
        if self._history is not None:
            return self._history
        if self._loading is None:
            self._loading = asyncio.ensure_future(asyncio.to_thread(self.get_now))
        return await asyncio.shield(self._loading)

    def get_now(self) -> AuditHistory:
        """The history, read here and now if nobody has yet (blocking)."""
        if self._history is None:
            try:
                history = AuditHistory.load(self.directory, events=self.events)
            except OSError as exc:
                log.warning("cannot read the audit log's history: %s", exc)
                history = AuditHistory(self.events, [])
            self._history = history
        return self._history


# -- the audit viewer's reader ------------------------------------------------------------------

FileKey = tuple[int, int, int]
"""Inode, size and mtime of a file: a file whose key is unchanged is not read again."""


def file_keys(directory: Path, batch_id: str | None) -> dict[str, FileKey]:
    """The keys of the files a read would open, by name."""
    keys: dict[str, FileKey] = {}
    for path in _audit_files(Path(directory), batch_id):
        try:
            status = path.stat()
        except OSError:
            continue
        keys[path.name] = (status.st_ino, status.st_size, status.st_mtime_ns)
    return keys


@dataclass(frozen=True, slots=True)
class Loaded:
    """The log as read: entries oldest first, and the ``file:line`` of skipped lines."""

    entries: list[AuditEntry]
    torn: list[str]
    bad: list[str]


def _file_of(place: str) -> str:
    return place.rsplit(":", 1)[0]


class LogReader:
    """The audit log as last read, file by file; `poll` reads again only what changed.

    A batch's file is read alone; a change to the global file (or to a file whose batch is
    not known yet) reads everything. Blocking: call it from a thread, one call at a time.
    """

    def __init__(self, directory: Path, batch_id: str | None = None) -> None:
        self.directory = Path(directory)
        self.batch_id = batch_id
        self._keys: dict[str, FileKey] | None = None
        self._entries: dict[str, list[AuditEntry]] = {}
        self._torn: dict[str, list[str]] = {}
        self._bad: dict[str, list[str]] = {}

    def poll(self, *, force: bool = False) -> Loaded | None:
        """The whole log now, or None when no file changed since the last poll."""
        keys = file_keys(self.directory, self.batch_id)
        known = self._keys
        if known is not None and keys == known and not force:
            return None
        changed = [name for name, key in keys.items() if known is None or known.get(name) != key]
        batches = {name: self._batch_of(name) for name in changed}
        if known is None or force or self.batch_id is not None or None in batches.values():
            self._entries, self._torn, self._bad = {}, {}, {}
            self._read(self.batch_id)
        else:
            for name, batch_id in batches.items():
                self._drop(name)
                self._read(batch_id)
        for name in set(known or ()) - set(keys):
            self._drop(name)
        self._keys = keys
        return self._merged()

    def _batch_of(self, name: str) -> str | None:
        """The batch whose file this is, None for the global file or an unknown hashed name."""
        if name == GLOBAL_FILE:
            return None
        candidate = name.removeprefix("batch_").removesuffix(".jsonl")
        if audit_file_name(candidate) == name:
            return candidate
        for entry in self._entries.get(name, ())[:1]:
            if entry.batch_id is not None and audit_file_name(entry.batch_id) == name:
                return entry.batch_id
        return None

    def _read(self, batch_id: str | None) -> None:
        found = read_audit(self.directory, batch_id=batch_id)
        for entry in audit_entries(found.records):
            self._entries.setdefault(audit_file_name(entry.batch_id), []).append(entry)
        for places, skipped in ((found.torn, self._torn), (found.bad, self._bad)):
            for place in places:
                skipped.setdefault(_file_of(place), []).append(place)

    def _drop(self, name: str) -> None:
        for table in (self._entries, self._torn, self._bad):
            table.pop(name, None)

    def _merged(self) -> Loaded:
        """Merged as `read_audit` merges: by time and `seq`, other ties in each file's write
        order, then in file name order, so a partial re-read lists what a whole read would."""
        entries = [entry for name in sorted(self._entries) for entry in self._entries[name]]
        entries.sort(key=lambda entry: (entry.at, entry.seq))  # runs in order: near linear
        torn = [place for name in sorted(self._torn) for place in self._torn[name]]
        bad = [place for name in sorted(self._bad) for place in self._bad[name]]
        return Loaded(entries, torn, bad)
