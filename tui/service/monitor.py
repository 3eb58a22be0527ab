"""The live monitor: one scheduler loop, adaptive polling per batch, diffs turned into events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from tui.core.cadence import Backoff, Cadence, next_poll_at
from tui.core.events import (
    API_ERROR,
    API_RECOVERED,
    SESSION_ENDED,
    SESSION_STARTED,
    Event,
    diff_snapshots,
    gone_event,
)
from tui.core.models import BatchSnapshot
from tui.core.timefmt import utcnow
from tui.service.api import ApiCall, ApiError, BatchesAPI

log = logging.getLogger(__name__)

RECENT_EVENTS = 500
# While the audit log holds events it could not write (full disk), try again this often.
AUDIT_RETRY_S = 5.0
# A 404 this soon after created_at is the API's propagation delay, not a deletion.
TRANSIENT_404_S = 10.0
COALESCE_S = 1.0

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[object]]
Subscriber = Callable[["MonitorState"], None]


class EventSink(Protocol):
    """Where events are written (the audit log); `record` returns once the event is durable."""

    async def record(self, event: Event) -> None: ...


@runtime_checkable
class BulkEventSink(EventSink, Protocol):
    """A sink that writes many events at once (one fsync per file, not per event)."""

    async def record_many(self, events: Iterable[Event]) -> None: ...


@runtime_checkable
class BacklogSink(Protocol):
    """A sink that keeps events it could not write and retries them (the audit log).

    The sink may be shared (actions and alerts write through it too): `pending_count`
    counts everyone's lines, so only `last_error` says that writes are actually failing.
    """

    @property
    def pending_count(self) -> int: ...

    @property
    def last_error(self) -> str | None: ...

    async def flush_pending(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Degraded:
    """The API is failing; polling waits until `next_retry_at`, then tries again by itself."""

    message: str
    kind: str
    error_type: str | None
    status: int | None
    request_id: str | None
    next_retry_at: datetime
    since: datetime
    failures: int


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One line of the event pane: an event or an API call, and when it happened."""

    at: datetime
    item: Event | ApiCall


EMPTY_BATCHES: Mapping[str, BatchSnapshot] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class MonitorState:
    """Everything the UI shows about the monitor, published whole after every change."""

    batches: Mapping[str, BatchSnapshot] = field(default_factory=lambda: EMPTY_BATCHES)
    order: tuple[str, ...] = ()  # batch ids, newest first
    synced: bool = False  # the first full list has been read to the end
    last_sync: datetime | None = None  # last time the API answered
    next_poll_at: datetime | None = None
    fetching: bool = False
    paused: bool = False
    degraded: Degraded | None = None
    focused: str | None = None
    api_calls: int = 0
    recent_events: tuple[FeedEntry, ...] = ()
    audit_error: str | None = None  # the audit log could not be written


class Monitor:
    """Keeps a live picture of every batch: full sync, then adaptive polling per batch.

    One loop, one tick at a time: it sleeps until the earliest due time (a running batch,
    discovery of new batches, the sweep of ended ones) or until woken by `refresh_now`,
    `focus`, `resume` or `stop`. Transient API failures put it in a degraded state with
    backoff; the first success after that recovers by itself.
    """

    def __init__(
        self,
        api: BatchesAPI,
        audit: EventSink,
        cadence: Cadence | None = None,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
        *,
        backoff: Backoff | None = None,
        page_limit: int = 1000,
        scan_limit: int = 100,
        bulk_threshold: int = 3,
        concurrency: int = 4,
    ) -> None:
        self.api = api
        self._workspace = api.workspace  # named in batch.ended (ETA history)
        self.audit = audit
        self.cadence = cadence if cadence is not None else Cadence()
        self._clock = clock
        self._sleep = sleep
        self._backoff = backoff if backoff is not None else Backoff()
        self._page_limit = page_limit
        self._scan_limit = scan_limit
        # From this many batches due at once, one list call beats one retrieve each.
        self._bulk_threshold = bulk_threshold
        self._concurrency = concurrency

        self._batches: dict[str, BatchSnapshot] = {}
        self._running: set[str] = set()  # ids of batches not yet ended
        self._polled_at: dict[str, datetime] = {}
        self._next_discover: datetime | None = None
        self._next_sweep: datetime | None = None
        self._synced = False
        self._forced = False
        self._focused: str | None = None
        self._paused = False
        self._stopping = False
        self._fetching = False
        self._last_sync: datetime | None = None
        self._degraded: Degraded | None = None
        self._audit_error: str | None = None
        self._feed: deque[FeedEntry] = deque(maxlen=RECENT_EVENTS)

        self._subscribers: list[Subscriber] = []
        self._wake = asyncio.Event()
        self._tick_task: asyncio.Task[None] | None = None
        self._refresh_waiters: list[asyncio.Future[None]] = []
        self._outbox: asyncio.Queue[Event | None] = asyncio.Queue()
        self._running_loop = False
        self._writing = False  # the audit writer task is alive
        self._emitted = 0  # events put in the outbox so far
        self._written = 0  # of those, how many the writer has handed to the sink
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._forced_ids: set[str] = set()

        self._published_batches: Mapping[str, BatchSnapshot] = EMPTY_BATCHES
        self._published_order: tuple[str, ...] = ()
        self._batches_dirty = False
        self._order_dirty = False
        self._state = MonitorState()

    # -- public surface ------------------------------------------------------------------------

    @property
    def state(self) -> MonitorState:
        return self._state

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback` with every new state (and once now); returns an unsubscribe function."""
        self._subscribers.append(callback)
        callback(self._state)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def pause(self) -> None:
        """Stop polling (the tick in flight finishes); `resume` or `refresh_now` go on."""
        self._paused = True
        self._publish()

    def resume(self) -> None:
        self._paused = False
        self._publish()
        self._wake.set()

    def focus(self, batch_id: str | None) -> None:
        """Poll this batch (the one open on screen) now, then every `cadence.focused_s` while it
        runs; None goes back to the normal cadence."""
        if batch_id == self._focused:
            return
        self._focused = batch_id
        if batch_id is not None and batch_id in self._running:
            # Opening a batch shows it fresh: poll it now, then every focused_s.
            self._polled_at.pop(batch_id, None)
            self._wake.set()
        self._publish()

    async def refresh_now(self, ids: Iterable[str] | None = None) -> None:
        """Poll every running batch and the first list page now; returns when that is done.

        With `ids`, only those batches are retrieved (ended or not, known or not: an id the
        API no longer has is dropped with ``batch.gone``), plus whatever was due anyway.
        Works while paused (one refresh, then still paused) and while degraded (the
        retry happens now instead of at `next_retry_at`).
        """
        if not self._running_loop or self._stopping:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._refresh_waiters.append(waiter)
        if ids is None:
            self._forced = True
        else:
            self._forced_ids.update(ids)
            if not self._forced_ids:
                self._forced = True  # an empty selection still means "refresh now"
        self._wake.set()
        await waiter

    def forget(self, batch_id: str) -> None:
        """Drop a batch now (it was just deleted); a no-op for a batch not known.

        Emits ``batch.gone`` with ``"reason": "deleted"``, as the next sync would have
        done without the reason, so the audit timeline of the batch ends the same way
        whether this process deleted it or another one did.
        """
        self._forced_ids.discard(batch_id)
        self._drop(batch_id, reason="deleted")
        self._publish()

    def flushed(self) -> asyncio.Future[None]:
        """Done once every event emitted so far has been handed to the audit sink (written,
        or held by it after a failure); at once when no writer runs.

        The mark is taken when this is called, so a caller that reacts to a published state
        (the alert service) can write its own record after that state's events.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._writing or self._written >= self._emitted:
            future.set_result(None)
        else:
            self._flush_waiters.append((self._emitted, future))
        return future

    def stop(self) -> None:
        """End `run()`: the tick in flight is cancelled, pending events are written, then
        ``session.ended``."""
        self._stopping = True
        if self._tick_task is not None:
            self._tick_task.cancel()
        self._wake.set()

    async def run(self) -> None:
        """Run until `stop()`."""
        self._running_loop = True
        started = self._clock()
        self._writing = True
        writer = asyncio.create_task(self._write_events(), name="monitor-audit-writer")
        remove_hook = self.api.add_call_hook(self._on_call)
        self._emit(Event(SESSION_STARTED, None, {"cadence": _cadence_data(self.cadence)}))
        try:
            await self._loop()
        finally:
            remove_hook()
            self._running_loop = False
            self._release_refresh_waiters()
            ended = self._clock()
            self._emit(
                Event(
                    SESSION_ENDED,
                    None,
                    {
                        "duration_s": round((ended - started).total_seconds(), 3),
                        "api_calls": self.api.total_calls,
                        "batches": len(self._batches),
                    },
                )
            )
            self._outbox.put_nowait(None)
            try:
                await writer
            finally:
                self._writing = False
                self._release_flush_waiters(everything=True)
            self._fetching = False
            self._publish()

    # -- the loop ------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            forced = self._forced or bool(self._forced_ids)
            now = self._clock()
            if self._paused and not forced:
                await self._sleep_until(None)
                continue
            if self._degraded is not None and not forced and now < self._degraded.next_retry_at:
                await self._sleep_until(self._degraded.next_retry_at)
                continue
            everything = self._forced
            ids, self._forced_ids = self._forced_ids, set()
            self._forced = False
            calls_before = self.api.total_calls
            task = self._tick_task = asyncio.create_task(self._tick(now, everything, ids))
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()  # run() itself was cancelled: take the tick down with it
                raise
            finally:
                self._tick_task = None
            if task.cancelled():
                break
            error = task.exception()
            if isinstance(error, ApiError):
                self._on_failure(error)
            elif isinstance(error, Exception):
                self._on_failure(self._unexpected(error))
            elif error is not None:
                raise error
            elif self.api.total_calls != calls_before:
                self._on_success()
            if forced:
                self._release_refresh_waiters()
            self._fetching = False
            self._publish()
            if not self._paused:
                await self._sleep_until(self._next_due())

    async def _tick(self, now: datetime, forced: bool, ids: Iterable[str] = ()) -> None:
        """Do whatever is due at `now` (all running batches when `forced`, and `ids` in any
        case); an ApiError leaves the rest due for the next try."""
        if not self._synced or (self._next_sweep is not None and now >= self._next_sweep):
            await self._sync_all(now, initial=not self._synced)
            return
        if forced or (self._next_discover is not None and now >= self._next_discover):
            await self._discover(now)
        # Batches due within COALESCE_S ride along: fewer wake-ups, more list-sized groups.
        horizon = now + timedelta(seconds=COALESCE_S)
        due = [
            batch_id
            for batch_id in self._running
            if forced or self._due_at(batch_id) <= horizon
        ]
        if len(due) >= self._bulk_threshold:
            due = await self._refresh_by_list(now, due)
        due.extend(batch_id for batch_id in dict.fromkeys(ids) if batch_id not in due)
        if due:
            await self._retrieve_each(now, due)

    async def _sleep_until(self, when: datetime | None) -> None:
        """Sleep until `when` (None: until woken); `refresh_now`/`resume`/`stop` wake it early."""
        if self._wake.is_set() or self._stopping:
            return
        delay = None if when is None else (when - self._clock()).total_seconds()
        if delay is not None and delay <= 0:
            return
        waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(self._wake.wait())}
        if delay is not None:
            waiters.add(asyncio.ensure_future(self._sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _next_due(self) -> datetime | None:
        """When the loop has work next; None: nothing until woken. A failed attempt is
        retried at its backoff time, even when the failure left nothing else due (a first
        sync that failed knows no batch and has no discovery scheduled yet)."""
        if self._degraded is not None:
            return self._degraded.next_retry_at
        candidates = [self._due_at(batch_id) for batch_id in self._running]
        candidates.extend(t for t in (self._next_discover, self._next_sweep) if t is not None)
        return min(candidates, default=None)

    def _due_at(self, batch_id: str) -> datetime:
        batch = self._batches[batch_id]
        polled = self._polled_at.get(batch_id, batch.created_at)
        due = next_poll_at(batch, polled, self.cadence, focused=batch_id == self._focused)
        # Running batches always have a due time; an ended one here would be a bookkeeping slip.
        return due if due is not None else polled + timedelta(seconds=self.cadence.ended_sweep_s)

    # -- the work ------------------------------------------------------------------------------

    async def _sync_all(self, now: datetime, *, initial: bool) -> None:
        """Read every page; publish after each so the first rows show before the end."""
        seen: set[str] = set()
        self._set_fetching()
        async for page in self.api.iter_pages(self._page_limit):
            self._apply_many(page, now)
            seen.update(batch.id for batch in page)
            if initial:
                self._publish()
        for batch_id in [b for b in self._batches if b not in seen]:
            if not self._recently_created(batch_id, now):
                self._drop(batch_id)
        self._synced = True
        self._next_discover = now + timedelta(seconds=self.cadence.discover_s)
        self._next_sweep = now + timedelta(seconds=self.cadence.ended_sweep_s)

    async def _discover(self, now: datetime) -> None:
        """New batches show up at the head of the list: read pages until a known id."""
        self._set_fetching()
        async with contextlib.aclosing(self.api.iter_pages(self._scan_limit)) as pages:
            async for page in pages:
                known = any(batch.id in self._batches for batch in page)
                self._apply_many(page, now)
                if known:
                    break
        self._next_discover = now + timedelta(seconds=self.cadence.discover_s)

    async def _refresh_by_list(self, now: datetime, due: list[str]) -> list[str]:
        """Refresh due batches from list pages; returns the ids the pages did not cover.

        Running batches are usually the newest, so the first page tends to hold them all.
        Reading stops once another page would cost more than retrieving those still missing.
        """
        missing = set(due)
        oldest = min(self._batches[batch_id].created_at for batch_id in due)
        self._set_fetching()
        read = 0
        async with contextlib.aclosing(self.api.iter_pages(self._scan_limit)) as pages:
            async for page in pages:
                read += 1
                self._apply_many(page, now)
                missing.difference_update(batch.id for batch in page)
                if not missing or not page or page[-1].created_at < oldest:
                    break
                if len(missing) < self._bulk_threshold or read >= len(missing):
                    break
        return [batch_id for batch_id in due if batch_id in missing]

    async def _retrieve_each(self, now: datetime, due: Iterable[str]) -> None:
        """Retrieve batches a few at a time; the first failure stops the rest of the tick."""
        self._set_fetching()
        gate = asyncio.Semaphore(self._concurrency)
        failed: list[ApiError] = []

        async def poll(batch_id: str) -> None:
            async with gate:
                if failed:
                    return
                try:
                    snapshot = await self.api.retrieve(batch_id)
                except ApiError as error:
                    if error.kind == "not_found":
                        self._on_not_found(batch_id, now)
                    else:
                        failed.append(error)
                    return
                self._apply(snapshot, now)

        await asyncio.gather(*(poll(batch_id) for batch_id in due))
        if failed:
            raise failed[0]

    def _on_not_found(self, batch_id: str, now: datetime) -> None:
        if batch_id not in self._batches:
            return  # asked for by id and never seen: nothing to drop
        if self._recently_created(batch_id, now):
            self._polled_at[batch_id] = now  # propagation delay: ask again next time
        else:
            self._drop(batch_id)

    def _recently_created(self, batch_id: str, now: datetime) -> bool:
        batch = self._batches.get(batch_id)
        return batch is not None and (now - batch.created_at).total_seconds() < TRANSIENT_404_S

    # -- state changes -------------------------------------------------------------------------

    def _apply_many(self, batches: Iterable[BatchSnapshot], now: datetime) -> None:
        for batch in batches:
            self._apply(batch, now)

    def _apply(self, batch: BatchSnapshot, now: datetime) -> None:
        batch_id = batch.id
        if batch.is_ended:
            self._running.discard(batch_id)
            self._polled_at.pop(batch_id, None)
        else:
            self._running.add(batch_id)
            self._polled_at[batch_id] = now
        prev = self._batches.get(batch_id)
        if prev == batch:
            return
        self._batches[batch_id] = batch
        self._batches_dirty = True
        if prev is None:
            self._order_dirty = True
        for event in diff_snapshots(prev, batch, self._workspace):
            self._emit(event)

    def _drop(self, batch_id: str, *, reason: str | None = None) -> None:
        prev = self._batches.pop(batch_id, None)
        self._running.discard(batch_id)
        self._polled_at.pop(batch_id, None)
        if prev is not None:
            self._batches_dirty = self._order_dirty = True
            event = gone_event(prev)
            if reason is not None:
                event = Event(event.event, event.batch_id, {**event.data, "reason": reason})
            self._emit(event)

    def _unexpected(self, error: Exception) -> ApiError:
        """A failure that is no ApiError (a bug, an answer nothing expected): keep monitoring,
        show it as degraded, back off. The traceback goes to the debug log, not the screen."""
        log.warning("monitor tick failed: %s", type(error).__name__)
        log.debug("monitor tick failed", exc_info=error)
        secret = getattr(getattr(self.api, "client", None), "api_key", None)
        text = ApiError.from_exception(error, secret=secret).message
        return ApiError(f"unexpected {type(error).__name__}: {text}", kind="other")

    def _on_failure(self, error: ApiError) -> None:
        now = self._clock()
        delay = self._backoff.next_delay(error.retry_after if error.transient else None)
        retry_at = now + timedelta(seconds=delay)
        previous = self._degraded
        if previous is None:
            self._emit(
                Event(
                    API_ERROR,
                    None,
                    {
                        "kind": error.kind,
                        "status": error.status,
                        "error_type": error.error_type,
                        "message": error.message,
                        "request_id": error.request_id,
                        "retry_in_s": round(delay, 3),
                    },
                )
            )
        self._degraded = Degraded(
            message=error.message,
            kind=error.kind,
            error_type=error.error_type,
            status=error.status,
            request_id=error.request_id,
            next_retry_at=retry_at,
            since=previous.since if previous is not None else now,
            failures=self._backoff.failures,
        )

    def _on_success(self) -> None:
        now = self._clock()
        self._last_sync = now
        previous, self._degraded = self._degraded, None
        self._backoff.reset()
        if previous is not None:
            self._emit(
                Event(
                    API_RECOVERED,
                    None,
                    {
                        "outage_s": round((now - previous.since).total_seconds(), 3),
                        "failures": previous.failures,
                        "last_error_type": previous.error_type,
                    },
                )
            )

    def _set_fetching(self) -> None:
        if not self._fetching:
            self._fetching = True
            self._publish()

    def _release_refresh_waiters(self) -> None:
        waiters, self._refresh_waiters = self._refresh_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- events and publishing -----------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        """Into the event pane now, into the audit log in order (without blocking the loop)."""
        self._feed.append(FeedEntry(self._clock(), event))
        self._emitted += 1
        self._outbox.put_nowait(event)

    def _release_flush_waiters(self, *, everything: bool = False) -> None:
        kept: list[tuple[int, asyncio.Future[None]]] = []
        for mark, future in self._flush_waiters:
            if everything or mark <= self._written:
                if not future.done():
                    future.set_result(None)
            else:
                kept.append((mark, future))
        self._flush_waiters = kept

    async def _write_events(self) -> None:
        """Write queued events in order; a burst (the first sync) goes out as one batch.

        While the sink holds events it could not write, they are retried every
        AUDIT_RETRY_S even if nothing new happens, and `audit_error` says so meanwhile.
        """
        done = False
        while not done:
            try:
                first = await asyncio.wait_for(self._outbox.get(), self._audit_retry_in())
            except TimeoutError:
                await self._flush_backlog()
                continue
            events = [first]
            while not self._outbox.empty():
                events.append(self._outbox.get_nowait())
            if events[-1] is None:
                done = True
            batch = [e for e in events if e is not None]
            try:
                await self._record(batch)
            except Exception as exc:  # a full disk must not stop the monitor
                log.warning("audit write failed: %s", exc)
                self._set_audit_error(f"audit log not written: {exc}")
            else:
                self._set_audit_error(self._backlog_error())
            finally:
                self._written += len(batch)
                self._release_flush_waiters()

    def _audit_retry_in(self) -> float | None:
        return AUDIT_RETRY_S if self._audit_failing() else None

    def _audit_failing(self) -> bool:
        """The sink holds lines because writing them failed (not merely because another
        writer sharing it has lines in flight)."""
        audit = self.audit
        return (isinstance(audit, BacklogSink) and audit.last_error is not None
                and audit.pending_count > 0)

    async def _flush_backlog(self) -> None:
        audit = self.audit
        if isinstance(audit, BacklogSink):
            with contextlib.suppress(Exception):
                await audit.flush_pending()
            self._set_audit_error(self._backlog_error())

    def _backlog_error(self) -> str | None:
        """The warning while the audit log (as a whole) cannot be written; None while it can."""
        audit = self.audit
        if not isinstance(audit, BacklogSink) or not self._audit_failing():
            return None
        count = audit.pending_count
        return (f"audit log not written ({count} event{'s' if count != 1 else ''} held, "
                f"retrying): {audit.last_error or 'unknown error'}")

    def _set_audit_error(self, message: str | None) -> None:
        if message != self._audit_error:
            self._audit_error = message
            self._publish()

    async def _record(self, events: list[Event]) -> None:
        if isinstance(self.audit, BulkEventSink):
            await self.audit.record_many(events)
        else:
            for event in events:
                await self.audit.record(event)

    def _on_call(self, call: ApiCall) -> None:
        self._feed.append(FeedEntry(self._clock(), call))
        self._publish()

    def _publish(self) -> None:
        if self._batches_dirty:
            self._published_batches = MappingProxyType(dict(self._batches))
            self._batches_dirty = False
        if self._order_dirty:
            self._published_order = tuple(
                sorted(self._batches, key=lambda i: (self._batches[i].created_at, i), reverse=True)
            )
            self._order_dirty = False
        if self._paused:
            next_poll = None
        elif self._degraded is not None:
            next_poll = self._degraded.next_retry_at
        else:
            next_poll = self._next_due() if self._synced else None
        self._state = MonitorState(
            batches=self._published_batches,
            order=self._published_order,
            synced=self._synced,
            last_sync=self._last_sync,
            next_poll_at=next_poll,
            fetching=self._fetching,
            paused=self._paused,
            degraded=self._degraded,
            focused=self._focused,
            api_calls=self.api.total_calls,
            recent_events=tuple(self._feed),
            audit_error=self._audit_error,
        )
        for callback in tuple(self._subscribers):
            try:
                callback(self._state)
            except Exception:
                log.exception("monitor subscriber failed")


def _cadence_data(cadence: Cadence) -> dict[str, float]:
    return {
        name: getattr(cadence, name)
        for name in (
            "young_s", "young_until_s", "middle_s", "middle_until_s", "old_s",
            "discover_s", "ended_sweep_s", "focused_s",
        )
    }
