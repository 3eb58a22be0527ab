"""Alerts from a live monitor against the emulator: once per batch and kind, audited, hooked."""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.emulator_fixtures import MakeEmulator
from tui.core.alerts import ALERT_RAISED, Alert, AlertKind, Severity
from tui.core.cadence import Cadence
from tui.core.events import BATCH_DISCOVERED, Event
from tui.emulator.server import RunningEmulator
from tui.service.alerting import ALERT_HOOK_FAILED, AlertService
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog, read_audit
from tui.service.monitor import Monitor, MonitorState
from tui.settings import Settings

KEY = "test-key"
# Polls happen when a test asks for them (refresh_now), not on their own.
QUIET = Cadence(discover_s=10_000, ended_sweep_s=10_000)


@dataclass
class Watch:
    emu: RunningEmulator
    client: BatchesAPI  # "elsewhere": creates batches the monitor then discovers
    monitor: Monitor
    audit: AuditLog
    task: asyncio.Task[None]

    def now(self) -> datetime:
        return self.emu.engine.clock.now()

    async def after(self, seconds: float) -> None:
        """Let emulator time pass, then poll."""
        self.emu.engine.clock.advance(seconds)
        await self.monitor.refresh_now()

    def records(self, event: str, batch_id: str | None = None) -> list[dict[str, Any]]:
        return [
            r for r in read_audit(self.audit.directory).records
            if r["event"] == event and (batch_id is None or r["batch_id"] == batch_id)
        ]

    def raised(self, batch_id: str) -> list[str]:
        return sorted(r["data"]["kind"] for r in self.records(ALERT_RAISED, batch_id))


async def until(monitor: Monitor, predicate: Callable[[MonitorState], bool]) -> None:
    reached = asyncio.Event()
    unsubscribe = monitor.subscribe(lambda state: reached.set() if predicate(state) else None)
    try:
        await asyncio.wait_for(reached.wait(), 5)
    finally:
        unsubscribe()


@asynccontextmanager
async def watching(make_emulator: MakeEmulator, tmp_path: Path,
                   **options: Any) -> AsyncIterator[Watch]:
    emu = await make_emulator(**options)
    client = BatchesAPI.connect(KEY, emu.url)
    api = BatchesAPI.connect(KEY, emu.url)
    audit = AuditLog(tmp_path / "audit")
    monitor = Monitor(api, audit, QUIET, clock=emu.engine.clock.now)
    task = asyncio.create_task(monitor.run())
    try:
        await until(monitor, lambda state: state.synced)
        yield Watch(emu, client, monitor, audit, task)
    finally:
        monitor.stop()
        await asyncio.wait_for(task, 5)
        await audit.close()
        await api.close()
        await client.close()


def request(n: int) -> dict[str, Any]:
    return {"custom_id": f"req-{n:03d}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 16,
        "messages": [{"role": "user", "content": f"hello {n}"}]}}


async def start_batch(watch: Watch, size: int = 20) -> str:
    batch = await watch.client.create([request(n) for n in range(size)])
    await watch.monitor.refresh_now()  # discovered while running
    return batch.id


def python_command(code: str, *args: str) -> str:
    return shlex.join([sys.executable, "-c", code, *args])


def recording_hook(path: Path) -> str:
    """A command appending what it reads on stdin to `path`."""
    return python_command(
        "import sys; open(sys.argv[1], 'ab').write(sys.stdin.buffer.read())", str(path)
    )


async def test_a_high_error_rate_alerts_once_runs_the_hook_and_survives_a_restart(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    received = tmp_path / "hook input.jsonl"
    settings = Settings(error_rate_alert=0.2, on_alert=recording_hook(received))
    async with watching(make_emulator, tmp_path, error_rate=0.5) as watch:
        batch_id = await start_batch(watch)
        alerts = AlertService(watch.monitor, watch.audit, settings, clock=watch.now)
        heard: list[Alert] = []
        alerts.subscribe(heard.append)
        await alerts.start()
        assert alerts.worst(batch_id) is None and alerts.active() == []

        await watch.after(600)  # the batch ends, half its requests errored
        ended = watch.monitor.state.batches[batch_id]
        assert ended.is_ended and ended.request_counts.error_rate > 0.2
        await alerts.drain()
        assert watch.raised(batch_id) == ["ended", "error_rate"]
        assert sorted(a.kind for a in heard) == [AlertKind.ENDED, AlertKind.ERROR_RATE]
        assert alerts.active() == heard
        assert alerts.worst(batch_id) is Severity.ERROR

        for _ in range(3):  # further polls raise nothing new
            await watch.after(60)
        await alerts.drain()
        assert watch.raised(batch_id) == ["ended", "error_rate"] and len(heard) == 2

        payloads = [orjson.loads(line) for line in received.read_bytes().splitlines()]
        assert sorted(p["kind"] for p in payloads) == ["ended", "error_rate"]
        rate = next(p for p in payloads if p["kind"] == "error_rate")
        assert rate["event"] == ALERT_RAISED and rate["batch_id"] == batch_id
        assert rate["severity"] == "error" and rate["data"]["threshold"] == 0.2
        assert rate["data"]["error_rate"] == ended.request_counts.error_rate
        assert rate["message"].startswith(f"{batch_id}: ")
        await alerts.close()

        restarted = AlertService(watch.monitor, watch.audit, settings, clock=watch.now)
        heard_again: list[Alert] = []
        restarted.subscribe(heard_again.append)
        await restarted.start()
        await watch.after(60)
        await restarted.drain()
        assert heard_again == [] and watch.raised(batch_id) == ["ended", "error_rate"]
        assert restarted.worst(batch_id) is Severity.ERROR  # the row stays highlighted
        await restarted.close()

        # Without the audit log to remember them, the same alerts would fire again.
        elsewhere = AuditLog(tmp_path / "elsewhere")
        forgetful = AlertService(watch.monitor, elsewhere, Settings(error_rate_alert=0.2),
                                 clock=watch.now)
        fired: list[Alert] = []
        forgetful.subscribe(fired.append)
        await forgetful.start()
        await forgetful.close()
        await elsewhere.close()
        assert sorted(a.kind for a in fired) == [AlertKind.ENDED, AlertKind.ERROR_RATE]
    assert len(received.read_bytes().splitlines()) == 2  # one run of the hook per alert


async def test_a_hanging_hook_is_killed_and_recorded_and_monitoring_goes_on(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    settings = Settings(on_alert=python_command("import time; time.sleep(60)"))
    async with watching(make_emulator, tmp_path, error_rate=0.0) as watch:
        first = await start_batch(watch)
        alerts = AlertService(watch.monitor, watch.audit, settings, clock=watch.now,
                              hook_timeout=0.3)
        await alerts.start()
        await watch.after(600)
        await alerts.drain()
        assert watch.raised(first) == ["ended"]
        (failed,) = watch.records(ALERT_HOOK_FAILED, first)
        assert failed["data"]["kind"] == "ended"
        assert failed["data"]["error"] == "timed out after 0.3s and was killed"

        second = await start_batch(watch)
        await watch.after(600)
        await alerts.drain()
        assert not watch.task.done()
        assert watch.raised(second) == ["ended"]
        assert len(watch.records(ALERT_HOOK_FAILED)) == 2
        await alerts.close()


async def test_a_batch_over_the_sla_alerts_once_with_a_frozen_clock(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with watching(make_emulator, tmp_path, error_rate=0.0) as watch:
        batch_id = await start_batch(watch)
        created = watch.monitor.state.batches[batch_id].created_at
        frozen = created + timedelta(hours=2)
        alerts = AlertService(watch.monitor, watch.audit, Settings(sla_seconds=3600),
                              clock=lambda: frozen)
        heard: list[Alert] = []

        def broken(alert: Alert) -> None:
            raise RuntimeError("a subscriber failing must not stop the others")

        alerts.subscribe(broken)
        alerts.subscribe(heard.append)
        await alerts.start()  # evaluated at once against the monitor's current state
        await alerts.drain()
        assert [a.kind for a in heard] == [AlertKind.SLA]
        assert heard[0].message == (
            f"{batch_id} has been running for 2h 00m, longer than the 1h 00m SLA"
        )
        assert alerts.worst(batch_id) is Severity.WARNING
        await watch.monitor.refresh_now()
        await watch.monitor.refresh_now()
        await alerts.drain()
        assert watch.raised(batch_id) == ["sla"] and len(heard) == 1
        (record,) = watch.records(ALERT_RAISED, batch_id)
        assert record["data"]["details"]["sla_s"] == 3600.0
        await alerts.close()


@dataclass
class SlowWrites:
    """The monitor's side of a shared audit log, whose writes wait while `gate` is clear."""

    audit: AuditLog
    gate: asyncio.Event

    async def record(self, event: Event) -> None:
        await self.gate.wait()
        await self.audit.record(event)


async def test_an_alert_is_written_after_the_events_that_raised_it(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = await make_emulator(error_rate=0.0)
    client = BatchesAPI.connect(KEY, emu.url)
    api = BatchesAPI.connect(KEY, emu.url)
    audit = AuditLog(tmp_path / "audit")
    gate = asyncio.Event()
    gate.set()
    monitor = Monitor(api, SlowWrites(audit, gate), QUIET, clock=emu.engine.clock.now)
    task = asyncio.create_task(monitor.run())
    def later() -> datetime:  # the alerts' clock: every batch is already over its SLA
        return emu.engine.clock.now() + timedelta(hours=2)

    alerts = AlertService(monitor, audit, Settings(sla_seconds=60), clock=later)
    heard: list[Alert] = []
    alerts.subscribe(heard.append)
    try:
        await until(monitor, lambda state: state.synced)
        await alerts.start()
        gate.clear()  # the monitor's writer falls behind
        batch = await client.create([request(0)])
        await monitor.refresh_now()  # discovered over its SLA: alerted at once
        await asyncio.sleep(0.05)
        assert [a.kind for a in heard] == [AlertKind.SLA]
        assert read_audit(audit.directory, batch_id=batch.id).records == []  # not before
        gate.set()
        await asyncio.wait_for(alerts.drain(), 5)
        names = [r["event"] for r in read_audit(audit.directory, batch_id=batch.id).records]
        assert names == [BATCH_DISCOVERED, ALERT_RAISED]
    finally:
        gate.set()
        monitor.stop()
        await asyncio.wait_for(task, 5)
        await alerts.close()
        await audit.close()
        await api.close()
        await client.close()
