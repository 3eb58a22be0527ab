"""One stored batch and its lifecycle, computed lazily from emulator time (no background tick)."""

from __future__ import annotations

import random
from bisect import bisect_left
from dataclasses import dataclass, field
from math import gcd

from tui.core.models import CANCELING, ENDED, IN_PROGRESS, RequestCounts
from tui.emulator.content import PLAIN, random_error
from tui.emulator.ids import mix64
from tui.emulator.sources import RequestSource
from tui.emulator.validation import Invalid

DAY = 86_400.0
EXPIRY_SECONDS = 1 * DAY
ARCHIVE_SECONDS = 29 * DAY
BASE_SECONDS = 60.0
PER_REQUEST_SECONDS = 0.03
CANCEL_SECONDS = 3.0

SUCCEEDED = "succeeded"
ERRORED = "errored"
CANCELED = "canceled"
EXPIRED = "expired"


def default_duration(count: int) -> float:
    """Default processing model: about 60 s plus 30 ms per request."""
    return BASE_SECONDS + PER_REQUEST_SECONDS * count


@dataclass(frozen=True, slots=True)
class Walk:
    """A strided walk over 0..n-1: the order requests finish in (and results are written in)."""

    count: int
    stride: int
    offset: int
    inverse: int

    @classmethod
    def for_key(cls, count: int, key: int) -> Walk:
        stride = 1
        if count > 2:
            stride = (int(count * 0.6180339887) + key % 7) % count
            while stride < 2 or gcd(stride, count) != 1:
                stride = (stride + 1) % count
        return cls(count, stride, key % count, pow(stride, -1, count) if count > 1 else 0)

    def index(self, rank: int) -> int:
        return (self.stride * rank + self.offset) % self.count

    def rank(self, index: int) -> int:
        return ((index - self.offset) * self.inverse) % self.count


@dataclass(frozen=True, slots=True)
class BatchState:
    """A batch as seen at one instant."""

    status: str
    counts: RequestCounts
    ended_at: float | None
    archived_at: float | None
    processed: int  # requests with a final outcome once ended (ranks below this)

    @property
    def is_ended(self) -> bool:
        return self.status == ENDED


@dataclass(eq=False, slots=True)
class BatchRecord:
    """Everything the emulator keeps about one batch; its state is a function of time."""

    id: str
    key: int
    created: float
    source: RequestSource
    duration: float
    error_rate: float
    style: str = PLAIN
    cancel_seconds: float = CANCEL_SECONDS
    cancel_initiated: float | None = None
    label: str | None = None
    forced: dict[int, Invalid] = field(default_factory=dict)
    seq: int = 0
    _walk: Walk | None = None
    _errors: dict[int, Invalid] | None = None
    _error_ranks: list[int] | None = None

    @property
    def count(self) -> int:
        return len(self.source)

    @property
    def expires(self) -> float:
        return self.created + EXPIRY_SECONDS

    @property
    def walk(self) -> Walk:
        if self._walk is None:
            self._walk = Walk.for_key(self.count, self.key)
        return self._walk

    @property
    def errors(self) -> dict[int, Invalid]:
        """Requests that end errored if processed: invalid params, forced, then a seeded share."""
        if self._errors is None:
            rng = random.Random(self.key)
            draws = rng.random
            rate = self.error_rate
            errors = {i: random_error(mix64(self.key + i))
                      for i in range(self.count) if draws() < rate}
            errors.update(self.source.invalid())
            errors.update(self.forced)
            self._errors = errors
        return self._errors

    def _errors_before(self, rank: int) -> int:
        if self._error_ranks is None:
            walk = self.walk
            self._error_ranks = sorted(walk.rank(i) for i in self.errors)
        return bisect_left(self._error_ranks, rank)

    def _processed_by(self, moment: float) -> int:
        if moment >= self.created + self.duration:  # the same float sum as the natural end
            return self.count
        done = int((moment - self.created) * self.count / self.duration + 1e-9)
        return max(0, min(self.count, done))

    def _cutoff_and_end(self) -> tuple[float, float]:
        """When processing stops (later requests never run) and when the batch ends."""
        natural = min(self.created + self.duration, self.expires)
        cancel = self.cancel_initiated
        if cancel is not None and cancel < natural:
            return cancel, cancel + self.cancel_seconds
        return natural, natural

    def state(self, now: float, *, live_counts: bool = False) -> BatchState:
        cutoff, end = self._cutoff_and_end()
        n = self.count
        if now < end:
            status = CANCELING if self.cancel_initiated is not None else IN_PROGRESS
            counts = RequestCounts(processing=n)
            if live_counts:
                done = self._processed_by(min(now, cutoff))
                errs = self._errors_before(done)
                counts = RequestCounts(processing=n - done, succeeded=done - errs, errored=errs)
            return BatchState(status, counts, None, None, 0)
        done = self._processed_by(cutoff)
        errs = self._errors_before(done)
        rest = n - done
        canceled = self.cancel_initiated is not None
        counts = RequestCounts(succeeded=done - errs, errored=errs,
                               canceled=rest if canceled else 0,
                               expired=0 if canceled else rest)
        archive = self.created + ARCHIVE_SECONDS
        return BatchState(ENDED, counts, end, archive if now >= archive else None, done)

    def can_cancel(self, now: float) -> bool:
        return self.state(now).status == IN_PROGRESS

    def outcome(self, index: int, processed: int) -> str:
        """Result type of one request once the batch has ended."""
        if self.walk.rank(index) >= processed:
            return CANCELED if self.cancel_initiated is not None else EXPIRED
        return ERRORED if index in self.errors else SUCCEEDED
