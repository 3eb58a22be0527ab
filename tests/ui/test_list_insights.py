"""What the list shows beside the API's data: alerts, costs, ETAs, lineage, settled submits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from rich.text import Text
from textual.notifications import SeverityLevel
from textual.pilot import Pilot

from tests.ui.harness import (
    FROZEN_AT,
    KEY,
    SIZE,
    column,
    refresh,
    requests,
    services_factory,
    start_frozen,
    synced,
    until,
)
from tui.core.eta import Eta
from tui.core.models import BatchSnapshot
from tui.emulator.server import RunningEmulator
from tui.paths import locations
from tui.service.actions import read_request_file
from tui.service.api import BatchesAPI
from tui.service.ledger import Ledger
from tui.settings import Settings
from tui.ui.app import BatchtopApp, alert_toast
from tui.ui.batch_rows import BatchRows, CellStyles, RowExtras, columns_for, eta_cell
from tui.ui.screens.batches import BatchesScreen


class Recording(BatchtopApp):
    """The app, keeping every toast and bell."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.toasts: list[tuple[str, str, SeverityLevel]] = []
        self.bells = 0

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        self.toasts.append((title, message, severity))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def bell(self) -> None:
        self.bells += 1

    def toasted(self, text: str) -> int:
        return sum(text in title or text in message for title, message, _ in self.toasts)


@asynccontextmanager
async def running(
    emulator: RunningEmulator | None = None, settings: Settings | None = None
) -> AsyncIterator[tuple[Recording, Pilot[Any], BatchesScreen, RunningEmulator]]:
    emulator = emulator or await start_frozen("empty", error_rate=0.0)
    settings = settings or Settings()
    app = Recording(settings, services=services_factory(emulator, settings=settings), tz=UTC)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await synced(pilot)
            yield app, pilot, screen, emulator
    finally:
        await emulator.stop()


def row_of(screen: BatchesScreen, batch_id: str) -> dict[str, str]:
    rows = screen.rows
    assert rows is not None
    index = rows.index_of(batch_id)
    assert index is not None
    return {c.key: cell.plain for c, cell in zip(rows.columns, rows.cells(index), strict=True)}


async def listed(pilot: Pilot[Any], screen: BatchesScreen, batch_id: str) -> None:
    """Poll, and show the batch even if it arrived above the cursor ("+N new")."""
    await refresh(pilot)
    await until(pilot, lambda: batch_id in pilot.app.monitor_state.batches)
    screen.reveal_new()
    await until(pilot, lambda: screen.rows is not None and batch_id in screen.rows.ids)


# -- alerts ---------------------------------------------------------------------------------------


async def test_a_high_error_rate_toasts_once_rings_and_highlights_the_row() -> None:
    async with running() as (app, pilot, screen, emulator):
        emulator.engine.error_rate = 0.6
        batch = await app.api.create(requests(20))
        await listed(pilot, screen, batch.id)  # seen running: its end is news
        emulator.engine.clock.advance(3600)
        await refresh(pilot)
        await until(pilot, lambda: app.toasted("requests failed") == 1)
        assert app.bells == 1
        assert any(severity == "error" for _, message, severity in app.toasts
                   if "requests failed" in message)
        rows = screen.rows
        assert rows is not None
        index = rows.index_of(batch.id)
        assert index is not None and rows.row_class(index) == "alert"
        for _ in range(2):
            emulator.engine.clock.advance(60)
            await refresh(pilot)
        assert app.toasted("requests failed") == 1  # once per batch and kind


async def test_no_bell_when_it_is_off() -> None:
    async with running(settings=Settings(bell=False)) as (app, pilot, screen, emulator):
        emulator.engine.error_rate = 0.6
        batch = await app.api.create(requests(20))
        await listed(pilot, screen, batch.id)
        emulator.engine.clock.advance(3600)
        await refresh(pilot)
        await until(pilot, lambda: app.toasted("requests failed") == 1)
        assert app.bells == 0


def test_alerts_arriving_together_share_a_toast() -> None:
    from tui.core.alerts import Alert, AlertKind, Severity

    alerts = [Alert(AlertKind.ENDED, f"msgbatch_{n}", Severity.INFO, f"msgbatch_{n} ended")
              for n in range(5)]
    alerts[2] = Alert(AlertKind.SLA, "msgbatch_2", Severity.WARNING, "late\x1b[31m")
    message, severity = alert_toast(alerts)
    assert severity == "warning"
    assert message.count("\n") == 3 and "2 more" in message
    assert "\x1b" not in message


# -- cost and ETA ---------------------------------------------------------------------------------


async def test_the_cost_column_and_the_header_show_a_stored_batch() -> None:
    async with running() as (app, pilot, screen, emulator):
        batch = await app.api.create(requests(5))
        emulator.engine.clock.advance(3600)
        await listed(pilot, screen, batch.id)
        assert row_of(screen, batch.id)["cost"] == ""  # nothing stored yet
        store = app.results_store
        assert store is not None
        await store.ensure(app.api.client, app.monitor_state.batches[batch.id])
        await refresh(pilot)
        await until(pilot, lambda: "$" in row_of(screen, batch.id)["cost"])
        await until(pilot, lambda: "cost today" in screen.header.plain)


async def test_a_running_batch_gets_an_eta_from_similar_ones() -> None:
    async with running() as (app, pilot, screen, emulator):
        done = await app.api.create(requests(3))
        emulator.engine.clock.advance(3600)
        await listed(pilot, screen, done.id)
        batch = await app.api.create(requests(4))
        await listed(pilot, screen, batch.id)
        eta = row_of(screen, batch.id)["eta"]
        assert eta.startswith("~") or eta.strip() in ("due", "past median")
        assert row_of(screen, done.id)["eta"] == ""
        screen.table.move_to_key(batch.id)
        await pilot.pause()
        note = str(screen.query_one("#row-note").render())
        assert "median of 1 batch of 1–100 requests" in note


def test_eta_cell_is_short_and_says_due_then_past_median() -> None:
    # Started 3 minutes before FROZEN_AT; similar batches took 15 minutes.
    eta = Eta(FROZEN_AT + timedelta(minutes=12), 900.0, 8, "median of 8 batches of 1k–10k "
              "requests", True)
    assert eta_cell(eta, FROZEN_AT) == ("~12m", "median of 8 batches of 1k–10k requests: "
                                                "15m 00s")
    assert eta_cell(eta, FROZEN_AT + timedelta(minutes=13))[0] == "due"
    assert eta_cell(eta, FROZEN_AT + timedelta(minutes=27))[0] == "due"  # 2× the median
    assert eta_cell(eta, FROZEN_AT + timedelta(minutes=28))[0] == "past median"


# -- lineage and labels ---------------------------------------------------------------------------


def _snapshot(batch_id: str, status: str = "ended") -> BatchSnapshot:
    at = "2025-06-01T10:00:00Z"
    return BatchSnapshot.from_api({
        "id": batch_id, "type": "message_batch", "processing_status": status,
        "request_counts": {"processing": 0 if status == "ended" else 2, "succeeded": 2,
                           "errored": 0, "canceled": 0, "expired": 0},
        "ended_at": at if status == "ended" else None, "created_at": at,
        "expires_at": "2025-06-02T10:00:00Z", "cancel_initiated_at": None,
        "archived_at": None, "results_url": None,
    })


def test_rows_show_lineage_cost_and_alerts_inertly() -> None:
    parent, child, hostile = "msgbatch_parent0000001", "msgbatch_child", "msgbatch_\x1b[2Jx"
    extras = RowExtras(
        labels={child: "retry of \x1b]0;t\x07nightly"},
        lineage={child: (parent, 2), hostile: ("msgbatch_p\u202eab\x1b[31m", 1)},
        cost=lambda key: "$1.25" if key == parent else None,
        alerted=lambda key: key == child,
    )
    batches = [_snapshot(parent), _snapshot(child), _snapshot(hostile)]
    rows = BatchRows(batches, datetime(2025, 6, 1, 12, tzinfo=UTC), CellStyles({}),
                     columns=columns_for(True, True), extras=extras)
    plain = [[cell.plain for cell in rows.cells(i)] for i in range(3)]
    keys = [c.key for c in rows.columns]
    lineage, cost, label = keys.index("lineage"), keys.index("cost"), keys.index("label")
    assert plain[1][lineage] == "↻2 …0000001"
    assert plain[0][lineage] == "retried ×1"
    assert plain[0][cost] == "$1.25" and plain[1][cost] == ""
    assert [rows.row_class(i) for i in range(3)] == [None, "alert", None]
    for row in plain:
        for cell in row:
            assert not any(ch in cell for ch in "\x1b\x07\u202e")
    assert plain[1][label].startswith("retry of ␛]0;t␇")  # visible, inert, cut
    assert all(isinstance(cell, Text) for cell in rows.cells(2))


async def test_a_submit_left_pending_by_a_crash_is_settled_after_the_first_sync() -> None:
    emulator = await start_frozen("empty", error_rate=0.0)
    path = locations().data / "crashed.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in requests(3, "crashed")))
    ledger = Ledger(clock=emulator.engine.clock.now)
    ledger.begin_submit(read_request_file(path).requests, source_file=str(path),
                        label="crashed run")
    ledger.close()
    # The create went through, but the run that sent it died before recording the id.
    api = BatchesAPI.connect(KEY, emulator.url)
    batch = await api.create(requests(3))
    await api.close()
    async with running(emulator) as (app, pilot, screen, _):
        await until(pilot, lambda: app.toasted("submits settled") == 1)
        await until(pilot, lambda: app.labels.get(batch.id) == "crashed run")
        assert column(screen, "label") == ["crashed run"]
        assert app.toasted(f"was created as {batch.id}") == 1
