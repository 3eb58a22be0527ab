"""How often to poll each batch, and how long to back off after API failures."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from tui.core.models import BatchSnapshot


@dataclass(frozen=True, slots=True)
class Cadence:
    """Polling intervals in seconds; the age bands are measured from the batch's ``created_at``.

    Young batches change fast and old ones slowly, so polling backs off with age: every
    `young_s` for the first `young_until_s`, every `middle_s` until `middle_until_s`, then
    every `old_s`. The batch the user is looking at is polled every `focused_s`. The first
    list page is re-read every `discover_s` to find new batches, and ended batches are swept
    every `ended_sweep_s` to notice ``archived_at`` and deletions.
    """

    young_s: float = 10.0
    young_until_s: float = 300.0
    middle_s: float = 60.0
    middle_until_s: float = 3600.0
    old_s: float = 300.0
    discover_s: float = 30.0
    ended_sweep_s: float = 600.0
    focused_s: float = 3.0

    def __post_init__(self) -> None:
        intervals = (
            self.young_s,
            self.middle_s,
            self.old_s,
            self.discover_s,
            self.ended_sweep_s,
            self.focused_s,
        )
        if not all(math.isfinite(value) and value > 0 for value in intervals):
            raise ValueError("poll intervals must be positive, finite numbers of seconds")
        if not 0 <= self.young_until_s <= self.middle_until_s:
            raise ValueError("age bands must satisfy 0 <= young_until_s <= middle_until_s")

    def for_age(self, age_s: float) -> float:
        """The interval for a running batch that is `age_s` seconds old."""
        if age_s < self.young_until_s:
            return self.young_s
        if age_s < self.middle_until_s:
            return self.middle_s
        return self.old_s


def poll_interval(
    batch: BatchSnapshot,
    now: datetime,
    cadence: Cadence,
    focused: bool = False,
) -> float | None:
    """Seconds until `batch` should be polled again; None once it has ended.

    A running batch ends at ``expires_at`` at the latest, so the wait never runs far past
    that moment: the end is noticed within `young_s` of the expiry, not `old_s`.
    """
    if batch.is_ended:
        return None
    age = (now - batch.created_at).total_seconds()
    interval = cadence.for_age(age)
    until_expiry = (batch.expires_at - now).total_seconds()
    if 0 < until_expiry < interval:
        interval = max(until_expiry, cadence.young_s)
    if focused:
        interval = min(interval, cadence.focused_s)
    return interval


def next_poll_at(
    batch: BatchSnapshot,
    polled_at: datetime,
    cadence: Cadence,
    focused: bool = False,
) -> datetime | None:
    """When to poll `batch` next, given it was observed at `polled_at`; None once ended."""
    interval = poll_interval(batch, polled_at, cadence, focused)
    return None if interval is None else polled_at + timedelta(seconds=interval)


class Backoff:
    """Exponential backoff with jitter for 429, 5xx and connection failures.

    Each call to `next_delay` counts one failure and returns how long to wait before the
    next attempt: ``base_s * factor**(failures-1)`` capped at `max_s`, with "equal jitter"
    (a random point in the upper half) so that many clients do not retry in step. A
    server-sent ``retry-after`` is honoured as given, up to `max_retry_after_s` (a spend-cap
    429 can ask for hours; the monitor still checks back every few minutes). `reset` after a
    success. Pure: it computes delays, it never sleeps.
    """

    __slots__ = ("_rng", "base_s", "factor", "failures", "max_retry_after_s", "max_s")

    def __init__(
        self,
        *,
        base_s: float = 1.0,
        factor: float = 2.0,
        max_s: float = 60.0,
        max_retry_after_s: float = 300.0,
        rng: random.Random | None = None,
        seed: int | None = None,
    ) -> None:
        if not (base_s > 0 and factor >= 1 and max_s >= base_s and max_retry_after_s > 0):
            raise ValueError("need base_s > 0, factor >= 1, max_s >= base_s, max_retry_after_s > 0")
        self.base_s = base_s
        self.factor = factor
        self.max_s = max_s
        self.max_retry_after_s = max_retry_after_s
        self.failures = 0
        self._rng = rng if rng is not None else random.Random(seed)

    def next_delay(self, retry_after: float | None = None) -> float:
        """Record one failure and return the seconds to wait before trying again."""
        self.failures += 1
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            return min(retry_after, self.max_retry_after_s)
        ceiling = self._ceiling(self.failures - 1)
        return ceiling / 2 + self._rng.uniform(0.0, ceiling / 2)

    def _ceiling(self, exponent: int) -> float:
        # Compare in log space: factor**exponent overflows a float long before the cap matters.
        room = math.log(self.max_s / self.base_s)
        if self.factor == 1 or exponent * math.log(self.factor) < room:
            return min(self.max_s, self.base_s * self.factor**exponent)
        return self.max_s

    def reset(self) -> None:
        """Forget past failures after a success."""
        self.failures = 0

    @property
    def failing(self) -> bool:
        return self.failures > 0
