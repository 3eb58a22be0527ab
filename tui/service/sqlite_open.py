"""Open a SQLite file in WAL mode safely when several processes open it at the same moment."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

# Switching a new file to WAL takes an exclusive lock, and SQLite may answer "database is
# locked" at once (without its busy handler) while another process is doing the same: retry.
WAL_RETRY_SECONDS = 0.02


def open_wal(path: Path, *, timeout: float, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode, WAL journal, with a busy timeout of `timeout` seconds."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(WAL_RETRY_SECONDS)
        conn.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn
