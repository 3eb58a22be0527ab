"""Keymap overrides by binding id, themes (high contrast at 256 colours), NO_COLOR."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot

from tests.ui.harness import (
    FROZEN_AT,
    SIZE,
    make_app,
    services_factory,
    start_frozen,
    synced,
    until,
)
from tui.emulator.server import RunningEmulator
from tui.settings import Settings
from tui.ui.app import BatchtopApp, Services, ServicesFactory
from tui.ui.commands import binding_ids, unknown_binding_ids
from tui.ui.screens.help import HelpScreen, help_rows
from tui.ui.screenshots import ScreenshotApp
from tui.ui.theme import HIGH_CONTRAST_NAME
from tui.ui.widgets.status_header import StatusHeader

SnapCompare = Callable[..., bool]


def toasts(app: BatchtopApp) -> list[str]:
    return [notification.message for notification in app._notifications]


def test_binding_ids_cover_every_screen_and_widget() -> None:
    ids = binding_ids()
    for wanted in ("app.quit", "app.profiles", "app.theme", "batches.refresh", "batch.retry",
                   "result.raw", "audit.filter", "table.sort", "confirm.yes",
                   "profiles.cancel"):
        assert wanted in ids
    assert unknown_binding_ids({"batches.refresh": "f5", "batches.refrsh": "x"}) == [
        "batches.refrsh"]


async def test_keymap_f5_refreshes_and_help_shows_it(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty), Settings(keymap={"batches.refresh": "f5"}))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        monitor = app.monitor
        calls: list[int] = []
        original = monitor.refresh_now

        async def counted() -> None:
            calls.append(1)
            await original()

        monitor.refresh_now = counted  # type: ignore[method-assign]
        await pilot.press("f5")
        await until(pilot, lambda: calls == [1])
        await pilot.press("r")  # remapped: r no longer refreshes
        await pilot.pause()
        assert calls == [1]
        rows = {row.binding_id: row.keys for row in help_rows(app.screen)}
        assert rows["batches.refresh"] == "f5"
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert any(row.keys == "f5" and row.binding_id == "batches.refresh"
                   for row in app.screen._rows)  # type: ignore[attr-defined]


async def test_unknown_keymap_id_and_theme_are_warned_about(empty: RunningEmulator) -> None:
    settings = Settings(keymap={"batches.refrsh": "f5"}, theme="no-such-theme")
    app = make_app(services_factory(empty), settings)
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        assert app.theme == "textual-dark"
        shown = "\n".join(toasts(app))
        assert "batches.refrsh" in shown and "no-such-theme" in shown


async def test_high_contrast_theme_and_the_theme_picker(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty), Settings(theme=HIGH_CONTRAST_NAME))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        assert app.theme == HIGH_CONTRAST_NAME
        assert sum(name == HIGH_CONTRAST_NAME for name in app.available_themes) == 1
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        system = [command.title for command in app.get_system_commands(app.screen)]
        assert "Theme" in system  # also reachable by name from ctrl+p


async def test_no_color_is_monochrome(empty: RunningEmulator,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        assert app.no_color
        header = app.screen.query_one(StatusHeader)
        assert header.has_pseudo_class("nocolor")
        await pilot.press("p")  # PAUSED stays visible without colour (reverse video)
        await until(pilot, lambda: "PAUSED" in header.render().plain)


def frozen_demo() -> ServicesFactory:
    """The demo workspace on a frozen clock, started inside the app's own loop."""

    async def make() -> Services:
        emulator = await start_frozen("demo")
        return await services_factory(emulator, where="demo", stop_emulator=True,
                                      alerts=False)()

    return make


def test_high_contrast_at_256_colours(snap_compare: SnapCompare) -> None:
    app = ScreenshotApp(Settings(theme=HIGH_CONTRAST_NAME), frozen_demo(),
                        clock=lambda: FROZEN_AT, colors_256=True)

    async def run_before(pilot: Pilot[Any]) -> None:
        await synced(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
