"""SVG snapshots of the batch screen and the result view (fixed data, frozen clock, UTC)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from textual.pilot import Pilot

from tests.ui.batch_host import (
    BATCH_ID,
    HostApp,
    ended_batch,
    error_line,
    fill_store,
    fixture_counts,
    fixture_lines,
    make_store,
    running_batch,
    settle,
)
from tui.service.results_store import ResultsStore
from tui.ui.screens.result import ResultScreen

SIZE = (160, 45)
Compare = Callable[..., bool]


def stored(tmp_path: Path) -> tuple[ResultsStore, list[bytes]]:
    store = make_store(tmp_path)
    lines = fixture_lines()
    fill_store(store, lines)
    return store, lines


def ended_app(tmp_path: Path) -> HostApp:
    store, lines = stored(tmp_path)
    return HostApp(BATCH_ID, store=store, batches=[ended_batch(fixture_counts(lines))])


def press_then_settle(*keys: str) -> Callable[[Pilot[Any]], Any]:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        if keys:
            await pilot.press(*keys)
            await settle(pilot)

    return run


def test_ended_batch_with_failures(snap_compare: Compare, tmp_path: Path) -> None:
    assert snap_compare(ended_app(tmp_path), terminal_size=SIZE, run_before=press_then_settle())


def test_errored_results_of_one_error_type(snap_compare: Compare, tmp_path: Path) -> None:
    assert snap_compare(ended_app(tmp_path), terminal_size=SIZE,
                        run_before=press_then_settle("2", "E", "E"))


def test_running_batch_live_state(snap_compare: Compare, tmp_path: Path) -> None:
    app = HostApp(BATCH_ID, store=make_store(tmp_path), batches=[running_batch(2_500)])
    assert snap_compare(app, terminal_size=SIZE, run_before=press_then_settle())


def tool_result() -> bytes:
    return orjson.dumps({"custom_id": "invoice-00042-extraction", "result": {
        "type": "succeeded", "message": {
            "id": "msg_01FixtureMessage0000000", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "text", "text": "The invoice is from Nordwind Logistics GmbH; "
                 "recording its fields.", "citations": None},
                {"type": "tool_use", "id": "toolu_01Fixture", "name": "record_invoice",
                 "input": {"vendor": "Nordwind Logistics GmbH", "total": 4812.5,
                           "currency": "EUR", "due_date": "2024-04-13"}},
            ],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 1840, "output_tokens": 212,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1472,
                      "service_tier": "batch"}}}})


def result_app(tmp_path: Path, line: bytes, custom_id: str) -> HostApp:
    store = make_store(tmp_path)
    fill_store(store, [line])
    return HostApp(BATCH_ID, store=store,
                   screen=lambda: ResultScreen(store, BATCH_ID, 0, custom_id))


def test_result_view_of_a_tool_call(snap_compare: Compare, tmp_path: Path) -> None:
    app = result_app(tmp_path, tool_result(), "invoice-00042-extraction")
    assert snap_compare(app, terminal_size=(120, 32), run_before=press_then_settle())


def test_result_view_of_an_error(snap_compare: Compare, tmp_path: Path) -> None:
    line = error_line("invoice-00007-extraction", "invalid_request_error",
                      "prompt is too long: 200008 tokens > 200000 maximum")
    app = result_app(tmp_path, line, "invoice-00007-extraction")
    assert snap_compare(app, terminal_size=(120, 20), run_before=press_then_settle())
