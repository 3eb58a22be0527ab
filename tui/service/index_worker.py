"""A results-index worker process: parses byte ranges of a raw results file, writes their rows.

Run as ``python -m tui.service.index_worker``; `tui.service.index_pool` starts and feeds it.
It reads one JSON command per line on stdin and answers with JSON lines on stdout that repeat
the command's ``op`` (or name another) and ``id``. Inserts and drops go ahead of parses, even
of one under way (they are looked at between slices of its lines).

* ``{"op": "parse", "id": N, "raw": PATH, "start": S, "end": E, "last": BOOL}`` indexes the
  lines of bytes ``S..E`` of ``PATH`` (which end with ``\\n``, or at the end of the stream
  when ``last``), numbering them from 0, and keeps the rows. It is answered twice: at once
  with ``{"op": "count", "id": N, "lines": L}`` (the lines are split, not parsed yet: the
  parent can give the next range its first seq early), then, parsed, with ``{"op":
  "parse", "id": N, "lines": L, "malformed": M, "unknown": U}``.
* ``{"op": "insert", "id": N, "db": PATH, "key": K, "seq": B}`` writes job N's rows into the
  index at ``PATH``, as batch K's rows from seq B on, in one transaction: once they are
  parsed and no other worker is writing (the workers take turns on a lock file beside the
  index; a worker that finds it taken parses meanwhile). Ranges are written in any order:
  each has its own seqs. Answered when written.
* ``{"op": "drop", "id": N}`` forgets job N (an abandoned download), also when its parse
  has not run or ended yet; an insert of N still waiting is answered with an error.
* ``{"op": "ping", "id": N}`` is answered at once (the worker has booted).

A failure is answered with ``"error": TEXT``; the worker goes on with the next command.
End of input ends it, once every insert it can make is made.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import sqlite3
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from tui.core.line_index import LineBatch, index_lines
from tui.core.results import is_blank
from tui.service.results_schema import connect_writer, insert_rows, transaction

PARSE_SLICE = 256
"""Lines parsed between looks for an insert or drop that came in (about 0.3 ms of work)."""
WRITE_LOCK_SUFFIX = ".writer-lock"

Answer = Callable[[dict[str, Any]], None]


class Worker:
    """The worker's state: parsed rows, insert orders, one connection and lock per index.

    `between` runs every `PARSE_SLICE` lines of a parse: the inserts and drops that came in
    meanwhile, and any insert whose turn at the lock has come.
    """

    def __init__(self, answer: Answer, between: Callable[[], None] = lambda: None) -> None:
        self.answer = answer
        self.between = between
        self.kept: dict[int, LineBatch] = {}  # parsed, no insert order yet
        self.orders: dict[int, dict[str, Any]] = {}  # insert orders waiting for their parse
        self.ready: dict[int, tuple[LineBatch, dict[str, Any]]] = {}  # both: to write
        self.dropped: set[int] = set()  # job ids are never reused: a few ints per download
        self.connections: dict[str, sqlite3.Connection] = {}
        self.locks: dict[str, int] = {}

    def handle(self, command: dict[str, Any]) -> None:
        """Run one command; its answers go to `answer` (an insert's maybe later)."""
        op = command["op"]
        job = int(command["id"])
        if op == "parse":
            self._parse(job, command)
        elif op == "insert":
            batch = self.kept.pop(job, None)
            if batch is not None:
                self.ready[job] = (batch, command)
                self.write_ready(block=False)
            elif job in self.dropped:
                raise KeyError(f"job {job} was dropped")
            else:
                self.orders[job] = command
        elif op == "drop":
            self.dropped.add(job)  # a parse or insert order that comes later is refused
            self.kept.pop(job, None)
            order = self.orders.pop(job, None)
            ready = self.ready.pop(job, None)
            if order is not None or ready is not None:
                self.answer({"op": "insert", "id": job, "error": "dropped"})
            self.answer({"op": op, "id": job})
        elif op == "ping":
            self.answer({"op": op, "id": job})
        else:
            raise ValueError(f"unknown command {op!r}")

    def _parse(self, job: int, command: dict[str, Any]) -> None:
        counted = False
        try:
            lines, start = self._read(command)
            self.answer({"op": "count", "id": job,
                         "lines": sum(1 for line in lines if not is_blank(line))})
            counted = True
            batch = self._index(lines, start)
        except Exception as exc:
            if not counted:
                self.answer({"op": "count", "id": job, "error": _describe(exc)})
            raise
        self.answer({"op": "parse", "id": job, "lines": len(batch.rows),
                     "malformed": batch.malformed, "unknown": batch.unknown})
        if job in self.orders:
            self.ready[job] = (batch, self.orders.pop(job))
            self.write_ready(block=False)
        elif job not in self.dropped:
            self.kept[job] = batch

    @staticmethod
    def _read(command: dict[str, Any]) -> tuple[list[bytes], int]:
        raw, start, end = command["raw"], int(command["start"]), int(command["end"])
        fd = os.open(raw, os.O_RDONLY)
        try:
            data = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        if len(data) != end - start:
            raise OSError(f"{raw}: {end - start} bytes expected at {start}, {len(data)} read")
        lines = data.split(b"\n")
        if not command.get("last") or not lines[-1]:
            lines.pop()  # the part after the final newline: nothing, or not a line yet
        return lines, start

    def _index(self, lines: list[bytes], offset: int) -> LineBatch:
        batch = LineBatch([])
        for first in range(0, len(lines), PARSE_SLICE):
            piece = lines[first:first + PARSE_SLICE]
            batch.extend(index_lines(piece, len(batch.rows), offset))
            offset += sum(map(len, piece)) + len(piece)
            self.between()
        return batch

    def write_ready(self, *, block: bool) -> None:
        """Write the ready jobs, oldest first; without `block`, only while the lock is free."""
        for job in sorted(self.ready):
            batch, order = self.ready[job]
            db = str(order["db"])
            lock = self._lock(db)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX if block else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another worker is writing: parse on, try again soon
            del self.ready[job]
            try:
                self._insert(batch, db, int(order["key"]), int(order["seq"]))
            except Exception as exc:
                self.answer({"op": "insert", "id": job, "error": _describe(exc)})
            else:
                self.answer({"op": "insert", "id": job})
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _lock(self, db: str) -> int:
        fd = self.locks.get(db)
        if fd is None:
            fd = self.locks[db] = os.open(db + WRITE_LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o600)
        return fd

    def _insert(self, batch: LineBatch, db: str, key: int, seq: int) -> None:
        conn = self.connections.get(db)
        if conn is None:
            conn = self.connections[db] = connect_writer(Path(db))  # `Ingest.close` checkpoints
        with transaction(conn):
            insert_rows(conn, key, batch.rows, seq)

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()
        for fd in self.locks.values():
            with contextlib.suppress(OSError):
                os.close(fd)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Inbox:
    """Commands read on a thread of their own, inserts and drops ahead of parses."""

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

    def urgent(self) -> bytes | None:
        """An insert or drop that has come in, without waiting."""
        with self._cond:
            return self._urgent.popleft() if self._urgent else None

    @property
    def idle(self) -> bool:
        """Nothing to run now."""
        with self._cond:
            return not self._urgent and not self._parses


def serve(commands: IO[bytes], answers: IO[bytes]) -> None:
    """Answer `commands` until they end."""
    inbox = Inbox(commands)

    def answer(message: dict[str, Any]) -> None:
        answers.write(orjson.dumps(message) + b"\n")
        answers.flush()

    def run(line: bytes) -> None:
        job: object = None
        op: object = None
        try:
            command = orjson.loads(line)
            job, op = command.get("id"), command.get("op")
            worker.handle(command)
        except Exception as exc:
            answer({"op": op, "id": job, "error": _describe(exc)})

    def between() -> None:
        while (line := inbox.urgent()) is not None:
            run(line)
        worker.write_ready(block=False)

    worker = Worker(answer, between)
    try:
        while True:
            between()
            if worker.ready and inbox.idle:
                worker.write_ready(block=True)  # nothing else to do: wait for the lock
                continue
            line = inbox.next()
            if line is None:
                break
            run(line)
    finally:
        worker.close()


def main() -> None:
    # Rows are plain tuples and nothing here makes cycles: reference counting frees it all.
    gc.disable()
    # The command reader thread must get in promptly: inserts wait on it.
    sys.setswitchinterval(0.0005)
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
