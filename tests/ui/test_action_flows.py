"""The action flows driven through the dialogs, against the emulator through the real SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static
from textual.worker import Worker

from tests.emulator_fixtures import MakeEmulator
from tests.ui.action_host import HostApp, request, screen_of
from tests.ui.harness import freeze, set_faults, until
from tui.core.models import CANCELING, ENDED, IN_PROGRESS
from tui.service.api import ApiError
from tui.ui.screens.confirm import ConfirmModal
from tui.ui.screens.retry import RetryModal
from tui.ui.screens.submit import SubmitScreen
from tui.ui.screens.text_prompt import TextPrompt


@asynccontextmanager
async def hosted(
    make_emulator: MakeEmulator, home: Path, *, read_only: bool = False, **options: Any
) -> AsyncIterator[tuple[HostApp, Pilot[None]]]:
    """The host app on a frozen-clock emulator (no errors unless asked for)."""
    options.setdefault("error_rate", 0.0)
    emulator = await make_emulator(**options)
    freeze(emulator)
    app = HostApp(home, read_only=read_only)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.connect(emulator)
        yield app, pilot


def start(app: HostApp, flow: Coroutine[Any, Any, bool]) -> Worker[bool]:
    return app.flows.run(flow)


async def finish(pilot: Pilot[None], worker: Worker[bool]) -> bool | None:
    """Wait for the flow; its answer: True when the action was carried out."""
    done = await worker.wait()
    await pilot.pause()
    return done


def text_of(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


# -- cancel -------------------------------------------------------------------------------------


async def test_cancel_names_target_and_consequence_then_cancels(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        batch = await app.submitted(4)
        worker = start(app, app.flows.cancel([batch.id]))
        dialog = await screen_of(pilot, ConfirmModal)
        body = text_of(dialog, "#confirm-text")
        assert batch.id in body and "requests.jsonl" in body  # the id and its label
        assert "4 processing" in body
        assert "canceling" in text_of(dialog, "#confirm-consequence")
        assert isinstance(app.focused, Button) and app.focused.id == "confirm-no"
        await pilot.press("y")
        assert await finish(pilot, worker) is True
        assert (await app.api.retrieve(batch.id)).processing_status in (CANCELING, ENDED)
        assert app.outcomes("action.cancel") == ["requested", "succeeded"]
        assert app.monitor.focused == [batch.id] and app.monitor.refreshed == [[batch.id]]
        assert app.said("cancel requested")


async def test_saying_no_to_cancel_is_recorded_and_changes_nothing(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        batch = await app.submitted(2)
        for key in ("n", "escape", "enter"):  # enter presses the focused, safe button
            worker = start(app, app.flows.cancel([batch.id]))
            await screen_of(pilot, ConfirmModal)
            await pilot.press(key)
            assert await finish(pilot, worker) is False
        assert (await app.api.retrieve(batch.id)).processing_status == IN_PROGRESS
        records = app.action_records("action.cancel")
        assert [r["data"]["outcome"] for r in records] == ["refused"] * 3
        assert {r["data"]["reason"] for r in records} == {"declined"}
        assert app.api.calls["cancel"] == 0
        assert app.said("was not canceled")


async def test_cancel_of_an_ended_batch_is_not_offered(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        batch = await app.ended((await app.submitted(2)).id)
        await finish(pilot, start(app, app.flows.cancel([batch.id])))
        assert not isinstance(app.screen, ConfirmModal)
        assert app.said("cannot be canceled") and app.said("already ended")
        assert app.action_records("action.cancel") == []


async def test_an_api_error_names_its_type_request_id_and_next_step(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        batch = await app.submitted(2)
        worker = start(app, app.flows.cancel([batch.id]))
        await screen_of(pilot, ConfirmModal)
        assert app.emulator is not None
        set_faults(app.emulator, "500=1")
        await pilot.press("y")
        await finish(pilot, worker)
        title, message, severity = app.notes[-1]
        assert severity == "error" and title == "cancel failed"
        assert "api_error" in message and "HTTP 500" in message
        assert "request id req_" in message
        assert "Next: " in message
        assert app.outcomes("action.cancel") == ["requested", "failed"]


# -- bulk ---------------------------------------------------------------------------------------


async def test_more_than_five_targets_need_the_count_typed(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        done = await app.ended((await app.submitted(1, "old.jsonl")).id)
        running = [await app.submitted(1, f"b{n}.jsonl") for n in range(6)]
        worker = start(app, app.flows.cancel([done.id, *(b.id for b in running)]))
        dialog = await screen_of(pilot, ConfirmModal)
        assert dialog.typed_count == 6  # the ended batch is left out, not counted
        body = text_of(dialog, "#confirm-text")
        assert "Left out (1)" in body and done.id in body
        assert all(b.id in body for b in running)
        await pilot.press("y", "5", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal) and app.api.calls["cancel"] == 0
        await pilot.press("backspace", "6", "enter")
        assert await finish(pilot, worker) is True
        states = {(await app.api.retrieve(b.id)).processing_status for b in running}
        assert states <= {CANCELING, ENDED}
        assert app.outcomes("action.cancel").count("succeeded") == 6
        assert app.said("6 of 6 batches canceled (1 left out)")


async def test_refusing_a_bulk_delete_records_every_target(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        first = await app.submitted(1, "a.jsonl")
        second = await app.submitted(1, "b.jsonl")
        app.advance(3600)
        worker = start(app, app.flows.delete([first.id, second.id]))
        dialog = await screen_of(pilot, ConfirmModal)
        assert dialog.typed_count is None
        assert "deleted from the API for good" in text_of(dialog, "#confirm-consequence")
        await pilot.press("n")
        await finish(pilot, worker)
        refused = app.action_records("action.delete")
        assert {r["batch_id"] for r in refused} == {first.id, second.id}
        assert {r["data"]["outcome"] for r in refused} == {"refused"}
        assert app.forgotten == []


# -- delete -------------------------------------------------------------------------------------


async def test_delete_warns_about_unsaved_results_and_deletes(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        batch = await app.ended((await app.submitted(3)).id)
        worker = start(app, app.flows.delete([batch.id]))
        dialog = await screen_of(pilot, ConfirmModal)
        assert "not saved locally" in text_of(dialog, "#confirm-warnings")
        await pilot.click("#confirm-yes")
        await finish(pilot, worker)
        with pytest.raises(ApiError) as caught:
            await app.api.retrieve(batch.id)
        assert caught.value.kind == "not_found"
        assert app.outcomes("action.delete") == ["requested", "succeeded"]
        assert app.monitor.refreshed == [None] and app.said("was deleted")
        assert app.forgotten == [batch.id]  # the list drops it at once


# -- retry --------------------------------------------------------------------------------------


async def test_retry_shows_the_plan_replans_and_asks_twice_before_repeating(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path, error_rate=0.6, seed=3) as (app, pilot):
        batch = await app.ended((await app.submitted(24)).id)
        assert app.emulator is not None
        app.emulator.engine.error_rate = 0.0
        worker = start(app, app.flows.retry(batch.id))
        dialog = await screen_of(pilot, RetryModal)
        first = dialog.preview
        assert first.request_count > 0 and first.by_class.get("permanent", 0) > 0
        summary = text_of(dialog, "#retry-summary")
        assert "retryable" in summary and "Fix first" in summary and "Estimate" in summary
        assert "fix first" in summary  # the verdict of the permanent class
        await pilot.press("p")  # include permanent errors: re-planned
        await until(pilot, lambda: "permanent" in dialog.preview.include
                    and not dialog.planning)
        assert dialog.preview.request_count > first.request_count
        assert "will fail again" in text_of(dialog, "#retry-warnings")
        await pilot.press("p")
        await until(pilot, lambda: dialog.preview.include == first.include
                    and not dialog.planning)
        assert isinstance(app.focused, Button) and app.focused.id == "retry-no"
        await pilot.press("y")
        await finish(pilot, worker)
        (retry_id,) = app.ledger.children_of(batch.id)
        assert app.said(retry_id) and app.labels[retry_id].startswith("retry of")

        # Again: the warning names the earlier retry and a second confirmation is needed.
        worker = start(app, app.flows.retry(batch.id))
        dialog = await screen_of(pilot, RetryModal)
        assert f"already retried as {retry_id}" in text_of(dialog, "#retry-warnings")
        await pilot.press("y")
        again = await screen_of(pilot, ConfirmModal)
        assert retry_id in text_of(again, "#confirm-warnings")
        await pilot.press("n")
        await finish(pilot, worker)
        assert app.ledger.children_of(batch.id) == [retry_id]
        refused = [r for r in app.action_records("action.retry")
                   if r["data"]["outcome"] == "refused"]
        assert refused[-1]["data"]["reason"] == "declined: already retried"

        worker = start(app, app.flows.retry(batch.id))
        await screen_of(pilot, RetryModal)
        await pilot.press("y")
        await screen_of(pilot, ConfirmModal)
        await pilot.press("y")
        await finish(pilot, worker)
        assert len(app.ledger.children_of(batch.id)) == 2


async def test_saying_no_to_a_retry_is_recorded(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path, error_rate=0.6, seed=3) as (app, pilot):
        batch = await app.ended((await app.submitted(10)).id)
        worker = start(app, app.flows.retry(batch.id))
        await screen_of(pilot, RetryModal)
        await pilot.press("escape")
        await finish(pilot, worker)
        assert app.ledger.children_of(batch.id) == []
        assert app.outcomes("action.retry") == ["refused"]


async def test_retry_of_a_running_batch_is_explained(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        batch = await app.submitted(2)
        await finish(pilot, start(app, app.flows.retry(batch.id)))
        _, message, severity = app.notes[-1]
        assert severity == "error" and "in_progress" in message


# -- submit -------------------------------------------------------------------------------------


async def test_submit_lists_every_problem_by_line_and_submits_nothing(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        bad = {"custom_id": "z", "params": {**request("z")["params"], "max_tokens": 0}}
        lines = [orjson.dumps(request("a")), b"{broken", orjson.dumps(request("a")),
                 orjson.dumps(bad)]
        path = tmp_path / "bad.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        worker = start(app, app.flows.submit(str(path)))
        screen = await screen_of(pilot, SubmitScreen)
        await until(pilot, lambda: screen.preview is not None and not screen.busy)
        problems = text_of(screen, "#submit-problems")
        assert "line 2" in problems and "line 3" in problems and "line 4" in problems
        assert "max_tokens" in problems
        assert screen.query_one("#submit-yes", Button).disabled
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, SubmitScreen)
        await pilot.press("escape")
        await finish(pilot, worker)
        assert app.ledger.submits() == [] and app.api.calls["create"] == 0
        assert app.action_records("action.submit") == []


async def test_submit_with_a_dry_run_then_confirm(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        path = app.write("jobs.jsonl", [request(f"j{n}", n) for n in range(3)])
        worker = start(app, app.flows.submit())
        screen = await screen_of(pilot, SubmitScreen)
        assert app.focused is screen.query_one("#submit-path", Input)
        await pilot.press(*str(path), "tab", *"nightly", "enter")
        await until(pilot, lambda: screen.preview is not None and not screen.busy)
        summary = text_of(screen, "#submit-summary")
        assert "3 valid" in summary and "1: 3 requests" in summary and "nightly" in summary
        assert "Estimate" in summary and "up to" in summary
        assert isinstance(app.focused, Button) and app.focused.id == "submit-no"
        await pilot.press("d")
        await until(pilot, lambda: screen.query_one("#submit-dry", Static).display
                    and not screen.busy)
        assert '"type": "message"' in text_of(screen, "#submit-dry")
        await pilot.press("y")
        await finish(pilot, worker)
        (record,) = app.ledger.submits()
        assert record.batch_id is not None and app.labels[record.batch_id] == "nightly"
        assert sorted(app.outcomes("action.dry_run")) == ["requested", "succeeded"]
        assert sorted(app.outcomes("action.submit")) == ["requested", "succeeded"]
        assert app.said(record.batch_id) and app.monitor.refreshes == 1


async def test_closing_a_checked_submit_is_recorded_as_refused(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        path = app.write("jobs.jsonl", [request("j1")])
        worker = start(app, app.flows.submit(str(path)))
        screen = await screen_of(pilot, SubmitScreen)
        await until(pilot, lambda: screen.preview is not None and not screen.busy)
        await pilot.press("n")
        await finish(pilot, worker)
        assert app.outcomes("action.submit") == ["refused"]
        assert app.api.calls["create"] == 0


# -- attach and label -----------------------------------------------------------------------------


async def test_attach_a_request_file_to_a_batch_made_elsewhere(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        requests = [request(f"e{n}", n) for n in range(4)]
        outside = await app.api.create(requests)
        await app.ended(outside.id)
        path = app.write("theirs.jsonl", requests)
        worker = start(app, app.flows.attach(outside.id))
        prompt = await screen_of(pilot, TextPrompt)
        await until(pilot, lambda: app.focused is prompt.query_one("#prompt-input", Input))
        await pilot.press(*str(path), "enter")
        dialog = await screen_of(pilot, ConfirmModal)
        assert "4 match the batch's results" in text_of(dialog, "#confirm-text")
        assert isinstance(app.focused, Button) and app.focused.id == "confirm-no"
        await pilot.press("y")
        await finish(pilot, worker)
        assert app.ledger.has_requests(outside.id)
        assert app.outcomes("action.attach") == ["requested", "succeeded"]
        assert app.said("4 requests attached")


async def test_label_sets_and_clears(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        batch = await app.submitted(1)
        worker = start(app, app.flows.label(batch.id))
        prompt = await screen_of(pilot, TextPrompt)
        assert prompt.query_one("#prompt-input", Input).value == "requests.jsonl"
        prompt.query_one("#prompt-input", Input).value = ""
        await pilot.press(*"nightly eval", "enter")
        await finish(pilot, worker)
        assert app.ledger.label_for(batch.id) == "nightly eval"
        assert app.labels[batch.id] == "nightly eval"

        worker = start(app, app.flows.label(batch.id))
        prompt = await screen_of(pilot, TextPrompt)
        prompt.query_one("#prompt-input", Input).value = ""
        await pilot.press("enter")
        await finish(pilot, worker)
        assert app.ledger.label_for(batch.id) is None and batch.id not in app.labels
        assert app.outcomes("action.label") == ["requested", "succeeded"] * 2


# -- read-only and one flow at a time -------------------------------------------------------------


async def test_read_only_refuses_without_a_dialog_and_records_it(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path, read_only=True) as (app, pilot):
        batch = await app.api.create([request("a")])
        assert await finish(pilot, start(app, app.flows.cancel([batch.id]))) is False
        assert not isinstance(app.screen, ConfirmModal)
        assert (await app.api.retrieve(batch.id)).processing_status == IN_PROGRESS
        (record,) = app.action_records("action.cancel")
        assert record["data"]["outcome"] == "refused"
        assert record["data"]["reason"] == "read-only"
        title, _, severity = app.notes[-1]
        assert title == "read-only mode" and severity == "warning"
        for flow in (app.flows.label(batch.id), app.flows.submit(), app.flows.attach(batch.id)):
            await finish(pilot, start(app, flow))
            assert app.screen is app.screen_stack[0]  # no prompt was opened
        assert sum(1 for _, _, severity in app.notes if severity == "warning") == 4
        assert app.api.calls["cancel"] == 0
        for action in ("action.label", "action.attach"):  # refused up front, and recorded
            assert app.outcomes(action) == ["refused"]


async def test_one_flow_at_a_time(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        batch = await app.submitted(1)
        worker = start(app, app.flows.cancel([batch.id]))
        await screen_of(pilot, ConfirmModal)
        assert app.flows.running == "cancel"
        await app.flows.delete([batch.id])
        assert app.said("cancel is still in progress")
        await pilot.press("n")
        await finish(pilot, worker)
        assert app.flows.running is None


async def test_a_dialog_closed_without_an_answer_ends_the_flow(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with hosted(make_emulator, tmp_path) as (app, pilot):
        batch = await app.submitted(1)
        worker = start(app, app.flows.cancel([batch.id]))
        await screen_of(pilot, ConfirmModal)
        app.pop_screen()
        await finish(pilot, worker)
        assert app.flows.running is None
        assert app.outcomes("action.cancel") == ["refused"]
