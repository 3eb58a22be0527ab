"""Reproducible SVG screenshots of the app on the demo workspace, at a frozen instant.

`python -m tui.ui.screenshots OUTDIR` (`make screenshots`) writes them; the snapshot tests
compare the committed files with a fresh capture. Everything that could differ between two
runs is pinned: the emulator's seed and clock, the app's clock and time zone, the audit
log's actor and session, the files (a fresh BATCHTOP_HOME), and the monitor polls only when
the app asks it to, so no poll can be in flight when a screenshot is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter
from textual.pilot import Pilot
from textual.screen import Screen
from textual.worker import WorkerState

from tui.core.cadence import Backoff
from tui.core.models import BatchSnapshot
from tui.emulator.clock import Clock
from tui.emulator.scenarios import load_scenario
from tui.emulator.server import EmulatorConfig, RunningEmulator, start_emulator
from tui.paths import HOME_ENV, locations
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog
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
WAIT_S = 30.0  # a condition not met by then is a bug: fail loudly rather than shoot half a screen

Condition = Callable[[], bool]


# -- a frozen world ---------------------------------------------------------------------------


def frozen_clock(at: datetime = FROZEN_AT) -> Clock:
    """An emulator clock stopped at `at`: it moves only by `advance(seconds)`."""
    return Clock(1.0, start=at.timestamp(), monotonic=lambda: 0.0)


async def start_frozen_demo(at: datetime = FROZEN_AT, seed: int = SEED) -> RunningEmulator:
    """The demo workspace laid out around `at`, with time standing still there."""
    emulator = await start_emulator(EmulatorConfig(scenario="empty", seed=seed, api_key=KEY))
    emulator.engine.clock = frozen_clock(at)
    load_scenario(emulator.engine, "demo")
    return emulator


async def _no_timer(seconds: float) -> None:
    """The monitor's sleep: no timer ever fires, so it polls only when woken (refresh,
    focus, resume). With time frozen a timer would only fetch the same state again, and a
    fetch in flight would show in the header."""
    await asyncio.Event().wait()


def frozen_services(emulator: RunningEmulator, settings: Settings,
                    where: str = WHERE) -> ServicesFactory:
    """Services as the app assembles them, on the emulator's clock, with fixed ids.

    The emulator is not theirs to stop: several apps may be shot against one emulator.
    """

    async def make() -> Services:
        clock = emulator.engine.clock.now
        api = BatchesAPI.connect(KEY, emulator.url, max_retries=0)
        audit = AuditLog(locations().audit, actor=ACTOR, session=SESSION, secrets=[KEY],
                         clock=clock)
        monitor = Monitor(api, audit, settings.cadence, clock=clock, sleep=_no_timer,
                          backoff=Backoff(seed=SEED))
        return assemble(api, audit, monitor, settings, Ledger(clock=clock), clock=clock,
                        where=where)

    return make


@contextlib.contextmanager
def private_home() -> Iterator[Path]:
    """BATCHTOP_HOME in a fresh temporary directory (nothing of the user's leaks in), and
    NO_COLOR unset; both restored afterwards."""
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
    """`style` with its colours as a 256-colour terminal shows them (Rich's downgrade)."""
    color, bgcolor = style.color, style.bgcolor
    return style + Style.from_color(
        color.downgrade(ColorSystem.EIGHT_BIT) if color is not None else None,
        bgcolor.downgrade(ColorSystem.EIGHT_BIT) if bgcolor is not None else None,
    )


class EightBitColors(LineFilter):
    """Every colour reduced to the 256-colour palette, as Textual does when it writes to such
    a terminal; as a filter the reduction reaches the screenshot too."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(text, eight_bit(style) if style is not None else None, control)
                for text, style, control in segments]


class ScreenshotApp(BatchtopApp):
    """The app as it runs, optionally drawn in 256 colours."""

    def __init__(self, settings: Settings, services: ServicesFactory, *,
                 clock: Callable[[], datetime], eight_bit: bool = False) -> None:
        super().__init__(settings, services=services, clock=clock, tz=UTC)
        self.title = TITLE
        self._eight_bit = EightBitColors() if eight_bit else None

    def get_line_filters(self) -> Sequence[LineFilter]:
        filters = super().get_line_filters()
        return [*filters, self._eight_bit] if self._eight_bit is not None else filters


# -- waiting, deterministically ---------------------------------------------------------------


async def until(pilot: Pilot[Any], condition: Condition, what: str) -> None:
    """Let the app run until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"screenshots: timed out waiting for {what}")
        await pilot.pause(0.02)


def _busy(app: BatchtopApp) -> bool:
    """Some work is left: a worker running (but the monitor's loop, and an action waiting
    for the answer of its dialog), or a poll in flight."""
    waiting = {"monitor", "actions"} if app.modal_open() else {"monitor"}
    working = any(worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
                  and worker.group not in waiting for worker in app.workers)
    return working or app.monitor_state.fetching


async def settle(pilot: Pilot[Any]) -> None:
    """Until nothing is left to do: no worker running, no poll in flight, messages handled."""
    app = pilot.app
    assert isinstance(app, BatchtopApp)
    for _ in range(3):  # a finished worker may post work that starts another
        await until(pilot, lambda: not _busy(app), "the app to settle")
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()


async def synced(pilot: Pilot[Any]) -> BatchesScreen:
    """Until the list shows every batch of the first full sync."""
    app = pilot.app
    assert isinstance(app, BatchtopApp)
    await until(pilot, lambda: app.services is not None and app.monitor_state.synced,
                "the first sync")
    screen = app.batches_screen
    assert screen is not None
    await until(pilot, lambda: screen.rows is not None
                and len(screen.rows) + screen.new_count == len(app.monitor_state.batches),
                "the list to show the batches")
    await settle(pilot)
    return screen


async def screen_of(pilot: Pilot[Any], kind: type[Screen[Any]]) -> Screen[Any]:
    await until(pilot, lambda: isinstance(pilot.app.screen, kind), kind.__name__)
    return pilot.app.screen


# -- which batches ----------------------------------------------------------------------------


def error_ratio(batch: BatchSnapshot) -> float:
    counts = batch.request_counts
    return counts.errored / counts.total if counts.total else 0.0


def with_errors(batches: Sequence[BatchSnapshot]) -> BatchSnapshot:
    """The ended batch (results still downloadable) with the highest share of errors."""
    ended = [b for b in batches if b.is_ended and b.archived_at is None and error_ratio(b)]
    return max(ended, key=lambda b: (error_ratio(b), b.id))


def running(batches: Sequence[BatchSnapshot]) -> BatchSnapshot:
    """The running batch with the most requests still processing."""
    live = [b for b in batches if b.processing_status == "in_progress"]
    return max(live, key=lambda b: (b.request_counts.processing, b.id))


# -- the shots --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shooter:
    """Saves the app's current screen, once it has settled, as OUTDIR/NAME."""

    outdir: Path
    saved: list[Path]

    async def __call__(self, pilot: Pilot[Any], name: str) -> None:
        app = pilot.app
        await settle(pilot)
        app.clear_notifications()
        await pilot.pause()
        path = self.outdir / name
        path.write_text(app.export_screenshot(title=TITLE), encoding="utf-8")
        self.saved.append(path)


Scene = Callable[[Pilot[Any], Shooter], Awaitable[None]]


async def tour(pilot: Pilot[Any], shoot: Shooter) -> None:
    """The list, a batch with failures, one of them, retry and cancel asked, the audit log."""
    app = pilot.app
    assert isinstance(app, BatchtopApp)
    screen = await synced(pilot)
    await shoot(pilot, "batches.svg")
    batches = list(app.monitor_state.batches.values())

    screen.move_to(with_errors(batches).id)
    await pilot.press("enter")
    batch = await screen_of(pilot, BatchScreen)
    assert isinstance(batch, BatchScreen)
    await until(pilot, lambda: batch.phase is Phase.READY and bool(batch.errors.groups),
                "the results and their failure summary")
    await shoot(pilot, "batch-errors.svg")

    await pilot.press("2")  # errored only
    await settle(pilot)
    await pilot.press("enter")
    await screen_of(pilot, ResultScreen)
    await shoot(pilot, "result.svg")
    await pilot.press("escape")
    await screen_of(pilot, BatchScreen)
    await pilot.press("escape")
    await screen_of(pilot, BatchesScreen)

    await pilot.press("R")
    retry = await screen_of(pilot, RetryModal)
    assert isinstance(retry, RetryModal)
    await until(pilot, lambda: not retry.planning, "the retry plan")
    await shoot(pilot, "retry-confirm.svg")
    await pilot.press("escape")
    await screen_of(pilot, BatchesScreen)

    screen.move_to(running(batches).id)
    await pilot.press("c")
    await screen_of(pilot, ConfirmModal)
    await shoot(pilot, "cancel-confirm.svg")
    await pilot.press("escape")
    await screen_of(pilot, BatchesScreen)

    audit = audit_screen()
    if audit is None:
        print("screenshots: no audit screen in this build; audit.svg skipped", file=sys.stderr)
        return
    await pilot.press("A")
    shown = await screen_of(pilot, audit)
    await until(pilot, lambda: getattr(shown, "rows", None) is not None, "the audit log")
    await shoot(pilot, "audit.svg")


def audit_screen() -> type[Screen[Any]] | None:
    """The audit viewer's screen class, when this build has one."""
    try:
        from tui.ui.screens import audit
    except ImportError:
        return None
    found = getattr(audit, "AuditScreen", None)
    return found if isinstance(found, type) and issubclass(found, Screen) else None


async def run_scene(emulator: RunningEmulator, scene: Scene, shoot: Shooter, size: tuple[int, int],
                    settings: Settings, *, eight_bit: bool = False) -> frozenset[str]:
    """One app, from start to quit, against the shared emulator; returns its theme names."""
    app = ScreenshotApp(settings, frozen_services(emulator, settings),
                        clock=emulator.engine.clock.now, eight_bit=eight_bit)
    async with app.run_test(size=size) as pilot:
        await scene(pilot, shoot)
        themes = frozenset(app.available_themes)
        await app.stop_services()
    return themes


def list_scene(name: str) -> Scene:
    """Only the list, once it shows the first full sync."""

    async def scene(pilot: Pilot[Any], shoot: Shooter) -> None:
        await synced(pilot)
        await shoot(pilot, name)

    return scene


async def capture_all(outdir: Path, *, size: tuple[int, int] = SIZE) -> list[Path]:
    """Write every screenshot into `outdir`; returns the files in the order they were taken."""
    outdir.mkdir(parents=True, exist_ok=True)
    shoot = Shooter(outdir, [])
    with private_home():
        emulator = await start_frozen_demo()
        try:
            # The list-only apps first, so that every list shows the same data (the tour
            # stores results, and stored batches show their cost).
            themes = await run_scene(emulator, list_scene("read-only.svg"), shoot, size,
                                     Settings(read_only=True))
            await run_scene(emulator, list_scene("batches-256.svg"), shoot, size, Settings(),
                            eight_bit=True)
            if HIGH_CONTRAST in themes:
                await run_scene(emulator, list_scene("high-contrast.svg"), shoot, size,
                                Settings(theme=HIGH_CONTRAST))
            else:
                print(f"screenshots: no {HIGH_CONTRAST} theme; high-contrast.svg skipped",
                      file=sys.stderr)
            await run_scene(emulator, tour, shoot, size, Settings())
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
