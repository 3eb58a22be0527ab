"""The results index's SQLite layout: tables, migrations, connections, row id arithmetic."""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tui.core.results import INDEX_COLUMNS, StoreStatus
from tui.service.sqlite_open import open_wal

INDEX_FILE = "index.sqlite3"
SCHEMA_VERSION = 2
SEQ_BITS = 32
SEQ_MASK = (1 << SEQ_BITS) - 1

ROW_COLUMNS = ", ".join(INDEX_COLUMNS)
SELECT_ROW = f"SELECT {ROW_COLUMNS} FROM result_rows"
DELETE_ROWS = "DELETE FROM result_rows WHERE id BETWEEN ? AND ?"
STATUS_COLUMNS = (
    "batch_id, complete, expected, lines, bytes, malformed, unknown, attempts, "
    "downloaded_at, seconds, last_error"
)

_VIEW = f"""CREATE VIEW IF NOT EXISTS results AS
    SELECT batches.batch_id, {", ".join("result_rows." + c for c in INDEX_COLUMNS)}
    FROM result_rows JOIN batches USING (batch_key)"""
"""What people query with the sqlite3 shell."""

_CREATE: tuple[str, ...] = (
    # split_pending: rows indexed before the cache-write split was kept (version 1) that
    # still lack it; filled from the raw lines when the store is opened.
    """CREATE TABLE IF NOT EXISTS batches (
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
        raw_file TEXT NOT NULL,
        split_pending INTEGER NOT NULL DEFAULT 0
    )""",
    # One row per results line. id = batch_key << 32 | seq: an integer key keeps rows and
    # index entries small and makes a batch one contiguous, append-only range. Secondary
    # indexes are per batch (see custom_id_index), built once its download is over.
    # cache_creation_5m / _1h are set for succeeded results, NULL for the others.
    """CREATE TABLE IF NOT EXISTS result_rows (
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
        length INTEGER NOT NULL,
        cache_creation_5m INTEGER,
        cache_creation_1h INTEGER
    )""",
    _VIEW,
)

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 1 -> 2: the 5-minute / 1-hour split of cache writes, priced differently.
    1: (
        "ALTER TABLE result_rows ADD COLUMN cache_creation_5m INTEGER",
        "ALTER TABLE result_rows ADD COLUMN cache_creation_1h INTEGER",
        "ALTER TABLE batches ADD COLUMN split_pending INTEGER NOT NULL DEFAULT 0",
        "UPDATE batches SET split_pending = 1",
        "DROP VIEW IF EXISTS results",
        _VIEW,
    ),
}
"""Statements that take a store from version N to N + 1; a store is never rebuilt."""


@functools.lru_cache(maxsize=64)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A regular expression over custom_ids; `ValueError` names a bad one."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None


def _regexp(pattern: str | None, value: str | None) -> bool:
    if pattern is None or value is None:
        return False
    return compile_pattern(pattern).search(value) is not None


def connect(path: Path) -> sqlite3.Connection:
    conn = open_wal(path, timeout=30.0, synchronous="NORMAL")
    conn.create_function("regexp", 2, _regexp, deterministic=True)
    return conn


def connect_writer(path: Path) -> sqlite3.Connection:
    """A connection for writing a download's rows: no automatic checkpoint in the middle
    (checkpoints fsync; the downloading process runs one when it is over)."""
    conn = connect(path)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables, or migrate an older store in place.

    A store from a newer batchtop is refused, never rebuilt: results older than 29 days
    cannot be downloaded again.
    """
    if _version(conn) == SCHEMA_VERSION:
        return
    with transaction(conn):
        version = _version(conn)  # again, under the write lock: another process may be here
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION or (version and version not in _MIGRATIONS):
            raise ValueError(
                f"{path} has index version {version}, this batchtop reads {SCHEMA_VERSION}"
            )
        steps = _CREATE if version == 0 else [
            statement for step in range(version, SCHEMA_VERSION) for statement in _MIGRATIONS[step]
        ]
        for statement in steps:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def custom_id_index(batch_key: int) -> str:
    """The name of a batch's custom_id index.

    A partial index per batch, built in one statement once the rows are in: keeping one
    shared index up to date row by row cost more than the rest of the SQLite work, as
    results arrive in no custom_id order. Filters on type or error type need no index:
    they scan the batch's id range (a few ms for 100,000 rows).
    """
    return f"result_rows_custom_id_{int(batch_key)}"


def id_range(batch_key: int) -> tuple[int, int]:
    """The first and last row id a batch's rows can have."""
    first = batch_key << SEQ_BITS
    return first, first + (1 << SEQ_BITS) - 1


ROWS_PER_INSERT = 50
"""Rows per INSERT statement: one statement per row costs a fifth more (800 parameters, under
the 999 that old SQLite builds allow)."""


@functools.lru_cache(maxsize=8)
def insert_sql(rows: int = 1) -> str:
    """INSERT of `rows` `IndexRecord`s of one batch. Parameters: the batch's first row id
    plus `seq_base` (?1), `seq_base` (?2), then each row's values.

    A row's seq is its first value plus `seq_base` (rows parsed apart from the lines before
    them count from 0), and its id follows from that.
    """
    rest = ", ".join(f"column{n}" for n in range(2, len(INDEX_COLUMNS) + 1))
    one = "(" + ", ".join("?" * len(INDEX_COLUMNS)) + ")"
    return (
        f"INSERT INTO result_rows (id, batch_key, {ROW_COLUMNS})"
        f" SELECT ?1 + column1, ?1 >> {SEQ_BITS}, ?2 + column1, {rest}"
        f" FROM (VALUES {', '.join([one] * rows)})"
    )


def insert_rows(
    conn: sqlite3.Connection, batch_key: int, rows: Sequence[Sequence[Any]], seq_base: int = 0
) -> None:
    """Insert one batch's `IndexRecord` rows, `ROWS_PER_INSERT` to a statement."""
    head = [(int(batch_key) << SEQ_BITS) + seq_base, seq_base]
    whole = len(rows) - len(rows) % ROWS_PER_INSERT
    if whole:
        conn.executemany(insert_sql(ROWS_PER_INSERT), (
            head + list(itertools.chain.from_iterable(rows[start:start + ROWS_PER_INSERT]))
            for start in range(0, whole, ROWS_PER_INSERT)
        ))
    if whole < len(rows):
        conn.executemany(insert_sql(1), (head + list(row) for row in rows[whole:]))


def status_from_row(row: Sequence[Any]) -> StoreStatus:
    """A `StoreStatus` from a row of `STATUS_COLUMNS`."""
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
