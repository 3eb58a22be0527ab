"""Shared set-up for app tests: a frozen-clock emulator and services wired to it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from textual.pilot import Pilot

from tui.core.cadence import Backoff, Cadence
from tui.emulator.clock import Clock
from tui.emulator.faults import parse_faults
from tui.emulator.scenarios import load_scenario
from tui.emulator.server import EmulatorConfig, RunningEmulator, start_emulator
from tui.paths import locations
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog
from tui.service.ledger import Ledger
from tui.service.monitor import Monitor
from tui.settings import Settings
from tui.ui.app import BatchtopApp, Services, ServicesFactory
from tui.ui.launch import assemble
from tui.ui.screens.batches import BatchesScreen

KEY = "test-key"
FROZEN_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SIZE = (160, 40)


def freeze(emulator: RunningEmulator, at: datetime = FROZEN_AT) -> Clock:
    """Stop the emulator's clock at `at`; it moves only by `clock.advance(seconds)`."""
    clock = Clock(1.0, start=at.timestamp(), monotonic=lambda: 0.0)
    emulator.engine.clock = clock
    return clock


async def start_frozen(scenario: str = "empty", **config: Any) -> RunningEmulator:
    """An emulator with a frozen clock, then `scenario` loaded relative to that frozen time."""
    emulator = await start_emulator(EmulatorConfig(scenario="empty", **config))
    freeze(emulator)
    if scenario != "empty":
        load_scenario(emulator.engine, scenario)
    return emulator


def set_faults(emulator: RunningEmulator, spec: str | None) -> None:
    emulator.engine.faults = parse_faults(spec)


def services_factory(
    emulator: RunningEmulator,
    *,
    cadence: Cadence | None = None,
    where: str = "test",
    stop_emulator: bool = False,
    settings: Settings | None = None,
    features: bool = True,
    alerts: bool = True,
) -> ServicesFactory:
    """Services on the emulator's clock, with a seeded backoff (deterministic retry times).

    With `features` (the default) they are assembled as the app assembles them: actions,
    alerts, costs and the results store around the monitor; without, the monitor alone.
    `alerts=False` leaves the alert service out (snapshots without toasts).
    """

    async def make() -> Services:
        clock = emulator.engine.clock.now
        api = BatchesAPI.connect(KEY, emulator.url, max_retries=0)
        audit = AuditLog(locations().audit, secrets=[KEY], clock=clock)
        monitor = Monitor(api, audit, cadence or Cadence(), clock=clock,
                          backoff=Backoff(seed=0))
        on_close = emulator.stop if stop_emulator else None
        if not features:
            return Services(api=api, audit=audit, monitor=monitor, clock=clock, where=where,
                            on_close=on_close)
        services = assemble(api, audit, monitor, settings or Settings(), Ledger(clock=clock),
                            clock=clock, where=where, on_close=on_close)
        return services if alerts else replace(services, alerts=None)

    return make


def make_app(factory: ServicesFactory | None, settings: Settings | None = None,
             **options: Any) -> BatchtopApp:
    return BatchtopApp(settings or Settings(), services=factory, tz=UTC, **options)


async def until(pilot: Pilot[Any], condition: Any, limit_s: float = 10.0) -> None:
    """Let the app run until `condition()` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


async def synced(pilot: Pilot[Any]) -> BatchesScreen:
    """Wait for the first full list and for the list screen to show it."""
    app = pilot.app
    assert isinstance(app, BatchtopApp)
    await until(pilot, lambda: app.services is not None and app.monitor_state.synced)
    screen = app.batches_screen
    assert screen is not None
    await until(pilot, lambda: screen.rows is not None
                and len(app.monitor_state.batches) == _view_total(screen))
    await pilot.pause()
    return screen


async def refresh(pilot: Pilot[Any]) -> None:
    """One forced poll, then let the messages reach the screens."""
    app = pilot.app
    assert isinstance(app, BatchtopApp)
    await app.monitor.refresh_now()
    await pilot.pause()
    await pilot.pause()


def _view_total(screen: BatchesScreen) -> int:
    rows = screen.rows
    return len(rows) + screen.new_count if rows is not None else -1


def plain_row(screen: BatchesScreen, index: int) -> list[str]:
    rows = screen.rows
    assert rows is not None
    return [cell.plain for cell in rows.cells(index)]


def column(screen: BatchesScreen, key: str) -> list[str]:
    """The cells of column `key` in view order, also when the width leaves it out."""
    rows = screen.rows
    assert rows is not None
    return [rows.cell(batch, key).plain for batch in rows.batches]


def requests(count: int, prefix: str = "req") -> Sequence[dict[str, Any]]:
    return [
        {
            "custom_id": f"{prefix}-{i}",
            "params": {
                "model": "claude-sonnet-4-5",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": f"hello {i}"}],
            },
        }
        for i in range(count)
    ]
