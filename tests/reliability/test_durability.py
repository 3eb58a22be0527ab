"""Audit log and ledger across kill -9, concurrent processes, a full disk, and crashed submits."""

from __future__ import annotations

import asyncio
import errno
import random
import signal
import sqlite3
import sys
from collections import defaultdict
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.emulator_fixtures import MakeEmulator
from tests.reliability.harness import assert_audit_valid, wait_until, watching
from tui.core.events import API_ERROR, API_RECOVERED, SESSION_STARTED
from tui.emulator.faults import Faults, parse_faults
from tui.service import monitor as monitor_module
from tui.service.actions import ActionFailed, Actions
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog, read_audit
from tui.service.ledger import CREATED, FAILED, PENDING, RECONCILED, Ledger

WORKER = Path(__file__).with_name("crash_worker.py")


async def start_worker(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), *args, stdout=asyncio.subprocess.PIPE)


async def first_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    return line.decode().strip()


async def kill_9(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(process.wait(), 30) == -signal.SIGKILL


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def reached(path: Path, lines: int) -> bool:
    return line_count(path) >= lines


def ledger_check(path: Path) -> dict[str, int]:
    """The ledger opens, passes SQLite's integrity check, and every submit is whole."""
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    states: dict[str, int] = defaultdict(int)
    with Ledger(path) as ledger:
        for record in ledger.submits():
            states[record.state] += 1
            if record.state == CREATED:
                assert record.batch_id is not None
                assert len(ledger.params_for(record.batch_id)) == record.request_count == 3
    return dict(states)


async def test_kill_9_during_heavy_writes_tears_at_most_the_last_line(tmp_path: Path) -> None:
    rng = random.Random(11)
    shared = tmp_path / "audit" / "batch_msgbatch_shared_a.jsonl"
    kills = 3
    for round_ in range(kills):
        worker = await start_worker("write", str(tmp_path), f"K{round_}", "0")
        assert await first_line(worker) == "ready"
        target = line_count(shared) + rng.randint(5, 40)
        await wait_until(partial(reached, shared, target), within=30, what="writes")
        await asyncio.sleep(rng.random() * 0.05)
        await kill_9(worker)
        result = read_audit(tmp_path / "audit")
        assert len(result.torn) <= 1, result.torn  # only a line being written can be torn
        assert len(result.bad) + len(result.torn) <= round_ + 1
        states = ledger_check(tmp_path / "ledger.sqlite3")
        assert set(states) <= {PENDING, CREATED}
    # A clean run afterwards appends whole lines after whatever the kills left.
    worker = await start_worker("write", str(tmp_path), "after", "5")
    assert await asyncio.wait_for(worker.wait(), 30) == 0
    result = read_audit(tmp_path / "audit")
    assert result.torn == []
    assert [r["data"]["n"] for r in result.records if r["data"].get("tag") == "after"] == list(
        range(5))


async def test_two_processes_never_interleave_audit_lines_or_ledger_rows(tmp_path: Path) -> None:
    count = 30
    workers = [await start_worker("write", str(tmp_path), tag, str(count)) for tag in "AB"]
    for worker in workers:
        assert await asyncio.wait_for(worker.wait(), 60) == 0
    records = assert_audit_valid(tmp_path / "audit")
    for tag in "AB":
        mine = [r["data"] for r in records if r["data"]["tag"] == tag]
        assert sorted(d["n"] for d in mine) == list(range(count))
        assert all(d["body"] == tag * 3000 for d in mine)
    for path in (tmp_path / "audit").glob("*.jsonl"):  # per file, each writer's lines in order
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        for tag in "AB":
            numbers = [r["data"]["n"] for r in rows if r["data"]["tag"] == tag]
            assert numbers == sorted(numbers)
    states = ledger_check(tmp_path / "ledger.sqlite3")
    assert states == {CREATED: count, PENDING: count}


class FullDisk:
    """Makes an AuditLog's appends fail with ENOSPC while `full` is set."""

    def __init__(self, audit: AuditLog) -> None:
        self.full = False
        self.refused = 0
        self._append = audit._append
        audit._append = self.append  # type: ignore[method-assign]

    def append(self, name: str, data: bytes) -> None:
        if self.full:
            self.refused += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        self._append(name, data)


async def test_a_full_disk_is_reported_held_and_written_later(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(monitor_module, "AUDIT_RETRY_S", 0.1)
    emu = await make_emulator(scenario="many:5")
    async with watching(emu.url, tmp_path / "audit") as watch:
        disk = FullDisk(watch.tap.audit)
        await wait_until(lambda: watch.state.synced, what="the first sync")
        disk.full = True
        calls = watch.api.total_calls
        emu.engine.faults = parse_faults("500=1")  # an outage: events to write
        await wait_until(lambda: watch.state.degraded is not None, what="the outage")
        await wait_until(lambda: watch.state.audit_error is not None, what="the disk warning")
        assert "No space left on device" in (watch.state.audit_error or "")
        assert watch.tap.pending_count > 0 and watch.tap.last_error
        emu.engine.faults = Faults()
        await wait_until(lambda: watch.state.degraded is None, what="API recovery")
        await wait_until(lambda: watch.api.total_calls >= calls + 4, what="polls go on")
        assert watch.alive() and watch.tap.pending_count > 0
        held = watch.tap.pending_count
        assert held >= 2  # api.error and api.recovered at least
        disk.full = False  # space freed; no new event is needed for the backlog to go out
        await wait_until(lambda: watch.tap.pending_count == 0, what="the backlog written")
        await wait_until(lambda: watch.state.audit_error is None, what="the warning cleared")
    records = assert_audit_valid(watch.audit_dir)
    names = [r["event"] for r in records]
    assert names[0] == SESSION_STARTED
    assert names.count(API_ERROR) == names.count(API_RECOVERED) == 1
    assert names.index(API_ERROR) < names.index(API_RECOVERED)
    assert disk.refused > 1  # it was retried, not given up


async def test_an_unwritable_audit_directory_keeps_the_monitor_going(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(monitor_module, "AUDIT_RETRY_S", 0.1)
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the audit directory should be")
    emu = await make_emulator(scenario="many:5")
    async with watching(emu.url, blocker / "audit") as watch:
        await wait_until(lambda: watch.state.audit_error is not None, what="the warning")
        await wait_until(lambda: watch.state.synced, what="the sync, all the same")
        assert len(watch.state.batches) == 5 and watch.alive()
        assert watch.state.audit_error is not None
        blocker.unlink()
        await wait_until(lambda: watch.state.audit_error is None, what="recovery")
    assert_audit_valid(blocker / "audit")


# -- write-ahead submits ------------------------------------------------------------------------


def actions_for(api: BatchesAPI, ledger: Ledger, audit: AuditLog) -> Actions:
    return Actions(api, ledger, audit, None, read_only=False)


@pytest.mark.parametrize("stage", ["recorded", "created"])
async def test_a_submit_killed_mid_way_is_reconciled(
    make_emulator: MakeEmulator, tmp_path: Path, stage: str
) -> None:
    emu = await make_emulator(scenario="empty")
    worker = await start_worker("submit", str(tmp_path), emu.url, stage)
    said = await first_line(worker)
    await kill_9(worker)
    assert said.startswith(stage)
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    api = BatchesAPI.connect("test-key", emu.url)
    audit = AuditLog(tmp_path / "audit")
    try:
        (pending,) = ledger.pending_submits()
        assert len(emu.engine) == (1 if stage == "created" else 0)
        actions = actions_for(api, ledger, audit)
        (match,) = await actions.reconcile(await api.list_all())
        if stage == "created":
            batch_id = said.split()[1]
            assert (match.verdict, match.batch_id) == ("matched", batch_id)
            record = ledger.submit(pending.submit_id)
            assert record is not None and record.state == RECONCILED
            assert len(ledger.params_for(batch_id)) == 4
            assert ledger.label_for(batch_id) == "crashed"
        else:
            assert match.verdict == "waiting"  # the create call might still show up
            later = await actions.reconcile(await api.list_all(), window=timedelta(0))
            assert [m.verdict for m in later] == ["not_created"]
            record = ledger.submit(pending.submit_id)
            assert record is not None and record.state == FAILED
        assert ledger.pending_submits() == []
    finally:
        await audit.close()
        await api.close()
        ledger.close()
    submits = [r["data"] for r in read_audit(tmp_path / "audit").records
               if r["event"] == "action.submit"]
    assert [d.get("reconciled") for d in submits] == [True]



async def test_a_create_whose_answer_is_unreadable_stays_pending_for_reconcile(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch was created, but the answer could not be read (a proxy mangled it): the
    # write-ahead record must stay pending, with its params, until reconcile finds the batch.
    emu = await make_emulator(scenario="empty")
    describe = emu.engine.describe

    def mangled(record: Any, base_url: str) -> dict[str, Any]:
        body = describe(record, base_url)
        body["created_at"] = "not a time"
        return body

    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(
        orjson.dumps({"custom_id": f"u{n}", "params": {
            "model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}})
        + b"\n" for n in range(3)))
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    api = BatchesAPI.connect("test-key", emu.url)
    audit = AuditLog(tmp_path / "audit")
    try:
        actions = actions_for(api, ledger, audit)
        preview = await actions.plan_submit(source)
        with monkeypatch.context() as patch:
            patch.setattr(emu.engine, "describe", mangled)
            with pytest.raises(ActionFailed):
                await actions.submit(preview)
        assert len(emu.engine) == 1  # it does exist
        assert len(ledger.pending_submits()) == 1
        (match,) = await actions.reconcile(await api.list_all())
        assert match.verdict == "matched"
        assert len(ledger.params_for(match.batch_id or "")) == 3
    finally:
        await audit.close()
        await api.close()
        ledger.close()
