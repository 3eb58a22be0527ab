"""Fills the cache-write split of batches indexed before it was kept, from their raw lines."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from tui.core.results import SUCCEEDED, index_record
from tui.core.sanitize import safe_text
from tui.service.results_files import RawReader
from tui.service.results_schema import id_range, transaction

log = logging.getLogger(__name__)

SPLIT_KEY = b'"cache_creation"'
"""A line without this key has no split: all of its cache writes are 5-minute ones."""


class _Mismatch(Exception):
    """The raw file is not the one the rows were indexed from."""


def backfill_splits(conn: sqlite3.Connection, directory: Path) -> list[str]:
    """Derive the 5-minute / 1-hour split of every batch still missing it; the ids filled.

    The raw lines are byte-exact, so this gives what indexing them today would. A batch
    whose raw file is gone or no longer matches its rows keeps the NULLs (its writes then
    count as 5-minute ones) until it is downloaded again.
    """
    pending = conn.execute(
        "SELECT batch_key, batch_id, raw_file, bytes FROM batches WHERE split_pending"
    ).fetchall()
    filled: list[str] = []
    for key, batch_id, raw_file, size in pending:
        try:
            _fill(conn, key, directory / raw_file, size)
        except OSError as exc:  # `status` reports the file as changed: it is downloaded again
            log.info("cannot read the raw results of %s: %s", safe_text(batch_id), exc)
        except _Mismatch:
            log.warning("the raw results of %s no longer match the index", safe_text(batch_id))
        else:
            filled.append(batch_id)
    return filled


def _fill(conn: sqlite3.Connection, key: int, raw_path: Path, size: int) -> None:
    """One batch, in one transaction: one pass over its succeeded lines, in file order."""
    first, last = id_range(key)
    with open(raw_path, "rb") as handle, transaction(conn):
        if os.fstat(handle.fileno()).st_size != size:
            raise _Mismatch
        rows = conn.execute(
            "SELECT id, custom_id, offset, length FROM result_rows"
            " WHERE id BETWEEN ? AND ? AND type = ? AND cache_creation_5m IS NULL ORDER BY id",
            (first, last, SUCCEEDED),
        ).fetchall()
        reader = RawReader(handle)
        split: list[tuple[int | None, int | None, int]] = []
        for row_id, custom_id, offset, length in rows:
            line = reader.read(offset, length)
            if SPLIT_KEY not in line:
                continue  # no split: the one UPDATE below
            record = index_record(line)
            if record[1] != custom_id or record[2] != SUCCEEDED:
                raise _Mismatch
            split.append((record[14], record[15], row_id))
        conn.executemany(
            "UPDATE result_rows SET cache_creation_5m = ?, cache_creation_1h = ? WHERE id = ?",
            split,
        )
        conn.execute(
            "UPDATE result_rows SET cache_creation_5m = coalesce(cache_creation_input_tokens, 0),"
            " cache_creation_1h = 0"
            " WHERE id BETWEEN ? AND ? AND type = ? AND cache_creation_5m IS NULL",
            (first, last, SUCCEEDED),
        )
        conn.execute("UPDATE batches SET split_pending = 0 WHERE batch_key = ?", (key,))
