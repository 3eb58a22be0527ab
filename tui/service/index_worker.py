"""A results-index worker process: parses byte ranges of a raw results file, writes their rows.

Run as ``python -m tui.service.index_worker``; `tui.service.index_pool` starts and feeds it.
It reads one JSON command per line on stdin and answers each with one JSON line on stdout
that repeats its ``op`` and ``id``. Writes and drops are answered before any parse still
waiting: the parent writes ranges one at a time, in stream order, so a write must not queue
behind parses of later ranges.

* ``{"op": "parse", "id": N, "raw": PATH, "start": S, "end": E, "last": BOOL}`` indexes the
  lines of bytes ``S..E`` of ``PATH`` (which end with ``\\n``, or at the end of the stream
  when ``last``), numbering them from 0, and keeps the rows: answers with ``"lines": L,
  "malformed": M, "unknown": U``.
* ``{"op": "insert", "id": N, "db": PATH, "key": K, "seq": B}`` writes the rows kept for
  job N into the index at ``PATH``, as batch K's rows from seq B on, in one transaction.
* ``{"op": "drop", "id": N}`` forgets job N's rows (an abandoned download).
* ``{"op": "ping", "id": N}`` is answered at once (the worker has booted).

A failure is answered with ``"error": TEXT``; the worker goes on with the next command.
End of input ends it.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import sys
import threading
from collections import deque
from pathlib import Path
from typing import IO, Any

import orjson

from tui.core.line_index import LineBatch, index_lines
from tui.service.results_schema import connect_writer, insert_rows, transaction


class Worker:
    """The worker's state: parsed rows waiting for their seq, and one connection per index."""

    def __init__(self) -> None:
        self.kept: dict[int, LineBatch] = {}
        self.connections: dict[str, sqlite3.Connection] = {}

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command["op"]
        job = int(command["id"])
        if op == "parse":
            batch = self.parse(command["raw"], int(command["start"]), int(command["end"]),
                               bool(command.get("last")))
            self.kept[job] = batch
            return {"op": op, "id": job, "lines": len(batch.rows),
                    "malformed": batch.malformed, "unknown": batch.unknown}
        if op == "insert":
            self.insert(self.kept.pop(job), command["db"], int(command["key"]),
                        int(command["seq"]))
            return {"op": op, "id": job}
        if op == "drop":
            self.kept.pop(job, None)
            return {"op": op, "id": job}
        if op == "ping":
            return {"op": op, "id": job}
        raise ValueError(f"unknown command {op!r}")

    def parse(self, raw: str, start: int, end: int, last: bool) -> LineBatch:
        fd = os.open(raw, os.O_RDONLY)
        try:
            data = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        if len(data) != end - start:
            raise OSError(f"{raw}: {end - start} bytes expected at {start}, {len(data)} read")
        lines = data.split(b"\n")
        if not last or not lines[-1]:
            lines.pop()  # the part after the final newline: nothing, or not a line yet
        return index_lines(lines, 0, start)

    def insert(self, batch: LineBatch, db: str, key: int, seq: int) -> None:
        conn = self.connections.get(db)
        if conn is None:
            conn = self.connections[db] = connect_writer(Path(db))  # `Ingest.close` checkpoints
        with transaction(conn):
            insert_rows(conn, key, batch.rows, seq)


class Inbox:
    """Commands read on a thread of their own, writes and drops ahead of parses."""

    def __init__(self, commands: IO[bytes]) -> None:
        self._urgent: deque[bytes] = deque()
        self._parses: deque[bytes] = deque()
        self._ended = False
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(commands,), daemon=True).start()

    def _read(self, commands: IO[bytes]) -> None:
        for line in commands:
            if line.strip():
                with self._cond:
                    queue = self._parses if b'"op":"parse"' in line else self._urgent
                    queue.append(line)
                    self._cond.notify()
        with self._cond:
            self._ended = True
            self._cond.notify()

    def next(self) -> bytes | None:
        """The next command to run, or None once input has ended and all are done."""
        with self._cond:
            self._cond.wait_for(lambda: self._urgent or self._parses or self._ended)
            if self._urgent:
                return self._urgent.popleft()
            if self._parses:
                return self._parses.popleft()
            return None


def serve(commands: IO[bytes], answers: IO[bytes]) -> None:
    """Answer `commands` until they end."""
    worker = Worker()
    inbox = Inbox(commands)
    while (line := inbox.next()) is not None:
        job: object = None
        op: object = None
        try:
            command = orjson.loads(line)
            job, op = command.get("id"), command.get("op")
            answer = worker.handle(command)
        except Exception as exc:
            answer = {"op": op, "id": job, "error": f"{type(exc).__name__}: {exc}"}
        answers.write(orjson.dumps(answer) + b"\n")
        answers.flush()
    for conn in worker.connections.values():
        conn.close()


def main() -> None:
    # Rows are plain tuples and nothing here makes cycles: reference counting frees it all.
    gc.disable()
    # The command reader thread must get in promptly: a write waits on it, and the
    # download's rows are written one range after the other.
    sys.setswitchinterval(0.0005)
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
