"""The app shell against the emulator: services, pause, degraded state, jump, help, quit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from tests.ui.harness import (
    SIZE,
    make_app,
    refresh,
    requests,
    services_factory,
    set_faults,
    synced,
    until,
)
from tui.emulator.server import RunningEmulator
from tui.paths import locations
from tui.service.audit import read_audit
from tui.settings import Settings
from tui.ui.app import BatchtopApp
from tui.ui.screens.audit import AuditScreen
from tui.ui.screens.batch import BatchScreen
from tui.ui.screens.batches import BatchesScreen
from tui.ui.screens.help import HelpScreen
from tui.ui.screens.jump import JumpVerb, parse_jump
from tui.ui.screens.nokey import NoKeyScreen
from tui.ui.widgets.event_pane import EventPane


def header_text(app: BatchtopApp) -> str:
    screen = app.batches_screen
    assert screen is not None
    return screen.header.plain


async def test_list_appears_with_every_batch(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo, where="demo workspace"))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        assert screen.rows is not None
        assert len(screen.rows) == len(demo.engine) > 5
        text = header_text(app)
        assert "demo workspace" in text
        assert "running" in text and "ended today" in text
        assert "updated 0s ago" in text


async def test_counts_change_when_a_batch_ends(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        created = await app.api.create(requests(3))
        await refresh(pilot)
        rows = screen.rows
        assert rows is not None
        index = rows.index_of(created.id)
        assert index is not None
        row = _row(screen, index)
        assert row["status"] == "● running"
        assert row["processing"] == "3"
        assert row["succeeded"] == "–"  # unknown until the end, never a fake 0

        empty.engine.clock.advance(timedelta(hours=2).total_seconds())
        await refresh(pilot)
        rows = screen.rows
        assert rows is not None
        index = rows.index_of(created.id)
        assert index is not None
        row = _row(screen, index)
        assert row["status"] in ("✓ ended", "✗ failures")
        assert row["processing"] == "0"
        done = sum(int(row[key]) for key in ("succeeded", "errored", "canceled", "expired"))
        assert done == 3
        assert "results until" in row["deadline"]


KEYS = ("status", "processing", "succeeded", "errored", "canceled", "expired", "deadline")


def _row(screen: BatchesScreen, index: int) -> dict[str, str]:
    """The row's cells by key, whichever columns the list's width shows."""
    rows = screen.rows
    assert rows is not None
    return {key: rows.cell(rows.batches[index], key).plain for key in KEYS}


async def test_pause_key_pauses_and_resumes(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        await pilot.press("p")
        await until(pilot, lambda: app.monitor.state.paused)
        await pilot.pause()
        assert "PAUSED" in header_text(app)
        await pilot.press("p")
        await until(pilot, lambda: not app.monitor.state.paused)
        await pilot.pause()
        assert "PAUSED" not in header_text(app)


async def test_polling_pauses_while_a_dialog_is_open(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await until(pilot, lambda: app.monitor.state.paused)
        await pilot.press("escape")
        await until(pilot, lambda: not app.monitor.state.paused)
        # A pause asked for by the user survives closing a dialog.
        await pilot.press("p", "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, BatchesScreen))
        await pilot.pause()
        assert app.monitor.state.paused and app.user_paused


async def test_degraded_then_recovered(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        set_faults(empty, "500=1")
        await refresh(pilot)
        degraded = app.monitor.state.degraded
        assert degraded is not None
        text = header_text(app)
        assert "DEGRADED" in text and "api_error (500)" in text and "retry at" in text
        set_faults(empty, None)
        await refresh(pilot)
        assert app.monitor.state.degraded is None
        assert "DEGRADED" not in header_text(app)


async def test_an_outage_before_the_first_list_is_retried_and_not_called_empty(
    empty: RunningEmulator,
) -> None:
    set_faults(empty, "500=1")
    try:
        app = make_app(services_factory(empty))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.monitor_state.degraded is not None)
            await pilot.pause()
            screen = app.batches_screen
            assert screen is not None
            info = str(screen.query_one("#view-info", Static).render())
            assert "not loaded yet" in info and "no batches" not in info
            assert "DEGRADED" in header_text(app)
            set_faults(empty, None)
            empty.engine.clock.advance(120)  # past the retry time on the frozen clock
            await until(pilot, lambda: app.monitor_state.synced)  # no key pressed
            assert app.monitor_state.degraded is None
    finally:
        set_faults(empty, None)


async def test_help_lists_the_screen_actions_with_ids(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        ids = {row.binding_id for row in help_screen._rows}
        for binding_id in ("batches.filter", "batches.status_running", "batches.refresh",
                           "batches.pause", "batches.events", "app.jump", "app.quit",
                           "table.sort", "table.cursor_down"):
            assert binding_id in ids


async def test_keymap_remaps_by_binding_id(empty: RunningEmulator) -> None:
    settings = Settings(keymap={"batches.pause": "f6", "app.help": "f1"})
    app = make_app(services_factory(empty), settings)
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        await pilot.press("f6")
        await until(pilot, lambda: app.monitor.state.paused)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_jump_to_a_batch_opens_it_and_esc_comes_back(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        assert screen.rows is not None
        target = screen.rows.key_at(len(screen.rows) - 2)
        await pilot.press("colon")
        await pilot.press(*f"b {target}", "enter")
        await until(pilot, lambda: getattr(app.screen, "batch_id", None) == target)
        await until(pilot, lambda: app.monitor.state.focused == target)  # focused polling
        await pilot.press("q")  # back one level, not quit
        await until(pilot, lambda: isinstance(app.screen, BatchesScreen))
        assert app.is_running
        assert screen.table.cursor_key == target
        await until(pilot, lambda: app.monitor.state.focused is None)


async def test_enter_drills_in(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        await pilot.press("j", "enter")
        assert screen.rows is not None
        target = screen.rows.key_at(1)
        await until(pilot, lambda: getattr(app.screen, "batch_id", None) == target)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, BatchesScreen))


async def test_drill_in_opens_the_batch_screen(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, BatchScreen))
        assert screen.rows is not None
        assert getattr(app.screen, "batch_id", None) == screen.rows.key_at(0)


async def test_audit_log_from_the_jump_line_and_the_list(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        await pilot.press("colon", *"audit", "enter")
        await until(pilot, lambda: isinstance(app.screen, AuditScreen))
        audit = app.screen
        assert isinstance(audit, AuditScreen) and audit.audit_query.batch_id is None
        await until(pilot, lambda: any(e.event == "session.started"
                                       for e in audit.entries or ()))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, BatchesScreen))
        await pilot.press("colon", *"audit msgbatch_x", "enter")
        await until(pilot, lambda: isinstance(app.screen, AuditScreen))
        assert getattr(app.screen, "batch_id", None) == "msgbatch_x"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, BatchesScreen))
        await pilot.press("A")  # also from the event pane, which says so
        await until(pilot, lambda: isinstance(app.screen, AuditScreen))


async def test_theme_and_profile_have_letter_alternatives(
        empty: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ctrl+t` and `P` also work as `:theme` and `:profile`, for terminals that eat chords."""
    app = make_app(services_factory(empty))
    called: list[str] = []
    monkeypatch.setattr(app, "action_profiles", lambda: called.append("profile"))
    monkeypatch.setattr(app, "action_change_theme", lambda: called.append("theme"))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        await pilot.press("colon", *"profile", "enter")
        await until(pilot, lambda: called == ["profile"])
        await pilot.press("colon", *"theme", "enter")
        await until(pilot, lambda: called == ["profile", "theme"])


async def test_event_pane_shows_api_calls_and_events(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        await pilot.press("L")
        pane = screen.query_one(EventPane)
        await until(pilot, lambda: pane.display)
        created = await app.api.create(requests(1))
        await refresh(pilot)
        text = "\n".join(line.text for line in pane.lines)
        assert "api list" in text
        assert "batch.discovered" in text and created.id in text
        await pilot.press("L")
        assert not pane.display


async def test_quit_writes_session_ended(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        created = await app.api.create(requests(2))
        await refresh(pilot)
        empty.engine.clock.advance(3600)
        await refresh(pilot)  # the batch ends: its alert shares the monitor's writer
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    records = read_audit(locations().audit).records
    names = [record.get("event") for record in records]
    assert names.count("session.started") == names.count("session.ended") == 1
    assert any(r.get("event") == "alert.raised" and r.get("batch_id") == created.id
               for r in records)
    assert len({record.get("session") for record in records}) == 1


async def test_jump_q_quits(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        await pilot.press("colon", "q", "enter")
        await until(pilot, lambda: not app.is_running)
    assert app.return_code == 0


async def test_read_only_shows_ro(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty), Settings(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        assert "[RO]" in header_text(app)


async def test_no_key_shows_a_friendly_screen_and_q_quits() -> None:
    app = make_app(None, Settings(api_key_env="MY_KEY_VAR"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, NoKeyScreen)
        text = str(app.screen.query_one("#nokey-box").render())
        assert "MY_KEY_VAR" in text and "--demo" in text and "api_key_command" in text
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)


async def test_no_key_screen_can_start_the_demo(empty: RunningEmulator) -> None:
    app = make_app(None, demo=services_factory(empty, where="demo"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, BatchesScreen))
        await synced(pilot)
        assert "demo" in header_text(app)


async def test_a_failing_start_is_a_toast_not_a_traceback(monkeypatch: Any) -> None:
    async def broken() -> Any:
        raise OSError("audit directory is not writable")

    app = make_app(broken)
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(app, "notify",
                        lambda message, **kw: shown.append((message, kw.get("title", ""))))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(shown))
        assert app.is_running
    message, title = shown[0]
    assert "not writable" in message and "failed" in title


async def test_command_palette_runs_screen_actions(empty: RunningEmulator) -> None:
    app = make_app(services_factory(empty))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Pause")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: app.user_paused)


@pytest.mark.parametrize(
    ("text", "verb", "arg"),
    [
        ("b msgbatch_01abc", JumpVerb.BATCH, "msgbatch_01abc"),
        (":batch msgbatch_01abc", JumpVerb.BATCH, "msgbatch_01abc"),
        ("msgbatch_01abc", JumpVerb.BATCH, "msgbatch_01abc"),
        ("audit", JumpVerb.AUDIT, ""),
        ("q", JumpVerb.QUIT, ""),
        (":theme", JumpVerb.THEME, ""),
        ("profile", JumpVerb.PROFILE, ""),
        ("  ", JumpVerb.NONE, ""),
        ("b", JumpVerb.UNKNOWN, "b"),
        ("frobnicate", JumpVerb.UNKNOWN, "frobnicate"),
    ],
)
def test_parse_jump(text: str, verb: JumpVerb, arg: str) -> None:
    command = parse_jump(text)
    assert (command.verb, command.arg) == (verb, arg)


async def test_the_demo_services_start_an_emulator_in_the_app() -> None:
    from functools import partial

    from tui.ui.launch import demo_services

    app = make_app(partial(demo_services, Settings(), speed=1.0))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        assert screen.rows is not None and len(screen.rows) > 5
        assert "demo · local emulator" in header_text(app)
        api = app.api
        ledger = app.ledger
        assert ledger is not None and ledger.path == locations().data / "demo-ledger.sqlite3"
        assert app.actions.api is api and app.results_store is not None
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    assert api.client.is_closed()


def test_the_demo_ledger_starts_empty_every_time() -> None:
    from tui.core.timefmt import utcnow
    from tui.ui.launch import demo_ledger

    with demo_ledger(utcnow) as ledger:
        ledger.set_label("msgbatch_x", "from an earlier demo")
    with demo_ledger(utcnow) as ledger:
        assert ledger.labels() == {}


async def test_without_the_actions_layer_the_action_keys_are_gone(
    empty: RunningEmulator,
) -> None:
    app = make_app(services_factory(empty, features=False))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        actions = {active.binding.action for active in screen.active_bindings.values()}
        assert "cancel" not in actions and "refresh" in actions


def test_build_app_without_key_opens_the_no_key_screen(tmp_path: Path) -> None:
    import argparse

    from tui.ui.launch import build_app

    app = build_app(argparse.Namespace(demo=False), Settings())
    assert app._factory is None
    demo_app = build_app(argparse.Namespace(demo=True), Settings())
    assert demo_app._factory is not None


def test_no_mouse_runs_without_mouse_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from tui.ui import launch

    seen: dict[str, Any] = {}

    def fake_run(self: BatchtopApp, **options: Any) -> None:
        seen.update(options)

    monkeypatch.setattr(BatchtopApp, "run", fake_run)
    args = argparse.Namespace(demo=False, profile=None, base_url=None, read_only=False,
                              no_mouse=True)
    assert launch.run_app(args) == 0
    assert seen == {"mouse": False}
