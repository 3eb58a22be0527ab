"""Emulator fixtures the app tests share: frozen-clock `empty` and `demo` workspaces."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.ui.harness import start_frozen
from tui.emulator.server import RunningEmulator


@pytest.fixture
async def empty() -> AsyncIterator[RunningEmulator]:
    emulator = await start_frozen("empty")
    yield emulator
    await emulator.stop()


@pytest.fixture
async def demo() -> AsyncIterator[RunningEmulator]:
    emulator = await start_frozen("demo")
    yield emulator
    await emulator.stop()
