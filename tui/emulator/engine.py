"""The batch store: create, list with cursors, retrieve, cancel, delete, and results access."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tui.core.models import ENDED, IN_PROGRESS, BatchSnapshot
from tui.emulator.body_cache import BodyCache
from tui.emulator.clock import Clock, to_datetime
from tui.emulator.content import PLAIN
from tui.emulator.errors import invalid, not_found
from tui.emulator.faults import FaultDice, Faults
from tui.emulator.ids import IdFactory, mix64
from tui.emulator.model import BatchRecord, BatchState, default_duration
from tui.emulator.sources import RequestSource, StoredRequests
from tui.emulator.validation import Invalid


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the emulator received it, and the status it answered (journal entry)."""

    method: str
    path: str
    query: str
    retry_count: str | None
    status: int


# A scenario hook run before each operation: it may add batches that "arrived" meanwhile.
Arrivals = Callable[["Engine", float], None]


class Engine:
    """All batches of one emulator, kept sorted by creation time, oldest first."""

    def __init__(self, *, clock: Clock | None = None, seed: int = 0, error_rate: float = 0.05,
                 live_counts: bool = False, faults: Faults | None = None) -> None:
        self.clock = clock or Clock()
        self.seed = seed
        self.error_rate = error_rate
        self.live_counts = live_counts
        self.faults = faults or Faults()
        self.dice = FaultDice(seed)
        self.ids = IdFactory(seed)
        self.arrivals: Arrivals | None = None
        self._records: list[BatchRecord] = []
        self._keys: list[tuple[float, int]] = []
        self._positions: dict[str, int] | None = {}
        self._gone: dict[str, tuple[float, int]] = {}
        self.journal: deque[Seen] = deque(maxlen=10_000)
        self._seq = 0
        self._messages = 0
        self._cache_written = False
        self.bodies = BodyCache()

    # -- building ---------------------------------------------------------------------------

    def add_batch(self, source: RequestSource, *, created: float, duration: float | None = None,
                  error_rate: float | None = None, style: str = PLAIN,
                  cancel_initiated: float | None = None, cancel_seconds: float | None = None,
                  label: str | None = None, forced: Mapping[int, Invalid] | None = None,
                  key: int | None = None) -> BatchRecord:
        """Store a batch (created now or in the past) and return it."""
        self._seq += 1
        record = BatchRecord(
            id=self.ids.batch_id(),
            key=mix64(self.seed * 1_000_003 + self._seq) if key is None else key,
            created=created,
            source=source,
            duration=default_duration(len(source)) if duration is None else duration,
            error_rate=self.error_rate if error_rate is None else error_rate,
            style=style,
            cancel_initiated=cancel_initiated,
            label=label,
            forced=dict(forced or {}),
            seq=self._seq,
        )
        if cancel_seconds is not None:
            record.cancel_seconds = cancel_seconds
        sort_key = (record.created, record.seq)
        if not self._keys or sort_key > self._keys[-1]:
            self._keys.append(sort_key)
            self._records.append(record)
            if self._positions is not None:
                self._positions[record.id] = len(self._records) - 1
        else:
            position = bisect_left(self._keys, sort_key)
            insort(self._keys, sort_key)
            self._records.insert(position, record)
            self._positions = None
        return record

    def create(self, pairs: Sequence[tuple[str, Mapping[str, Any]]]) -> BatchRecord:
        """A batch submitted through the API, created at the current emulator time."""
        now = self._tick()
        return self.add_batch(StoredRequests(pairs), created=now)

    # -- reading ----------------------------------------------------------------------------

    def _tick(self) -> float:
        now = self.clock.time()
        if self.arrivals is not None:
            self.arrivals(self, now)
        return now

    def _position(self, batch_id: str) -> int | None:
        if self._positions is None:
            self._positions = {record.id: n for n, record in enumerate(self._records)}
        return self._positions.get(batch_id)

    def __len__(self) -> int:
        return len(self._records)

    def get(self, batch_id: str) -> BatchRecord:
        self._tick()
        position = self._position(batch_id)
        if position is None:
            raise not_found(f"No message batch with id '{batch_id}'")
        return self._records[position]

    def retrieve(self, batch_id: str) -> BatchRecord:
        """`get`, plus the transient 404 right after create when that fault is on."""
        record = self.get(batch_id)
        window = self.faults.notfound_after_create
        if window and self.clock.time() - record.created < window:
            raise not_found(f"No message batch with id '{batch_id}'")
        return record

    def labelled(self, label: str) -> BatchRecord:
        """The scenario batch with this label (e.g. ``"hostile"`` in the demo)."""
        for record in self._records:
            if record.label == label:
                return record
        raise KeyError(label)

    def records(self) -> list[BatchRecord]:
        """Every stored batch, oldest first."""
        self._tick()
        return list(self._records)

    def state(self, record: BatchRecord) -> BatchState:
        return record.state(self.clock.time(), live_counts=self.live_counts)

    def _cursor(self, name: str, batch_id: str) -> tuple[float, int]:
        position = self._position(batch_id)
        if position is not None:
            return self._keys[position]
        if batch_id in self._gone:
            return self._gone[batch_id]
        raise invalid(f"{name}: no message batch with id '{batch_id}'")

    def page(self, *, limit: int = 20, after_id: str | None = None,
             before_id: str | None = None) -> tuple[list[BatchRecord], bool]:
        """One page, newest first, and whether more exist in the requested direction."""
        self._tick()
        if after_id is not None and before_id is not None:
            raise invalid("Only one of after_id and before_id may be given")
        total = len(self._records)
        if after_id is not None:
            stop = bisect_left(self._keys, self._cursor("after_id", after_id))
            start = max(0, stop - limit)
            has_more = start > 0
        elif before_id is not None:
            start = bisect_right(self._keys, self._cursor("before_id", before_id))
            stop = min(total, start + limit)
            has_more = stop < total
        else:
            start, stop = max(0, total - limit), total
            has_more = start > 0
        return self._records[start:stop][::-1], has_more

    # -- changing ---------------------------------------------------------------------------

    def cancel(self, batch_id: str) -> BatchRecord:
        record = self.get(batch_id)
        now = self.clock.time()
        status = record.state(now).status
        if status == IN_PROGRESS:
            record.cancel_initiated = now
        elif status == ENDED:
            raise invalid(f"Message batch '{batch_id}' has already ended and cannot be "
                          "canceled.")
        return record

    def delete(self, batch_id: str) -> None:
        record = self.get(batch_id)
        status = record.state(self.clock.time()).status
        if status != ENDED:
            raise invalid(f"Message batch '{batch_id}' is {status}; only ended batches can be "
                          "deleted (cancel it first).")
        position = self._position(batch_id)
        assert position is not None
        self.bodies.drop(batch_id)
        self._gone[batch_id] = self._keys[position]
        del self._records[position]
        del self._keys[position]
        self._positions = None

    def results(self, batch_id: str) -> tuple[BatchRecord, BatchState]:
        """The batch and its final state, if its results can be downloaded."""
        record = self.retrieve(batch_id)
        state = self.state(record)
        if not state.is_ended:
            raise invalid(f"Results for message batch '{batch_id}' are not available until it "
                          f"has ended (processing_status: {state.status}).")
        if state.archived_at is not None:
            raise not_found(f"Results for message batch '{batch_id}' are no longer available: "
                            "the batch was archived 29 days after creation.")
        return record, state

    def next_message_serial(self) -> int:
        """A counter for `POST /v1/messages` answers (deterministic per seed)."""
        self._messages += 1
        return self._messages

    def note_cache_write(self) -> bool:
        """Record a prompt-cache write; True when the cache already existed."""
        existed, self._cache_written = self._cache_written, True
        return existed

    # -- views ------------------------------------------------------------------------------

    def describe(self, record: BatchRecord, base_url: str) -> dict[str, Any]:
        """The MessageBatch JSON object; `results_url` is absolute, on the caller's host."""
        state = self.state(record)
        snapshot = BatchSnapshot(
            id=record.id,
            processing_status=state.status,
            request_counts=state.counts,
            created_at=to_datetime(record.created),
            expires_at=to_datetime(record.expires),
            ended_at=to_datetime(state.ended_at) if state.ended_at is not None else None,
            cancel_initiated_at=(to_datetime(record.cancel_initiated)
                                 if record.cancel_initiated is not None else None),
            archived_at=to_datetime(state.archived_at) if state.archived_at is not None else None,
            results_url=(f"{base_url}/v1/messages/batches/{record.id}/results"
                         if state.is_ended else None),
        )
        return snapshot.to_api()
