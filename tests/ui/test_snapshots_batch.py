"""SVG snapshots of the batch screen and the result view (fixed data, frozen clock, UTC)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from textual.pilot import Pilot

from tests.ui.batch_host import (
    BATCH_ID,
    NOW,
    HostApp,
    ended_batch,
    error_line,
    fill_store,
    fixture_counts,
    fixture_lines,
    make_store,
    message_line,
    running_batch,
    settle,
)
from tui.core.requests import BatchRequest
from tui.core.retry_plan import MergedOutcome, outcome_counts
from tui.service.actions import MergedView
from tui.service.ledger import Ledger
from tui.service.results_store import ResultsStore
from tui.ui.screens.batch import BatchScreen
from tui.ui.screens.merged import MergedScreen
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


RETRY_ID = "msgbatch_01FixtureRetryRetryRetry1"


def test_a_retried_batch_with_an_unpriced_model(snap_compare: Compare, tmp_path: Path) -> None:
    """The header names the label, the retry lineage, the cost and what could not be priced."""
    lines = [*fixture_lines(), message_line("invoice-00040-extraction", "Vendor: Unknown.",
                                            model="claude-imaginary-9")]
    store = make_store(tmp_path)
    fill_store(store, lines)
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=lambda: NOW)
    original = [BatchRequest.build(f"invoice-{n:05d}-extraction", {"model": "m"})
                for n in range(41)]
    ledger.complete_submit(ledger.begin_submit(original, label="invoices march"), BATCH_ID)
    retry = ledger.begin_submit(original[3:4], parent=BATCH_ID, generation=1)
    ledger.complete_submit(retry, RETRY_ID)
    app = HostApp(BATCH_ID, store=store, batches=[ended_batch(fixture_counts(lines))],
                  screen=lambda: BatchScreen(BATCH_ID, store=store, ledger=ledger))
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=press_then_settle())
    finally:
        ledger.close()


def merged_view() -> MergedView:
    outcomes = [
        MergedOutcome("invoice-00003-extraction", "succeeded", None, RETRY_ID, 1, 2),
        MergedOutcome("invoice-00007-extraction", "errored", "invalid_request_error", RETRY_ID,
                      1, 2),
        MergedOutcome("invoice-00005-extraction", "pending", None, RETRY_ID, 1, 2),
        MergedOutcome("invoice-00000-extraction", "succeeded", None, BATCH_ID, 0, 1),
        MergedOutcome("invoice-00038-extraction\x1b[31m", "canceled", None, BATCH_ID, 0, 1),
    ]
    merged = {outcome.custom_id: outcome for outcome in outcomes}
    return MergedView(BATCH_ID, ((BATCH_ID, 0), (RETRY_ID, 1)), merged,
                      outcome_counts(merged))


def test_the_merged_view_of_a_lineage(snap_compare: Compare, tmp_path: Path) -> None:
    async def load() -> MergedView:
        return merged_view()

    app = HostApp(BATCH_ID, store=make_store(tmp_path),
                  screen=lambda: MergedScreen(BATCH_ID, load))
    assert snap_compare(app, terminal_size=(120, 16), run_before=press_then_settle())
