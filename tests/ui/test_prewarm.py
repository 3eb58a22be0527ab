"""Resting the cursor on a big ended batch boots the index workers before it is opened."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.ui.harness import SIZE, make_app, services_factory, start_frozen, synced, until
from tui.emulator.server import RunningEmulator
from tui.service.index_pool import default_worker_count
from tui.ui.screens.batch import BatchScreen, Phase

pytestmark = pytest.mark.skipif(default_worker_count() == 0, reason="one core: no workers")


@pytest.fixture
async def large() -> AsyncIterator[RunningEmulator]:
    emulator = await start_frozen("large:6000")
    yield emulator
    await emulator.stop()


async def test_the_workers_boot_while_the_cursor_rests_on_a_big_ended_batch(
    large: RunningEmulator,
) -> None:
    app = make_app(services_factory(large))
    async with app.run_test(size=SIZE) as pilot:
        await synced(pilot)
        store = app.results_store
        assert store is not None
        await until(pilot, lambda: bool(store.worker_pids()))  # before anything is opened
        booted = store.worker_pids()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, BatchScreen)
                    and app.screen.phase is Phase.READY and app.screen.rows is not None)
        status = store.status(app.screen.batch_id)
        assert status is not None and status.complete and status.lines == 6000
        assert store.worker_pids() == booted and store.index_pool(6000) is not None


async def test_small_batches_do_not_boot_workers(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        store = app.results_store
        assert store is not None and screen.rows is not None
        small = [b for b in screen.rows.batches if b.request_counts.total < 5000]
        assert store.prewarm(small[0]) is False
        big_running = [b for b in screen.rows.batches
                       if b.is_running and b.request_counts.total >= 5000]
        assert store.prewarm(big_running[0]) is False
        assert store.worker_pids() == []
