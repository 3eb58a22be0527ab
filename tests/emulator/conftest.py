"""Emulator tests: close every SDK client a test opened, on that test's own event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.emulator.sdk import OPEN_ASYNC, OPEN_SYNC


@pytest_asyncio.fixture(autouse=True)
async def close_sdk_clients() -> AsyncIterator[None]:
    yield
    while OPEN_ASYNC:
        await OPEN_ASYNC.pop().close()
    while OPEN_SYNC:
        OPEN_SYNC.pop().close()
