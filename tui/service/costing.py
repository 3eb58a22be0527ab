"""What ended batches cost, from their stored results, and when running batches should end."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from tui.core.cost import BatchCost, PriceError, PriceTable, UsageTotals, cost_of, sum_costs
from tui.core.eta import Eta, HistoryPoint, estimate_end, history_points
from tui.core.events import BATCH_ENDED
from tui.core.models import BatchSnapshot
from tui.core.sanitize import safe_text
from tui.service.audit import SharedAuditHistory
from tui.service.results_store import ResultsStore
from tui.settings import Settings

log = logging.getLogger(__name__)


def load_prices(settings: Settings) -> tuple[PriceTable, tuple[str, ...]]:
    """The shipped table with the config's ``[prices]``; a bad override is reported, not fatal."""
    try:
        return PriceTable.load(settings.prices), ()
    except PriceError as exc:
        return PriceTable.shipped(), (f"config [prices] ignored: {exc}",)


def stored_usage(store: ResultsStore, batch_id: str) -> UsageTotals:
    """Token sums per model of a batch's stored results, from the index in one query.

    The index keeps what exact cost needs: the 5-minute / 1-hour split of cache writes
    (priced 1.25x and 2x of input) and how many results were billed outside the batch tier.
    """
    sums = store.usage_totals(batch_id)
    return UsageTotals.from_mapping({model: asdict(usage) for model, usage in sums.items()})


class CostService:
    """Costs of ended batches whose results are stored, day and profile totals, and ETAs.

    Ended results never change, so a batch is costed once (one query over its index rows)
    and cached by id. `batch_cost` reads the store: call it from a worker, or
    `await load(...)` first and use `peek` where nothing may block (rendering a row).
    """

    def __init__(self, store: ResultsStore | None, settings: Settings, audit_dir: Path,
                 *, prices: PriceTable | None = None,
                 history: SharedAuditHistory | None = None) -> None:
        self.store = store
        self.audit_dir = Path(audit_dir)
        if history is None or not history.covers(BATCH_ENDED):
            history = SharedAuditHistory(self.audit_dir, {BATCH_ENDED})
        self._audit_history = history
        if prices is None:
            prices, self.warnings = load_prices(settings)
        else:
            self.warnings = ()
        self.prices = prices
        self._costs: dict[str, BatchCost] = {}
        self._ended_records: list[dict[str, Any]] | None = None
        self._observed: Mapping[str, BatchSnapshot] = {}
        self._ended_ids: frozenset[str] = frozenset()
        self._history: list[HistoryPoint] | None = None

    # -- cost of one batch ---------------------------------------------------------------------

    def peek(self, batch_id: str) -> BatchCost | None:
        """The cost if it is already known; never reads anything."""
        return self._costs.get(batch_id)

    def batch_cost(self, batch: BatchSnapshot) -> BatchCost | None:
        """The exact cost from the stored results; None until they are fully in the store."""
        known = self._costs.get(batch.id)
        if known is not None or self.store is None or not batch.is_ended:
            return known
        status = self.store.status(batch.id)
        if status is None or not status.complete:
            return None
        cost = self._price(self.store, batch)
        if cost is not None:
            self._costs[batch.id] = cost
        return cost

    def stored_cost(self, batch: BatchSnapshot) -> BatchCost | None:
        """The cost of whatever the store holds for the batch, complete or not (not cached:
        an incomplete store may still fill); None when it holds nothing for it."""
        if self.store is None or self.store.status(batch.id) is None:
            return None
        return self._price(self.store, batch)

    def _price(self, store: ResultsStore, batch: BatchSnapshot) -> BatchCost | None:
        try:
            usage = stored_usage(store, batch.id)
        except sqlite3.Error as exc:
            log.warning("cannot read the stored results of %s: %s", safe_text(batch.id), exc)
            return None
        return cost_of(usage, self.prices, at=batch.created_at)

    def forget(self, batch_id: str) -> None:
        """Drop a cached cost (the batch's stored results were removed or downloaded again)."""
        self._costs.pop(batch_id, None)

    async def load(self, batches: Iterable[BatchSnapshot]) -> list[str]:
        """Cost every stored batch among `batches` not costed yet, in a worker thread.

        Returns the ids newly costed (the rows to repaint).
        """
        todo = [batch for batch in self._stored(batches) if batch.id not in self._costs]
        if not todo:
            return []
        return await asyncio.to_thread(self._cost_all, todo)

    def _cost_all(self, batches: list[BatchSnapshot]) -> list[str]:
        return [batch.id for batch in batches if self.batch_cost(batch) is not None]

    def _stored(self, batches: Iterable[BatchSnapshot]) -> Iterator[BatchSnapshot]:
        """Ended batches the store has something for (one query, not one per batch)."""
        if self.store is None:
            return
        stored = set(self.store.batch_ids())
        for batch in batches:
            if batch.is_ended and batch.id in stored:
                yield batch

    # -- totals --------------------------------------------------------------------------------

    def total(self, batches: Iterable[BatchSnapshot]) -> BatchCost:
        """The sum over every ended batch among `batches` whose results are stored."""
        costs = (self.batch_cost(batch) for batch in self._stored(batches))
        return sum_costs(cost for cost in costs if cost is not None)

    def daily_totals(self, batches: Iterable[BatchSnapshot], now: datetime,
                     tz: tzinfo | None = None) -> BatchCost:
        """The sum over stored batches that ended on `now`'s day (local time unless `tz`)."""
        today = now.astimezone(tz).date()
        return self.total(
            batch for batch in batches
            if batch.ended_at is not None and batch.ended_at.astimezone(tz).date() == today
        )

    # -- expected end of running batches -------------------------------------------------------

    def observe(self, batches: Mapping[str, BatchSnapshot]) -> None:
        """Take the monitor's batches; the ETA history is rebuilt when the ended set changes."""
        if batches is self._observed:
            return
        self._observed = batches
        ended = frozenset(batch_id for batch_id, batch in batches.items() if batch.is_ended)
        if ended != self._ended_ids:
            self._ended_ids = ended
            self._history = None

    async def load_history(self) -> None:
        """Read the audit log's ``batch.ended`` records in a worker thread (else `eta` does)."""
        if self._ended_records is None:
            self._ended_records = (await self._audit_history.get()).of(BATCH_ENDED)

    def eta(self, batch: BatchSnapshot, now: datetime) -> Eta | None:
        """Expected end of a running batch from similar past ones; None without history."""
        if not batch.is_running:
            return None
        return estimate_end(batch, self._history_points(), now)

    def _history_points(self) -> list[HistoryPoint]:
        if self._history is None:
            if self._ended_records is None:
                self._ended_records = self._audit_history.get_now().of(BATCH_ENDED)
            ended = (self._observed[batch_id] for batch_id in self._ended_ids)
            workspace = self.store.workspace if self.store is not None else None
            self._history = history_points(ended, self._ended_records, workspace)
        return self._history
