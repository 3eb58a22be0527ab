"""Index worker processes, and the hand-off of one download's byte ranges to them.

Parsing a results line is CPU work that holds the GIL, so on a machine with cores to spare a
big download is indexed by `tui.service.index_worker` processes while this process reads the
network. Ranges are parsed and written in parallel: each range's first seq is known as soon
as the lines before it are counted, so every row gets the seq it would have had in-process,
and the workers take turns writing, so SQLite has one writer at a time.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import subprocess
import sys
import threading
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

import tui

WORKER_MODULE = "tui.service.index_worker"
MAX_WORKERS = 4
BOOT_SECONDS = 10.0


class IndexWorkerFailed(RuntimeError):
    """A worker process died or could not index a range; the caller indexes in-process."""


def default_worker_count() -> int:
    """Workers worth starting here: none on one core, else up to `MAX_WORKERS`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 0 if not cores or cores < 2 else min(MAX_WORKERS, cores)


class _WorkerProcess:
    """One worker: commands written under a lock, answers matched to futures by op and id."""

    def __init__(self) -> None:
        env = dict(os.environ)
        package_root = str(Path(tui.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # no terminal signals (^C, SIGHUP) reach it
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin: IO[bytes] = self._proc.stdin
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, int], Future[dict[str, Any]]] = {}
        self._dead: str | None = None
        self._reader = threading.Thread(
            target=self._read, args=(self._proc.stdout,), name="index-worker-reader", daemon=True
        )
        self._reader.start()

    def send(self, command: dict[str, Any]) -> Future[dict[str, Any]]:
        """Queue a command; its future holds the answer (or `IndexWorkerFailed`)."""
        (future,) = self.send_expecting(command, (command["op"],))
        return future

    def send_expecting(
        self, command: dict[str, Any], ops: tuple[str, ...]
    ) -> list[Future[dict[str, Any]]]:
        """Queue a command answered once per op in `ops`: a future for each answer."""
        futures: list[Future[dict[str, Any]]] = [Future() for _ in ops]
        with self._lock:
            dead = self._dead
            if dead is None:
                for op, future in zip(ops, futures, strict=True):
                    self._waiting[(op, command["id"])] = future
                try:
                    self._stdin.write(orjson.dumps(command) + b"\n")
                    self._stdin.flush()
                except OSError as exc:
                    dead = f"index worker unreachable: {exc}"
        if dead is not None:
            self._fail(dead)
            for future in futures:
                if not future.done():
                    future.set_exception(IndexWorkerFailed(dead))
        return futures

    def _read(self, answers: IO[bytes]) -> None:
        for line in answers:
            try:
                answer = orjson.loads(line)
                key = (answer["op"], answer["id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                self._proc.kill()  # not our worker talking: it is useless from here on
                continue
            with self._lock:
                future = self._waiting.pop(key, None)
            # Resolved outside the lock: its callbacks may send the next command.
            if future is None:
                continue
            if "error" in answer:
                future.set_exception(IndexWorkerFailed(str(answer["error"])))
            else:
                future.set_result(answer)
        self._fail(f"index worker exited ({self._proc.wait()})")

    def _fail(self, reason: str) -> None:
        """Mark the worker dead and fail what waits on it (outside the lock, as above)."""
        with self._lock:
            if self._dead is None:
                self._dead = reason
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.set_exception(IndexWorkerFailed(reason))

    @property
    def alive(self) -> bool:
        return self._dead is None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def close(self) -> None:
        """End input (the worker exits), wait for it, kill it if it hangs."""
        with self._lock, contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=2.0)


class IndexPool:
    """A few worker processes, started on first use and kept until `close`."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._workers: list[_WorkerProcess] = []
        self._turn = itertools.count()
        self._jobs = itertools.count(1)
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the workers now (they take a moment to boot), if not yet started."""
        with self._lock:
            if not self._workers:
                self._workers = [_WorkerProcess() for _ in range(self.size)]

    @property
    def started(self) -> bool:
        with self._lock:
            return bool(self._workers)

    def ready(self, timeout: float = BOOT_SECONDS) -> bool:
        """Start the workers and wait until each answers; False if one did not in time."""
        self.start()
        with self._lock:
            workers = list(self._workers)
        pings = [worker.send({"op": "ping", "id": self.job()}) for worker in workers]
        done, _ = wait(pings, timeout=timeout)
        return len(done) == len(pings) and all(ping.exception() is None for ping in done)

    def pick(self) -> _WorkerProcess:
        """The next worker in turn, starting them all on first use."""
        self.start()
        with self._lock:
            return self._workers[next(self._turn) % self.size]

    def pids(self) -> list[int]:
        """Process ids of the started workers."""
        with self._lock:
            return [worker.pid for worker in self._workers]

    @property
    def healthy(self) -> bool:
        """No worker has died (an unstarted pool is healthy)."""
        return all(worker.alive for worker in self._workers)

    def job(self) -> int:
        """A fresh job number."""
        return next(self._jobs)

    def close(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.close()


@dataclass
class _Range:
    job: int
    worker: _WorkerProcess
    counted: Future[dict[str, Any]]
    parsed: Future[dict[str, Any]]
    written: bool = False


class ParallelIndex:
    """One download attempt's ranges: parsed and written by the pool, each with its own seqs.

    A worker answers each range's line count before parsing it, so every range gets its
    first seq (the lines before it) early; then whichever worker has parsed a range writes
    it, in any order, taking turns on the index's write lock. Readers see the rows of a
    range once written; `lines` counts the written ranges before the first unwritten one.

    `submit` is called from the thread that writes the raw file, after the range's bytes
    are written and flushed; everything else runs on the workers' reader threads.
    """

    def __init__(self, pool: IndexPool, db_path: Path, raw_path: Path, batch_key: int) -> None:
        self._pool = pool
        self._db = str(db_path)
        self._raw = str(raw_path)
        self._key = batch_key
        self._ranges: list[_Range] = []
        self._head = 0  # the first range not written (all before it are)
        self._counted = 0  # ranges given their first seq
        self._next_seq = 0
        self._inserting = 0  # insert orders not answered yet
        self._cond = threading.Condition()
        self.failure: IndexWorkerFailed | None = None
        self.lines = 0  # in the written ranges before `_head`: visible, in stream order
        self.malformed = 0
        self.unknown = 0

    def submit(self, start: int, end: int, last: bool) -> None:
        """Index bytes `start..end` of the raw file (whole lines, or the stream's end)."""
        worker = self._pool.pick()
        job = self._pool.job()
        command = {"op": "parse", "id": job, "raw": self._raw, "start": start, "end": end,
                   "last": last}
        counted, parsed = worker.send_expecting(command, ("count", "parse"))
        entry = _Range(job, worker, counted, parsed)
        with self._cond:
            self._ranges.append(entry)
        counted.add_done_callback(lambda _: self._assign())
        parsed.add_done_callback(lambda done: self._check(done))

    def _assign(self) -> None:
        """Give each counted range whose predecessors are counted its first seq."""
        orders: list[tuple[_Range, int]] = []
        with self._cond:
            while self.failure is None and self._counted < len(self._ranges):
                entry = self._ranges[self._counted]
                if not entry.counted.done():
                    break
                error = entry.counted.exception()
                if error is not None:
                    self._give_up(error)
                    return
                orders.append((entry, self._next_seq))
                self._next_seq += int(entry.counted.result()["lines"])
                self._counted += 1
            self._inserting += len(orders)
        for entry, seq in orders:
            command = {"op": "insert", "id": entry.job, "db": self._db, "key": self._key,
                       "seq": seq}
            entry.worker.send(command).add_done_callback(functools.partial(self._written, entry))

    def _check(self, parsed: Future[dict[str, Any]]) -> None:
        error = parsed.exception()
        if error is not None:
            with self._cond:
                self._give_up(error)

    def _written(self, entry: _Range, done: Future[dict[str, Any]]) -> None:
        with self._cond:
            self._inserting -= 1
            error = done.exception()
            if error is not None:
                self._give_up(error)
                return
            entry.written = True
            while self._head < len(self._ranges) and self._ranges[self._head].written:
                counts = self._ranges[self._head].parsed.result()  # answered before the write
                self.lines += int(counts["lines"])
                self.malformed += int(counts["malformed"])
                self.unknown += int(counts["unknown"])
                self._head += 1
            self._cond.notify_all()

    def _give_up(self, error: BaseException | None) -> None:
        """Called holding the condition: stop writing, release what the workers hold."""
        if self.failure is None:
            reason = str(error) if error is not None else "an earlier range failed"
            self.failure = IndexWorkerFailed(reason)
            for entry in self._ranges[self._head:]:
                if not entry.written and entry.worker.alive:
                    entry.worker.send({"op": "drop", "id": entry.job})
        self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> None:
        """Block until every submitted range is written; raises `IndexWorkerFailed`."""
        with self._cond:
            # Even after a failure, writes under way are waited for: the caller may delete
            # the rows next, and a commit landing after that would leave strays.
            finished = self._cond.wait_for(
                lambda: not self._inserting
                and (self.failure is not None or self._head == len(self._ranges)),
                timeout=timeout,
            )
            if self.failure is not None:
                raise self.failure
            if not finished:
                raise IndexWorkerFailed(f"index workers did not finish within {timeout} s")

    def abandon(self) -> None:
        """Stop: ranges not yet written are dropped (the attempt is being thrown away)."""
        with self._cond:
            self._give_up(IndexWorkerFailed("abandoned"))
