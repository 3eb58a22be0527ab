"""One builder of the services behind both front ends, so the app and the CLI cannot drift."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.alerts import ALERT_RAISED
from tui.core.cadence import Backoff, Cadence
from tui.core.events import BATCH_ENDED
from tui.core.timefmt import utcnow
from tui.paths import locations
from tui.service.audit import AuditLog, SharedAuditHistory
from tui.service.ledger import Ledger
from tui.settings import Settings

if TYPE_CHECKING:
    # The SDK takes seconds to import: it is loaded by `build_services`, not by importing this.
    from tui.service.actions import Actions
    from tui.service.alerting import AlertService
    from tui.service.api import BatchesAPI
    from tui.service.costing import CostService
    from tui.service.monitor import Monitor
    from tui.service.results_store import ResultsStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[object]]
StoreOpener = Callable[["BatchesAPI"], "ResultsStore"]


@dataclass(eq=False)
class ServiceSet:
    """The services around one workspace; the monitor, the actions and the alerts all write
    through `audit`, the one writer of the session.
    """

    settings: Settings
    api: BatchesAPI
    audit: AuditLog
    ledger: Ledger
    store: ResultsStore
    costs: CostService
    actions: Actions
    clock: Clock
    monitor: Monitor | None = None
    alerts: AlertService | None = None
    _action_api: BatchesAPI | None = None
    _closed: bool = False

    async def close(self) -> None:
        """Alerts, then the monitor (alerts raised at the end land before `session.ended`),
        the audit writer, the clients and the files; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.alerts is not None:
            try:
                await self.alerts.close()
            except Exception:
                log.exception("closing the alerts failed")
        if self.monitor is not None:
            self.monitor.stop()
        closers: list[Callable[[], Awaitable[None]]] = [self.audit.close, self.api.close]
        if self._action_api is not None:
            closers.append(self._action_api.close)
        for close in closers:
            try:
                await close()
            except Exception:
                log.exception("closing %s failed", close)
        for close_file in (self.ledger.close, self.store.close):
            try:
                close_file()
            except Exception:
                log.exception("closing %s failed", close_file)


def wire_services(
    settings: Settings,
    api: BatchesAPI,
    audit: AuditLog,
    ledger: Ledger,
    *,
    clock: Clock = utcnow,
    monitor: Monitor | None = None,
    read_only: bool | None = None,
    store: ResultsStore | None = None,
    action_api: BatchesAPI | None = None,
) -> ServiceSet:
    """Results store, costs, actions (and alerts, given the monitor) around a client, its
    audit log and a ledger, which the set then owns.

    Actions use `action_api` when given (a client that never retries by itself), else `api`.
    Actions and alerts write through `audit`, the monitor's writer; costs and alerts share
    one read of the audit log's history. The store defaults to the one of `api.workspace`.
    """
    from tui.service.actions import Actions
    from tui.service.costing import CostService
    from tui.service.results_store import ResultsStore

    if store is None:
        store = ResultsStore.default(api.workspace)
    history = SharedAuditHistory(audit.directory, {ALERT_RAISED, BATCH_ENDED})
    costs = CostService(store, settings, audit.directory, history=history)
    actions = Actions(action_api or api, ledger, audit, store,
                      read_only=settings.read_only if read_only is None else read_only,
                      prices=costs.prices, clock=clock)
    alerts = None
    if monitor is not None:
        from tui.service.alerting import AlertService

        alerts = AlertService(monitor, audit, settings, store=store, clock=clock,
                              history=history)
    return ServiceSet(settings=settings, api=api, audit=audit, ledger=ledger, store=store,
                      costs=costs, actions=actions, clock=clock, monitor=monitor, alerts=alerts,
                      _action_api=action_api)


async def build_services(
    settings: Settings,
    api_key: str,
    base_url: str | None,
    *,
    clock: Clock = utcnow,
    ledger_path: Path | None = None,
    read_only: bool | None = None,
    for_monitor: bool = False,
    max_retries: int = 0,
    sleep: Sleep = asyncio.sleep,
    cadence: Cadence | None = None,
    backoff: Backoff | None = None,
    open_store: StoreOpener | None = None,
) -> ServiceSet:
    """Client, audit log, ledger, results store, costs and actions for one workspace.

    `max_retries` is for the reads of `api` (one-shot commands may retry); actions always
    go through a client that never retries by itself: a create must never be sent twice.
    `for_monitor` adds the monitor (`cadence` or `settings.cadence`, `clock`, `sleep`,
    `backoff`) and the alert service (not started yet). `open_store` replaces the store
    keyed by `workspace_key(base_url, api_key)` (the app shares its batch screen's).
    """
    from tui.service.api import BatchesAPI
    from tui.service.monitor import Monitor

    api = BatchesAPI.connect(api_key, base_url, max_retries=max_retries)
    action_api = None if max_retries == 0 else BatchesAPI.connect(api_key, base_url)
    ledger: Ledger | None = None
    try:
        audit = AuditLog(locations().audit, secrets=[api_key], clock=clock)
        ledger = Ledger(ledger_path, clock=clock)
        monitor = None
        if for_monitor:
            monitor = Monitor(api, audit, cadence or settings.cadence, clock=clock, sleep=sleep,
                              backoff=backoff)
        store = open_store(api) if open_store is not None else None
        return wire_services(settings, api, audit, ledger, clock=clock, monitor=monitor,
                             read_only=read_only, store=store, action_api=action_api)
    except BaseException:
        if ledger is not None:
            ledger.close()
        for client in (api, action_api):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()
        raise
