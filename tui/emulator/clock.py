"""Emulator time: wall-clock start, running `speed` times faster, and movable forward by tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class Clock:
    """Seconds since the epoch in emulator time; every batch state is computed from it."""

    def __init__(self, speed: float = 1.0, *, start: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self._monotonic = monotonic
        self._base = time.time() if start is None else start
        self._anchor = monotonic()
        self._speed = speed

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        if value <= 0:
            raise ValueError("speed must be > 0")
        self._base = self.time()  # rebase so time stays continuous across a speed change
        self._anchor = self._monotonic()
        self._speed = value

    def time(self) -> float:
        """Emulator time as epoch seconds."""
        return self._base + (self._monotonic() - self._anchor) * self._speed

    def now(self) -> datetime:
        return to_datetime(self.time())

    def advance(self, seconds: float) -> None:
        """Jump forward; time never goes back."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._base += seconds


def to_datetime(epoch: float) -> datetime:
    """Epoch seconds to an aware UTC datetime, rounded to the microsecond."""
    return datetime.fromtimestamp(round(epoch, 6), UTC)
