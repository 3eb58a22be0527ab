"""The audit screen: newest first, filters, time windows, timeline, live records, inert detail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tui.core.events import Event
from tui.paths import locations
from tui.service import audit as audit_module
from tui.service.audit import AuditLog, AuditRead, LogReader, read_audit
from tui.ui.screens.audit import AuditRecordScreen, AuditScreen

APP_CSS = Path(__file__).resolve().parents[2] / "tui" / "ui" / "app.tcss"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ALPHA = "msgbatch_01AlphaAlphaAlphaAlpha00"
BETA = "msgbatch_01BetaBetaBetaBetaBeta00"
HOSTILE = "\x1b]52;c;ZXZpbA==\x07 [bold red]pwned[/] \u202egnp.exe \x1b[2J"
SIZE = (160, 30)

FIXTURE: list[tuple[timedelta, Event]] = [
    (timedelta(days=8), Event("session.started", None, {"cadence": {"young_s": 10}})),
    (timedelta(days=3), Event("batch.discovered", ALPHA, {
        "status": "in_progress", "counts": {"processing": 120}})),
    (timedelta(days=2), Event("batch.discovered", BETA, {
        "status": "in_progress", "counts": {"processing": 40}})),
    (timedelta(hours=30), Event("batch.status_changed", ALPHA, {
        "from": "in_progress", "to": "canceling"})),
    (timedelta(hours=20), Event("action.cancel", ALPHA, {
        "outcome": "succeeded", "actor": "tester@host", "targets": [ALPHA],
        "counts": {"processing": 80, "succeeded": 40}})),
    (timedelta(hours=5), Event("batch.ended", ALPHA, {
        "counts": {"succeeded": 90, "errored": 30}, "duration_s": 3600.0, "error_rate": 0.25})),
    (timedelta(hours=3), Event("results.downloaded", ALPHA, {
        "lines": 120, "bytes": 48_000, "seconds": 2.5, "expected": 120})),
    (timedelta(hours=2), Event("action.label", BETA, {
        "outcome": "succeeded", "label": HOSTILE})),
    (timedelta(minutes=50), Event("action.retry", BETA, {
        "outcome": "failed", "error": {"type": "overloaded_error", "status": 529,
                                       "message": "Overloaded " + HOSTILE}})),
    (timedelta(minutes=10), Event("alert.raised", BETA, {
        "kind": "error_rate", "severity": "warning", "message": "error rate 25%"})),
    (timedelta(minutes=2), Event("api.error", None, {
        "kind": "rate_limit", "status": 429, "error_type": "rate_limit_error",
        "message": "Too many requests", "request_id": "req_01", "retry_in_s": 4.0})),
    (timedelta(minutes=1), Event("batch.counts_changed", BETA, {
        "from": {"processing": 40}, "to": {"processing": 30, "succeeded": 10}})),
]
TORN = b'{"timestamp":"2026-05-01T11:59:59.000Z","event":"batch.en'


async def write(directory: Path, items: list[tuple[timedelta, Event]],
                now: datetime = NOW) -> None:
    """Append `items`, each stamped `now - ago`, as one fixed actor and session."""
    moment = [now]
    async with AuditLog(directory, actor="tester@host", session="ses_fixture",
                        clock=lambda: moment[0]) as audit:
        for ago, event in items:
            moment[0] = now - ago
            await audit.record(event)


async def write_fixture(directory: Path) -> None:
    """The fixed mix, then a torn last line in BETA's file (a write cut short)."""
    await write(directory, FIXTURE)
    with (directory / f"batch_{BETA}.jsonl").open("ab") as handle:
        handle.write(TORN)


class AuditHost(App[None]):
    """A base screen with the audit screen pushed on top, styled like the app."""

    CSS_PATH = APP_CSS

    def __init__(self, make: Callable[[], AuditScreen], audit: AuditLog | None = None) -> None:
        super().__init__()
        self._make = make
        self.audit = audit

    def compose(self) -> ComposeResult:
        yield Static("base")

    def on_mount(self) -> None:
        self.push_screen(self._make())

    @property
    def audit_screen(self) -> AuditScreen:
        screen = self.screen_stack[-1] if self.screen_stack else None
        for candidate in reversed(self.screen_stack):
            if isinstance(candidate, AuditScreen):
                return candidate
        raise LookupError(f"no audit screen in {screen}")


def host(directory: Path, batch_id: str | None = None, **options: Any) -> AuditHost:
    return AuditHost(lambda: AuditScreen(batch_id, directory=directory, clock=lambda: NOW,
                                         **options))


async def settle(pilot: Pilot[Any]) -> AuditScreen:
    app = pilot.app
    assert isinstance(app, AuditHost)
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()
    return app.audit_screen


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def events(screen: AuditScreen) -> list[str]:
    """The events shown, in order (none before the first read)."""
    rows = screen.rows
    return [entry.event for entry in rows.entries] if rows is not None else []


def plain_rows(screen: AuditScreen) -> list[list[str]]:
    rows = screen.rows
    assert rows is not None
    return [[cell.plain for cell in rows.cells(i)] for i in range(len(rows))]


def status(screen: AuditScreen) -> str:
    return str(screen.query_one("#audit-status", Static).render())


# -- reading ------------------------------------------------------------------------------------


async def test_newest_first_with_torn_line_named(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    async with host(tmp_path).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert events(screen) == [event.event for _, event in reversed(FIXTURE)]
        assert screen.skipped == f"1 torn line skipped in batch_{BETA}.jsonl"
        assert screen.skipped in status(screen)
        first = plain_rows(screen)[0]
        assert first[:4] == ["2026-05-01 11:59:00Z", "batch.counts_changed", BETA, "tester@host"]
        assert first[4] == "processing 40→30 · succeeded 0→10"


async def test_summaries_per_event_kind(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    async with host(tmp_path).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        summaries = {row[1]: row[4] for row in plain_rows(screen)}
        assert summaries["batch.status_changed"] == "in_progress → canceling"
        assert summaries["action.cancel"] == "succeeded · processing 80 · succeeded 40"
        assert summaries["results.downloaded"] == "120 of 120 lines · 48.0 KB · in 2s"
        assert summaries["action.retry"].startswith("failed · overloaded_error 529: Overloaded")
        assert summaries["alert.raised"] == "warning error_rate: error rate 25%"
        assert summaries["session.started"] == "monitor started"
        assert plain_rows(screen)[1][2] == "–"  # api.error concerns no batch
        rows = screen.rows
        assert rows is not None
        classes = {e.event: rows.row_class(i) for i, e in enumerate(rows.entries)}
        assert classes["action.retry"] == "failures"
        assert classes["batch.ended"] == "failures"  # 25% errored: never painted clean
        assert classes["alert.raised"] == "alert"
        assert classes["session.started"] == "dim"


async def test_hostile_text_in_cells_is_inert(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    async with host(tmp_path).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        rows = screen.rows
        assert rows is not None
        for index in range(len(rows)):
            for cell in rows.cells(index):
                assert not any(ch in cell.plain for ch in "\x1b\x07\u202e")
                assert not cell.spans  # no markup was interpreted
        label = next(row for row in plain_rows(screen) if row[1] == "action.label")
        assert "␛]52;c;ZXZpbA==␇ [bold red]pwned[/] ⟨U+202E⟩gnp.exe" in label[4]


async def test_missing_directory_is_an_empty_log(tmp_path: Path) -> None:
    async with host(tmp_path / "nowhere").run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert events(screen) == []
        assert "no audit records yet" in status(screen)


async def test_directory_defaults_to_the_apps_audit_log(tmp_path: Path) -> None:
    await write(tmp_path, FIXTURE[:2])
    audit = AuditLog(tmp_path)
    app = AuditHost(lambda: AuditScreen(clock=lambda: NOW), audit=audit)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert screen.directory == tmp_path
        assert events(screen) == ["batch.discovered", "session.started"]


def test_reader_skips_unchanged_files(tmp_path: Path) -> None:
    (tmp_path / "batchtop.jsonl").write_bytes(
        b'{"timestamp":"2026-05-01T11:00:00.000Z","event":"session.started"}\n')
    reader = LogReader(tmp_path)
    first = reader.poll()
    assert first is not None and len(first.entries) == 1
    assert reader.poll() is None
    with (tmp_path / "batchtop.jsonl").open("ab") as handle:
        handle.write(b'{"timestamp":"2026-05-01T11:00:01.000Z","event":"session.ended"}\n')
    again = reader.poll()
    assert again is not None and [e.event for e in again.entries] == [
        "session.started", "session.ended"]


async def test_reader_reads_a_changed_batch_file_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write_fixture(tmp_path)
    hostile_id = "msgbatch_../../x"  # a name that is hashed, not used as a path
    await write(tmp_path, [(timedelta(hours=1), Event("batch.gone", hostile_id, {}))])
    reads: list[str | None] = []

    def spy(directory: Path, *, batch_id: str | None = None) -> AuditRead:
        reads.append(batch_id)
        return read_audit(directory, batch_id=batch_id)

    monkeypatch.setattr(audit_module, "read_audit", spy)
    reader = LogReader(tmp_path)
    whole = reader.poll()
    assert whole is not None and reads == [None]
    await write(tmp_path, [(timedelta(0), Event("batch.ended", ALPHA, {})),
                           (timedelta(0), Event("batch.gone", hostile_id, {"n": 2}))])
    after = reader.poll()
    assert after is not None
    assert sorted(reads[1:], key=str) == sorted([ALPHA, hostile_id])
    fresh = LogReader(tmp_path).poll()
    assert fresh is not None
    assert [e.key for e in after.entries] == [e.key for e in fresh.entries]
    assert len(after.entries) == len(whole.entries) + 2
    assert after.torn == whole.torn == [f"batch_{BETA}.jsonl:6"]
    await write(tmp_path, [(timedelta(0), Event("session.ended", None, {}))])
    assert reader.poll() is not None
    assert reads[-1] is None  # the global file changed: everything is read again


# -- filters ------------------------------------------------------------------------------------


async def test_b_toggles_the_batch_under_the_cursor(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    async with host(tmp_path).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("b")  # the newest record is BETA's
        rows = screen.rows
        assert rows is not None
        assert {e.batch_id for e in rows.entries} == {BETA}
        assert len(rows) == 5
        assert BETA in status(screen)
        await pilot.press("b")
        assert len(events(screen)) == len(FIXTURE)
        await pilot.press("j", "b")  # api.error concerns no batch: nothing changes
        assert len(events(screen)) == len(FIXTURE)
        assert screen.audit_query.batch_id is None


async def test_e_cycles_event_kinds_present(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    async with host(tmp_path).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("e")
        assert screen.audit_query.events == "action.*"
        assert events(screen) == ["action.retry", "action.label", "action.cancel"]
        await pilot.press("e")
        assert events(screen) == ["action.cancel"]
        await pilot.press("E", "E")
        assert screen.audit_query.events is None
        assert len(events(screen)) == len(FIXTURE)


async def test_time_windows_count_back_from_the_clock(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    async with host(tmp_path).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("2")
        assert events(screen) == ["batch.counts_changed", "api.error", "alert.raised",
                                  "action.retry"]
        assert "last 1h" in status(screen)
        await pilot.press("3")
        assert events(screen)[-1] == "action.cancel"  # 20 h ago; the next is 30 h ago
        assert "last 24h" in status(screen)
        await pilot.press("4")
        assert "session.started" not in events(screen)
        assert len(events(screen)) == len(FIXTURE) - 1
        await pilot.press("1")
        assert len(events(screen)) == len(FIXTURE)


async def test_slash_filters_by_text_and_esc_clears(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    async with host(tmp_path).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("slash", *"overloaded")
        assert events(screen) == ["action.retry"]
        await pilot.press("enter")
        assert not screen.query_one("#audit-filter", Input).display
        assert "/overloaded/" in status(screen)
        await pilot.press("escape")
        assert len(events(screen)) == len(FIXTURE)
        assert isinstance(pilot.app.screen, AuditScreen)  # esc cleared, did not leave
        await pilot.press("slash", *"bq", "1", "escape")  # keys typed go to the line
        assert screen.audit_query.text is None
        assert screen.audit_query.window is None
        await pilot.press("slash", "(")
        assert "invalid regex" in status(screen)
        await pilot.press("escape", "slash", *"!batch\\.")
        assert "batch.ended" not in events(screen)
        assert "api.error" in events(screen)


async def test_back_keys_leave_the_screen(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    for key in ("escape", "backspace", "h", "q"):
        async with host(tmp_path).run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(pilot.app.screen, AuditScreen), key


# -- timeline -----------------------------------------------------------------------------------


async def test_timeline_is_one_batch_oldest_first(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    async with host(tmp_path, ALPHA).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert events(screen) == ["batch.discovered", "batch.status_changed", "action.cancel",
                                  "batch.ended", "results.downloaded"]
        title = str(screen.query_one("#audit-title", Static).render())
        assert f"timeline of {ALPHA}" in title
        assert "oldest first" in status(screen)
        assert screen.skipped is None  # only ALPHA's file was read
        await pilot.press("b")
        assert screen.audit_query.batch_id == ALPHA
        assert screen.check_action("toggle_batch", ()) is False


# -- live ---------------------------------------------------------------------------------------


async def test_new_records_appear_and_the_cursor_stays(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    async with host(tmp_path, poll_s=0.05).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("j", "j")
        key = screen.table.cursor_key
        await write(tmp_path, [(timedelta(0), Event("batch.ended", BETA, {
            "counts": {"succeeded": 40}, "error_rate": 0.0}))])
        await wait_for(pilot, lambda: len(events(screen)) == len(FIXTURE) + 1)
        assert events(screen)[0] == "batch.ended"
        assert screen.table.cursor_key == key
        assert screen.table.cursor_index == 3
        assert screen.table.scroll_offset.y == 0  # the new record is in view


async def test_scrolled_view_keeps_the_cursor_line_and_counts_new(tmp_path: Path) -> None:
    many = [(timedelta(minutes=100 - n), Event("batch.counts_changed", ALPHA, {
        "from": {"processing": 100 - n}, "to": {"processing": 99 - n}})) for n in range(60)]
    await write(tmp_path, many)
    async with host(tmp_path, poll_s=0.05).run_test(size=(120, 16)) as pilot:
        screen = await settle(pilot)
        await pilot.press(*["j"] * 30)
        table = screen.table
        key, line = table.cursor_key, table.cursor_index - table.scroll_offset.y
        assert table.scroll_offset.y > 0
        await write(tmp_path, [(timedelta(0), Event("batch.ended", ALPHA, {})),
                               (timedelta(0), Event("action.label", ALPHA, {}))])
        await wait_for(pilot, lambda: len(events(screen)) == 62)
        assert table.cursor_key == key
        assert table.cursor_index - table.scroll_offset.y == line
        assert "+2 new" in status(screen)
        await pilot.press("g")
        assert "+2 new" not in status(screen)


# -- detail -------------------------------------------------------------------------------------


async def test_enter_shows_the_whole_record_inert(tmp_path: Path) -> None:
    await write_fixture(tmp_path)
    async with host(tmp_path).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        rows = screen.rows
        assert rows is not None
        index = [e.event for e in rows.entries].index("action.retry")
        screen.table.cursor_index = index
        await pilot.press("enter")
        await pilot.pause()
        detail = pilot.app.screen
        assert isinstance(detail, AuditRecordScreen)
        body = detail.body_text
        assert '"event": "action.retry"' in body.plain
        assert "[bold red]pwned[/]" in body.plain
        assert "⟨U+202E⟩gnp.exe" in body.plain
        assert not any(ch in body.plain for ch in "\x1b\x07\u202e")
        assert not body.spans
        await pilot.press("escape")
        await pilot.pause()
        assert pilot.app.screen is screen


# -- in the app ---------------------------------------------------------------------------------


async def test_jump_line_opens_the_apps_audit_log() -> None:
    # Imported here: the rest of this file tests the screen alone, without the app.
    from tests.ui.harness import make_app, services_factory, start_frozen, synced, until

    emulator = await start_frozen("demo")
    try:
        app = make_app(services_factory(emulator))
        async with app.run_test(size=SIZE) as pilot:
            await synced(pilot)
            await pilot.press("colon", *"audit", "enter")
            await until(pilot, lambda: isinstance(app.screen, AuditScreen)
                        and "batch.discovered" in events(app.screen))
            screen = app.screen
            assert isinstance(screen, AuditScreen)
            assert screen.directory == locations().audit
            assert screen.now() == app.clock()  # windows count back from the app's clock
            await pilot.press("q")
            await pilot.pause()
            assert app.screen is app.batches_screen
    finally:
        await emulator.stop()
