"""A small host app for the batch and result screens: the services they read, and test data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import anthropic
import orjson
from textual.app import App
from textual.pilot import Pilot

from tests.ui import action_host
from tests.ui.harness import freeze, until
from tui.core.events import Event
from tui.core.models import BatchSnapshot, RequestCounts
from tui.emulator.server import RunningEmulator
from tui.service.api import BatchesAPI
from tui.service.monitor import MonitorState
from tui.service.results_store import ResultsStore
from tui.ui.screens.batch import BatchScreen
from tui.ui.widgets.batch_summary import Phase

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BATCH_ID = "msgbatch_01FixtureFixtureFixture0"


class RecordingAudit:
    """An audit sink that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def record(self, event: Event) -> None:
        self.events.append(event)

    async def close(self) -> None:
        return None

    def names(self) -> list[str]:
        return [event.event for event in self.events]


class StubMonitor:
    """Remembers which batch the screen asked to poll faster."""

    def __init__(self) -> None:
        self.state = MonitorState()
        self.focus_calls: list[str | None] = []

    def focus(self, batch_id: str | None) -> None:
        self.focus_calls.append(batch_id)
        self.state = MonitorState(focused=batch_id)


class HostApp(App[None]):
    """What BatchScreen reads from BatchtopApp: monitor_state, api, audit, monitor, clock, tz."""

    def __init__(
        self,
        batch_id: str,
        *,
        store: ResultsStore,
        api: BatchesAPI | None = None,
        batches: Sequence[BatchSnapshot] = (),
        clock: Callable[[], datetime] = lambda: NOW,
        screen: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__()
        self.batch_id = batch_id
        self.store = store
        self._api = api
        self.monitor_state = MonitorState(batches={b.id: b for b in batches})
        self.audit = RecordingAudit()
        self.monitor = StubMonitor()
        self.tz = UTC
        self._clock = clock
        self._screen = screen
        self.refreshes = 0

    @property
    def api(self) -> BatchesAPI:
        if self._api is None:
            raise RuntimeError("no API in this test")
        return self._api

    def clock(self) -> datetime:
        return self._clock()

    def action_refresh_now(self) -> None:
        self.refreshes += 1

    async def on_unmount(self) -> None:
        if self._api is not None:
            await self._api.close()

    def on_mount(self) -> None:
        factory = self._screen or (lambda: BatchScreen(self.batch_id, store=self.store))
        self.push_screen(factory())

    @property
    def batch_screen(self) -> BatchScreen:
        for screen in self.screen_stack:
            if isinstance(screen, BatchScreen):
                return screen
        raise LookupError("no batch screen")


class ActionsHost(action_host.HostApp):
    """The action host (services on an emulator, `flows`, `actions`, `settings`) plus what
    the batch screen reads of the app: monitor_state, results_store, ledger, clock, tz."""

    tz: tzinfo | None = UTC

    @property
    def monitor_state(self) -> MonitorState:
        return self.monitor.state

    @property
    def results_store(self) -> ResultsStore:
        return self.store

    def clock(self) -> datetime:
        assert self.emulator is not None
        return self.emulator.engine.clock.now()

    async def open_batch(self, pilot: Pilot[Any], batch_id: str) -> BatchScreen:
        """Push the batch's screen and wait until it knows the batch (and has its results)."""
        screen = BatchScreen(batch_id)
        await self.push_screen(screen)
        await until(pilot, lambda: screen.phase is Phase.LIVE
                    or (screen.phase is Phase.READY and screen.rows is not None))
        await settle(pilot)
        return screen


@asynccontextmanager
async def actions_host(
    make_emulator: Callable[..., Awaitable[RunningEmulator]], home: Path, *,
    read_only: bool = False, **options: Any,
) -> AsyncIterator[tuple[ActionsHost, Pilot[None]]]:
    """The host on a frozen-clock emulator (no errors unless asked for)."""
    options.setdefault("error_rate", 0.0)
    emulator = await make_emulator(**options)
    freeze(emulator)
    app = ActionsHost(home, read_only=read_only, quiet=True)
    async with app.run_test(size=(160, 45)) as pilot:
        await app.connect(emulator)
        yield app, pilot


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until every worker is done and the screen has caught up."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def ended_batch(counts: RequestCounts, batch_id: str = BATCH_ID, **extra: Any) -> BatchSnapshot:
    created = NOW - timedelta(hours=3)
    return BatchSnapshot(
        id=batch_id,
        processing_status="ended",
        request_counts=counts,
        created_at=created,
        expires_at=created + timedelta(days=1),
        ended_at=created + timedelta(minutes=47, seconds=12),
        results_url=f"https://example.invalid/v1/messages/batches/{batch_id}/results",
        **extra,
    )


def running_batch(total: int, batch_id: str = BATCH_ID) -> BatchSnapshot:
    created = NOW - timedelta(minutes=12, seconds=30)
    return BatchSnapshot(
        id=batch_id,
        processing_status="in_progress",
        request_counts=RequestCounts(processing=total),
        created_at=created,
        expires_at=created + timedelta(days=1),
    )


def message_line(custom_id: str, text: str, *, model: str = "claude-sonnet-4-5",
                 stop_reason: str = "end_turn", tokens: int = 120) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": {"type": "succeeded", "message": {
        "id": f"msg_{custom_id}", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": text, "citations": None}],
        "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": tokens * 9, "output_tokens": tokens,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": tokens * 4,
                  "service_tier": "batch"}}}})


def error_line(custom_id: str, error_type: str, message: str) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": {"type": "errored", "error": {
        "type": "error", "error": {"type": error_type, "message": message},
        "request_id": None}}})


def bare_line(custom_id: str, kind: str) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": {"type": kind}})


def fixture_lines() -> list[bytes]:
    """A small, fixed mix: succeeded, two error types, expired, canceled, one tool call."""
    lines: list[bytes] = []
    for n in range(40):
        custom_id = f"invoice-{n:05d}-extraction"
        if n % 10 == 3:
            lines.append(error_line(custom_id, "overloaded_error", "Overloaded"))
        elif n % 10 == 7:
            lines.append(error_line(custom_id, "invalid_request_error",
                                    f"prompt is too long: {200_001 + n} tokens > 200000 maximum"))
        elif n % 13 == 5:
            lines.append(bare_line(custom_id, "expired"))
        elif n == 38:
            lines.append(bare_line(custom_id, "canceled"))
        else:
            lines.append(message_line(
                custom_id, f"Vendor: Nordwind Logistics GmbH, invoice NW-2024-{n:04d}; total "
                f"{1000 + 37 * n}.50 EUR.", tokens=100 + n, model=(
                    "claude-haiku-4-5" if n % 2 else "claude-sonnet-4-5"),
                stop_reason="max_tokens" if n == 11 else "end_turn"))
    return lines


def fixture_counts(lines: Sequence[bytes]) -> RequestCounts:
    """The request counts a batch with these result lines reports."""
    text = b"\n".join(lines)
    return RequestCounts(
        succeeded=text.count(b'"type":"succeeded"'), errored=text.count(b'"type":"errored"'),
        expired=text.count(b'"type":"expired"'), canceled=text.count(b'"type":"canceled"'))


def fill_store(store: ResultsStore, lines: Sequence[bytes], batch_id: str = BATCH_ID) -> None:
    store.ingest(batch_id, [b"\n".join(lines) + b"\n"])


def sdk_api(url: str) -> BatchesAPI:
    client = anthropic.AsyncAnthropic(api_key="test-key", base_url=url, max_retries=0,
                                      _strict_response_validation=True)
    return BatchesAPI(client)


def make_store(tmp_path: Path, **options: Any) -> ResultsStore:
    options.setdefault("retry_delay", 0.0)
    return ResultsStore(tmp_path / "results", "ws-test", **options)
