"""An emulator on its own event loop in a background thread, for blocking (sync SDK) callers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from tui.emulator.engine import Engine
from tui.emulator.server import EmulatorConfig, RunningEmulator, start_emulator

T = TypeVar("T")


class ThreadedEmulator:
    """`with ThreadedEmulator(config) as emu:` gives `.url`, `.port`, `.engine` to sync code."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="batchtop-emulator", daemon=True)
        self._running: RunningEmulator | None = None

    def start(self) -> ThreadedEmulator:
        self._thread.start()
        try:
            self._running = self.run(start_emulator(self.config))
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def running(self) -> RunningEmulator:
        if self._running is None:
            raise RuntimeError("the emulator is not started")
        return self._running

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def engine(self) -> Engine:
        return self.running.engine

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the emulator's loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    def call(self, function: Callable[[], T], timeout: float = 30.0) -> T:
        """Call a function on the emulator's loop thread (e.g. to change engine state)."""

        async def call() -> T:
            return function()

        return self.run(call(), timeout)

    def stop(self) -> None:
        if self._running is not None:
            self.run(self._running.stop())
            self._running = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_closed() and not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> ThreadedEmulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
