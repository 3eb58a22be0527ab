"""Index worker processes: the same rows as indexing in-process, and a fallback when they fail."""

from __future__ import annotations

import io
import itertools
import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulator_fixtures import MakeEmulator
from tui.core.models import BatchSnapshot
from tui.core.results import KNOWN_TYPES, DownloadProgress
from tui.service.api import BatchesAPI
from tui.service.index_pool import IndexPool, IndexWorkerFailed, ParallelIndex
from tui.service.index_worker import Worker, serve
from tui.service.results_ingest import Ingest
from tui.service.results_schema import connect, ensure_schema
from tui.service.results_store import ResultsStore


@pytest.fixture(scope="module")
def pool() -> Iterator[IndexPool]:
    workers = IndexPool(2)
    assert workers.ready()
    yield workers
    workers.close()


def fresh_db(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "index.sqlite3"
    conn = connect(path)
    ensure_schema(conn, path)
    conn.close()
    return path


def index(directory: Path, chunks: list[bytes], pool: IndexPool | None,
          end_of_stream: bool = True) -> tuple[list[tuple[Any, ...]], tuple[int, ...]]:
    """Ingest `chunks` as one attempt; the rows and the counters it ends with."""
    db = fresh_db(directory)
    ingest = Ingest(db, directory / "b.jsonl", "b", 0, range_bytes=1)  # a range per chunk
    try:
        ingest.restart(1, pool)
        for chunk in chunks:
            ingest.feed(chunk)
        done = ingest.finish(end_of_stream)
    finally:
        ingest.close()
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT * FROM result_rows ORDER BY id").fetchall()
    conn.close()
    return rows, (done.lines, done.stored, done.bytes, done.malformed, done.unknown)


def result_line(n: int, kind: str) -> bytes:
    result: dict[str, Any] = {"type": kind}
    if kind == "succeeded":
        result["message"] = {"model": "claude-x", "stop_reason": "end_turn",
                             "content": [{"type": "text", "text": "é\n\"" * n}],
                             "usage": {"input_tokens": n, "output_tokens": 2 * n}}
    elif kind == "errored":
        result["error"] = {"type": "error", "error": {"type": "api_error", "message": "x" * n}}
    return orjson.dumps({"custom_id": f"id-{n}", "result": result})


LINE = st.one_of(
    st.builds(result_line, st.integers(0, 400), st.sampled_from([*sorted(KNOWN_TYPES), "new"])),
    st.sampled_from([b"", b"   ", b"\r", b"{not json", b'{"custom_id": "cut-1", "resu', b"[]"]),
)


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    bounds = sorted({0, len(stream), *(p % (len(stream) + 1) for p in points)})
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, max_size=60), points=st.lists(st.integers(0, 1 << 16), max_size=12),
       ended=st.booleans(), terminated=st.booleans())
def test_workers_index_exactly_what_the_process_does(
    pool: IndexPool, tmp_path_factory: pytest.TempPathFactory, lines: list[bytes],
    points: list[int], ended: bool, terminated: bool,
) -> None:
    stream = b"\n".join(lines) + (b"\n" if terminated and lines else b"")
    chunks = cut(stream, points)
    here = index(tmp_path_factory.mktemp("here"), chunks, None, ended)
    there = index(tmp_path_factory.mktemp("there"), chunks, pool, ended)
    assert there == here


async def ended_batch(make: MakeEmulator, size: int) -> tuple[BatchesAPI, BatchSnapshot]:
    emu = await make(scenario=f"large:{size}", seed=5)
    api = BatchesAPI.connect("test-key", emu.url)
    (batch,) = await api.list_all()
    return api, batch


async def test_a_big_download_through_the_workers_matches_one_in_process(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    api, batch = await ended_batch(make_emulator, 3000)
    here = ResultsStore(tmp_path / "here", "ws", workers=0)
    there = ResultsStore(tmp_path / "there", "ws", workers=2, parallel_from=1000,
                         feed_bytes=32 << 10)
    try:
        assert (await here.ensure(api.client, batch)).complete
        stored: list[int] = []
        status = await there.ensure(api.client, batch, progress=lambda p: stored.append(p.stored))
        assert status.complete and status.lines == 3000
        assert there._pool is not None and there._pool.healthy and there.worker_pids()
        assert stored[-1] == 3000 and stored == sorted(stored)  # progress never goes back
        assert there.query(batch.id) == here.query(batch.id)
        assert there.read_raw(batch.id, 2999) == here.read_raw(batch.id, 2999)
    finally:
        here.close()
        there.close()
        await api.close()


async def test_a_worker_that_dies_leaves_the_download_to_this_process(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    api, batch = await ended_batch(make_emulator, 2000)
    store = ResultsStore(tmp_path, "ws", workers=2, parallel_from=1, feed_bytes=32 << 10)
    try:
        assert store.start_workers()
        os.kill(store.worker_pids()[1], signal.SIGKILL)
        status = await store.ensure(api.client, batch)
        assert status.complete and status.lines == 2000 and status.attempts == 1
        assert store._pool is None and store.worker_pids() == []  # in-process from now on
        assert len(store.custom_ids(batch.id)) == 2000
    finally:
        store.close()
        await api.close()


def test_a_range_that_cannot_be_read_fails_the_attempt(pool: IndexPool, tmp_path: Path) -> None:
    db = fresh_db(tmp_path)
    parallel = ParallelIndex(pool, db, tmp_path / "missing.jsonl", 1)
    parallel.submit(0, 10, last=True)
    with pytest.raises(IndexWorkerFailed, match="FileNotFoundError"):
        parallel.wait(timeout=10)
    assert pool.healthy  # the worker goes on: only that range failed


def test_the_worker_commands(tmp_path: Path) -> None:
    raw = tmp_path / "b.jsonl"
    lines = [result_line(1, "succeeded"), b"", result_line(2, "errored"), b"{torn"]
    raw.write_bytes(b"\n".join(lines) + b"\n" + result_line(3, "expired"))
    db = str(fresh_db(tmp_path))
    size = raw.stat().st_size
    answers: list[dict[str, Any]] = []
    worker = Worker(answers.append)

    def run(command: dict[str, Any]) -> list[dict[str, Any]]:
        answers.clear()
        worker.handle(command)
        return list(answers)

    parse = {"op": "parse", "raw": str(raw), "start": 0, "end": size}
    insert = {"op": "insert", "db": db, "key": 7}
    assert run({"op": "ping", "id": 1}) == [{"op": "ping", "id": 1}]
    # Counted first (blank lines take no seq), then parsed.
    assert run({**parse, "id": 2, "last": True}) == [
        {"op": "count", "id": 2, "lines": 4},
        {"op": "parse", "id": 2, "lines": 4, "malformed": 1, "unknown": 0}]
    assert run({**insert, "id": 2, "seq": 10}) == [{"op": "insert", "id": 2}]
    # An insert order may come before the parse: it is made once the rows are there.
    assert run({**insert, "id": 5, "seq": 14}) == []
    assert run({**parse, "id": 5, "last": True}) == [
        {"op": "count", "id": 5, "lines": 4},
        {"op": "parse", "id": 5, "lines": 4, "malformed": 1, "unknown": 0},
        {"op": "insert", "id": 5}]
    # Not the end of the stream: the unterminated last line is not a line yet.
    assert run({**parse, "id": 3, "last": False})[0]["lines"] == 3
    assert run({"op": "drop", "id": 3}) == [{"op": "drop", "id": 3}]
    with pytest.raises(KeyError):  # dropped: nothing left to insert
        worker.handle({**insert, "id": 3, "seq": 0})
    # Dropped while its insert waits for the parse: the insert is answered with an error,
    # and the parse that comes later keeps nothing.
    assert run({**insert, "id": 4, "seq": 0}) == []
    assert run({"op": "drop", "id": 4}) == [{"op": "insert", "id": 4, "error": "dropped"},
                                            {"op": "drop", "id": 4}]
    assert run({**parse, "id": 4, "last": True})[-1]["op"] == "parse"
    assert 4 not in worker.kept and not worker.ready
    with pytest.raises(ValueError, match="unknown command"):
        worker.handle({"op": "fly", "id": 6})
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT seq, id - (7 << 32), batch_key, type FROM result_rows").fetchall()
    kinds = ["succeeded", "errored", "malformed", "expired"]
    assert rows == [(seq, seq, 7, kinds[seq % 4 - 2]) for seq in range(10, 18)]
    worker.close()


def test_a_range_missing_from_the_file_fails_its_count(tmp_path: Path) -> None:
    answers: list[dict[str, Any]] = []
    worker = Worker(answers.append)
    with pytest.raises(FileNotFoundError):
        worker.handle({"op": "parse", "id": 1, "raw": str(tmp_path / "gone"), "start": 0,
                       "end": 5})
    assert answers == [{"op": "count", "id": 1,
                        "error": answers[0]["error"]}]
    assert "FileNotFoundError" in answers[0]["error"]


def test_serve_answers_every_command_and_reports_failures(tmp_path: Path) -> None:
    commands = [{"op": "ping", "id": 1}, {"op": "drop", "id": 2},
                {"op": "insert", "id": 2, "db": "x", "key": 1, "seq": 0}, {"op": "fly", "id": 3}]
    out = io.BytesIO()
    serve(io.BytesIO(b"".join(orjson.dumps(c) + b"\n" for c in commands) + b"\n{oops\n"), out)
    got = {(a["op"], a["id"]): a for a in map(orjson.loads, out.getvalue().splitlines())}
    assert got[("ping", 1)] == {"op": "ping", "id": 1}
    assert "KeyError" in got[("insert", 2)]["error"]
    assert "unknown command" in got[("fly", 3)]["error"]
    assert "JSONDecodeError" in got[(None, None)]["error"]


class FakeWorker:
    """Records commands; the test answers them by hand."""

    alive = True

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.pending: dict[tuple[str, int], Future[dict[str, Any]]] = {}

    def send_expecting(self, command: dict[str, Any],
                       ops: tuple[str, ...]) -> list[Future[dict[str, Any]]]:
        self.sent.append(command)
        futures: list[Future[dict[str, Any]]] = [Future() for _ in ops]
        for op, future in zip(ops, futures, strict=True):
            self.pending[(op, command["id"])] = future
        return futures

    def send(self, command: dict[str, Any]) -> Future[dict[str, Any]]:
        return self.send_expecting(command, (command["op"],))[0]

    def answer(self, op: str, job: int, **fields: Any) -> None:
        self.pending.pop((op, job)).set_result({"op": op, "id": job, **fields})

    def fail(self, op: str, job: int) -> None:
        self.pending.pop((op, job)).set_exception(IndexWorkerFailed("boom"))

    def orders(self, op: str) -> list[tuple[int, int | None]]:
        return [(c["id"], c.get("seq")) for c in self.sent if c["op"] == op]


class FakePool:
    def __init__(self, worker: FakeWorker) -> None:
        self.worker = worker
        self.jobs = itertools.count(1)

    def pick(self) -> FakeWorker:
        return self.worker

    def job(self) -> int:
        return next(self.jobs)


def fake_parallel(tmp_path: Path) -> tuple[ParallelIndex, FakeWorker]:
    worker = FakeWorker()
    parallel = ParallelIndex(FakePool(worker), tmp_path / "i", tmp_path / "r", 1)  # type: ignore[arg-type]
    for start in (0, 10, 20):
        parallel.submit(start, start + 10, last=False)
    return parallel, worker


def test_each_range_gets_its_first_seq_once_the_lines_before_it_are_counted(
    tmp_path: Path,
) -> None:
    parallel, worker = fake_parallel(tmp_path)
    worker.answer("count", 1, lines=5)
    worker.answer("count", 3, lines=7)
    assert worker.orders("insert") == [(1, 0)]  # range 3 waits for range 2's count
    worker.answer("count", 2, lines=4)
    assert worker.orders("insert") == [(1, 0), (2, 5), (3, 9)]
    for job, lines in ((1, 5), (2, 4), (3, 7)):
        worker.answer("parse", job, lines=lines, malformed=job == 2, unknown=0)
    # Written out of order: readers count only the written ranges before the first gap.
    worker.answer("insert", 3)
    assert parallel.lines == 0
    worker.answer("insert", 1)
    assert parallel.lines == 5
    worker.answer("insert", 2)
    assert (parallel.lines, parallel.malformed) == (16, 1)
    parallel.wait(timeout=1)


def test_a_failed_write_drops_the_rest_and_waits_for_writes_under_way(tmp_path: Path) -> None:
    parallel, worker = fake_parallel(tmp_path)
    for job, lines in ((1, 5), (2, 4), (3, 7)):
        worker.answer("count", job, lines=lines)
    worker.fail("insert", 2)
    assert [job for job, _ in worker.orders("drop")] == [1, 2, 3]
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            parallel.wait(timeout=10)
        except IndexWorkerFailed as exc:
            raised.append(exc)

    waiting = threading.Thread(target=wait)
    waiting.start()
    waiting.join(timeout=0.2)
    assert waiting.is_alive()  # inserts 1 and 3 are still under way
    worker.answer("parse", 1, lines=5, malformed=0, unknown=0)
    worker.answer("insert", 1)
    assert waiting.is_alive()
    worker.fail("insert", 3)  # dropped before it was written
    waiting.join(timeout=5)
    assert not waiting.is_alive() and "boom" in str(raised[0])


async def test_a_worker_killed_mid_download_leaves_a_whole_store(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    """Ranges are written out of order: killed half-way, the attempt is redone in this
    process and the store holds every row once, with contiguous seqs."""
    api, batch = await ended_batch(make_emulator, 3000)
    reference = ResultsStore(tmp_path / "ref", "ws", workers=0)
    store = ResultsStore(tmp_path / "t", "ws", workers=2, parallel_from=1, feed_bytes=16 << 10)
    try:
        assert (await reference.ensure(api.client, batch)).complete
        assert store.start_workers()
        victim = store.worker_pids()[0]
        killed: list[int] = []

        def kill_once(progress: DownloadProgress) -> None:
            if not killed and progress.bytes:
                os.kill(victim, signal.SIGKILL)
                killed.append(progress.lines)

        status = await store.ensure(api.client, batch, progress=kill_once)
        assert killed and status.complete and status.lines == 3000
        assert store.query(batch.id, limit=5000) == reference.query(batch.id, limit=5000)
        conn = sqlite3.connect(store.db_path)
        assert conn.execute("SELECT count(*), min(seq), max(seq) FROM result_rows").fetchone() \
            == (3000, 0, 2999)
        conn.close()
    finally:
        reference.close()
        store.close()
        await api.close()
