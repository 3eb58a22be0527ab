"""Writing one batch's results: the raw bytes as they come, and their index rows."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tui.core.models import format_time
from tui.core.results import (
    KNOWN_TYPES,
    MALFORMED,
    DownloadProgress,
    IndexRecord,
    LineSplitter,
    StoreStatus,
    index_record,
)
from tui.service.results_files import private_file
from tui.service.results_schema import (
    DELETE_ROWS,
    STATUS_COLUMNS,
    connect,
    custom_id_index,
    id_range,
    insert_sql,
    status_from_row,
    transaction,
)

COMMIT_ROWS = 20_000


class Ingest:
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
        self._conn = connect(db_path)
        # Checkpoints fsync; run one when the download is over (`close`), not in the middle.
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        private_file(raw_path)
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
        self._insert = insert_sql(self.key)

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
        with transaction(self._conn) as conn:
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
