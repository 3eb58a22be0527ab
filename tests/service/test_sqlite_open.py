"""Several processes opening a fresh SQLite file at once all get a WAL connection."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from tui.service.sqlite_open import open_wal

PROCESSES = 4
ROUNDS = 20


def _open_and_write(path: str, start: object, index: int) -> None:
    start.wait()  # type: ignore[attr-defined]
    conn = open_wal(Path(path), timeout=10.0, synchronous="NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
    conn.execute("INSERT INTO t VALUES (?)", (index,))
    conn.close()


def test_concurrent_first_opens_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        path = tmp_path / f"race-{round_}.sqlite3"
        start = context.Event()
        workers = [context.Process(target=_open_and_write, args=(str(path), start, i))
                   for i in range(PROCESSES)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(timeout=30)
            assert worker.exitcode == 0
        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert sorted(n for (n,) in check.execute("SELECT n FROM t")) == list(
                range(PROCESSES))


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no-such-dir" / "x.sqlite3"
    try:
        open_wal(missing_dir, timeout=5.0, synchronous="NORMAL")
    except sqlite3.OperationalError as exc:
        assert "locked" not in str(exc)
    else:
        raise AssertionError("opening a file in a missing directory should fail")
