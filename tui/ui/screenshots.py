"""Reproducible SVG screenshots of the app on the demo workspace, on a clock that stands still.

`python -m tui.ui.screenshots OUTDIR` (`make screenshots`) writes them; the snapshot tests
compare the committed files with a fresh capture. Whatever could differ between two runs is
pinned: the emulator's seed, its clock (moved only by fixed steps) and so the app's, the time
zone, the audit log's actor and session, the files (a fresh BATCHTOP_HOME per app), the
results store's download timer; the monitor polls only when the app wakes it, and its first
poll waits until the app is listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter
from textual.pilot import Pilot
from textual.screen import Screen
from textual.worker import WorkerState

from tui.core.cadence import Backoff
from tui.core.models import IN_PROGRESS, BatchSnapshot
from tui.emulator.clock import Clock
from tui.emulator.server import EmulatorConfig, RunningEmulator, start_emulator
from tui.paths import HOME_ENV, locations
from tui.service.api import BatchesAPI, Page
from tui.service.audit import AuditLog, read_audit
from tui.service.ledger import Ledger
from tui.service.monitor import Monitor
from tui.settings import Settings
from tui.ui.app import BatchtopApp, Services, ServicesFactory
from tui.ui.launch import assemble
from tui.ui.screens.batch import BatchScreen
from tui.ui.screens.batches import BatchesScreen
from tui.ui.screens.confirm import ConfirmModal
from tui.ui.screens.result import ResultScreen
from tui.ui.screens.retry import RetryModal
from tui.ui.widgets.batch_summary import Phase

FROZEN_AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SIZE = (160, 45)
SEED = 0
KEY = "demo-key"
ACTOR = "demo@batchtop"
SESSION = "ses_0000000000000000"
WHERE = "demo · local emulator"
TITLE = "batchtop"
HIGH_CONTRAST = "batchtop-high-contrast"
OPEN_AFTER_S = 40.0  # the tour opens the batch with failures this long after the start
RETRY_AFTER_S = 15.0  # and asks for its retry this long after that
REQUEST_FILE = "reviews-sentiment.jsonl"  # attached to the batch with failures, to retry it
WAIT_S = 30.0  # a condition still unmet by then is a bug: fail rather than shoot half a screen

Condition = Callable[[], bool]


# -- a frozen world ---------------------------------------------------------------------------


def frozen_clock(at: datetime = FROZEN_AT) -> Clock:
    """An emulator clock stopped at `at`: it moves only by `advance(seconds)`."""
    return Clock(1.0, start=at.timestamp(), monotonic=lambda: 0.0)


async def start_frozen_demo(at: datetime = FROZEN_AT, seed: int = SEED) -> RunningEmulator:
    """The demo workspace laid out around `at`, with time standing still there."""
    return await start_emulator(EmulatorConfig(scenario="demo", seed=seed, api_key=KEY),
                                clock=frozen_clock(at))


async def no_timer(seconds: float) -> None:
    """The monitor's sleep: no timer ever fires, so it polls only when woken (refresh, focus,
    resume). With time frozen a timer could only fetch the same state again, at a moment
    that would show in the header."""
    await asyncio.Event().wait()


class GatedAPI(BatchesAPI):
    """The API client whose list waits until `opened` is set: the first sync happens once
    the app listens (alerts included) and the audit log is idle, so the records it causes
    are written in one order, run after run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened = asyncio.Event()

    async def list_page(self, limit: int = 1000, after_id: str | None = None) -> Page:
        await self.opened.wait()
        return await super().list_page(limit, after_id)


def frozen_services(emulator: RunningEmulator, settings: Settings) -> ServicesFactory:
    """Services as the app assembles them, on the emulator's clock, with fixed ids.

    The emulator is not theirs to stop: several apps are shot against one emulator.
    """

    async def make() -> Services:
        clock = emulator.engine.clock.now
        api = GatedAPI.connect(KEY, emulator.url, max_retries=0)
        audit = AuditLog(locations().audit, actor=ACTOR, session=SESSION, secrets=[KEY],
                         clock=clock)
        monitor = Monitor(api, audit, settings.cadence, clock=clock, sleep=no_timer,
                          backoff=Backoff(seed=SEED))
        services = assemble(api, audit, monitor, settings, Ledger(clock=clock), clock=clock,
                            where=WHERE)
        if services.store is not None:  # downloads take "0.0s", and end at the frozen time
            services.store.timer = lambda: 0.0
            services.store.clock = clock
        return services

    return make


@contextlib.contextmanager
def private_home() -> Iterator[Path]:
    """BATCHTOP_HOME in a fresh temporary directory (nothing of the user's leaks in) and
    NO_COLOR unset, both restored afterwards."""
    saved = {name: os.environ.get(name) for name in (HOME_ENV, "NO_COLOR")}
    with tempfile.TemporaryDirectory(prefix="batchtop-shots-") as home:
        os.environ[HOME_ENV] = home
        os.environ.pop("NO_COLOR", None)
        try:
            yield Path(home)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


# -- 256 colours ------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def eight_bit(style: Style) -> Style:
    """`style` with its colours as a 256-colour terminal shows them (Rich's reduction)."""
    color, bgcolor = style.color, style.bgcolor
    return style + Style.from_color(
        color.downgrade(ColorSystem.EIGHT_BIT) if color is not None else None,
        bgcolor.downgrade(ColorSystem.EIGHT_BIT) if bgcolor is not None else None,
    )


class EightBitColors(LineFilter):
    """Every colour reduced to the 256-colour palette, as Textual reduces them when writing
    to such a terminal; as a line filter the reduction reaches the screenshot too."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(text, eight_bit(style) if style is not None else None, control)
                for text, style, control in segments]


class ScreenshotApp(BatchtopApp):
    """The app as it runs, in UTC, optionally drawn in 256 colours."""

    def __init__(self, settings: Settings, services: ServicesFactory, *,
                 clock: Callable[[], datetime], colors_256: bool = False) -> None:
        super().__init__(settings, services=services, clock=clock, tz=UTC)
        self.title = TITLE
        self._reduce = EightBitColors() if colors_256 else None

    def get_line_filters(self) -> Sequence[LineFilter]:
        filters = super().get_line_filters()
        return [*filters, self._reduce] if self._reduce is not None else filters


# -- waiting, by conditions -------------------------------------------------------------------


async def until(pilot: Pilot[Any], condition: Condition, what: str) -> None:
    """Let the app run until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"screenshots: timed out waiting for {what}")
        await pilot.pause(0.02)


def busy(app: BatchtopApp) -> bool:
    """Work is left: a worker running (not the monitor's loop, nor an action waiting for
    the answer of its dialog), a poll in flight, or audit records not yet written."""
    waiting = {"monitor", "actions", "flow"} if app.modal_open() else {"monitor"}
    if any(worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
           and worker.group not in waiting for worker in app.workers):
        return True
    services = app.services
    audit = services.audit if services is not None else None
    writing = isinstance(audit, AuditLog) and audit.pending_count > 0
    return writing or app.monitor_state.fetching


async def settle(pilot: Pilot[Any]) -> None:
    """Until nothing is left to do, and the screen has drawn it."""
    app = pilot.app
    assert isinstance(app, BatchtopApp)
    for _ in range(3):  # finished work may start more (a refresh, a repaint)
        alerts = app.alerts
        if alerts is not None:
            await alerts.drain()
        await until(pilot, lambda: not busy(app), "the app to settle")
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()


def listening(app: BatchtopApp) -> bool:
    """The app's services have started (its alerts follow the monitor) and the monitor's
    session.started is on disk."""
    services = app.services
    if services is None or not isinstance(services.audit, AuditLog):
        return False
    if any(worker.group == "services" and not worker.is_finished for worker in app.workers):
        return False
    audit = services.audit
    return audit.pending_count == 0 and bool(read_audit(audit.directory).records)


async def open_gate(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, BatchtopApp)
    await until(pilot, lambda: listening(app), "the app to listen")
    api = app.api
    assert isinstance(api, GatedAPI)
    api.opened.set()


async def synced(pilot: Pilot[Any]) -> BatchesScreen:
    """Until the list shows every batch of the first full sync."""
    app = pilot.app
    assert isinstance(app, BatchtopApp)
    await until(pilot, lambda: app.monitor_state.synced, "the first sync")
    screen = app.batches_screen
    assert screen is not None

    def shown() -> bool:
        rows = screen.rows
        return rows is not None and len(rows) + screen.new_count == len(
            app.monitor_state.batches)

    await until(pilot, shown, "the list to show the batches")
    await settle(pilot)
    return screen


async def screen_of(pilot: Pilot[Any], kind: type[Screen[Any]]) -> Screen[Any]:
    await until(pilot, lambda: isinstance(pilot.app.screen, kind), kind.__name__)
    return pilot.app.screen


# -- which batches ----------------------------------------------------------------------------


def with_errors(batches: Sequence[BatchSnapshot]) -> BatchSnapshot:
    """The ended batch (results still downloadable) with the largest share of errors."""
    ended = [b for b in batches if b.is_ended and b.archived_at is None
             and b.request_counts.errored]
    return max(ended, key=lambda b: (b.request_counts.errored / b.request_counts.total, b.id))


def running(batches: Sequence[BatchSnapshot]) -> BatchSnapshot:
    """The running batch with the most requests still processing."""
    live = [b for b in batches if b.processing_status == IN_PROGRESS
            and b.cancel_initiated_at is None]
    return max(live, key=lambda b: (b.request_counts.processing, b.id))


def request_file(emulator: RunningEmulator, batch_id: str) -> bytes:
    """A request file for a demo batch: its custom_ids with params like its requests'."""
    source = emulator.engine.get(batch_id).source
    lines = []
    for index in range(len(source)):
        traits = source.traits(index)
        custom_id = source.custom_id(index)
        lines.append(orjson.dumps({"custom_id": custom_id, "params": {
            "model": traits.model, "max_tokens": traits.max_tokens,
            "messages": [{"role": "user", "content":
                          f"Is review {custom_id} positive, negative or mixed? Review: "
                          + "The delivery was quick, the fit is odd. " * 8}],
        }}))
    return b"\n".join(lines) + b"\n"


async def attach_requests(app: BatchtopApp, emulator: RunningEmulator, batch_id: str) -> None:
    """Attach the batch's request file (as `a` does), so that R can plan a real retry.

    The file is named relative to its directory: the name is recorded, and shown.
    """
    folder = locations().data
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REQUEST_FILE).write_bytes(request_file(emulator, batch_id))
    with contextlib.chdir(folder):
        preview = await app.actions.plan_attach(batch_id, REQUEST_FILE)
        await app.actions.attach(preview)


# -- the shots --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shooter:
    """Saves the app's current screen, once settled, as OUTDIR/NAME."""

    outdir: Path
    saved: list[Path] = field(default_factory=list)

    async def __call__(self, pilot: Pilot[Any], name: str) -> None:
        app = pilot.app
        await settle(pilot)
        app.clear_notifications()
        await pilot.pause()
        path = self.outdir / name
        path.write_text(app.export_screenshot(title=TITLE), encoding="utf-8")
        self.saved.append(path)


Scene = Callable[[Pilot[Any], Shooter], Awaitable[None]]


def list_scene(name: str) -> Scene:
    """Only the list, once it shows the first full sync."""

    async def scene(pilot: Pilot[Any], shoot: Shooter) -> None:
        await synced(pilot)
        await shoot(pilot, name)

    return scene


def tour(emulator: RunningEmulator) -> Scene:
    """A user's first two minutes: the list, cancel asked and declined; the batch with the
    most failures, one of them, a retry asked and declined; then the audit log of it all.
    Time moves on between steps, by fixed amounts, so the log reads as it happened."""

    async def scene(pilot: Pilot[Any], shoot: Shooter) -> None:
        app = pilot.app
        assert isinstance(app, BatchtopApp)
        screen = await synced(pilot)
        await shoot(pilot, "batches.svg")
        batches = list(app.monitor_state.batches.values())

        screen.move_to(running(batches).id)
        await pilot.press("c")
        await screen_of(pilot, ConfirmModal)
        await shoot(pilot, "cancel-confirm.svg")
        await pilot.press("escape")
        await back_from_dialog(pilot, BatchesScreen)

        emulator.engine.clock.advance(OPEN_AFTER_S)
        failed = with_errors(batches).id
        screen.move_to(failed)
        await pilot.press("enter")
        batch = await screen_of(pilot, BatchScreen)
        assert isinstance(batch, BatchScreen)
        await until(pilot, lambda: batch.phase is Phase.READY and bool(batch.errors.groups),
                    "the results and their failure summary")
        await shoot(pilot, "batch-errors.svg")

        await pilot.press("5")  # succeeded only: the first one, in full
        await settle(pilot)
        await pilot.press("enter")
        await screen_of(pilot, ResultScreen)
        await shoot(pilot, "result.svg")
        await pilot.press("escape")
        await screen_of(pilot, BatchScreen)
        await pilot.press("2")  # errored only, behind the retry dialog

        emulator.engine.clock.advance(RETRY_AFTER_S)
        await attach_requests(app, emulator, failed)
        await settle(pilot)
        await pilot.press("R")
        retry = await screen_of(pilot, RetryModal)
        assert isinstance(retry, RetryModal)
        await until(pilot, lambda: not retry.planning, "the retry plan")
        await shoot(pilot, "retry-confirm.svg")
        await pilot.press("escape")
        await back_from_dialog(pilot, BatchScreen)

        audit = audit_screen()
        if audit is None:
            print("screenshots: no audit screen in this build; audit.svg skipped",
                  file=sys.stderr)
            return
        await pilot.press("escape")
        await screen_of(pilot, BatchesScreen)
        await pilot.press("A")
        shown = await screen_of(pilot, audit)
        await until(pilot, lambda: getattr(shown, "rows", None) is not None, "the audit log")
        await shoot(pilot, "audit.svg")

    return scene


async def back_from_dialog(pilot: Pilot[Any], kind: type[Screen[Any]]) -> None:
    """Back on `kind` after a dialog: polling resumed; one refresh, awaited, is the barrier
    after which every record of that poll is written (before the audit viewer reads them)."""
    app = pilot.app
    assert isinstance(app, BatchtopApp)
    await screen_of(pilot, kind)
    await app.monitor.refresh_now()
    await settle(pilot)


def audit_screen() -> type[Screen[Any]] | None:
    """The audit viewer's screen, when this build has one."""
    try:
        from tui.ui.screens import audit
    except ImportError:
        return None
    found = getattr(audit, "AuditScreen", None)
    return found if isinstance(found, type) and issubclass(found, Screen) else None


async def run_scene(emulator: RunningEmulator, scene: Scene, shoot: Shooter,
                    size: tuple[int, int], settings: Settings, *,
                    colors_256: bool = False) -> frozenset[str]:
    """One app, from start to quit, with files of its own; returns its theme names."""
    app = ScreenshotApp(settings, frozen_services(emulator, settings),
                        clock=emulator.engine.clock.now, colors_256=colors_256)
    with private_home():
        async with app.run_test(size=size) as pilot:
            await open_gate(pilot)
            await scene(pilot, shoot)
            themes = frozenset(app.available_themes)
            await app.stop_services()
    return themes


async def capture_all(outdir: Path, *, size: tuple[int, int] = SIZE) -> list[Path]:
    """Write every screenshot into `outdir`; returns the files in the order they were taken."""
    await asyncio.to_thread(outdir.mkdir, parents=True, exist_ok=True)
    shoot = Shooter(outdir)
    emulator = await start_frozen_demo()
    try:
        # The lists first: the tour moves the clock on.
        themes = await run_scene(emulator, list_scene("read-only.svg"), shoot, size,
                                 Settings(read_only=True))
        await run_scene(emulator, list_scene("batches-256.svg"), shoot, size, Settings(),
                        colors_256=True)
        if HIGH_CONTRAST in themes:
            await run_scene(emulator, list_scene("high-contrast.svg"), shoot, size,
                            Settings(theme=HIGH_CONTRAST))
        else:
            print(f"screenshots: no {HIGH_CONTRAST} theme; high-contrast.svg skipped",
                  file=sys.stderr)
        await run_scene(emulator, tour(emulator), shoot, size, Settings())
    finally:
        await emulator.stop()
    return shoot.saved


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tui.ui.screenshots OUTDIR", file=sys.stderr)
        return 2
    for path in asyncio.run(capture_all(Path(args[0]))):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
