"""Ended batches' results on disk: byte-exact raw JSONL plus a SQLite index per workspace."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, Unpack

import anthropic

from tui.core.errors import classify
from tui.core.events import RESULTS_DOWNLOADED, RESULTS_FAILED
from tui.core.models import BatchSnapshot
from tui.core.results import ErrorGroup, IndexRow, ModelTokenSums, StoreStatus, missing_ids
from tui.core.timefmt import utcnow
from tui.paths import ensure_private_dir
from tui.service import results_summary as summaries
from tui.service.index_pool import IndexPool, default_worker_count
from tui.service.results_backfill import backfill_splits
from tui.service.results_download import (
    DEFAULT_ATTEMPTS,
    FEED_BYTES,
    AuditSink,
    Clock,
    ProgressCallback,
    ResultsDownloadError,
    ResultsNotReady,
    Timer,
    download,
)
from tui.service.results_files import (
    RAW_BLOCK,
    SAFE_NAME,
    RawReader,
    default_root,
    private_file,
    raw_file_name,
    workspace_key,
)
from tui.service.results_ingest import ingest_chunks
from tui.service.results_query import (
    BatchIds,
    CustomIdCache,
    ResultFilter,
    narrows_rows,
    order,
    search_regex,
    view_key,
    where,
    without_search,
)
from tui.service.results_schema import (
    DELETE_ROWS,
    INDEX_FILE,
    SCHEMA_VERSION,
    SELECT_ROW,
    SEQ_BITS,
    SEQ_MASK,
    STATUS_COLUMNS,
    connect,
    custom_id_index,
    ensure_schema,
    id_range,
    status_from_row,
    transaction,
)

T = TypeVar("T")

PARALLEL_FROM_RESULTS = 5_000
"""Downloads of fewer results are indexed in this process: workers would not pay off."""

# The public names: the layout, ingest, download and query building live in the sibling
# `results_*` modules; `ResultsStore` is the one entry point.
__all__ = [
    "INDEX_FILE", "RESULTS_DOWNLOADED", "RESULTS_FAILED", "SCHEMA_VERSION", "AuditSink",
    "ProgressCallback", "ResultFilter", "ResultsDownloadError", "ResultsNotReady", "ResultsStore",
    "default_root", "raw_file_name", "workspace_key",
]


class ResultsStore:
    """The results of one workspace's ended batches: download once, reopen from disk.

    Queries are synchronous and local; `ensure` is the one coroutine (it downloads).
    Opening a store made by an older batchtop migrates it in place (see `results_schema`).
    """

    def __init__(
        self,
        root: Path,
        workspace: str,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        retry_delay: float = 0.5,
        feed_bytes: int = FEED_BYTES,
        timer: Timer = time.monotonic,
        clock: Clock = utcnow,
        workers: int | None = None,
        parallel_from: int = PARALLEL_FROM_RESULTS,
    ) -> None:
        if not SAFE_NAME.fullmatch(workspace):
            raise ValueError(f"not a usable workspace key: {workspace!r}")
        self.workspace = workspace
        self.directory = ensure_private_dir(ensure_private_dir(root) / workspace)
        self.db_path = self.directory / INDEX_FILE
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay
        self.feed_bytes = max(1, feed_bytes)
        self.timer = timer  # how long a download took ("downloaded in 3s")
        self.clock = clock  # when it finished (`downloaded_at`)
        count = default_worker_count() if workers is None else workers
        # Index worker processes, started by the first download that is big enough.
        self._pool = IndexPool(count) if count > 0 else None
        self.parallel_from = parallel_from
        private_file(self.db_path)
        self._lock = threading.RLock()
        self._conn = connect(self.db_path)
        ensure_schema(self._conn, self.db_path)
        self.backfilled = backfill_splits(self._conn, self.directory)
        """Batches whose cache-write split was derived from their raw lines at this open."""
        self._ids = CustomIdCache()
        self._downloads: dict[tuple[int, str], asyncio.Lock] = {}  # by (event loop, batch)

    @classmethod
    def default(cls, workspace: str) -> ResultsStore:
        """The store under the data directory (``BATCHTOP_HOME`` honoured)."""
        return cls(default_root(), workspace)

    def close(self) -> None:
        with self._lock:
            self._ids.drop()
            self._conn.close()
            if self._pool is not None:
                self._pool.close()

    def index_pool(self, expected: int) -> IndexPool | None:
        """The worker pool, for a download of at least `parallel_from` results (or of an
        unknown count, 0)."""
        if self._pool is None or (0 < expected < self.parallel_from):
            return None
        return self._pool

    def start_workers(self) -> bool:
        """Boot the index workers now, ahead of a download that will want them, and wait
        until they answer (blocking: call it from a thread). False if there are none."""
        return self._pool is not None and self._pool.ready()

    def prewarm(self, batch: BatchSnapshot) -> bool:
        """Start the index workers without waiting for them, if opening `batch` would
        download enough results to use them: by the time it is opened they have booted.
        True if this started them."""
        pool = self.index_pool(batch.request_counts.total)
        if pool is None or pool.started or not batch.is_ended or batch.archived_at is not None:
            return False
        status = self.status(batch.id)
        if status is not None and status.complete:
            return False
        pool.start()
        return True

    def worker_pids(self) -> list[int]:
        """Process ids of the running index workers (for diagnostics)."""
        return self._pool.pids() if self._pool is not None else []

    def disable_workers(self) -> None:
        """Index in this process from now on (a worker failed)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def raw_path(self, batch_id: str) -> Path:
        """The byte-exact results file of a batch (it may not exist yet)."""
        return self.directory / raw_file_name(batch_id)

    # -- writing -------------------------------------------------------------------------

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
            return await download(self, api_client, batch, progress, audit, refresh,
                                  timer=self.timer, clock=self.clock)

    def ingest(
        self, batch_id: str, chunks: Iterable[bytes], *, expected: int | None = None
    ) -> StoreStatus:
        """Store a results stream read elsewhere (a file, a test), replacing what was there.

        `expected` is the batch's request total; None takes the stream's line count.
        """
        return ingest_chunks(self.db_path, self.raw_path(batch_id), batch_id, chunks, expected)

    def forget(self, batch_id: str) -> None:
        """Drop a batch's rows and raw file (the next `ensure` downloads again)."""
        with self._lock, transaction(self._conn) as conn:
            key = self._batch_key(batch_id)
            if key is not None:
                self._ids.drop(key)
                conn.execute(f"DROP INDEX IF EXISTS {custom_id_index(key)}")
                conn.execute(DELETE_ROWS, id_range(key))
            conn.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))
        self.raw_path(batch_id).unlink(missing_ok=True)

    # -- the batch -----------------------------------------------------------------------

    def status(self, batch_id: str) -> StoreStatus | None:
        """What the store holds for a batch, or None if it was never downloaded."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {STATUS_COLUMNS} FROM batches WHERE batch_id = ?", (batch_id,)
            ).fetchone()
        if row is None:
            return None
        status = status_from_row(row)
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

    def _batch_key(self, batch_id: str) -> int | None:
        row = self._conn.execute(
            "SELECT batch_key FROM batches WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    # -- rows ----------------------------------------------------------------------------

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
        conditions, params = self._where(batch_id, filters, order_by)
        sql = f"{SELECT_ROW} WHERE {conditions} {order(order_by, descending)} LIMIT ? OFFSET ?"
        params += [-1 if limit is None else limit, offset]
        with self._lock:
            return [IndexRow(*row) for row in self._conn.execute(sql, params)]

    def count(self, batch_id: str, **filters: Unpack[ResultFilter]) -> int:
        """How many rows match `filters`."""
        if search_regex(filters) is not None:
            return len(self.row_ids(batch_id, **filters))
        conditions, params = self._where(batch_id, filters)
        with self._lock:
            row = self._conn.execute(f"SELECT count(*) FROM result_rows WHERE {conditions}", params)
            return int(row.fetchone()[0])

    def row_ids(
        self,
        batch_id: str,
        *,
        order_by: str = "seq",
        descending: bool = False,
        **filters: Unpack[ResultFilter],
    ) -> list[int]:
        """The `seq` of every matching row, in order: a virtual table pages through these.

        A regular-expression search runs in Python over the batch's custom_ids, fetched
        once and cached with the view's rows in order (SQLite calling back into Python per
        row is several times slower); the other filters and the order are SQL's, so the
        answer is the same either way.
        """
        pattern = search_regex(filters)
        if pattern is None:
            return self._sql_row_ids(batch_id, order_by, descending, filters)
        order(order_by, descending)  # a bad column is refused before any work
        rest = without_search(filters)
        with self._lock:
            ids = self._custom_ids_of(batch_id)
            if ids is None:
                return []
            view = None if order_by != "seq" or narrows_rows(rest) else ids.natural(descending)
            if view is None:
                view = ids.view(view_key(order_by, descending, rest),
                                lambda: self._sql_row_ids(batch_id, order_by, descending, rest))
        return view.matching(pattern, bool(filters.get("invert")))

    def _sql_row_ids(
        self, batch_id: str, order_by: str, descending: bool, filters: ResultFilter
    ) -> list[int]:
        conditions, params = self._where(batch_id, filters, order_by)
        # seq from the rowid, not the column: an index scan then needs no table lookups.
        sql = (
            f"SELECT id & {SEQ_MASK} FROM result_rows"
            f" WHERE {conditions} {order(order_by, descending)}"
        )
        with self._lock:
            return [row[0] for row in self._conn.execute(sql, params)]

    def _custom_ids_of(self, batch_id: str) -> BatchIds | None:
        """The batch's (seq, custom_id) pairs from the cache, fetched again if rows changed."""
        with self._lock:
            stamp = self._conn.execute(
                "SELECT batch_key, lines, bytes, attempts, downloaded_at FROM batches"
                " WHERE batch_id = ?",
                (batch_id,),
            ).fetchone()
            if stamp is None:
                return None
            return self._ids.get(self._conn, int(stamp[0]), tuple(stamp))

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
                    id_range(key),
                )
                classified = [(t, e) for t, e in pairs if str(classify(t, e)) in wanted]
            return where(key, filters, order_by, classified)

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
                sql = f"{SELECT_ROW} WHERE id IN ({', '.join('?' * len(ids))})"
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
        conditions, params = self._where(batch_id, filters, order_by)
        sql = (
            f"SELECT offset, length FROM result_rows"
            f" WHERE {conditions} {order(order_by, descending)}"
        )
        sequential = order_by == "seq" and not descending
        conn = connect(self.db_path)
        try:
            with open(self.raw_path(batch_id), "rb") as handle:
                reader = RawReader(handle, RAW_BLOCK if sequential else 0)
                cursor = conn.execute(sql, params)
                while rows := cursor.fetchmany(2000):
                    for offset, length in rows:
                        yield reader.read(offset, length) + b"\n"
        finally:
            conn.close()

    # -- summaries -----------------------------------------------------------------------

    def _summary(self, batch_id: str, summary: Callable[[sqlite3.Connection, int | None], T]) -> T:
        with self._lock:
            return summary(self._conn, self._batch_key(batch_id))

    def type_counts(self, batch_id: str) -> dict[str, int]:
        """Rows per result type (unknown types and ``malformed`` included)."""
        return self._summary(batch_id, summaries.type_counts)

    def error_summary(self, batch_id: str) -> list[ErrorGroup]:
        """Failed results grouped by error type and message, largest group first.

        Expired, malformed and unknown-type results form groups of their own.
        """
        return self._summary(batch_id, summaries.error_summary)

    def usage_totals(self, batch_id: str) -> dict[str, ModelTokenSums]:
        """Token sums of succeeded results per model (``""`` when a result names none), in
        one GROUP BY: all that exact cost needs, the 5-minute / 1-hour split of cache writes
        and `non_batch_tier` (results billed outside the batch tier) included."""
        return self._summary(batch_id, summaries.usage_totals)

    def custom_ids(self, batch_id: str) -> set[str]:
        """Every custom_id that came back as a readable result."""
        return self._summary(batch_id, summaries.readable_ids)

    def missing_custom_ids(self, batch_id: str, submitted: Iterable[str]) -> list[str]:
        """Submitted custom_ids with no readable result, in submission order.

        A request whose only line is malformed counts as missing: it cannot be used.
        """
        return missing_ids(submitted, self.custom_ids(batch_id))
