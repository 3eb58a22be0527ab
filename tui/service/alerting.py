"""Alerts from the monitor's state: raised once per batch and kind, audited, announced, hooked."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tui.core.alerts import ALERT_RAISED, Alert, AlertRules, AlertTracker, Severity
from tui.core.events import ALERT_HOOK_FAILED, Event
from tui.core.models import BatchSnapshot
from tui.core.results import StoreStatus
from tui.core.timefmt import utcnow
from tui.service.alert_hook import HookResult, run_alert_hook
from tui.service.audit import SharedAuditHistory
from tui.service.monitor import EMPTY_BATCHES, MonitorState
from tui.settings import Settings

log = logging.getLogger(__name__)

HOOK_TIMEOUT_S = 10.0
MAX_HOOKS = 4  # hooks run at once; a burst of alerts queues behind them
MAX_ACTIVE = 1_000
# Rules that depend only on time (SLA, expiry, archive) are re-checked at most this often
# while no batch changes; a batch change is always checked at once.
RECHECK_S = 10.0

Clock = Callable[[], datetime]
HookRunner = Callable[[str, Alert, float], Awaitable[HookResult]]
AlertListener = Callable[[Alert], None]


class StateSource(Protocol):
    """What the service needs of the monitor (`tui.service.monitor.Monitor` is one)."""

    def subscribe(self, callback: Callable[[MonitorState], None]) -> Callable[[], None]: ...


@runtime_checkable
class FlushingSource(Protocol):
    """A source whose events are written in the background (the monitor): `flushed()` is
    done once the events of every state published so far are handed to the audit log."""

    def flushed(self) -> Awaitable[None]: ...


class AlertAudit(Protocol):
    """Where alerts are recorded and read back from (`tui.service.audit.AuditLog` is one)."""

    directory: Path

    async def record(self, event: Event) -> None: ...


class StoredResults(Protocol):
    """What the service asks the results store (`ResultsStore` is one)."""

    def status(self, batch_id: str) -> StoreStatus | None: ...


def rules_from(settings: Settings) -> AlertRules:
    return AlertRules(error_rate=settings.error_rate_alert, sla_seconds=settings.sla_seconds)


class AlertService:
    """Watches the monitor and raises each alert once, even across restarts.

    An alert is recorded as ``alert.raised``, handed to subscribers (the UI toasts it and
    rings the bell when `bell` is set) and, when ``on_alert`` is configured, piped as JSON
    to that command in the background. A failing or hanging command is recorded as
    ``alert.hook_failed`` and never stops monitoring.
    """

    def __init__(
        self,
        monitor: StateSource,
        audit: AlertAudit,
        settings: Settings,
        *,
        store: StoredResults | None = None,
        clock: Clock = utcnow,
        run_hook: HookRunner = run_alert_hook,
        hook_timeout: float = HOOK_TIMEOUT_S,
        rules: AlertRules | None = None,
        history: SharedAuditHistory | None = None,
    ) -> None:
        self._monitor = monitor
        self._history = history
        self._audit = audit
        self._store = store
        self._clock = clock
        self._run_hook = run_hook
        self._hook_timeout = hook_timeout
        self._command = settings.on_alert or None
        self.bell = settings.bell
        self._tracker = AlertTracker(rules or rules_from(settings))
        self._listeners: list[AlertListener] = []
        self._active: deque[Alert] = deque(maxlen=MAX_ACTIVE)
        self._writes: set[asyncio.Task[None]] = set()
        self._hooks: set[asyncio.Task[None]] = set()
        self._hook_gate = asyncio.Semaphore(MAX_HOOKS)
        self._unsubscribe: Callable[[], None] | None = None
        self._state: MonitorState | None = None
        self._batches: Mapping[str, BatchSnapshot] = EMPTY_BATCHES
        self._checked_at: datetime | None = None
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Remember the alerts already in the audit log, then follow the monitor."""
        if self._unsubscribe is not None or self._closed:
            return
        history = self._history
        if history is None or not history.covers(ALERT_RAISED):
            history = SharedAuditHistory(self._audit.directory, {ALERT_RAISED})
        self._tracker.seed((await history.get()).of(ALERT_RAISED))
        self._unsubscribe = self._monitor.subscribe(self._on_state)

    async def close(self) -> None:
        """Stop following the monitor, cancel running hooks, finish writing the audit."""
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in self._hooks:
            task.cancel()
        await asyncio.gather(*self._hooks, return_exceptions=True)
        await asyncio.gather(*self._writes, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every alert so far is recorded and its hook has finished."""
        while pending := self._writes | self._hooks:
            await asyncio.gather(*pending, return_exceptions=True)

    # -- what the UI reads ---------------------------------------------------------------------

    def subscribe(self, callback: AlertListener) -> Callable[[], None]:
        """Call `callback` with each new alert; returns an unsubscribe function."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def worst(self, batch_id: str) -> Severity | None:
        """The most severe alert ever raised for the batch (restarts included), for its row."""
        return self._tracker.worst(batch_id)

    def active(self) -> list[Alert]:
        """Alerts raised since start, oldest first, for batches the monitor still lists."""
        return list(self._active)

    # -- evaluation ----------------------------------------------------------------------------

    def _on_state(self, state: MonitorState) -> None:
        if state is self._state or self._closed:
            return
        self._state = state
        now = self._clock()
        changed = state.batches is not self._batches
        if not changed and self._checked_at is not None and (
            (now - self._checked_at).total_seconds() < RECHECK_S
        ):
            return
        if changed:
            self._forget_gone(state.batches)
            self._batches = state.batches
        self._checked_at = now
        for alert in self._tracker.evaluate(state.batches.values(), now, self._stored):
            self._raise(alert)

    def _stored(self, batch_id: str) -> bool:
        if self._store is None:
            return False
        status = self._store.status(batch_id)
        return status is not None and status.complete

    def _forget_gone(self, batches: Mapping[str, BatchSnapshot]) -> None:
        gone = self._batches.keys() - batches.keys()
        if not gone:
            return
        for batch_id in gone:
            self._tracker.forget(batch_id)
        kept = [alert for alert in self._active if alert.batch_id not in gone]
        self._active.clear()
        self._active.extend(kept)

    def _raise(self, alert: Alert) -> None:
        self._active.append(alert)
        # After the events of the state that raised it (the monitor writes in the background):
        # the log then reads in causal order, batch.discovered before its alert.raised.
        after = self._monitor.flushed() if isinstance(self._monitor, FlushingSource) else None
        self._spawn(self._writes, self._record(alert.to_event(), after))
        if self._command is not None:
            self._spawn(self._hooks, self._hook(self._command, alert))
        for listener in tuple(self._listeners):
            try:
                listener(alert)
            except Exception:
                log.exception("alert subscriber failed")

    # -- background work -----------------------------------------------------------------------

    @staticmethod
    def _spawn(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _record(self, event: Event, after: Awaitable[None] | None = None) -> None:
        try:
            if after is not None:
                await after
            await self._audit.record(event)
        except Exception:  # the audit log queues I/O errors itself; anything else is a bug
            log.exception("cannot record %s", event.event)

    async def _hook(self, command: str, alert: Alert) -> None:
        async with self._hook_gate:
            try:
                result = await self._run_hook(command, alert, self._hook_timeout)
            except Exception as exc:  # run_alert_hook never raises; a substitute might
                log.exception("on_alert command failed")
                result = HookResult(False, None, f"{type(exc).__name__}: {exc}")
        if not result.ok:
            await self._record(Event(ALERT_HOOK_FAILED, alert.batch_id, {
                "kind": alert.kind.value,
                "error": result.error,
                "returncode": result.returncode,
            }))
