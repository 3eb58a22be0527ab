"""The app under the fault matrix, and untrusted text on its screen, asserted on the terminal.

`terminal()` renders the current screen exactly as the app would write it to a terminal
(every byte, escape sequences included): hostile text from the API must arrive there made
visible, never as a working control sequence, and never read as markup.
"""

from __future__ import annotations

import io
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson
import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.screen import ModalScreen

from tests.emulator_fixtures import MakeEmulator
from tests.reliability.harness import FAST_CADENCE, assert_audit_valid, fast_backoff
from tests.ui.harness import SIZE, make_app, services_factory, start_frozen, synced, until
from tui.core.events import API_ERROR, API_RECOVERED
from tui.emulator import results as emulator_results
from tui.emulator import routes
from tui.emulator.content import HOSTILE_ERROR
from tui.emulator.errors import invalid
from tui.emulator.faults import Faults, parse_faults
from tui.paths import locations
from tui.service.api import ApiError, BatchesAPI
from tui.service.audit import AuditLog
from tui.service.ledger import Ledger
from tui.service.monitor import Monitor
from tui.settings import Settings
from tui.ui.app import BatchtopApp, Services, ServicesFactory
from tui.ui.launch import assemble

KEY = "test-key"
RETRY_AT = re.compile(r"DEGRADED .*retry at \d\d:\d\d:\d\d")
# Sequences the hostile texts carry; none may reach the terminal in working form.
FORBIDDEN = ("\x1b]", "\x1b[2J", "\x1b[31m", "\x07", "\x9b", "\u202e", "\u202c")


def terminal(app: BatchtopApp) -> tuple[str, str]:
    """(the bytes a terminal would receive, the plain text it would show)."""
    width, height = app.size
    stream = io.StringIO()
    console = Console(width=width, height=height, file=stream, force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False,
                      safe_box=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return stream.getvalue(), console.export_text()


def assert_inert(raw: str) -> None:
    for sequence in FORBIDDEN:
        assert sequence not in raw, f"{sequence!r} reached the terminal"


def live_services(url: str, *, client_timeout: float = 5.0) -> ServicesFactory:
    """The app's services (as `batchtop` assembles them) on the wall clock, with fast
    backoff: outages end by themselves."""

    async def make() -> Services:
        api = BatchesAPI.connect(KEY, url, timeout=client_timeout)
        audit = AuditLog(locations().audit, secrets=[KEY])
        monitor = Monitor(api, audit, FAST_CADENCE, backoff=fast_backoff())
        return assemble(api, audit, monitor, Settings(), Ledger(), where="faults")

    return make


def header(app: BatchtopApp) -> str:
    screen = app.batches_screen
    assert screen is not None
    return screen.header.plain


async def ride_out(pilot: Pilot[Any], app: BatchtopApp, start: Callable[[], Any],
                   stop: Callable[[], Awaitable[None]]) -> None:
    await synced(pilot)
    start()
    await until(pilot, lambda: RETRY_AT.search(header(app)) is not None, 15)
    raw, text = terminal(app)
    assert RETRY_AT.search(text) and "Traceback" not in text
    assert_inert(raw)
    await stop()
    await until(pilot, lambda: "DEGRADED" not in header(app), 15)
    assert "Traceback" not in terminal(app)[1]


@pytest.mark.parametrize("spec", ["500=1", "529=1", "429=1,retry_after=0.3s", "slow=1s"])
async def test_app_shows_degraded_with_the_retry_time_then_recovers(
    make_emulator: MakeEmulator, spec: str
) -> None:
    emu = await make_emulator(scenario="many:6")
    app = make_app(live_services(emu.url, client_timeout=0.3))
    async with app.run_test(size=SIZE) as pilot:

        async def clear() -> None:
            emu.engine.faults = Faults()

        await ride_out(pilot, app, lambda: setattr(emu.engine, "faults", parse_faults(spec)),
                       clear)
        await app.stop_services()
    names = [r["event"] for r in assert_audit_valid(locations().audit)]
    assert names.count(API_ERROR) == names.count(API_RECOVERED) == 1


async def test_app_survives_the_emulator_going_away_and_coming_back(
    make_emulator: MakeEmulator,
) -> None:
    emu = await make_emulator(scenario="many:6")
    port = emu.port
    app = make_app(live_services(emu.url))
    async with app.run_test(size=SIZE) as pilot:

        def go_away() -> None:
            pilot.app.call_later(emu.stop)

        async def come_back() -> None:
            await make_emulator(scenario="many:6", port=port)

        await ride_out(pilot, app, go_away, come_back)
        await app.stop_services()


# -- untrusted text on screen -----------------------------------------------------------------


async def open_batch(pilot: Pilot[Any], app: BatchtopApp, batch_id: str) -> Any:
    app.open_batch(batch_id)
    await pilot.pause()
    screen: Any = app.screen
    await until(pilot, lambda: getattr(screen, "phase", None) is not None
                and screen.phase.name in ("READY", "INCOMPLETE", "NOT_FOUND"), 20)
    await pilot.pause(0.3)
    return screen


async def test_hostile_results_are_shown_inert() -> None:
    emu = await start_frozen("demo")
    try:
        app = make_app(services_factory(emu))
        async with app.run_test(size=SIZE) as pilot:
            await synced(pilot)
            screen = await open_batch(pilot, app, emu.engine.labelled("hostile").id)
            raw, text = terminal(app)
            assert_inert(raw)
            assert "␛]52;c;" in text and "⟨U+202E⟩" in text  # shown, not executed
            assert "[red]fatal[/red]" in text  # not read as markup
            screen.table.focus()
            for key in ("home", "end"):  # a succeeded result (model text), the errored one
                await pilot.press(key, "enter")
                await until(pilot, lambda: app.screen is not screen)
                await pilot.pause(0.1)
                raw, text = terminal(app)
                assert_inert(raw)
                assert "␛]52;c;" in text and "Traceback" not in text
                await pilot.press("escape")
                await until(pilot, lambda: app.screen is screen)
            await app.stop_services()
    finally:
        await emu.stop()


async def test_hostile_custom_ids_labels_ids_and_toasts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hostile = "\x1b]0;pwned\x07\u202eexe[bold]x[/]\x9b31m"
    real = emulator_results.result_lines

    def renamed(*args: Any, **kwargs: Any) -> Any:
        for line in real(*args, **kwargs):
            record = orjson.loads(line)
            record["custom_id"] = hostile + record["custom_id"]
            yield orjson.dumps(record) + b"\n"

    monkeypatch.setattr(routes, "result_lines", renamed)
    emu = await start_frozen("demo")
    try:
        app = make_app(services_factory(emu))
        async with app.run_test(size=SIZE) as pilot:
            await synced(pilot)
            batch_id = emu.engine.labelled("hostile").id
            app.set_labels({batch_id: HOSTILE_ERROR})
            app.report_error("results download", ApiError(HOSTILE_ERROR, kind="server"))
            await pilot.pause(0.3)
            raw, text = terminal(app)
            assert_inert(raw)
            assert "upstream said" in text  # the toast is there, made inert
            await open_batch(pilot, app, batch_id)  # custom_ids in the results table
            raw, text = terminal(app)
            assert_inert(raw)
            assert "␛]0;pwned␇⟨U+202E⟩exe[bold]x[" in text
            await open_batch(pilot, app, "msgbatch_" + hostile)  # an id typed or pasted
            assert_inert(terminal(app)[0])
            await app.stop_services()
    finally:
        await emu.stop()


async def test_an_api_error_with_hostile_text_is_shown_inert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = await start_frozen("demo")
    try:
        def refuse(batch_id: str) -> Any:
            raise invalid(HOSTILE_ERROR)

        app = make_app(services_factory(emu))
        async with app.run_test(size=SIZE) as pilot:
            await synced(pilot)
            monkeypatch.setattr(emu.engine, "retrieve", refuse)
            screen = await open_batch(pilot, app, "msgbatch_01UNKNOWN")
            assert screen.phase.name == "NOT_FOUND"
            raw, text = terminal(app)
            assert_inert(raw)
            assert "upstream said" in text
            await app.stop_services()
    finally:
        await emu.stop()



# -- read-only --------------------------------------------------------------------------------


def toasts(app: BatchtopApp) -> list[str]:
    return [f"{note.title} {note.message}" for note in app._notifications]


@pytest.mark.parametrize(("key", "which"), [
    ("c", "running"), ("D", "ended"), ("R", "failures"), ("t", "ended"), ("a", "ended"),
])
async def test_read_only_refuses_every_mutation_in_the_app(key: str, which: str) -> None:
    emu = await start_frozen("demo")
    settings = Settings(read_only=True)
    try:
        app = make_app(services_factory(emu, settings=settings), settings)
        async with app.run_test(size=SIZE) as pilot:
            screen = await synced(pilot)
            batches = app.monitor_state.batches.values()
            target = next(b for b in batches if {
                "running": not b.is_ended,
                "ended": b.is_ended and b.archived_at is None,
                "failures": b.is_ended and b.archived_at is None and b.request_counts.errored,
            }[which])
            before = [(r.id, emu.engine.state(r).status) for r in emu.engine.records()]
            assert screen.move_to(target.id)
            await pilot.press(key)  # the key is switched off: nothing is asked
            await pilot.pause(0.2)
            assert not isinstance(app.screen, ModalScreen)
            flows = app.flows  # behind the keys, the flow itself refuses too
            starts: dict[str, Callable[[], Coroutine[Any, Any, bool]]] = {
                "c": lambda: flows.cancel([target.id]), "D": lambda: flows.delete([target.id]),
                "R": lambda: flows.retry(target.id), "t": lambda: flows.label(target.id),
                "a": lambda: flows.attach(target.id),
            }
            app.start_action(starts[key]())
            await until(pilot, lambda: any("read-only" in t for t in toasts(app)), 20)
            assert not isinstance(app.screen, ModalScreen)
            assert [(r.id, emu.engine.state(r).status) for r in emu.engine.records()] == before
            services = app.services
            assert services is not None and services.actions is not None
            assert services.actions.ledger.labels() == {}
            assert services.actions.ledger.submits() == []
            await app.stop_services()
    finally:
        await emu.stop()


async def test_a_cut_download_is_shown_incomplete_then_completed_on_retry() -> None:
    emu = await start_frozen("demo")
    try:
        app = make_app(services_factory(emu))
        async with app.run_test(size=SIZE) as pilot:
            await synced(pilot)
            batch = emu.engine.labelled("hostile")
            emu.engine.faults = parse_faults("cut=1")
            screen = await open_batch(pilot, app, batch.id)
            assert screen.phase.name == "INCOMPLETE"
            raw, text = terminal(app)
            assert_inert(raw)
            assert "missing" in text and "Traceback" not in text  # says what is not there
            emu.engine.faults = Faults()
            await pilot.press("r")
            await until(pilot, lambda: screen.phase.name == "READY", 20)
            await app.stop_services()
    finally:
        await emu.stop()
