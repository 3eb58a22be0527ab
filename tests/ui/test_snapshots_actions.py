"""SVG snapshots of the cancel and retry confirmations (run with --snapshot-update to accept)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tests.ui.action_host import HostApp, screen_of
from tests.ui.harness import start_frozen, until
from tui.ui.screens.confirm import ConfirmModal
from tui.ui.screens.retry import RetryModal

SnapCompare = Callable[..., bool]
SIZE = (120, 36)


def opened(
    kind: type[Any], flow: Callable[[HostApp], Coroutine[Any, Any, None]], **emulator: Any
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Start a frozen emulator in the app's loop, run `flow`, wait for its dialog."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, HostApp)
        emulator.setdefault("error_rate", 0.0)
        await app.connect(await start_frozen(**emulator), owns=True)
        app.flows.run(flow(app))
        await screen_of(pilot, kind)
        await until(pilot, lambda: not getattr(app.screen, "planning", False))
        await pilot.pause()

    return run_before


async def cancel_one(app: HostApp) -> None:
    batch = await app.submitted(40, "nightly-eval.jsonl")
    app.advance(15)  # part of it is done
    await app.flows.cancel([batch.id])


async def retry_failures(app: HostApp) -> None:
    batch = await app.ended((await app.submitted(24, "mixed.jsonl")).id)
    await app.flows.retry(batch.id)


def test_cancel_confirmation(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = HostApp(tmp_path, quiet=True)
    assert snap_compare(app, terminal_size=SIZE,
                        run_before=opened(ConfirmModal, cancel_one, error_rate=0.1,
                                          live_counts=True))


def test_retry_confirmation(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = HostApp(tmp_path, quiet=True)
    assert snap_compare(app, terminal_size=SIZE,
                        run_before=opened(RetryModal, retry_failures, error_rate=0.6, seed=3))
