"""The action keys of the batches list, through the real app, services and dialogs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.ui.harness import (
    SIZE,
    column,
    make_app,
    refresh,
    requests,
    services_factory,
    start_frozen,
    synced,
    until,
)
from tui.core.models import BatchSnapshot
from tui.emulator.server import RunningEmulator
from tui.paths import locations
from tui.service.audit import read_audit
from tui.settings import Settings
from tui.ui.app import BatchtopApp
from tui.ui.commands import batch_commands, screen_commands
from tui.ui.screens.batches import BatchesScreen
from tui.ui.screens.confirm import ConfirmModal
from tui.ui.screens.help import HelpScreen, help_rows
from tui.ui.screens.retry import RetryModal
from tui.ui.screens.submit import SubmitScreen
from tui.ui.screens.text_prompt import TextPrompt

ACTION_KEYS = ("c", "D", "R", "n", "a", "t")


@asynccontextmanager
async def running(
    settings: Settings | None = None, *, error_rate: float = 0.0
) -> AsyncIterator[tuple[BatchtopApp, Pilot[Any], BatchesScreen, RunningEmulator]]:
    """The app with every service on a frozen, initially empty emulator."""
    emulator = await start_frozen("empty", error_rate=error_rate)
    app = make_app(services_factory(emulator, settings=settings), settings)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await synced(pilot)
            yield app, pilot, screen, emulator
    finally:
        await emulator.stop()


async def shown(pilot: Pilot[Any], screen: BatchesScreen, batch_id: str) -> None:
    """Poll until the batch is in the list, then put the cursor on it."""
    await refresh(pilot)
    await until(pilot, lambda: screen.rows is not None and screen.rows.index_of(batch_id)
                is not None)
    assert screen.table.move_to_key(batch_id)
    await pilot.pause()


async def dialog_of(pilot: Pilot[Any], kind: type[Any]) -> Any:
    await until(pilot, lambda: isinstance(pilot.app.screen, kind) and pilot.app.screen.is_mounted)
    await pilot.pause()
    return pilot.app.screen


def status_of(app: BatchtopApp, batch_id: str) -> str:
    return app.monitor_state.batches[batch_id].processing_status


async def submitted(app: BatchtopApp, count: int, name: str = "requests.jsonl") -> BatchSnapshot:
    """A batch created through batchtop, so that the ledger has its requests."""
    path = locations().data / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in requests(count, path.stem)))
    (batch,) = await app.actions.submit(await app.actions.plan_submit(path))
    return batch


def action_outcomes(event: str) -> list[str]:
    return [r["data"]["outcome"] for r in read_audit(locations().audit).records
            if r["event"] == event]


async def test_c_cancels_after_the_dialog_and_the_list_follows_it_to_the_end() -> None:
    async with running() as (app, pilot, screen, emulator):
        batch = await app.api.create(requests(4))
        await shown(pilot, screen, batch.id)
        await pilot.press("c")
        dialog = await dialog_of(pilot, ConfirmModal)
        assert batch.id in str(dialog.query_one("#confirm-text").render())
        assert app.monitor.state.paused  # polling waits while a dialog is open
        await pilot.press("y")
        await until(pilot, lambda: status_of(app, batch.id) in ("canceling", "ended"))
        emulator.engine.clock.advance(3600)
        await refresh(pilot)
        await until(pilot, lambda: status_of(app, batch.id) == "ended")
        await until(pilot, lambda: "⊘ canceled" in column(screen, "status"))
        assert action_outcomes("action.cancel") == ["requested", "succeeded"]


async def test_saying_no_changes_nothing() -> None:
    async with running() as (app, pilot, screen, _):
        batch = await app.api.create(requests(2))
        await shown(pilot, screen, batch.id)
        await pilot.press("c")
        await dialog_of(pilot, ConfirmModal)
        await pilot.press("enter")  # the safe button has the focus
        await until(pilot, lambda: app.screen is screen and app.flows.running is None)
        assert status_of(app, batch.id) == "in_progress"
        assert action_outcomes("action.cancel") == ["refused"]


async def test_c_on_marked_batches_cancels_all_of_them() -> None:
    async with running() as (app, pilot, screen, _):
        first = await app.api.create(requests(2))
        second = await app.api.create(requests(3))
        await shown(pilot, screen, first.id)
        await pilot.press("space")
        screen.table.move_to_key(second.id)
        await pilot.press("space")
        assert sorted(screen.targets()) == sorted([first.id, second.id])
        await pilot.press("c")
        dialog = await dialog_of(pilot, ConfirmModal)
        body = str(dialog.query_one("#confirm-text").render())
        assert first.id in body and second.id in body
        await pilot.press("y")
        await until(pilot, lambda: all(status_of(app, b.id) != "in_progress"
                                       for b in (first, second)))
        await until(pilot, lambda: not screen.table.marked)  # the marks are spent


async def test_d_deletes_an_ended_batch_and_it_leaves_the_list() -> None:
    async with running() as (app, pilot, screen, emulator):
        batch = await app.api.create(requests(2))
        emulator.engine.clock.advance(3600)
        await shown(pilot, screen, batch.id)
        assert status_of(app, batch.id) == "ended"
        await pilot.press("D")
        await dialog_of(pilot, ConfirmModal)
        await pilot.press("y")
        await until(pilot, lambda: screen.rows is not None and batch.id not in screen.rows.ids)
        assert batch.id not in app.monitor_state.batches  # dropped, not left for a sweep
        await app.monitor.flushed()
        gone = [r["data"].get("reason") for r in read_audit(locations().audit).records
                if r["event"] == "batch.gone" and r["batch_id"] == batch.id]
        assert gone == ["deleted"]
        assert action_outcomes("action.delete") == ["requested", "succeeded"]


async def test_r_retries_the_failed_requests_and_shows_the_lineage() -> None:
    async with running(error_rate=0.5) as (app, pilot, screen, emulator):
        parent = await submitted(app, 20)
        emulator.engine.clock.advance(3600)
        await shown(pilot, screen, parent.id)
        assert app.monitor_state.batches[parent.id].request_counts.failed
        await pilot.press("R")
        dialog = await dialog_of(pilot, RetryModal)
        assert dialog.preview.request_count > 0
        await pilot.press("y")
        await until(pilot, lambda: bool(app.lineage))
        (child,) = app.lineage
        assert app.lineage[child] == (parent.id, 1)
        await until(pilot, lambda: screen.table.cursor_key == child)  # the new batch, at once
        lineage = dict(zip(screen.rows.ids if screen.rows else [], column(screen, "lineage"),
                           strict=True))
        assert lineage[child] == f"↻1 …{parent.id[-7:]}"
        assert lineage[parent.id] == "retried ×1"
        assert column(screen, "label")[screen.table.cursor_index].startswith("retry of")


async def test_n_opens_the_submit_dialog_and_submits_a_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in requests(3, "job")))
    async with running() as (app, pilot, screen, _):
        await pilot.press("n")
        dialog = await dialog_of(pilot, SubmitScreen)
        field = dialog.query_one(Input)
        field.value = str(path)
        await pilot.press("enter")
        await until(pilot, lambda: dialog.preview is not None and dialog.preview.allowed)
        app.set_focus(None)
        await pilot.press("y")
        await until(pilot, lambda: len(app.monitor_state.batches) == 1)
        (created,) = app.monitor_state.batches
        await until(pilot, lambda: screen.table.cursor_key == created)
        assert app.labels[created] == "jobs.jsonl"


async def test_n_is_next_match_only_while_a_search_is_active() -> None:
    async with running() as (app, pilot, screen, _):
        ids = [(await app.api.create(requests(1))).id for _ in range(3)]
        await refresh(pilot)
        await until(pilot, lambda: screen.rows is not None and len(screen.rows) == 3)
        await pilot.press("n")
        await dialog_of(pilot, SubmitScreen)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        target = ids[1]
        await pilot.press("slash", *target[-10:], "enter")
        await pilot.press("escape")  # the filter goes, the search stays for n / N
        await until(pilot, lambda: screen.rows is not None and len(screen.rows) == 3)
        screen.table.cursor_index = 0 if screen.rows and screen.rows.key_at(0) != target else 1
        await pilot.press("n")
        await pilot.pause()
        assert screen.table.cursor_key == target and app.screen is screen
        await pilot.press("escape")  # a second esc forgets the search
        await pilot.press("n")
        await dialog_of(pilot, SubmitScreen)


async def test_t_labels_the_batch_and_the_list_shows_it() -> None:
    async with running() as (app, pilot, screen, _):
        batch = await app.api.create(requests(2))
        await shown(pilot, screen, batch.id)
        await pilot.press("t")
        await dialog_of(pilot, TextPrompt)
        await pilot.press(*"nightly", "enter")
        await until(pilot, lambda: app.labels.get(batch.id) == "nightly")
        await until(pilot, lambda: "label" in [c.key for c in screen.table.columns])
        assert column(screen, "label") == ["nightly"]
        assert app.ledger is not None and app.ledger.label_for(batch.id) == "nightly"


async def test_read_only_removes_the_action_keys_and_says_ro() -> None:
    settings = Settings(read_only=True)
    async with running(settings) as (app, pilot, screen, _):
        batch = await app.api.create(requests(2))
        await shown(pilot, screen, batch.id)
        assert "[RO]" in screen.header.plain
        keys = {active.binding.action for active in screen.active_bindings.values()}
        assert not keys & {"cancel", "delete", "retry", "submit", "attach", "label"}
        for key in ACTION_KEYS:
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is screen
        await pilot.press("question_mark")
        await dialog_of(pilot, HelpScreen)
        described = {row.description for row in help_rows(screen)}
        assert "Cancel" not in described and "Audit log" in described
        assert status_of(app, batch.id) == "in_progress"


async def test_help_and_palette_offer_the_actions() -> None:
    async with running() as (app, pilot, screen, _):
        batch = await app.api.create(requests(2))
        await shown(pilot, screen, batch.id)
        await pilot.press("question_mark")
        await dialog_of(pilot, HelpScreen)
        rows = {row.description: (row.keys, row.binding_id) for row in help_rows(screen)}
        assert rows["Cancel"] == ("c", "batches.cancel")
        assert rows["Retry"] == ("R", "batches.retry")
        assert rows["Submit"] == ("n", "batches.submit")
        assert rows["Delete"] == ("D", "batches.delete")
        for name in ("Label", "Attach requests", "Audit log", "Refresh", "Pause"):
            assert name in rows
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        palette = {name for name, _, _ in screen_commands(screen)}
        assert {"Cancel", "Retry", "Submit", "Delete", "Label", "Audit log"} <= palette


@pytest.mark.parametrize("status", ["in_progress", "ended"])
async def test_batch_commands_follow_the_batch_state(status: str) -> None:
    async with running() as (app, pilot, screen, emulator):
        batch = await app.api.create(requests(2))
        if status == "ended":
            emulator.engine.clock.advance(3600)
        await shown(pilot, screen, batch.id)
        names = [name for name, _, _ in batch_commands(app, batch.id)]
        assert ("Cancel this batch" in names) is (status == "in_progress")
        assert ("Delete this batch" in names) is (status == "ended")
        assert "Audit timeline of this batch" in names
