"""Writing one batch's results: the raw bytes as they come, and their index rows."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tui.core.line_index import index_lines
from tui.core.models import format_time
from tui.core.results import (
    DownloadProgress,
    IndexRecord,
    LineSplitter,
    StoreStatus,
)
from tui.service.index_pool import IndexPool, IndexWorkerFailed, ParallelIndex
from tui.service.results_files import private_file
from tui.service.results_schema import (
    DELETE_ROWS,
    STATUS_COLUMNS,
    connect_writer,
    custom_id_index,
    id_range,
    insert_rows,
    status_from_row,
    transaction,
)

COMMIT_ROWS = 20_000
WORKER_WAIT_SECONDS = 60.0  # for a write already under way when a download is dropped


class Ingest:
    """Writes one batch's raw bytes and index rows. Used from one worker thread only.

    The first rows are committed at once, so readers see results early; after that every
    `COMMIT_ROWS` (fewer, larger commits write less). The batch's custom_id index is built
    in `finalize`, in one statement, rather than kept up to date row by row.

    Given an `IndexPool` at `restart`, the lines are parsed and written by worker processes
    instead: the whole lines fed so far are handed over as a byte range of the raw file,
    the first at once, then whenever `range_bytes` more have come.
    """

    def __init__(self, db_path: Path, raw_path: Path, batch_id: str, expected: int, *,
                 range_bytes: int = 2 << 20) -> None:
        self.batch_id = batch_id
        self.expected = expected
        self.attempt = 0
        self.key = 0
        self._conn = connect_writer(db_path)  # checkpointed in `close`
        private_file(raw_path)
        self._db_path = db_path
        self._raw_path = raw_path
        self._raw_name = raw_path.name
        self._raw: IO[bytes] = open(raw_path, "r+b")  # noqa: SIM115 - closed in close()
        # Another batchtop process may be downloading this batch: wait for it (then the
        # caller finds the store complete) rather than write over its file.
        fcntl.flock(self._raw.fileno(), fcntl.LOCK_EX)
        self._parallel: ParallelIndex | None = None
        self.range_bytes = range_bytes
        """Lines given to a worker at once (after the first few): each range costs a commit."""
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._splitter = LineSplitter()
        self._handed = 0  # raw bytes handed to the workers (whole lines)
        self._line_end = 0  # raw bytes up to the end of the last whole line
        self._rows: list[IndexRecord] = []
        self.lines = 0  # parsed
        self.stored = 0  # committed, visible to readers
        self.bytes = 0
        self.malformed = 0
        self.unknown = 0

    def restart(self, attempt: int, pool: IndexPool | None = None) -> None:
        """Start from nothing: results are immutable, so a fresh download is the same data.

        With `pool`, this attempt's lines are indexed by its worker processes.
        """
        self._stop_workers()
        self.attempt = attempt
        self._reset_counters()
        self._raw.seek(0)
        self._raw.truncate()
        with transaction(self._conn) as conn:
            # An upsert, not a replace: the batch keeps its key (and its rows' id range).
            conn.execute(
                "INSERT INTO batches (batch_id, expected, attempts, raw_file) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (batch_id) DO UPDATE SET complete = 0, expected = excluded.expected,"
                " lines = 0, bytes = 0, malformed = 0, unknown = 0, attempts = excluded.attempts,"
                " downloaded_at = NULL, seconds = NULL, last_error = NULL,"
                " raw_file = excluded.raw_file, split_pending = 0",
                (self.batch_id, self.expected, attempt, self._raw_name),
            )
            (self.key,) = conn.execute(
                "SELECT batch_key FROM batches WHERE batch_id = ?", (self.batch_id,)
            ).fetchone()
            conn.execute(f"DROP INDEX IF EXISTS {custom_id_index(self.key)}")
            conn.execute(DELETE_ROWS, id_range(self.key))
        if pool is not None:
            self._parallel = ParallelIndex(pool, self._db_path, self._raw_path, self.key)

    def feed_chunks(self, chunks: list[bytes]) -> DownloadProgress:
        """`feed` for consecutive chunks; the workers' path never joins them."""
        if self._parallel is None:
            return self.feed(b"".join(chunks))
        self._raw.writelines(chunks)
        position = self.bytes = self.bytes + sum(map(len, chunks))
        for chunk in reversed(chunks):  # where the last whole line ends
            position -= len(chunk)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                self._line_end = position + newline + 1
                break
        # The first lines at once (first rows show early), then ranges of `range_bytes`.
        if not self._handed or self._line_end - self._handed >= self.range_bytes:
            self._hand_over(self._line_end, last=False)
        return self.progress()

    def feed(self, data: bytes) -> DownloadProgress:
        """Store a chunk of the stream and index the lines it completes."""
        if self._parallel is not None:
            return self.feed_chunks([data])
        self._raw.write(data)
        self.bytes += len(data)
        self._parse(*self._splitter.feed_parts(data))
        if len(self._rows) >= COMMIT_ROWS or (self._rows and not self.stored):
            self._commit()
        return self.progress()

    def finish(self, end_of_stream: bool) -> DownloadProgress:
        """End of one attempt: index the unterminated last line if the stream really ended
        (after a cut it is a torn line), and commit what is pending.

        Raises `IndexWorkerFailed` if the workers could not index this attempt's lines.
        """
        if self._parallel is not None:
            if end_of_stream:
                self._hand_over(self.bytes, last=True)
            else:  # the whole lines held back for a bigger range; a torn last one is not
                self._hand_over(self._line_end, last=False)
            self._parallel.wait()
            self._take_worker_counts()
        elif end_of_stream:
            for offset, line in self._splitter.flush():
                self._parse(offset, [line])
        self._commit()
        self._raw.flush()
        return self.progress()

    def _hand_over(self, end: int, *, last: bool) -> None:
        """Give the workers the raw bytes up to `end` not yet handed over."""
        assert self._parallel is not None
        if self._parallel.failure is not None:
            raise self._parallel.failure
        if end > self._handed:
            self._raw.flush()  # the workers read the file
            self._parallel.submit(self._handed, end, last)
            self._handed = end

    def _take_worker_counts(self) -> None:
        if self._parallel is not None:
            self.lines = self.stored = self._parallel.lines
            self.malformed = self._parallel.malformed
            self.unknown = self._parallel.unknown

    def _stop_workers(self) -> None:
        """Drop what the workers still hold and wait for any write of theirs to end."""
        if self._parallel is not None:
            self._parallel.abandon()
            with contextlib.suppress(IndexWorkerFailed):
                self._parallel.wait(timeout=WORKER_WAIT_SECONDS)
            self._parallel = None

    def _parse(self, offset: int, lines: list[bytes]) -> None:
        """Index `lines` (blank ones skipped), the first of which starts at `offset`."""
        batch = index_lines(lines, self.lines, offset)
        self._rows.extend(batch.rows)
        self.lines += len(batch.rows)
        self.malformed += batch.malformed
        self.unknown += batch.unknown

    def _commit(self) -> None:
        with transaction(self._conn) as conn:
            if self._rows:
                insert_rows(conn, self.key, self._rows)
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
        self._take_worker_counts()
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

    def finalize(self, seconds: float, error: str | None,
                 at: datetime | None = None) -> StoreStatus:
        """Record the outcome (as of `at`, default now); complete only when every expected
        result is stored."""
        self._raw.flush()
        # No fsync: `status` checks the raw file's size against `bytes` instead, so a file a
        # crash cut short reads as incomplete and is downloaded again.
        complete = error is None and self.complete
        self._conn.execute(
            "UPDATE batches SET complete = ?, downloaded_at = ?, seconds = ?, last_error = ?"
            " WHERE batch_id = ?",
            (
                int(complete),
                format_time(at if at is not None else datetime.now(UTC)),
                round(seconds, 3),
                error,
                self.batch_id,
            ),
        )
        row = self._conn.execute(
            f"SELECT {STATUS_COLUMNS} FROM batches WHERE batch_id = ?", (self.batch_id,)
        ).fetchone()
        return status_from_row(row)

    def close(self) -> None:
        """Build the batch's custom_id index, checkpoint, let go of the file lock.

        Runs after `ensure` has returned (the caller does not wait for it): the rows are all
        queryable already, and the index only makes sorting by custom_id faster.
        """
        try:
            self._stop_workers()
            if self.key:
                self._conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {custom_id_index(self.key)}"
                    f" ON result_rows (custom_id) WHERE batch_key = {int(self.key)}"
                )
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self._conn.close()
            self._raw.close()


def ingest_chunks(
    db_path: Path, raw_path: Path, batch_id: str, chunks: Iterable[bytes], expected: int | None
) -> StoreStatus:
    """Store a whole results stream read elsewhere, replacing what the batch had.

    `expected` is the batch's request total; None takes the stream's line count.
    """
    started = time.monotonic()
    ingest = Ingest(db_path, raw_path, batch_id, expected or 0)
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
