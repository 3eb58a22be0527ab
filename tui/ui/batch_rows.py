"""The batches list as a RowSource: columns, and inert, styled cells for the rows on screen."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rich.text import Text

from tui.core.batch_view import deadline_of
from tui.core.eta import Eta
from tui.core.models import BatchSnapshot
from tui.core.sanitize import safe_cell
from tui.core.timefmt import human_duration, short_duration
from tui.ui.batch_columns import (
    BAR_WIDTH,
    COLUMNS,
    COST_WIDTH,
    COUNTS_WIDTH,
    ETA_WIDTH,
    ID_WIDTH,
    LABEL_WIDTH,
    PAST_MEDIAN,
    PROFILE_WIDTH,
    columns_for,
)
from tui.ui.render import DASH, CellStyles, count_text, outcome_bar, rate_label, status_text
from tui.ui.widgets.vtable import Column

__all__ = ["COLUMNS", "BatchRows", "CellStyles", "RowExtras", "columns_for", "eta_cell"]

PARENT_TAIL = 7  # characters of the parent's id a retry row shows
ID_PREFIX = "msgbatch_"
RETRY_GLYPH = "↻"

EXPIRY_WARNING_S = 3600.0
DUE = "due"


def _nothing(_key: str) -> None:
    return None


def _no_eta(_batch: BatchSnapshot, _now: datetime) -> None:
    return None


def _never(_key: str) -> bool:
    return False


def eta_cell(eta: Eta, now: datetime) -> tuple[str, str]:
    """The cell and the basis of the estimate ("median of 8 batches of 1k–10k requests: 14m").

    "~12m" before the median; "due" once past it (a median is not a deadline: half of the
    similar batches took longer); "past median" only past twice the median.
    """
    basis = f"{eta.basis}: {human_duration(eta.median_s)}"
    if not eta.overdue(now):
        return f"~{short_duration(eta.remaining_s(now))}", basis
    late_s = (now - eta.expected_end).total_seconds()
    return (PAST_MEDIAN if late_s > eta.median_s else DUE), basis


@dataclass(frozen=True, slots=True)
class RowExtras:
    """What the list knows beside the API: local labels and lineage, costs, ETAs, alerts.

    `lineage` maps a retry batch to (parent id, generation); `cost` gives the cost cell of a
    batch (None: unknown); `eta` the expected end of a running batch as (short, basis);
    `alerted` whether a warning or error alert fired for the batch; `profile` the watched
    profile it belongs to when several are watched side by side.
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    lineage: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    cost: Callable[[str], str | None] = _nothing
    eta: Callable[[BatchSnapshot, datetime], tuple[str, str] | None] = _no_eta
    alerted: Callable[[str], bool] = _never
    profile: Callable[[str], str | None] = _nothing

    def retried(self) -> Mapping[str, int]:
        """How many retry batches were made directly from each batch."""
        counts: dict[str, int] = {}
        for parent, _generation in self.lineage.values():
            counts[parent] = counts.get(parent, 0) + 1
        return counts


_versions = itertools.count(1)




def _short_id(batch_id: str, width: int) -> str:
    """The id, without its common prefix when the column is too narrow for all of it."""
    if len(batch_id) > width and batch_id.startswith(ID_PREFIX):
        return batch_id[len(ID_PREFIX):]
    return batch_id


class BatchRows:
    """Rows in view order; `cells` formats a row only when the table asks for it."""

    def __init__(
        self,
        batches: Sequence[BatchSnapshot],
        now: datetime,
        styles: CellStyles,
        labels: Mapping[str, str] | None = None,
        *,
        columns: Sequence[Column] = COLUMNS,
        extras: RowExtras | None = None,
        index: dict[str, int] | None = None,
        retried: Mapping[str, int] | None = None,
    ) -> None:
        self.version = next(_versions)
        self.batches = batches
        self.now = now
        self.styles = styles
        self.extras = extras or RowExtras()
        self.labels: Mapping[str, str] = labels if labels is not None else self.extras.labels
        self.columns = tuple(columns)
        self._lineage_shown = any(column.key == "lineage" for column in self.columns)
        self._index = index
        self._retried = retried

    def at(self, now: datetime) -> BatchRows:
        """The same rows seen at another moment (ages and countdowns change)."""
        return BatchRows(self.batches, now, self.styles, self.labels, columns=self.columns,
                         extras=self.extras, index=self._index, retried=self._retried)

    @property
    def ids(self) -> list[str]:
        return [b.id for b in self.batches]

    def __len__(self) -> int:
        return len(self.batches)

    def key_at(self, index: int) -> str:
        return self.batches[index].id

    def index_of(self, key: str) -> int | None:
        if self._index is None:
            self._index = {b.id: i for i, b in enumerate(self.batches)}
        return self._index.get(key)

    def row_class(self, index: int) -> str | None:
        batch = self.batches[index]
        if self.extras.alerted(batch.id):
            return "alert"
        return "dim" if batch.archived_at is not None else None

    def eta(self, batch: BatchSnapshot) -> tuple[str, str] | None:
        """(cell, basis) of a running batch's expected end, None without one."""
        return self.extras.eta(batch, self.now) if batch.is_running else None

    def cells(self, index: int) -> list[Text]:
        batch = self.batches[index]
        return [self.cell(batch, column.key, column.width) for column in self.columns]

    def cell(self, batch: BatchSnapshot, key: str, width: int = 0) -> Text:
        """One cell (`width` 0: the column's usual width); every piece of text from the API
        goes through safe_cell."""
        style = self.styles
        counts = batch.request_counts
        ended = batch.is_ended
        if key == "id":
            return Text(safe_cell(_short_id(batch.id, width or ID_WIDTH), width or ID_WIDTH))
        if key == "profile":
            profile = self.extras.profile(batch.id) or ""
            return Text(safe_cell(profile, width or PROFILE_WIDTH), style("muted"))
        if key == "label":
            return self._label(batch.id, width or LABEL_WIDTH)
        if key == "lineage":
            return self._lineage(batch.id)
        if key == "counts":
            if not ended:
                return Text(DASH, style("muted"))
            return Text(safe_cell(f"{counts.succeeded:,}/{counts.errored:,}/{counts.expired:,}",
                                  COUNTS_WIDTH),
                        style("error") if counts.errored or counts.expired else "")
        if key == "created":
            return Text(short_duration((self.now - batch.created_at).total_seconds()),
                        style("muted"))
        if key == "status":
            return status_text(batch, style)
        if key == "processing":
            return count_text(counts.processing, "" if counts.processing else style("muted"))
        if key in ("succeeded", "errored", "canceled", "expired"):
            if not ended:
                # The API keeps these at 0 until the batch ends: show "unknown", not 0.
                return Text(DASH, style("muted"))
            value: int = getattr(counts, key)
            if not value:
                return count_text(0, style("muted"))
            if key in ("errored", "expired"):
                return count_text(value, style("error"))
            return count_text(value, style("canceled") if key == "canceled" else "")
        if key == "outcome":
            return outcome_bar(counts, width or BAR_WIDTH, style)
        if key == "error_rate":
            if not ended:
                return Text(DASH, style("muted"))
            rate = counts.error_rate
            return Text(rate_label(rate), style("error") if rate else style("muted"))
        if key == "duration":
            return Text(human_duration(batch.duration_seconds(self.now)),
                        style("muted") if ended else "")
        if key == "eta":
            eta = self.eta(batch)
            if eta is None:
                return Text()
            late = eta[0] == PAST_MEDIAN
            return Text(safe_cell(eta[0], ETA_WIDTH - 1) + " ", style("warning") if late else "")
        if key == "cost":
            cost = self.extras.cost(batch.id)
            return Text(safe_cell(cost, COST_WIDTH)) if cost else Text()
        if key == "deadline":
            return self._deadline(batch)
        return Text()

    def _label(self, batch_id: str, width: int) -> Text:
        """The label; with no lineage column, the lineage follows it."""
        text = Text(safe_cell(self.labels.get(batch_id, ""), width), self.styles("muted"))
        if not self._lineage_shown:
            lineage = self._lineage(batch_id)
            if lineage:
                if text:
                    text.append(" ")
                text.append_text(lineage)
                text.truncate(width, overflow="ellipsis")
        return text

    def _lineage(self, batch_id: str) -> Text:
        """`↻2 …a1b2c3d` on a retry (generation, end of the parent's id); `retried ×N` above."""
        found = self.extras.lineage.get(batch_id)
        if found is not None:
            parent, generation = found
            tail = safe_cell(parent[-PARENT_TAIL:], PARENT_TAIL)
            return Text(f"{RETRY_GLYPH}{generation} …{tail}", self.styles("warning"))
        if self._retried is None:
            self._retried = self.extras.retried()
        children = self._retried.get(batch_id)
        if children:
            return Text(f"retried ×{children}", self.styles("muted"))
        return Text()

    def _deadline(self, batch: BatchSnapshot) -> Text:
        style = self.styles
        if batch.archived_at is not None:
            return Text("archived", style("muted"))
        left = (deadline_of(batch) - self.now).total_seconds()
        if not batch.is_ended:
            if left <= 0:
                return Text("expiring now", style("warning"))
            return Text(f"expires in {human_duration(left)}",
                        style("warning") if left < EXPIRY_WARNING_S else "")
        if left <= 0:
            return Text("results gone", style("muted"))
        when = deadline_of(batch)
        return Text(f"results until {when:%b %d}", style("muted"))
