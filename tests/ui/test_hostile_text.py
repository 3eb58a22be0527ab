"""Hostile text (ANSI, OSC 52, OSC 0, Rich markup, bidi overrides) reaches the screen inert."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from textual.app import App

from tests.emulator_fixtures import MakeEmulator
from tests.ui.batch_host import (
    BATCH_ID,
    HostApp,
    ended_batch,
    error_line,
    fill_store,
    make_store,
    message_line,
    sdk_api,
    settle,
)
from tui.core.models import RequestCounts
from tui.emulator.content import HOSTILE_ERROR
from tui.settings import Settings
from tui.ui.app import BatchtopApp
from tui.ui.result_rows import ResultRows
from tui.ui.screens.batch import BatchScreen
from tui.ui.screens.result import ResultScreen
from tui.ui.widgets.batch_summary import Phase

SIZE = (160, 45)
RAW = ("\x1b", "\x07", "\x9b", "\x9d", "\u202e", "\u202c", "\u2066")
HOSTILE_ID = "id-\x1b]52;c;ZXZpbA==\x07-\u202eexe"


def screen_svg(app: App[Any]) -> str:
    """What the terminal would show, as the SVG screenshot (spaces normalised)."""
    svg = app.export_screenshot()
    return re.sub(r"&#160;|\xa0", " ", svg)


def assert_inert(svg: str, *, raw_json: bool = False) -> None:
    for char in RAW:
        assert char not in svg, f"{char!r} reached the screen"
    # The escape is shown, not executed: as a symbol, or JSON-escaped in the raw line.
    assert ("\\u001b" if raw_json else "␛") in svg


async def test_the_demo_hostile_batch_is_shown_inert(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emulator = await make_emulator(scenario="demo")
    batch_id = emulator.engine.labelled("hostile").id
    api = sdk_api(emulator.url)
    batch = await api.retrieve(batch_id)
    assert batch.is_ended
    app = HostApp(batch_id, store=make_store(tmp_path), api=api, batches=[batch],
                  clock=emulator.engine.clock.now)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.batch_screen
        assert screen.phase is Phase.READY
        svg = screen_svg(app)
        assert_inert(svg)
        assert "[red]fatal[/red]" in svg  # the error message's markup, literally
        assert "⟨U+202E⟩" in svg
        assert app.clipboard == ""  # nothing reached the clipboard

        rows = screen.rows
        assert isinstance(rows, ResultRows)
        types = [row.type for row in (rows.row_at(i) for i in range(len(rows))) if row]
        for kind in ("errored", "succeeded"):
            screen.table.cursor_index = types.index(kind)
            await pilot.press("enter")
            await settle(pilot)
            result = app.screen
            assert isinstance(result, ResultScreen)
            for raw in (False, True):
                if raw:
                    await pilot.press("v")
                    await settle(pilot)
                svg = screen_svg(app)
                assert_inert(svg, raw_json=raw)
                if kind == "succeeded" and not raw:
                    assert "[bold]markup[/]" in svg
                    assert "[link=https://evil.example]click[/link]" in svg
                    assert "␛]52;c;cm0gLXJmIH4v␇" in svg
            body = result.body_text
            assert body.spans == [] or all(span.style for span in body.spans)
            await pilot.press("escape")
            await settle(pilot)
        assert HOSTILE_ERROR not in svg


async def test_hostile_ids_models_and_reasons_in_the_table(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    fill_store(store, [
        message_line(HOSTILE_ID, "ok", model="m\x1b[2J[bold]x[/]", stop_reason="\u202eend"),
        error_line("plain-id", "\x1b]0;title\x07weird_error", "[b]msg[/b] \x9b31m"),
    ])
    app = HostApp(BATCH_ID, store=store,
                  batches=[ended_batch(RequestCounts(succeeded=1, errored=1))])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        svg = screen_svg(app)
        assert_inert(svg)
        assert "[bold]x[/]" in svg and "[b]msg[/b]" in svg
        assert "id-␛]52;c;ZXZpbA==␇-⟨U+202E⟩e…" in svg  # cut to the column
        await pilot.press("y")  # the clipboard gets the id made visible, never the escape
        assert "\x1b" not in app.clipboard and app.clipboard.startswith("id-␛]52")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ResultScreen)
        assert_inert(screen_svg(app))


def test_the_batch_screen_is_what_the_app_opens() -> None:
    app = BatchtopApp(Settings(), services=None)
    assert isinstance(app.make_batch_screen("msgbatch_x"), BatchScreen)
