"""The monitor against the emulator through the real SDK, on simulated time.

The monitor's clock is the emulator's clock, and its sleeps move that clock forward, but
only up to a limit the test raises with `SimTime.run_for`: minutes of monitoring take
milliseconds, and every poll happens at a known simulated moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixtures import MakeEmulator
from tui.core.cadence import Cadence
from tui.core.events import (
    API_ERROR,
    API_RECOVERED,
    BATCH_COUNTS_CHANGED,
    BATCH_DISCOVERED,
    BATCH_ENDED,
    BATCH_GONE,
    BATCH_STATUS_CHANGED,
    SESSION_ENDED,
    SESSION_STARTED,
    Event,
)
from tui.core.models import ENDED, IN_PROGRESS, BatchSnapshot
from tui.emulator.clock import Clock
from tui.emulator.faults import Faults, parse_faults
from tui.emulator.server import RunningEmulator
from tui.service.api import ApiCall, ApiError, BatchesAPI
from tui.service.audit import AuditLog, read_audit
from tui.service.monitor import FeedEntry, Monitor, MonitorState

KEY = "test-key"
# Discovery and the ended sweep out of the way, to count only what a test is about.
QUIET = Cadence(discover_s=10_000, ended_sweep_s=10_000)


class SimTime:
    """Simulated time for the monitor: its sleeps advance the emulator clock, up to `limit`."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.limit = clock.time()
        self.parked = asyncio.Event()
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        target = self.clock.time() + seconds
        while target > self.limit:
            self.parked.set()
            self._moved.clear()
            await self._moved.wait()
        self.parked.clear()
        gap = target - self.clock.time()
        if gap > 0:
            self.clock.advance(gap)

    async def run_for(self, seconds: float, idle: Callable[[], bool] = lambda: False) -> None:
        """Let the monitor live `seconds` more of simulated time; return once it waits."""
        await asyncio.sleep(0.01)  # let it react to whatever the test just did first
        self.limit = max(self.limit, self.clock.time()) + seconds
        self.parked.clear()
        self._moved.set()
        for _ in range(1000):
            if self.parked.is_set() or idle():
                return
            await asyncio.sleep(0.005)
        raise AssertionError("the monitor never went idle")


@dataclass
class PlainRecorder:
    """Keeps every event and forwards it to the real audit log, one `record` at a time."""

    audit: AuditLog
    events: list[Event] = field(default_factory=list)

    async def record(self, event: Event) -> None:
        self.events.append(event)
        await self.audit.record(event)

    def named(self, name: str, batch_id: str | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if e.event == name and (batch_id is None or e.batch_id == batch_id)
        ]


@dataclass
class Recorder(PlainRecorder):
    """Like the audit log itself: takes a burst of events in one `record_many`."""

    bulk_writes: int = 0

    async def record_many(self, events: Iterable[Event]) -> None:
        batch = list(events)
        self.events.extend(batch)
        self.bulk_writes += 1
        await self.audit.record_many(batch)


@dataclass
class Harness:
    emu: RunningEmulator
    api: BatchesAPI
    client: BatchesAPI  # "elsewhere": another program using the same workspace
    monitor: Monitor
    sim: SimTime
    sink: PlainRecorder
    audit_dir: Path
    calls: list[tuple[datetime, ApiCall]]
    states: list[MonitorState]

    async def run_for(self, seconds: float) -> None:
        await self.sim.run_for(seconds, idle=self._paused_and_idle)

    def _paused_and_idle(self) -> bool:
        state = self.monitor.state
        return state.paused and not state.fetching

    async def settle(self) -> None:
        await self.sim.run_for(0)

    def called(self, method: str) -> list[ApiCall]:
        return [call for _, call in self.calls if call.method == method]


async def until(monitor: Monitor, predicate: Callable[[MonitorState], bool]) -> None:
    """Wait for a published state that satisfies `predicate`."""
    reached = asyncio.Event()
    unsubscribe = monitor.subscribe(lambda state: reached.set() if predicate(state) else None)
    try:
        await asyncio.wait_for(reached.wait(), 5)
    finally:
        unsubscribe()


def request(custom_id: str) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": "claude-haiku-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        },
    }


@asynccontextmanager
async def monitoring(
    make_emulator: MakeEmulator,
    tmp_path: Path,
    *,
    scenario: str = "empty",
    cadence: Cadence = QUIET,
    before: Callable[[BatchesAPI], Awaitable[object]] | None = None,
    faults: str | None = None,
    bulk_audit: bool = True,
    sink_type: type[PlainRecorder] | None = None,
    **options: Any,
) -> AsyncIterator[Harness]:
    emu = await make_emulator(scenario=scenario)
    emu.engine.faults = parse_faults(faults)
    client = BatchesAPI.connect(KEY, emu.url)
    if before is not None:
        await before(client)
    sim = SimTime(emu.engine.clock)
    api = BatchesAPI.connect(KEY, emu.url)  # max_retries=0, as the app's monitor
    audit_dir = tmp_path / "audit"
    kind = sink_type or (Recorder if bulk_audit else PlainRecorder)
    sink = kind(AuditLog(audit_dir))
    monitor = Monitor(api, sink, cadence, clock=sim.now, sleep=sim.sleep, **options)
    calls: list[tuple[datetime, ApiCall]] = []
    api.add_call_hook(lambda call: calls.append((sim.now(), call)))
    states: list[MonitorState] = []
    monitor.subscribe(states.append)
    task = asyncio.create_task(monitor.run())
    harness = Harness(emu, api, client, monitor, sim, sink, audit_dir, calls, states)
    try:
        await harness.settle()
        yield harness
    finally:
        monitor.stop()
        await asyncio.wait_for(task, 5)
        await sink.audit.close()
        await api.close()
        await client.close()


async def test_initial_sync_discovers_every_batch_page_by_page(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with monitoring(make_emulator, tmp_path, scenario="many:25", page_limit=10) as h:
        state = h.monitor.state
        ids = {b.id for b in await h.client.list_all()}
    assert state.synced and state.last_sync is not None and not state.fetching
    assert set(state.batches) == ids and len(ids) == 25
    assert list(state.order) == sorted(
        ids, key=lambda i: (state.batches[i].created_at, i), reverse=True
    )
    discovered = h.sink.named(BATCH_DISCOVERED)
    assert sorted(e.batch_id or "" for e in discovered) == sorted(ids)
    assert isinstance(h.sink, Recorder) and h.sink.bulk_writes < len(h.sink.events)
    assert len(read_audit(h.audit_dir).records) == len(h.sink.events)
    # The first rows were published before the whole list was read.
    partial = {len(s.batches) for s in h.states if s.batches and not s.synced}
    assert sorted(partial) == [10, 20, 25]
    assert h.sink.events[0].event == SESSION_STARTED
    assert h.sink.events[-1].event == SESSION_ENDED
    assert h.sink.events[-1].data["api_calls"] == 3 == state.api_calls


async def test_batch_end_is_diffed_into_events_and_audited(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    created: list[BatchSnapshot] = []

    async def create(client: BatchesAPI) -> None:
        created.append(await client.create([request("e-1"), request("e-2")]))

    async with monitoring(
        make_emulator, tmp_path, before=create, cadence=Cadence(), bulk_audit=False
    ) as h:
        batch_id = created[0].id
        assert h.monitor.state.batches[batch_id].processing_status == IN_PROGRESS
        await h.run_for(180)
        final = h.monitor.state.batches[batch_id]
    assert final.processing_status == ENDED and final.request_counts.processing == 0
    names = [e.event for e in h.sink.events if e.batch_id == batch_id]
    assert names == [BATCH_DISCOVERED, BATCH_STATUS_CHANGED, BATCH_COUNTS_CHANGED, BATCH_ENDED]
    (status,) = h.sink.named(BATCH_STATUS_CHANGED, batch_id)
    assert status.data == {"from": IN_PROGRESS, "to": ENDED}
    (ended,) = h.sink.named(BATCH_ENDED, batch_id)
    assert ended.data["counts"] == final.request_counts.to_api()
    assert ended.data["workspace"] == h.api.workspace  # ETA history is per workspace
    assert sum(ended.data["counts"].values()) == 2
    on_disk = read_audit(h.audit_dir, batch_id=batch_id)
    assert not on_disk.torn
    assert [r["event"] for r in on_disk.records] == names
    assert all(r["batch_id"] == batch_id for r in on_disk.records)
    assert (h.audit_dir / f"batch_{batch_id}.jsonl").exists()


async def test_a_batch_created_elsewhere_is_discovered_on_the_next_first_page(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    cadence = Cadence(discover_s=30, ended_sweep_s=10_000)
    async with monitoring(make_emulator, tmp_path, cadence=cadence) as h:
        assert h.monitor.state.synced and not h.monitor.state.batches
        fresh = await h.client.create([request("x-1")])
        await h.run_for(29)
        assert fresh.id not in h.monitor.state.batches
        await h.run_for(2)
        assert fresh.id in h.monitor.state.batches
        await asyncio.wait_for(h.monitor.flushed(), 5)
        assert len(h.sink.named(BATCH_DISCOVERED, fresh.id)) == 1
        lists = h.called("list")
    assert len(lists) == 2  # the initial sync and one discovery


async def test_outage_degrades_then_recovers_with_one_event_each(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async def create(client: BatchesAPI) -> None:
        await client.create([request("o-1")])

    async with monitoring(make_emulator, tmp_path, before=create, cadence=Cadence()) as h:
        h.emu.engine.faults = parse_faults("500=1")
        await h.run_for(120)
        degraded = h.monitor.state.degraded
        assert degraded is not None
        assert (degraded.kind, degraded.status, degraded.error_type) == ("server", 500, "api_error")
        assert degraded.next_retry_at > h.sim.now() and degraded.failures >= 3
        assert h.monitor.state.next_poll_at == degraded.next_retry_at
        failed = [c for _, c in h.calls if not c.ok]
        assert len(failed) == degraded.failures
        h.emu.engine.faults = Faults()
        await h.run_for(120)
        assert h.monitor.state.degraded is None
    (error,) = h.sink.named(API_ERROR)
    (recovered,) = h.sink.named(API_RECOVERED)
    assert error.data["status"] == 500 and error.data["kind"] == "server"
    assert recovered.data["outage_s"] >= 100 and recovered.data["failures"] == len(failed)
    assert h.sink.events.index(error) < h.sink.events.index(recovered)


async def test_an_outage_from_the_very_first_sync_is_retried_until_it_ends(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    # Nothing is known and nothing is scheduled yet: only the backoff can bring it back.
    async with monitoring(make_emulator, tmp_path, scenario="many:3", cadence=Cadence(),
                          faults="500=1") as h:
        await h.run_for(60)
        state = h.monitor.state
        assert not state.synced and state.degraded is not None and state.degraded.failures >= 3
        assert state.next_poll_at == state.degraded.next_retry_at
        h.emu.engine.faults = Faults()
        await h.run_for(120)
        state = h.monitor.state
        assert state.synced and state.degraded is None and len(state.batches) == 3
    assert len(h.sink.named(API_ERROR)) == len(h.sink.named(API_RECOVERED)) == 1


async def test_retry_after_is_honoured(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    async with monitoring(make_emulator, tmp_path) as h:
        h.emu.engine.faults = parse_faults("429=1")
        with pytest.raises(ApiError) as direct:
            await h.client.list_first_page()
        await asyncio.wait_for(h.monitor.refresh_now(), 5)
        degraded = h.monitor.state.degraded
        assert degraded is not None and degraded.kind == "rate_limited"
        wait = (degraded.next_retry_at - h.sim.now()).total_seconds()
    assert direct.value.retry_after is not None
    (error,) = h.sink.named(API_ERROR)
    assert error.data["retry_in_s"] == pytest.approx(direct.value.retry_after, abs=0.01)
    assert wait == pytest.approx(direct.value.retry_after, abs=0.5)


async def test_pause_stops_api_calls_and_resume_catches_up(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async def create(client: BatchesAPI) -> None:
        await client.create([request("p-1")])

    async with monitoring(make_emulator, tmp_path, before=create, cadence=Cadence()) as h:
        h.monitor.pause()
        before = h.api.total_calls
        await h.run_for(600)
        h.emu.engine.clock.advance(600)
        await asyncio.sleep(0.05)
        assert h.api.total_calls == before
        assert h.monitor.state.paused and h.monitor.state.next_poll_at is None
        h.monitor.resume()
        await h.run_for(0)
        assert h.api.total_calls > before and not h.monitor.state.paused


async def test_young_then_middle_aged_batch_follows_the_cadence(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    # Scaled down: every 2 s while younger than 12 s, then every 5 s (the real bands are
    # 10 s / 5 min / 60 s / 1 h / 300 s; the arithmetic is the same).
    cadence = Cadence(
        young_s=2, young_until_s=12, middle_s=5, discover_s=10_000, ended_sweep_s=10_000
    )

    async def create(client: BatchesAPI) -> None:
        await client.create([request("c-1")])

    async with monitoring(make_emulator, tmp_path, before=create, cadence=cadence) as h:
        start = h.sim.now()
        await h.run_for(40)
    polls = [at for at, call in h.calls if call.method == "retrieve"]
    offsets = [round((at - start).total_seconds()) for at in polls]
    assert offsets == [2, 4, 6, 8, 10, 12, 17, 22, 27, 32, 37]
    assert len(h.called("list")) == 1
    # Polls that changed nothing publish the same mapping again: no copy per poll.
    mappings = {id(s.batches) for s in h.states if s.synced}
    assert len(mappings) == 1
    # 30 calls a minute while young, 12 a minute after: what 60/2 and 60/5 imply.


async def test_many_due_batches_share_one_list_call(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async def create(client: BatchesAPI) -> None:
        for n in range(5):
            await client.create([request(f"m-{n}")])

    async with monitoring(make_emulator, tmp_path, before=create) as h:
        await h.run_for(50)
        running = [b for b in h.monitor.state.batches.values() if not b.is_ended]
    assert len(running) == 5
    # Five batches every 10 s for 50 s would be 25 retrieves; one list a round instead.
    assert len(h.called("retrieve")) == 0
    assert len(h.called("list")) == 1 + 5


async def test_list_pages_stop_once_retrieves_would_be_cheaper(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async def create(client: BatchesAPI) -> None:
        for n in range(5):
            await client.create([request(f"s-{n}")])

    # One batch per page: pages 1-3 each cover one due batch, then two retrieves are cheaper.
    async with monitoring(make_emulator, tmp_path, before=create, scan_limit=1) as h:
        await h.run_for(10)
    assert len(h.called("list")) == 1 + 3
    assert len(h.called("retrieve")) == 2
    assert not h.sink.named(BATCH_GONE)


async def test_focused_batch_is_polled_faster(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    created: list[BatchSnapshot] = []

    async def create(client: BatchesAPI) -> None:
        created.append(await client.create([request("f-1")]))

    cadence = Cadence(focused_s=1, discover_s=10_000, ended_sweep_s=10_000)
    async with monitoring(make_emulator, tmp_path, before=create, cadence=cadence) as h:
        h.monitor.focus(created[0].id)
        await h.run_for(10.5)
        assert h.monitor.state.focused == created[0].id
        focused_polls = len(h.called("retrieve"))
        h.monitor.focus(None)
        await h.run_for(10)
        unfocused_polls = len(h.called("retrieve")) - focused_polls
    assert focused_polls == 11  # at once, then every second
    assert unfocused_polls == 1


async def test_deleted_batch_is_gone_after_the_sweep(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    created: list[BatchSnapshot] = []

    async def create(client: BatchesAPI) -> None:
        created.append(await client.create([request("g-1")]))

    cadence = Cadence(discover_s=10_000, ended_sweep_s=600)
    async with monitoring(make_emulator, tmp_path, before=create, cadence=cadence) as h:
        batch_id = created[0].id
        await h.run_for(120)
        assert h.monitor.state.batches[batch_id].is_ended
        polls_when_ended = len(h.called("retrieve"))
        await h.client.delete(batch_id)
        await h.run_for(300)
        assert batch_id in h.monitor.state.batches  # ended batches wait for the sweep
        assert len(h.called("retrieve")) == polls_when_ended
        await h.run_for(300)
        assert batch_id not in h.monitor.state.batches
        assert batch_id not in h.monitor.state.order
    (gone,) = h.sink.named(BATCH_GONE, batch_id)
    assert gone.data["last_status"] == ENDED


async def test_a_404_right_after_create_is_not_a_deletion(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    created: list[BatchSnapshot] = []

    async def create(client: BatchesAPI) -> None:
        created.append(await client.create([request("t-1")]))

    cadence = Cadence(young_s=3, discover_s=10_000, ended_sweep_s=10_000)
    # The emulator answers 404 to a retrieve in the first 5 s of a batch, as the API may.
    async with monitoring(
        make_emulator, tmp_path, before=create, cadence=cadence, faults="notfound_after_create=5"
    ) as h:
        await h.run_for(25)
        batch = h.monitor.state.batches.get(created[0].id)
    outcomes = [call.outcome for call in h.called("retrieve")]
    assert outcomes[0] == "not_found" and set(outcomes[1:]) == {"ok"}
    assert batch is not None and not batch.is_ended
    assert not h.sink.named(BATCH_GONE)
    assert h.monitor.state.degraded is None


async def test_refresh_now_polls_at_once_and_stop_ends_the_session(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async def create(client: BatchesAPI) -> None:
        await client.create([request("r-1")])

    async with monitoring(make_emulator, tmp_path, before=create) as h:
        before = dict(h.api.calls)
        await asyncio.wait_for(h.monitor.refresh_now(), 5)
        after = dict(h.api.calls)
        entries: tuple[FeedEntry, ...] = h.monitor.state.recent_events
    assert after["list"] == before["list"] + 1
    assert after.get("retrieve", 0) == before.get("retrieve", 0) + 1
    assert any(isinstance(entry.item, ApiCall) for entry in entries)
    assert any(isinstance(entry.item, Event) for entry in entries)
    assert h.sink.events[-1].event == SESSION_ENDED
    assert not h.monitor.state.fetching


async def test_stop_cancels_a_call_in_flight(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    async with monitoring(make_emulator, tmp_path) as h:
        h.emu.engine.faults = parse_faults("slow=30s")
        calls_before = len(h.calls)
        refresh = asyncio.create_task(h.monitor.refresh_now())
        await until(h.monitor, lambda state: state.fetching)
        h.monitor.stop()
        await asyncio.wait_for(refresh, 5)  # a waiting refresh_now is released, not left hanging
    assert len(h.calls) == calls_before  # the slow call never completed: it was cancelled
    assert h.sink.events[-1].event == SESSION_ENDED


async def test_cancelling_run_still_ends_the_session(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = await make_emulator(faults="slow=30s")
    api = BatchesAPI.connect(KEY, emu.url)
    sink = PlainRecorder(AuditLog(tmp_path / "audit"))
    monitor = Monitor(api, sink)
    task = asyncio.create_task(monitor.run())
    await until(monitor, lambda state: state.fetching)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await sink.audit.close()
    await api.close()
    assert [e.event for e in sink.events] == [SESSION_STARTED, SESSION_ENDED]
    assert api.calls["list"] == 1 and not monitor.state.fetching


@dataclass
class SharedSink(Recorder):
    """An audit log shared with other writers: `held` lines are theirs, still being written,
    unless `failure` says writes fail. `gate` holds the monitor's own writes while clear."""

    held: int = 0
    failure: str | None = None
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    @property
    def pending_count(self) -> int:
        return self.held

    @property
    def last_error(self) -> str | None:
        return self.failure

    async def flush_pending(self) -> bool:
        return not self.held

    async def record_many(self, events: Iterable[Event]) -> None:
        await self.gate.wait()
        await super().record_many(events)


async def create_one(client: BatchesAPI, custom_id: str) -> str:
    return (await client.create([request(custom_id)])).id


async def test_lines_other_writers_have_in_flight_are_not_an_audit_error(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with monitoring(make_emulator, tmp_path, sink_type=SharedSink) as h:
        sink = h.sink
        assert isinstance(sink, SharedSink)
        sink.held = 3  # an action and alerts going through the same log right now
        await create_one(h.client, "s-1")
        await asyncio.wait_for(h.monitor.refresh_now(), 5)
        await asyncio.wait_for(h.monitor.flushed(), 5)
        assert h.sink.named(BATCH_DISCOVERED) and h.monitor.state.audit_error is None
        sink.failure = "batchtop.jsonl: No space left on device"  # now writes do fail
        await create_one(h.client, "s-2")
        await asyncio.wait_for(h.monitor.refresh_now(), 5)
        await asyncio.wait_for(h.monitor.flushed(), 5)
        assert h.monitor.state.audit_error == (
            "audit log not written (3 events held, retrying): "
            "batchtop.jsonl: No space left on device"
        )
        sink.held, sink.failure = 0, None
        await create_one(h.client, "s-3")
        await asyncio.wait_for(h.monitor.refresh_now(), 5)
        await asyncio.wait_for(h.monitor.flushed(), 5)
        assert h.monitor.state.audit_error is None


async def test_flushed_waits_for_the_events_emitted_so_far(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with monitoring(make_emulator, tmp_path, sink_type=SharedSink) as h:
        sink = h.sink
        assert isinstance(sink, SharedSink)
        await asyncio.wait_for(h.monitor.flushed(), 5)  # the first sync
        sink.gate.clear()
        batch_id = await create_one(h.client, "w-1")
        await asyncio.wait_for(h.monitor.refresh_now(), 5)
        assert batch_id in h.monitor.state.batches
        flushed = h.monitor.flushed()
        await asyncio.sleep(0.05)
        assert not flushed.done() and not h.sink.named(BATCH_DISCOVERED, batch_id)
        sink.gate.set()
        await asyncio.wait_for(flushed, 5)
        assert h.sink.named(BATCH_DISCOVERED, batch_id)
    # Not running: nothing to wait for.
    assert h.monitor.flushed().done()


async def test_forget_drops_a_deleted_batch_at_once_with_a_reason(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    created: list[str] = []

    async def create(client: BatchesAPI) -> None:
        created.append(await create_one(client, "f-1"))

    async with monitoring(make_emulator, tmp_path, before=create) as h:
        (batch_id,) = created
        assert batch_id in h.monitor.state.batches
        h.monitor.forget(batch_id)
        assert batch_id not in h.monitor.state.batches
        assert batch_id not in h.monitor.state.order
        h.monitor.forget(batch_id)  # again, or an id never seen: nothing happens
        h.monitor.forget("msgbatch_never_seen")
        await asyncio.wait_for(h.monitor.flushed(), 5)
        await h.run_for(60)  # no poll of it any more
        retrieved = [c.target for c in h.called("retrieve")]
    (gone,) = h.sink.named(BATCH_GONE, batch_id)
    assert gone.data["reason"] == "deleted" and gone.data["last_status"] == IN_PROGRESS
    assert batch_id not in retrieved


async def test_refresh_now_with_ids_retrieves_only_those(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    created: list[str] = []

    async def create(client: BatchesAPI) -> None:
        created.extend([await create_one(client, "a-1"), await create_one(client, "b-1")])

    async with monitoring(make_emulator, tmp_path, before=create) as h:
        first, _second = created
        before = len(h.calls)
        await asyncio.wait_for(h.monitor.refresh_now([first]), 5)
        asked = [(call.method, call.target) for _, call in h.calls[before:]]
        assert asked == [("retrieve", first)]
        # An id the monitor has not discovered yet is read (and known) at once.
        fresh = await create_one(h.client, "c-1")
        before = len(h.calls)
        await asyncio.wait_for(h.monitor.refresh_now([fresh]), 5)
        assert [(c.method, c.target) for _, c in h.calls[before:]] == [("retrieve", fresh)]
        assert fresh in h.monitor.state.batches
        await asyncio.wait_for(h.monitor.flushed(), 5)  # events are written after the poll
        assert len(h.sink.named(BATCH_DISCOVERED, fresh)) == 1
