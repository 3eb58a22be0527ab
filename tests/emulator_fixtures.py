"""Pytest plugin: emulator fixtures (in-process async, and threaded for the blocking SDK client)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from tui.emulator.server import EmulatorConfig, RunningEmulator, start_emulator
from tui.emulator.threaded import ThreadedEmulator

MakeEmulator = Callable[..., Awaitable[RunningEmulator]]
MakeThreadedEmulator = Callable[..., ThreadedEmulator]


@pytest_asyncio.fixture
async def make_emulator() -> AsyncIterator[MakeEmulator]:
    """`await make_emulator(scenario="demo", speed=60.0, ...)`: started now, stopped at teardown.

    Keyword arguments are `EmulatorConfig` fields."""
    started: list[RunningEmulator] = []

    async def make(**options: Any) -> RunningEmulator:
        running = await start_emulator(EmulatorConfig(**options))
        started.append(running)
        return running

    yield make
    for running in reversed(started):
        await running.stop()


@pytest_asyncio.fixture
async def emulator(make_emulator: MakeEmulator) -> RunningEmulator:
    """An in-process emulator on a free port: scenario `empty`, speed 1."""
    return await make_emulator()


@pytest.fixture
def make_threaded_emulator() -> Iterator[MakeThreadedEmulator]:
    """`make_threaded_emulator(scenario=..., ...)`: an emulator on its own loop in a thread, for
    tests that use the blocking `anthropic.Anthropic` client (or any sync code)."""
    started: list[ThreadedEmulator] = []

    def make(**options: Any) -> ThreadedEmulator:
        threaded = ThreadedEmulator(EmulatorConfig(**options)).start()
        started.append(threaded)
        return threaded

    yield make
    for threaded in reversed(started):
        threaded.stop()


@pytest.fixture
def threaded_emulator(make_threaded_emulator: MakeThreadedEmulator) -> ThreadedEmulator:
    """A threaded emulator with the default config (scenario `empty`, speed 1)."""
    return make_threaded_emulator()
