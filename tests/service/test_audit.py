"""The audit log: durable, private, one line per event, readable after crashes and races."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.core.events import AUDIT_DROPPED, BATCH_DISCOVERED, BATCH_ENDED, SESSION_STARTED, Event
from tui.core.timefmt import iso_millis
from tui.service import audit as audit_module
from tui.service.audit import (
    GLOBAL_FILE,
    AuditHistory,
    AuditLog,
    LogReader,
    SharedAuditHistory,
    audit_file_name,
    file_keys,
    follow_audit,
    read_audit,
)

WRITER = Path(__file__).with_name("audit_writer.py")
KEYS = ["timestamp", "event", "batch_id", "data", "actor", "session", "seq", "schema"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


STILL = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def ticking_clock(start: datetime | None = None) -> Callable[[], datetime]:
    """A clock that advances one millisecond per reading, so record order is well defined."""
    moments = (
        (start or datetime(2026, 5, 1, 9, 0, tzinfo=UTC)) + timedelta(milliseconds=i)
        for i in range(10**9)
    )
    return lambda: next(moments)


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def file_names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def make_dir(directory: Path, dir_mode: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(dir_mode)


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit"


async def test_a_record_is_one_complete_line_with_every_key_in_order(audit_dir: Path) -> None:
    audit = AuditLog(
        audit_dir, actor="ana@box", session="ses_1", clock=ticking_clock(), secrets=["sk-none"]
    )
    await audit.record(Event(BATCH_DISCOVERED, "msgbatch_01", {"status": "in_progress"}))
    raw = (audit_dir / "batch_msgbatch_01.jsonl").read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    record = orjson.loads(raw)
    assert list(record) == KEYS
    assert record == {
        "timestamp": "2026-05-01T09:00:00.000Z",
        "event": BATCH_DISCOVERED,
        "batch_id": "msgbatch_01",
        "data": {"status": "in_progress"},
        "actor": "ana@box",
        "session": "ses_1",
        "seq": 0,
        "schema": 1,
    }
    await audit.close()


async def test_listeners_get_each_line_as_written_in_seq_order(audit_dir: Path) -> None:
    audit = AuditLog(audit_dir, clock=ticking_clock())
    heard: list[bytes] = []
    stop = audit.listen(heard.append)
    await audit.record_many([Event(BATCH_DISCOVERED, "msgbatch_01", {"n": 1}),
                             Event(SESSION_STARTED, None, {})])
    await audit.record(Event(BATCH_ENDED, "msgbatch_01", {}))
    stop()
    await audit.record(Event(BATCH_ENDED, "msgbatch_02", {}))
    await audit.close()
    on_disk = {line for name in ("batch_msgbatch_01.jsonl", GLOBAL_FILE, "batch_msgbatch_02.jsonl")
               for line in (audit_dir / name).read_bytes().splitlines(keepends=True)}
    assert len(heard) == 3 and set(heard) <= on_disk
    assert [orjson.loads(line)["seq"] for line in heard] == [0, 1, 2]


async def test_defaults_identify_the_run_and_the_person(audit_dir: Path) -> None:
    first, second = AuditLog(audit_dir), AuditLog(audit_dir)
    assert first.session.startswith("ses_") and first.session != second.session
    assert "@" in first.actor


async def test_one_file_per_batch_and_one_for_the_rest(audit_dir: Path) -> None:
    async with AuditLog(audit_dir, clock=ticking_clock()) as audit:
        await audit.record_many(
            [
                Event(SESSION_STARTED, None, {}),
                Event(BATCH_DISCOVERED, "msgbatch_a", {}),
                Event(BATCH_DISCOVERED, "msgbatch_b", {}),
                Event(BATCH_ENDED, "msgbatch_a", {"error_rate": 0.5}),
            ]
        )
    assert file_names(audit_dir) == [
        "batch_msgbatch_a.jsonl",
        "batch_msgbatch_b.jsonl",
        GLOBAL_FILE,
    ]
    assert [r["event"] for r in lines_of(audit_dir / "batch_msgbatch_a.jsonl")] == [
        BATCH_DISCOVERED,
        BATCH_ENDED,
    ]


async def test_files_and_directory_are_private(audit_dir: Path) -> None:
    async with AuditLog(audit_dir) as audit:
        await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {}))
    assert mode(audit_dir) == 0o700
    assert mode(audit_dir / "batch_msgbatch_a.jsonl") == 0o600


async def test_loose_permissions_are_tightened(audit_dir: Path) -> None:
    make_dir(audit_dir, 0o755)
    loose = audit_dir / "batch_msgbatch_a.jsonl"
    loose.write_bytes(b"")
    os.chmod(loose, 0o644)
    async with AuditLog(audit_dir) as audit:
        await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {}))
    assert mode(audit_dir) == 0o700
    assert mode(loose) == 0o600


async def test_a_hostile_batch_id_never_becomes_a_path(audit_dir: Path) -> None:
    hostile = "../../etc/passwd\x1b]0;x\x07"
    name = audit_file_name(hostile)
    assert "/" not in name and ".." not in name and name.startswith("batch_")
    async with AuditLog(audit_dir) as audit:
        await audit.record(Event(BATCH_DISCOVERED, hostile, {}))
    assert file_names(audit_dir) == [name]
    assert [r["batch_id"] for r in read_audit(audit_dir, batch_id=hostile).records] == [hostile]


async def test_secrets_are_never_written(audit_dir: Path) -> None:
    key = "sk-ant-api03-SECRET_value-1234567890"
    odd = 'tok"en\\with\nescapes'
    async with AuditLog(audit_dir, secrets=[key, odd, None, "", "ab"]) as audit:
        await audit.record(
            Event(
                "api.error",
                None,
                {
                    "message": f"invalid x-api-key {key}",
                    "headers": {key: [f"Bearer {key}", 1]},
                    "odd": f"<{odd}>",
                },
            )
        )
    raw = (audit_dir / GLOBAL_FILE).read_bytes()
    assert key.encode() not in raw
    assert orjson.dumps(odd)[1:-1] not in raw
    (record,) = read_audit(audit_dir).records
    assert record["data"] == {
        "message": "invalid x-api-key ***",
        "headers": {"***": ["Bearer ***", 1]},
        "odd": "<***>",
    }


async def test_odd_data_is_still_recorded(audit_dir: Path) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    async with AuditLog(audit_dir) as audit:
        await audit.record(
            Event(
                "results.saved",
                "msgbatch_a",
                {"path": Path("/x"), "ids": {"b"}, "huge": 10**30, "when": moment, "u": "\udcff"},
            )
        )
        await audit.record(Event("results.saved", "msgbatch_b", {"ids": frozenset({"c"})}))
    first, second = read_audit(audit_dir).records
    assert second["data"] == {"ids": ["c"]}
    record = first
    assert record["data"]["path"] == "/x"
    assert record["data"]["huge"] == str(10**30)
    assert record["data"]["ids"] == ["b"]


async def test_reader_merges_files_by_time_and_filters(audit_dir: Path) -> None:
    async with AuditLog(audit_dir, clock=ticking_clock()) as audit:
        for n in range(3):
            await audit.record(Event(BATCH_DISCOVERED, f"msgbatch_{n}", {"n": n}))
            await audit.record(Event(SESSION_STARTED, None, {"n": n}))
    everything = read_audit(audit_dir)
    stamps = [record["timestamp"] for record in everything.records]
    assert len(stamps) == 6 and stamps == sorted(stamps)
    assert everything.torn == [] and everything.bad == []
    only_one = read_audit(audit_dir, batch_id="msgbatch_1").records
    assert [(r["batch_id"], r["data"]) for r in only_one] == [("msgbatch_1", {"n": 1})]
    later = read_audit(audit_dir, since=datetime(2026, 5, 1, 9, 0, 0, 3000))
    assert len(later.records) == 3
    assert read_audit(audit_dir / "missing").records == []
    assert read_audit(audit_dir, batch_id="msgbatch_none").records == []


async def test_torn_last_line_is_skipped_reported_and_repaired(audit_dir: Path) -> None:
    audit = AuditLog(audit_dir, clock=ticking_clock())
    for n in range(3):
        await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {"n": n}))
    path = audit_dir / "batch_msgbatch_a.jsonl"
    with path.open("ab") as handle:
        handle.write(b'{"timestamp": "2026-05-01T09:00:01.000Z", "event": "bat')
    result = read_audit(audit_dir)
    assert len(result.records) == 3
    assert result.torn == ["batch_msgbatch_a.jsonl:4"]
    # The next append terminates the fragment instead of gluing itself onto it.
    await audit.record(Event(BATCH_ENDED, "msgbatch_a", {}))
    await audit.close()
    result = read_audit(audit_dir)
    assert [r["event"] for r in result.records][-1] == BATCH_ENDED
    assert result.torn == [] and result.bad == ["batch_msgbatch_a.jsonl:4"]


def test_unparsable_lines_middle_and_last(audit_dir: Path) -> None:
    audit_dir.mkdir(parents=True)
    good = orjson.dumps({"timestamp": "2026-05-01T09:00:00.000Z", "event": "e", "batch_id": None})
    (audit_dir / GLOBAL_FILE).write_bytes(
        b"\n".join([good, b"not json", b"[1, 2]", b"", good, b'{"oops": ']) + b"\n"
    )
    result = read_audit(audit_dir)
    assert len(result.records) == 2
    assert result.bad == [f"{GLOBAL_FILE}:2", f"{GLOBAL_FILE}:3"]
    assert result.torn == [f"{GLOBAL_FILE}:6"]


async def test_failed_writes_wait_in_memory_and_recover(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    directory = blocker / "audit"
    audit = AuditLog(directory, clock=ticking_clock())
    await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {"n": 0}))  # must not raise
    await audit.record(Event(SESSION_STARTED, None, {"n": 1}))
    assert audit.pending_count == 2
    assert audit.last_error
    assert not await audit.flush_pending()
    blocker.unlink()
    assert await audit.flush_pending()
    assert audit.pending_count == 0 and audit.last_error is None
    assert [r["data"]["n"] for r in read_audit(directory).records] == [0, 1]
    await audit.close()


@pytest.mark.skipif(IS_ROOT, reason="root ignores permission bits")
async def test_a_read_only_directory_is_survived(audit_dir: Path) -> None:
    make_dir(audit_dir, 0o500)
    try:
        audit = AuditLog(audit_dir)
        await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {}))
        assert audit.pending_count == 1 and audit.last_error
    finally:
        make_dir(audit_dir, 0o700)
    assert await audit.flush_pending()
    assert len(read_audit(audit_dir).records) == 1


async def test_the_queue_is_bounded_and_a_gap_is_recorded(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    directory = blocker / "audit"
    audit = AuditLog(directory, max_pending=3, clock=ticking_clock())
    for n in range(5):
        await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {"n": n}))
    assert audit.pending_count == 3 and audit.dropped == 2
    blocker.unlink()
    assert await audit.flush_pending()
    records = read_audit(directory).records
    assert [r["data"]["n"] for r in records if r["event"] == BATCH_DISCOVERED] == [2, 3, 4]
    (gap,) = [r for r in records if r["event"] == AUDIT_DROPPED]
    assert gap["data"]["count"] == 2
    await audit.record(Event(SESSION_STARTED, None, {}))
    assert len([r for r in read_audit(directory).records if r["event"] == AUDIT_DROPPED]) == 1


async def test_a_removed_directory_is_recreated_not_written_into_the_void(audit_dir: Path) -> None:
    audit = AuditLog(audit_dir, clock=ticking_clock())
    await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {"n": 0}))
    shutil.rmtree(audit_dir)
    await audit.record(Event(BATCH_ENDED, "msgbatch_a", {"n": 1}))
    assert [r["data"]["n"] for r in read_audit(audit_dir).records] == [1]
    assert mode(audit_dir) == 0o700
    await audit.close()


async def test_open_files_are_capped(audit_dir: Path) -> None:
    audit = AuditLog(audit_dir, max_open_files=4, clock=ticking_clock())
    for round_ in range(2):
        for n in range(10):
            await audit.record(Event(BATCH_DISCOVERED, f"msgbatch_{n}", {"round": round_}))
        assert audit.open_files <= 4
    await audit.close()
    assert audit.open_files == 0
    assert len(read_audit(audit_dir).records) == 20


async def test_a_cancelled_caller_neither_loses_nor_duplicates(audit_dir: Path) -> None:
    audit = AuditLog(audit_dir)
    task = asyncio.create_task(audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {})))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await audit.flush_pending()
    assert len(read_audit(audit_dir).records) == 1
    await audit.close()


# -- several processes ----------------------------------------------------------------------


def start_writer(directory: Path, count: int, payload: int, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(WRITER),
            str(directory),
            "msgbatch_shared",
            str(count),
            str(payload),
            tag,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_two_processes_never_interleave_long_lines(audit_dir: Path) -> None:
    writers = [start_writer(audit_dir, 500, 6000, tag) for tag in ("A", "B")]
    for writer in writers:
        assert writer.wait(timeout=60) == 0
    raw = (audit_dir / "batch_msgbatch_shared.jsonl").read_bytes()
    lines = raw.splitlines()
    assert len(lines) == 1000
    records = [orjson.loads(line) for line in lines]  # every line parses
    for tag in ("A", "B"):
        mine = [r["data"] for r in records if r["data"]["tag"] == tag]
        assert [d["n"] for d in mine] == list(range(500))
        assert all(d["body"] == tag * 6000 for d in mine)
    result = read_audit(audit_dir)
    assert len(result.records) == 1000 and result.torn == [] and result.bad == []


def wait_for_lines(path: Path, at_least: int, deadline_s: float = 30.0) -> None:
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        if path.exists() and path.read_bytes().count(b"\n") >= at_least:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never reached {at_least} lines")


async def test_kill_9_mid_write_loses_at_most_the_last_line(audit_dir: Path) -> None:
    writer = start_writer(audit_dir, 0, 50_000, "K")
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        path = audit_dir / "batch_msgbatch_shared.jsonl"
        wait_for_lines(path, 40)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    lines = path.read_bytes().split(b"\n")
    for line in lines[:-1]:  # complete lines; only the unterminated tail may be torn
        orjson.loads(line)
    result = read_audit(audit_dir)
    assert len(result.torn) <= 1 and result.bad == []
    assert len(result.records) >= 40
    # A later run appends cleanly after whatever the killed one left behind.
    async with AuditLog(audit_dir) as audit:
        await audit.record(Event(BATCH_ENDED, "msgbatch_shared", {"after": "kill"}))
    after = read_audit(audit_dir)
    assert after.records[-1]["data"] == {"after": "kill"}
    assert after.torn == [] and len(after.bad) <= 1


# -- follow ---------------------------------------------------------------------------------


async def test_follow_yields_existing_then_new_complete_lines(audit_dir: Path) -> None:
    audit = AuditLog(audit_dir, clock=ticking_clock())
    await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {"n": 0}))
    follower = follow_audit(audit_dir, poll_s=0.01)

    async def next_record() -> dict[str, Any]:
        return await asyncio.wait_for(anext(follower), timeout=20)

    assert (await next_record())["data"] == {"n": 0}
    await audit.record(Event(SESSION_STARTED, None, {"n": 1}))
    assert (await next_record())["data"] == {"n": 1}
    # A line being written is waited for, not reported or skipped.
    line = audit.encode(Event(BATCH_ENDED, "msgbatch_b", {"n": 2}))
    path = audit_dir / "batch_msgbatch_b.jsonl"
    path.write_bytes(line[:10])
    pending = asyncio.ensure_future(next_record())
    await asyncio.sleep(0.05)
    assert not pending.done()
    with path.open("ab") as handle:
        handle.write(line[10:])
    assert (await pending)["data"] == {"n": 2}
    await follower.aclose()
    await audit.close()


async def test_follow_can_start_at_the_end_and_filter(audit_dir: Path) -> None:
    audit = AuditLog(audit_dir, clock=ticking_clock())
    await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {"n": 0}))
    follower = follow_audit(audit_dir, batch_id="msgbatch_a", poll_s=0.01, from_start=False)
    first = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.05)
    await audit.record(Event(BATCH_DISCOVERED, "msgbatch_b", {"n": 1}))
    await audit.record(Event(BATCH_ENDED, "msgbatch_a", {"n": 2}))
    record = await asyncio.wait_for(first, timeout=20)
    assert record["data"] == {"n": 2}
    await follower.aclose()
    await audit.close()


# -- round trip -----------------------------------------------------------------------------

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_data = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        json_leaf,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=8,
    ),
    max_size=4,
)
events_st = st.lists(
    st.builds(
        Event,
        event=st.sampled_from([BATCH_DISCOVERED, BATCH_ENDED, SESSION_STARTED, "action.cancel"]),
        batch_id=st.sampled_from([None, "msgbatch_a", "msgbatch_b", "weird/id\n"]),
        data=json_data,
    ),
    max_size=12,
)


@pytest.fixture
def scratch() -> Iterator[Callable[[], Path]]:
    with tempfile.TemporaryDirectory() as root:
        counter = iter(range(10**6))
        yield lambda: Path(root) / f"audit{next(counter)}"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=events_st, still=st.booleans())
def test_round_trip(scratch: Callable[[], Path], events: list[Event], still: bool) -> None:
    # `still`: every record in the same millisecond, spread over files; `seq` keeps the order.
    directory = scratch()
    clock = (lambda: STILL) if still else ticking_clock()

    async def write() -> None:
        async with AuditLog(directory, clock=clock) as audit:
            half = len(events) // 2
            for event in events[:half]:
                await audit.record(event)
            await audit.record_many(events[half:])

    asyncio.run(write())
    result = read_audit(directory)
    assert result.torn == [] and result.bad == []
    assert [Event(r["event"], r["batch_id"], r["data"]) for r in result.records] == events
    assert all(list(record) == KEYS for record in result.records)
    loaded = LogReader(directory).poll()
    assert loaded is not None
    assert [entry.record for entry in loaded.entries] == result.records


# -- reading only some events, once, and in write order --------------------------------------



async def test_read_audit_keeps_only_the_events_asked_for(tmp_path: Path) -> None:
    async with AuditLog(tmp_path, clock=ticking_clock()) as audit:
        await audit.record(Event(SESSION_STARTED, None, {"note": "alert.raised"}))
        await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {}))
        await audit.record(Event(BATCH_ENDED, "msgbatch_a", {"counts": {}}))
        await audit.record(Event("alert.raised", "msgbatch_a", {"kind": "sla"}))
    with (tmp_path / audit_file_name("msgbatch_a")).open("ab") as handle:
        handle.write(b"not json at all\n{\"event\": \"batch.ended\", broken\n")
    found = read_audit(tmp_path, events={BATCH_ENDED, "alert.raised"})
    # The global record only mentions the name in its data: parsed, then left out.
    assert [r["event"] for r in found.records] == [BATCH_ENDED, "alert.raised"]
    # A line that cannot hold one of the events is skipped unparsed; one that might is checked.
    assert found.bad == [] and found.torn == [f"{audit_file_name('msgbatch_a')}:5"]
    assert [r["event"] for r in read_audit(tmp_path).records] == [
        SESSION_STARTED, BATCH_DISCOVERED, BATCH_ENDED, "alert.raised"]


async def test_shared_history_reads_the_log_once_for_everyone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AuditLog(tmp_path, clock=ticking_clock()) as audit:
        await audit.record(Event(BATCH_ENDED, "msgbatch_a", {}))
        await audit.record(Event("alert.raised", "msgbatch_a", {}))
    reads: list[frozenset[str] | None] = []

    def counting(directory: Path, **options: Any) -> Any:
        reads.append(options.get("events"))
        return read_audit(directory, **options)

    monkeypatch.setattr(audit_module, "read_audit", counting)
    shared = SharedAuditHistory(tmp_path, {BATCH_ENDED, "alert.raised"})
    first, second = await asyncio.gather(shared.get(), shared.get())
    assert first is second is shared.get_now()
    assert reads == [frozenset({BATCH_ENDED, "alert.raised"})]
    assert [r["event"] for r in first.of(BATCH_ENDED)] == [BATCH_ENDED]
    assert [r["batch_id"] for r in first.of("alert.raised")] == ["msgbatch_a"]
    with pytest.raises(KeyError):
        first.of(SESSION_STARTED)
    direct = AuditHistory.load(tmp_path, events={BATCH_ENDED})
    assert [r["event"] for r in direct.records] == [BATCH_ENDED]


async def test_records_of_the_same_moment_keep_their_write_order(tmp_path: Path) -> None:
    # Same millisecond everywhere, four records in three files: `seq` keeps the write order.
    async with AuditLog(tmp_path, clock=lambda: STILL) as audit:
        await audit.record(Event(BATCH_DISCOVERED, "msgbatch_z", {}))
        await audit.record(Event(SESSION_STARTED, None, {}))
        await audit.record(Event(BATCH_ENDED, "msgbatch_z", {}))
        await audit.record(Event(BATCH_DISCOVERED, "msgbatch_a", {}))
    in_z = [r["event"] for r in read_audit(tmp_path, batch_id="msgbatch_z").records]
    assert in_z == [BATCH_DISCOVERED, BATCH_ENDED]
    everything = [(r["event"], r["batch_id"]) for r in read_audit(tmp_path).records]
    assert everything == [(BATCH_DISCOVERED, "msgbatch_z"), (SESSION_STARTED, None),
                          (BATCH_ENDED, "msgbatch_z"), (BATCH_DISCOVERED, "msgbatch_a")]
    loaded = LogReader(tmp_path).poll()
    assert loaded is not None
    assert [(e.event, e.batch_id) for e in loaded.entries] == everything
    assert set(file_keys(tmp_path, None)) == {
        GLOBAL_FILE, audit_file_name("msgbatch_a"), audit_file_name("msgbatch_z")}


def test_records_without_seq_of_the_same_moment_keep_file_then_name_order(
    tmp_path: Path
) -> None:
    # Written before `seq` existed: each file keeps its write order, files follow by name.
    stamp = iso_millis(STILL)
    for name, events in (("batch_msgbatch_z.jsonl", [BATCH_DISCOVERED, BATCH_ENDED]),
                         ("batch_msgbatch_a.jsonl", [BATCH_DISCOVERED])):
        batch = name.removeprefix("batch_").removesuffix(".jsonl")
        (tmp_path / name).write_bytes(b"".join(
            orjson.dumps({"timestamp": stamp, "event": event, "batch_id": batch, "data": {},
                          "actor": "a@b", "session": "ses_old", "schema": 1}) + b"\n"
            for event in events))
    everything = [(r["event"], r["batch_id"]) for r in read_audit(tmp_path).records]
    assert everything == [(BATCH_DISCOVERED, "msgbatch_a"), (BATCH_DISCOVERED, "msgbatch_z"),
                          (BATCH_ENDED, "msgbatch_z")]
    loaded = LogReader(tmp_path).poll()
    assert loaded is not None
    assert [(e.event, e.batch_id) for e in loaded.entries] == everything
