"""The result view: message, error and verdict, raw JSON, copy, long bodies, odd lines."""

from __future__ import annotations

from pathlib import Path

import orjson
from rich.style import Style

from tests.ui.batch_host import (
    BATCH_ID,
    HostApp,
    bare_line,
    error_line,
    fill_store,
    make_store,
    message_line,
    settle,
)
from tui.ui.render import CellStyles
from tui.ui.screens.result import BODY_LIMIT, ResultScreen, position_label, result_text

STYLES = CellStyles({"error": Style(color="red")})


def tool_line() -> bytes:
    return orjson.dumps({"custom_id": "inv-1", "result": {"type": "succeeded", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-6",
        "content": [
            {"type": "thinking", "thinking": "The total is on page two.", "signature": "sig"},
            {"type": "text", "text": "Recording the invoice.", "citations": None},
            {"type": "tool_use", "id": "toolu_9", "name": "record_invoice",
             "input": {"vendor": "Nordwind", "total": 812.5}},
            {"type": "redacted_thinking", "data": "xxxx"},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 1200, "output_tokens": 80, "cache_read_input_tokens": 900,
                  "cache_creation_input_tokens": 0, "service_tier": "batch"}}}})


def test_a_message_shows_every_block_and_the_usage() -> None:
    text = result_text(tool_line(), STYLES).plain
    assert "custom_id   inv-1" in text and "type        succeeded" in text
    assert "stop_reason tool_use" in text
    assert "input 1,200 · output 80 · cache read 900 · cache write 0 · tier batch" in text
    assert "── thinking" in text and "The total is on page two." in text
    assert "Recording the invoice." in text
    assert "── tool_use record_invoice · toolu_9" in text
    assert '{\n  "vendor": "Nordwind",\n  "total": 812.5\n}' in text
    assert "4 characters of encrypted thinking" in text


def test_an_error_shows_its_type_message_and_verdict() -> None:
    text = result_text(error_line("a", "invalid_request_error", "prompt is too long"),
                       STYLES).plain
    assert "error type  invalid_request_error" in text
    assert "verdict     permanent — fix first" in text
    assert "prompt is too long" in text
    text = result_text(error_line("a", "overloaded_error", "Overloaded"), STYLES).plain
    assert "verdict     retryable — retry as is" in text


def test_expired_canceled_unknown_and_malformed_lines() -> None:
    expired = result_text(bare_line("a", "expired"), STYLES).plain
    assert "retryable — retry as is" in expired and "24 h processing window" in expired
    canceled = result_text(bare_line("a", "canceled"), STYLES).plain
    assert "retry only if still wanted" in canceled
    unknown = result_text(bare_line("a", "deferred"), STYLES).plain
    assert "'deferred' is not one batchtop knows" in unknown and '"type": "deferred"' in unknown
    malformed = result_text(b'{"custom_id":"a","result":{"ty', STYLES).plain
    assert "not a well-formed result" in malformed and '{"custom_id":"a","result":{"ty' in malformed


def test_raw_shows_the_whole_line_as_indented_json() -> None:
    raw = result_text(tool_line(), STYLES, raw=True).plain
    assert orjson.loads(raw) == orjson.loads(tool_line())
    assert raw.startswith('{\n  "custom_id": "inv-1"')


def test_a_huge_body_is_cut_with_a_note() -> None:
    line = message_line("big", "x" * (BODY_LIMIT + 50_000))
    text = result_text(line, STYLES).plain
    assert len(text) < BODY_LIMIT + 2_000
    assert "shown up to 200.0 KB of a 250." in text
    small = result_text(message_line("s", "y" * 500), STYLES, limit=100).plain
    assert "y" * 100 in small and "y" * 101 not in small and "shown up to" in small


def test_the_position_counts_from_one() -> None:
    assert position_label(0, 2000) == "result 1 of 2,000"
    assert position_label(1999, None) == "result 2,000"


async def test_open_raw_copy_and_back(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    fill_store(store, [message_line("doc-1", "Hello there."), tool_line()])
    app = HostApp(BATCH_ID, store=store,
                  screen=lambda: ResultScreen(store, BATCH_ID, 1, "inv-1", 2))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ResultScreen)
        assert "result 2 of 2 in" in str(screen.query_one("#result-title").render())
        assert "Recording the invoice." in screen.body_text.plain
        await pilot.press("v")
        assert screen.raw and screen.body_text.plain.startswith("{")
        await pilot.press("v")
        assert not screen.raw
        await pilot.press("j", "G", "g")
        await pilot.press("y")
        assert app.clipboard == "inv-1"
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ResultScreen)


async def test_a_result_that_cannot_be_read_says_so(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    fill_store(store, [message_line("doc-1", "Hello there.")])
    app = HostApp(BATCH_ID, store=store,
                  screen=lambda: ResultScreen(store, BATCH_ID, 99, "gone"))
    async with app.run_test(size=(100, 20)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ResultScreen)
        assert "could not be read" in screen.body_text.plain
