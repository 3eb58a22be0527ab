"""Ended batches' results on disk: byte-exact raw JSONL plus a SQLite index per workspace."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import functools
import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol, TypedDict, TypeVar, Unpack
from urllib.parse import urlsplit

import anthropic
import httpx2

from tui.core.errors import classify
from tui.core.events import RESULTS_PREFIX, Event
from tui.core.models import BatchSnapshot, format_time
from tui.core.results import (
    CANCELED,
    ERRORED,
    INDEX_COLUMNS,
    KNOWN_TYPES,
    MALFORMED,
    SUCCEEDED,
    DownloadProgress,
    ErrorGroup,
    IndexRecord,
    IndexRow,
    LineSplitter,
    StoreStatus,
    UsageTotals,
    index_record,
    missing_ids,
)
from tui.paths import ensure_private_dir, locations
from tui.service.api import ApiError

T = TypeVar("T")

RESULTS_DOWNLOADED = RESULTS_PREFIX + "downloaded"
RESULTS_FAILED = RESULTS_PREFIX + "failed"

INDEX_FILE = "index.sqlite3"
SCHEMA_VERSION = 1
DEFAULT_ATTEMPTS = 3
FEED_BYTES = 1 << 20
FIRST_FEED_BYTES = 64 << 10  # a small first hand-off so the first rows show up at once
RAW_BLOCK = 1 << 20
SEQ_BITS = 32
SEQ_MASK = (1 << SEQ_BITS) - 1
COMMIT_ROWS = 20_000

ORDER_COLUMNS: frozenset[str] = frozenset(INDEX_COLUMNS) - {"offset"}
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_ROW_COLUMNS = ", ".join(INDEX_COLUMNS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS batches (
    batch_key INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL UNIQUE,
    complete INTEGER NOT NULL DEFAULT 0,
    expected INTEGER NOT NULL,
    lines INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    malformed INTEGER NOT NULL DEFAULT 0,
    unknown INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    downloaded_at TEXT,
    seconds REAL,
    last_error TEXT,
    raw_file TEXT NOT NULL
);
-- One row per results line. id = batch_key << 32 | seq: an integer key keeps rows and
-- index entries small and makes a batch one contiguous, append-only range.
CREATE TABLE IF NOT EXISTS result_rows (
    id INTEGER PRIMARY KEY,
    batch_key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    custom_id TEXT NOT NULL,
    type TEXT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    stop_reason TEXT,
    model TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_creation_input_tokens INTEGER,
    cache_read_input_tokens INTEGER,
    service_tier TEXT,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL
);
-- Secondary indexes are per batch (see _custom_id_index), built once its download is over.
-- What people query with the sqlite3 shell.
CREATE VIEW IF NOT EXISTS results AS
    SELECT batches.batch_id, {", ".join("result_rows." + c for c in INDEX_COLUMNS)}
    FROM result_rows JOIN batches USING (batch_key);
PRAGMA user_version = {SCHEMA_VERSION};
"""
_SELECT_ROW = f"SELECT {_ROW_COLUMNS} FROM result_rows"


def _insert_sql(batch_key: int) -> str:
    """INSERT for one batch's rows, which are `IndexRecord`s: id and key come from seq (?1)."""
    first = int(batch_key) << SEQ_BITS
    rest = ", ".join(f"?{n}" for n in range(1, len(INDEX_COLUMNS) + 1))
    return (
        f"INSERT INTO result_rows (id, batch_key, {_ROW_COLUMNS})"
        f" VALUES ({first} + ?1, {int(batch_key)}, {rest})"
    )


_DELETE_ROWS = "DELETE FROM result_rows WHERE id BETWEEN ? AND ?"
_STATUS_COLUMNS = (
    "batch_id, complete, expected, lines, bytes, malformed, unknown, attempts, "
    "downloaded_at, seconds, last_error"
)


class ResultsNotReady(ValueError):
    """Results exist only once a batch has ended."""


class ResultsDownloadError(ApiError):
    """Results could not be downloaded in full; `store_status` says what the store kept."""

    def __init__(self, cause: ApiError, store_status: StoreStatus | None, attempts: int) -> None:
        super().__init__(
            cause.message,
            kind=cause.kind,
            status=cause.status,
            error_type=cause.error_type,
            request_id=cause.request_id,
            retry_after=cause.retry_after,
        )
        self.store_status = store_status
        self.attempts = attempts


class AuditSink(Protocol):
    """What `ensure` needs of an audit log (`tui.service.audit.AuditLog` is one)."""

    async def record(self, event: Event) -> None: ...


class ResultFilter(TypedDict, total=False):
    """Filters shared by `query`, `count`, `row_ids` and `iter_raw`.

    types: result types to keep (``{"errored", "expired"}``); error_type: the nested error
    type; search: substring of custom_id (case-insensitive), or a regular expression when it
    starts with ``re:`` or `regex` is set; invert: keep what `search` does not match;
    retry_classes: RetryClass values to keep ("retryable", "permanent", ...).
    """

    types: Collection[str] | None
    error_type: str | None
    search: str | None
    regex: bool
    invert: bool
    retry_classes: Collection[str] | None


ProgressCallback = Callable[[DownloadProgress], None]


def workspace_key(base_url: str | None, key_id: str) -> str:
    """A directory name for one workspace: the API host plus a hash of `key_id`.

    The key itself never reaches the disk: only 16 hex digits of its SHA-256 do.
    """
    url = urlsplit(base_url or "https://api.anthropic.com")
    label = (url.hostname or "api") + (f"_{url.port}" if url.port else "")
    path = url.path.strip("/")
    if path:
        label += "_" + path
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._-")[:80] or "api"
    digest = hashlib.sha256(key_id.encode("utf-8")).hexdigest()[:16]
    return f"{label}-{digest}"


def default_root() -> Path:
    """``<data dir>/results``, where every workspace's store lives."""
    return ensure_private_dir(locations().data) / "results"


def raw_file_name(batch_id: str) -> str:
    """The raw JSONL file of a batch; ids that are not plain names are hashed."""
    if _SAFE_NAME.fullmatch(batch_id):
        return f"{batch_id}.jsonl"
    return f"batch-{hashlib.sha256(batch_id.encode('utf-8')).hexdigest()[:32]}.jsonl"


def _private_file(path: Path) -> None:
    """Create `path` with mode 0600 if missing; tighten it if it exists."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str | None, value: str | None) -> bool:
    if pattern is None or value is None:
        return False
    return _compile(pattern).search(value) is not None


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.create_function("regexp", 2, _regexp, deterministic=True)
    return conn


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _custom_id_index(batch_key: int) -> str:
    """The name of a batch's custom_id index.

    A partial index per batch, built in one statement once the rows are in: keeping one
    shared index up to date row by row cost more than the rest of the SQLite work, as
    results arrive in no custom_id order. Filters on type or error type need no index:
    they scan the batch's id range (a few ms for 100,000 rows).
    """
    return f"result_rows_custom_id_{int(batch_key)}"


def _id_range(batch_key: int) -> tuple[int, int]:
    first = batch_key << SEQ_BITS
    return first, first + (1 << SEQ_BITS) - 1


def _where(
    batch_key: int | None,
    f: ResultFilter,
    order_by: str = "seq",
    classified: Collection[tuple[str, str | None]] = (),
) -> tuple[str, list[Any]]:
    """SQL conditions and parameters for `f` over one batch (None: a batch not stored).

    `classified` holds the batch's (type, error_type) pairs whose retry class is in
    `f["retry_classes"]`.
    """
    key = -1 if batch_key is None else batch_key
    clauses = ["id BETWEEN ? AND ?"]
    params: list[Any] = [*_id_range(key)]
    if order_by == "custom_id":
        # The batch's partial index gives that order, if the key is spelled out as it is in
        # the index's WHERE; otherwise the id range makes the planner scan in seq order.
        clauses = [f"batch_key = {int(key)}"]
        params = []
    types = f.get("types")
    if types is not None:
        wanted = sorted(set(types))
        clauses.append(f"type IN ({', '.join('?' * len(wanted))})" if wanted else "0")
        params.extend(wanted)
    error_type = f.get("error_type")
    if error_type is not None:
        clauses.append("error_type = ?")
        params.append(error_type)
    if f.get("retry_classes") is not None:
        # `IS`, not `=`: error_type is NULL for everything but errored results.
        terms = " OR ".join("(type = ? AND error_type IS ?)" for _ in classified)
        clauses.append(f"({terms})" if classified else "0")
        params.extend(value for pair in classified for value in pair)
    search = f.get("search")
    if search:
        if f.get("regex") or search.startswith("re:"):
            pattern = search[3:] if search.startswith("re:") else search
            try:
                _compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
            clause = "custom_id REGEXP ?"
            params.append(pattern)
        else:
            clause = "custom_id LIKE ? ESCAPE '\\'"
            params.append(_like_pattern(search))
        clauses.append(f"NOT ({clause})" if f.get("invert") else clause)
    return " AND ".join(clauses), params


def _order(order_by: str, descending: bool) -> str:
    if order_by not in ORDER_COLUMNS:
        raise ValueError(f"cannot order results by {order_by!r}")
    direction = "DESC" if descending else "ASC"
    if order_by == "seq":
        return f"ORDER BY id {direction}"
    return f"ORDER BY {order_by} {direction}, id {direction}"


def _status_from_row(row: Sequence[Any]) -> StoreStatus:
    return StoreStatus(
        batch_id=row[0],
        complete=bool(row[1]),
        expected=row[2],
        lines=row[3],
        bytes=row[4],
        malformed=row[5],
        unknown=row[6],
        attempts=row[7],
        downloaded_at=row[8],
        seconds=row[9],
        last_error=row[10],
    )


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA_VERSION:
        return
    if version:
        # Never rebuild on our own: results older than 29 days cannot be downloaded again.
        raise ValueError(
            f"{path} has index version {version}, this batchtop reads {SCHEMA_VERSION}"
        )
    conn.executescript(_SCHEMA)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class _Ingest:
    """Writes one batch's raw bytes and index rows. Used from one worker thread only.

    The first rows are committed at once, so readers see results early; after that every
    `COMMIT_ROWS` (fewer, larger commits write less). The batch's custom_id index is built
    in `finalize`, in one statement, rather than kept up to date row by row.
    """

    def __init__(self, db_path: Path, raw_path: Path, batch_id: str, expected: int) -> None:
        self.batch_id = batch_id
        self.expected = expected
        self.attempt = 0
        self.key = 0
        self._insert = ""
        self._conn = _connect(db_path)
        # Checkpoints fsync; run one when the download is over (`close`), not in the middle.
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        _private_file(raw_path)
        self._raw_name = raw_path.name
        self._raw: IO[bytes] = open(raw_path, "r+b")  # noqa: SIM115 - closed in close()
        # Another batchtop process may be downloading this batch: wait for it (then the
        # caller finds the store complete) rather than write over its file.
        fcntl.flock(self._raw.fileno(), fcntl.LOCK_EX)
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._splitter = LineSplitter()
        self._rows: list[IndexRecord] = []
        self.lines = 0  # parsed
        self.stored = 0  # committed, visible to readers
        self.bytes = 0
        self.malformed = 0
        self.unknown = 0

    def restart(self, attempt: int) -> None:
        """Start from nothing: results are immutable, so a fresh download is the same data."""
        self.attempt = attempt
        self._reset_counters()
        self._raw.seek(0)
        self._raw.truncate()
        with _transaction(self._conn) as conn:
            # An upsert, not a replace: the batch keeps its key (and its rows' id range).
            conn.execute(
                "INSERT INTO batches (batch_id, expected, attempts, raw_file) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (batch_id) DO UPDATE SET complete = 0, expected = excluded.expected,"
                " lines = 0, bytes = 0, malformed = 0, unknown = 0, attempts = excluded.attempts,"
                " downloaded_at = NULL, seconds = NULL, last_error = NULL,"
                " raw_file = excluded.raw_file",
                (self.batch_id, self.expected, attempt, self._raw_name),
            )
            (self.key,) = conn.execute(
                "SELECT batch_key FROM batches WHERE batch_id = ?", (self.batch_id,)
            ).fetchone()
            conn.execute(f"DROP INDEX IF EXISTS {_custom_id_index(self.key)}")
            conn.execute(_DELETE_ROWS, _id_range(self.key))
        self._insert = _insert_sql(self.key)

    def feed(self, data: bytes) -> DownloadProgress:
        """Store a chunk of the stream and index the lines it completes."""
        self._raw.write(data)
        self.bytes += len(data)
        self._parse(*self._splitter.feed_parts(data))
        if len(self._rows) >= COMMIT_ROWS or (self._rows and not self.stored):
            self._commit()
        return self.progress()

    def finish(self, end_of_stream: bool) -> DownloadProgress:
        """End of one attempt: index the unterminated last line if the stream really ended
        (after a cut it is a torn line), and commit what is pending."""
        if end_of_stream:
            for offset, line in self._splitter.flush():
                self._parse(offset, [line])
        self._commit()
        self._raw.flush()
        return self.progress()

    def _parse(self, offset: int, lines: list[bytes]) -> None:
        """Index `lines` (blank ones skipped), the first of which starts at `offset`."""
        seq = self.lines
        append = self._rows.append
        for line in lines:
            length = len(line)
            if length and not line.isspace():  # is_blank(), inlined: once per result
                row = index_record(line, seq, offset)
                kind = row[2]
                if kind not in KNOWN_TYPES:
                    if kind == MALFORMED:
                        self.malformed += 1
                    else:
                        self.unknown += 1
                append(row)
                seq += 1
            offset += length + 1
        self.lines = seq

    def _commit(self) -> None:
        with _transaction(self._conn) as conn:
            if self._rows:
                conn.executemany(self._insert, self._rows)
            conn.execute(
                "UPDATE batches SET lines = ?, bytes = ?, malformed = ?, unknown = ?"
                " WHERE batch_id = ?",
                (self.lines, self.bytes, self.malformed, self.unknown, self.batch_id),
            )
        self._rows = []
        self.stored = self.lines

    @property
    def complete(self) -> bool:
        """Every expected result is stored (malformed extra lines do not count)."""
        return self.lines - self.malformed == self.expected

    def adopt_count(self) -> None:
        """The request total is unknown (0): a stream that ended cleanly is the whole batch."""
        self.expected = self.lines - self.malformed
        self._conn.execute(
            "UPDATE batches SET expected = ? WHERE batch_id = ?", (self.expected, self.batch_id)
        )

    def progress(self) -> DownloadProgress:
        """Where the download stands."""
        return DownloadProgress(
            batch_id=self.batch_id,
            attempt=self.attempt,
            lines=self.lines,
            stored=self.stored,
            bytes=self.bytes,
            expected=self.expected,
            malformed=self.malformed,
            unknown=self.unknown,
        )

    def finalize(self, seconds: float, error: str | None) -> StoreStatus:
        """Record the outcome; complete only when every expected result is stored."""
        self._raw.flush()
        # No fsync: `status` checks the raw file's size against `bytes` instead, so a file a
        # crash cut short reads as incomplete and is downloaded again.
        complete = error is None and self.complete
        self._conn.execute(
            "UPDATE batches SET complete = ?, downloaded_at = ?, seconds = ?, last_error = ?"
            " WHERE batch_id = ?",
            (
                int(complete),
                format_time(datetime.now(UTC)),
                round(seconds, 3),
                error,
                self.batch_id,
            ),
        )
        row = self._conn.execute(
            f"SELECT {_STATUS_COLUMNS} FROM batches WHERE batch_id = ?", (self.batch_id,)
        ).fetchone()
        return _status_from_row(row)

    def close(self) -> None:
        """Build the batch's custom_id index, checkpoint, let go of the file lock.

        Runs after `ensure` has returned (the caller does not wait for it): the rows are all
        queryable already, and the index only makes sorting by custom_id faster.
        """
        try:
            if self.key:
                self._conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {_custom_id_index(self.key)}"
                    f" ON result_rows (custom_id) WHERE batch_key = {int(self.key)}"
                )
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self._conn.close()
            self._raw.close()


class _RawReader:
    """Reads lines by (offset, length) from a raw file, in big blocks when access is forward."""

    def __init__(self, handle: IO[bytes], block: int = RAW_BLOCK) -> None:
        self._handle = handle
        self._block_size = block
        self._start = 0
        self._data = b""

    def read(self, offset: int, length: int) -> bytes:
        start = offset - self._start
        if start >= 0 and start + length <= len(self._data):
            return self._data[start : start + length]
        self._handle.seek(offset)
        self._data = self._handle.read(max(length, self._block_size))
        self._start = offset
        return self._data[:length]


class ResultsStore:
    """The results of one workspace's ended batches: download once, reopen from disk.

    Queries are synchronous and local; `ensure` is the one coroutine (it downloads).
    """

    def __init__(
        self,
        root: Path,
        workspace: str,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        retry_delay: float = 0.5,
        feed_bytes: int = FEED_BYTES,
    ) -> None:
        if not _SAFE_NAME.fullmatch(workspace):
            raise ValueError(f"not a usable workspace key: {workspace!r}")
        self.directory = ensure_private_dir(ensure_private_dir(root) / workspace)
        self.db_path = self.directory / INDEX_FILE
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay
        self.feed_bytes = max(1, feed_bytes)
        _private_file(self.db_path)
        self._lock = threading.RLock()
        self._conn = _connect(self.db_path)
        _ensure_schema(self._conn, self.db_path)
        self._downloads: dict[tuple[int, str], asyncio.Lock] = {}  # by (event loop, batch)

    @classmethod
    def default(cls, workspace: str) -> ResultsStore:
        """The store under the data directory (``BATCHTOP_HOME`` honoured)."""
        return cls(default_root(), workspace)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def raw_path(self, batch_id: str) -> Path:
        """The byte-exact results file of a batch (it may not exist yet)."""
        return self.directory / raw_file_name(batch_id)

    # -- download ------------------------------------------------------------------------

    async def ensure(
        self,
        api_client: anthropic.AsyncAnthropic,
        batch: BatchSnapshot,
        *,
        progress: ProgressCallback | None = None,
        audit: AuditSink | None = None,
        refresh: bool = False,
    ) -> StoreStatus:
        """The batch's results in the store: at once if already complete, else downloaded.

        Raises `ResultsNotReady` before the batch has ended, and `ResultsDownloadError`
        when the download keeps failing (the store then holds what arrived, marked
        incomplete). A stream that ends cleanly but short is retried, then reported as an
        incomplete status.
        """
        if not batch.is_ended:
            raise ResultsNotReady(
                f"batch {batch.id} is {batch.processing_status}: results exist once it has ended"
            )
        lock = self._downloads.setdefault(
            (id(asyncio.get_running_loop()), batch.id), asyncio.Lock()
        )
        async with lock:
            current = self.status(batch.id)
            if current is not None and current.complete and not refresh:
                return current
            return await self._download(api_client, batch, progress, audit, refresh)

    async def _download(
        self,
        api_client: anthropic.AsyncAnthropic,
        batch: BatchSnapshot,
        progress: ProgressCallback | None,
        audit: AuditSink | None,
        refresh: bool,
    ) -> StoreStatus:
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="results-ingest")

        def run(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
            return loop.run_in_executor(executor, fn, *args)

        started = time.monotonic()
        ingest: _Ingest | None = None
        attempt = 0
        try:
            opening = executor.submit(
                _Ingest, self.db_path, self.raw_path(batch.id), batch.id, batch.request_counts.total
            )
            try:
                ingest = await asyncio.wrap_future(opening)
            except asyncio.CancelledError:
                # Cancelled while another process held the file lock: close it once it opens.
                opening.add_done_callback(_close_late)
                raise
            done = self.status(batch.id)  # now that the file lock is ours
            if done is not None and done.complete and not refresh:
                return done
            error: ApiError | None = None
            for attempt in range(1, self.attempts + 1):
                await run(ingest.restart, attempt)
                error = await self._stream_once(api_client, ingest, run, progress)
                if error is None and ingest.expected == 0:
                    await run(ingest.adopt_count)
                if error is None and ingest.complete:
                    break
                if error is not None and not error.transient:
                    break
                if attempt < self.attempts:
                    await asyncio.sleep(self.retry_delay * attempt)
            seconds = time.monotonic() - started
            final = await run(ingest.finalize, seconds, str(error) if error else None)
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, _IngestFailed) and exc.__cause__ else exc
            failure = ApiError.from_exception(cause)
            await _record(audit, _failed_event(batch.id, failure, None, attempt))
            raise ResultsDownloadError(failure, self.status(batch.id), attempt) from exc
        finally:
            if ingest is not None:
                # Queued behind any chunk still being indexed; nothing here may await.
                executor.submit(ingest.close)
            executor.shutdown(wait=False)
        if final.complete:
            await _record(audit, _downloaded_event(final))
            return final
        await _record(audit, _failed_event(batch.id, error, final, attempt))
        if error is not None:
            raise ResultsDownloadError(error, final, attempt)
        return final

    async def _stream_once(
        self,
        api_client: anthropic.AsyncAnthropic,
        ingest: _Ingest,
        run: Callable[..., asyncio.Future[DownloadProgress]],
        progress: ProgressCallback | None,
    ) -> ApiError | None:
        """One pass over the results stream; returns the network failure, or None if it ended.

        A failure of the store itself (disk, SQLite) is raised as `_IngestFailed`.
        """
        pending: asyncio.Future[DownloadProgress] | None = None
        buffer: list[bytes] = []
        size = 0
        threshold = min(FIRST_FEED_BYTES, self.feed_bytes)
        try:
            results = api_client.messages.batches.with_streaming_response.results
            async with results(ingest.batch_id) as response:
                async for chunk in response.iter_bytes():
                    buffer.append(chunk)
                    size += len(chunk)
                    if size < threshold:
                        continue
                    if pending is not None:
                        _report(progress, await _worker(pending))
                    # Hand the bytes to the worker and go on reading while it indexes them.
                    pending = run(ingest.feed, b"".join(buffer))
                    buffer.clear()
                    size = 0
                    threshold = self.feed_bytes
        except (anthropic.AnthropicError, httpx2.HTTPError) as exc:
            failure: ApiError | None = ApiError.from_exception(exc)
        else:
            failure = None
        finally:
            if pending is not None and not pending.done():
                pending.add_done_callback(_consume)
        if pending is not None:
            _report(progress, await _worker(pending))
        if buffer:
            # Even after a cut: whole lines that arrived are worth keeping.
            await _worker(run(ingest.feed, b"".join(buffer)))
        _report(progress, await _worker(run(ingest.finish, failure is None)))
        return failure

    def ingest(
        self, batch_id: str, chunks: Iterable[bytes], *, expected: int | None = None
    ) -> StoreStatus:
        """Store a results stream read elsewhere (a file, a test), replacing what was there.

        `expected` is the batch's request total; None takes the stream's line count.
        """
        started = time.monotonic()
        ingest = _Ingest(self.db_path, self.raw_path(batch_id), batch_id, expected or 0)
        try:
            ingest.restart(1)
            for chunk in chunks:
                ingest.feed(chunk)
            ingest.finish(True)
            if expected is None:
                ingest.adopt_count()
            return ingest.finalize(time.monotonic() - started, None)
        finally:
            ingest.close()

    # -- reading -------------------------------------------------------------------------

    def status(self, batch_id: str) -> StoreStatus | None:
        """What the store holds for a batch, or None if it was never downloaded."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_STATUS_COLUMNS} FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
        if row is None:
            return None
        status = _status_from_row(row)
        if status.complete and not self._raw_intact(batch_id, status.bytes):
            return replace(status, complete=False, last_error="raw results file changed on disk")
        return status

    def _raw_intact(self, batch_id: str, size: int) -> bool:
        try:
            return self.raw_path(batch_id).stat().st_size == size
        except OSError:
            return False

    def batch_ids(self) -> list[str]:
        """Every batch the store has results for (complete or not)."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT batch_id FROM batches ORDER BY 1")]

    def query(
        self,
        batch_id: str,
        *,
        order_by: str = "seq",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
        **filters: Unpack[ResultFilter],
    ) -> list[IndexRow]:
        """Index rows matching `filters`, sorted, one page (`limit` None: all)."""
        where, params = self._where(batch_id, filters, order_by)
        sql = f"{_SELECT_ROW} WHERE {where} {_order(order_by, descending)} LIMIT ? OFFSET ?"
        params += [-1 if limit is None else limit, offset]
        with self._lock:
            return [IndexRow(*row) for row in self._conn.execute(sql, params)]

    def count(self, batch_id: str, **filters: Unpack[ResultFilter]) -> int:
        """How many rows match `filters`."""
        where, params = self._where(batch_id, filters)
        with self._lock:
            row = self._conn.execute(f"SELECT count(*) FROM result_rows WHERE {where}", params)
            return int(row.fetchone()[0])

    def row_ids(
        self,
        batch_id: str,
        *,
        order_by: str = "seq",
        descending: bool = False,
        **filters: Unpack[ResultFilter],
    ) -> list[int]:
        """The `seq` of every matching row, in order: a virtual table pages through these."""
        where, params = self._where(batch_id, filters, order_by)
        # seq from the rowid, not the column: an index scan then needs no table lookups.
        sql = (
            f"SELECT id & {SEQ_MASK} FROM result_rows WHERE {where} {_order(order_by, descending)}"
        )
        with self._lock:
            return [row[0] for row in self._conn.execute(sql, params)]

    def _where(
        self, batch_id: str, filters: ResultFilter, order_by: str = "seq"
    ) -> tuple[str, list[Any]]:
        with self._lock:
            key = self._batch_key(batch_id)
            classes = filters.get("retry_classes")
            classified: list[tuple[str, str | None]] = []
            if classes is not None and key is not None:
                # A batch has few distinct (type, error_type) pairs: classify those with
                # `errors.classify`, then filter in SQL (a function per row costs far more).
                wanted = {str(c) for c in classes}
                pairs = self._conn.execute(
                    "SELECT DISTINCT type, error_type FROM result_rows WHERE id BETWEEN ? AND ?",
                    _id_range(key),
                )
                classified = [(t, e) for t, e in pairs if str(classify(t, e)) in wanted]
            return _where(key, filters, order_by, classified)

    def _batch_key(self, batch_id: str) -> int | None:
        row = self._conn.execute(
            "SELECT batch_key FROM batches WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def rows_by_seq(self, batch_id: str, seqs: Sequence[int]) -> list[IndexRow]:
        """The rows with these `seq` numbers, in the order given (unknown ones left out)."""
        found: dict[int, IndexRow] = {}
        with self._lock:
            key = self._batch_key(batch_id)
            if key is None:
                return []
            first = key << SEQ_BITS
            for start in range(0, len(seqs), 500):
                ids = [first + seq for seq in seqs[start : start + 500]]
                sql = f"{_SELECT_ROW} WHERE id IN ({', '.join('?' * len(ids))})"
                for row in self._conn.execute(sql, ids):
                    found[row[0]] = IndexRow(*row)
        return [found[s] for s in seqs if s in found]

    def read_raw(self, batch_id: str, seq: int) -> bytes:
        """The full line of one result, byte-exact, without its newline."""
        with self._lock:
            key = self._batch_key(batch_id)
            row = None
            if key is not None and 0 <= seq < 1 << SEQ_BITS:
                row = self._conn.execute(
                    "SELECT offset, length FROM result_rows WHERE id = ?",
                    ((key << SEQ_BITS) + seq,),
                ).fetchone()
        if row is None:
            raise KeyError(f"no result {seq} in batch {batch_id}")
        with open(self.raw_path(batch_id), "rb") as handle:
            handle.seek(row[0])
            return handle.read(row[1])

    def iter_raw(
        self,
        batch_id: str,
        *,
        order_by: str = "seq",
        descending: bool = False,
        **filters: Unpack[ResultFilter],
    ) -> Iterator[bytes]:
        """Matching lines, byte-exact, each ending in ``\\n``: the export of a view.

        Reads through its own connection, so it may be consumed slowly or from a thread.
        """
        where, params = self._where(batch_id, filters, order_by)
        sql = f"SELECT offset, length FROM result_rows WHERE {where} {_order(order_by, descending)}"
        sequential = order_by == "seq" and not descending
        conn = _connect(self.db_path)
        try:
            with open(self.raw_path(batch_id), "rb") as handle:
                reader = _RawReader(handle, RAW_BLOCK if sequential else 0)
                cursor = conn.execute(sql, params)
                while rows := cursor.fetchmany(2000):
                    for offset, length in rows:
                        yield reader.read(offset, length) + b"\n"
        finally:
            conn.close()

    def _select(self, batch_id: str, columns: str, tail: str = "", *extra: Any) -> list[Any]:
        """`SELECT columns` over one batch's rows, `tail` (more conditions, GROUP BY...) after."""
        where, params = self._where(batch_id, {})
        sql = f"SELECT {columns} FROM result_rows WHERE {where} {tail}"
        with self._lock:
            return self._conn.execute(sql, [*params, *extra]).fetchall()

    def type_counts(self, batch_id: str) -> dict[str, int]:
        """Rows per result type (unknown types and ``malformed`` included)."""
        return dict(self._select(batch_id, "type, count(*)", "GROUP BY type"))

    def error_summary(self, batch_id: str) -> list[ErrorGroup]:
        """Failed results grouped by error type and message, largest group first.

        Expired, malformed and unknown-type results form groups of their own.
        """
        rows = self._select(
            batch_id,
            "type, error_type, error_message, count(*) AS n",
            "AND type NOT IN (?, ?) GROUP BY type, error_type, error_message"
            " ORDER BY n DESC, type, error_type",
            SUCCEEDED,
            CANCELED,
        )
        return [
            ErrorGroup(
                error_type=error_type if kind == ERRORED else kind,
                message=message or "",
                count=n,
                retry_class=classify(kind, error_type),
                result_type=kind,
            )
            for kind, error_type, message, n in rows
        ]

    def usage_totals(self, batch_id: str) -> dict[str, UsageTotals]:
        """Token sums of succeeded results per model (``""`` when a result names none)."""
        rows = self._select(
            batch_id,
            "coalesce(model, ''), count(*), total(input_tokens), total(output_tokens),"
            " total(cache_creation_input_tokens), total(cache_read_input_tokens)",
            "AND type = ? GROUP BY 1 ORDER BY 1",
            SUCCEEDED,
        )
        return {
            model: UsageTotals(n, int(inp), int(out), int(cc), int(cr))
            for model, n, inp, out, cc, cr in rows
        }

    def custom_ids(self, batch_id: str) -> set[str]:
        """Every custom_id that came back as a readable result."""
        return {r[0] for r in self._select(batch_id, "custom_id", "AND type != ?", MALFORMED)}

    def missing_custom_ids(self, batch_id: str, submitted: Iterable[str]) -> list[str]:
        """Submitted custom_ids with no readable result, in submission order.

        A request whose only line is malformed counts as missing: it cannot be used.
        """
        return missing_ids(submitted, self.custom_ids(batch_id))

    def forget(self, batch_id: str) -> None:
        """Drop a batch's rows and raw file (the next `ensure` downloads again)."""
        with self._lock, _transaction(self._conn) as conn:
            key = self._batch_key(batch_id)
            if key is not None:
                conn.execute(f"DROP INDEX IF EXISTS {_custom_id_index(key)}")
                conn.execute(_DELETE_ROWS, _id_range(key))
            conn.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))
        self.raw_path(batch_id).unlink(missing_ok=True)


class _IngestFailed(Exception):
    """The store could not take the bytes (disk, SQLite): not a reason to download again."""


async def _worker(future: asyncio.Future[T]) -> T:
    try:
        return await future
    except Exception as exc:
        raise _IngestFailed(str(exc) or type(exc).__name__) from exc


def _close_late(future: concurrent.futures.Future[_Ingest]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _report(callback: ProgressCallback | None, state: DownloadProgress) -> None:
    if callback is not None:
        callback(state)


async def _record(audit: AuditSink | None, event: Event) -> None:
    if audit is not None:
        await audit.record(event)


def _downloaded_event(status: StoreStatus) -> Event:
    return Event(
        RESULTS_DOWNLOADED,
        status.batch_id,
        {
            "lines": status.lines,
            "bytes": status.bytes,
            "seconds": status.seconds,
            "expected": status.expected,
            "malformed": status.malformed,
            "unknown": status.unknown,
            "attempts": status.attempts,
        },
    )


def _failed_event(
    batch_id: str, error: ApiError | None, status: StoreStatus | None, attempts: int
) -> Event:
    data: dict[str, Any] = {"attempts": attempts}
    if error is not None:
        data.update(
            error=error.message,
            kind=error.kind,
            status=error.status,
            error_type=error.error_type,
            request_id=error.request_id,
        )
    else:
        data["error"] = "results stream ended before every result arrived"
        data["kind"] = "incomplete"
    if status is not None:
        data.update(
            lines=status.lines,
            bytes=status.bytes,
            expected=status.expected,
            missing=status.missing,
            seconds=status.seconds,
        )
    return Event(RESULTS_FAILED, batch_id, data)
