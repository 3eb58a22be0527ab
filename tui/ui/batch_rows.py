"""The batches list as a RowSource: columns, and inert, styled cells for the rows on screen."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.style import Style
from rich.text import Text

from tui.core.batch_view import (
    Segment,
    Shown,
    bar_segments,
    deadline_of,
    shown_status,
)
from tui.core.models import BatchSnapshot
from tui.core.sanitize import safe_cell
from tui.core.timefmt import human_duration, short_duration
from tui.ui.widgets.vtable import Column

ID_WIDTH = 33
LABEL_WIDTH = 18
BAR_WIDTH = 12
DASH = "–"

COLUMNS: tuple[Column, ...] = (
    Column("id", "batch", ID_WIDTH),
    Column("created", "created", 9, "right"),
    Column("status", "status", 11),
    Column("processing", "process", 7, "right"),
    Column("succeeded", "ok", 7, "right"),
    Column("errored", "errored", 7, "right"),
    Column("canceled", "cancel", 6, "right"),
    Column("expired", "expired", 7, "right"),
    Column("outcome", "outcome", BAR_WIDTH),
    Column("error_rate", "err%", 6, "right"),
    Column("duration", "time", 8, "right"),
    Column("deadline", "expires / results", 0),
)
LABEL_COLUMN = Column("label", "label", LABEL_WIDTH, sortable=False)

# Status glyphs carry the meaning without colour (NO_COLOR, monochrome terminals).
STATUS_GLYPHS: Mapping[Shown, str] = {
    Shown.RUNNING: "● running",
    Shown.CANCELING: "◐ canceling",
    Shown.CLEAN: "✓ ended",
    Shown.FAILURES: "✗ failures",
    Shown.CANCELED: "⊘ canceled",
    Shown.ARCHIVED: "▪ archived",
}
BAR_GLYPHS: Mapping[Segment, str] = {
    Segment.SUCCEEDED: "█",
    Segment.FAILED: "▒",
    Segment.CANCELED: "╌",
    Segment.PROCESSING: "░",
}
EXPIRY_WARNING_S = 3600.0

# Names of the styles a BatchRows needs; the screen resolves them from its CSS.
STYLE_NAMES: tuple[str, ...] = (
    "running", "canceling", "clean", "failures", "canceled", "archived",
    "muted", "error", "warning",
    "bar-succeeded", "bar-failed", "bar-canceled", "bar-processing",
)


def columns_for(has_labels: bool) -> tuple[Column, ...]:
    """The batch columns, with a label column after the id when any batch has a label."""
    if not has_labels:
        return COLUMNS
    return (COLUMNS[0], LABEL_COLUMN, *COLUMNS[1:])


_STATUS_STYLE: Mapping[Shown, str] = {
    Shown.RUNNING: "running",
    Shown.CANCELING: "canceling",
    Shown.CLEAN: "clean",
    Shown.FAILURES: "failures",
    Shown.CANCELED: "canceled",
    Shown.ARCHIVED: "archived",
}
_versions = itertools.count(1)


@dataclass(frozen=True, slots=True)
class CellStyles:
    """Rich styles by name (see STYLE_NAMES); a missing name means no style."""

    styles: Mapping[str, Style]

    def __call__(self, name: str) -> Style:
        return self.styles.get(name) or Style()


def _count(value: int, style: Style | None = None) -> Text:
    return Text(f"{value:,}", style=style or "")


def _rate(rate: float) -> str:
    if rate == 0:
        return "0%"
    if rate < 0.001:
        return "<0.1%"
    return f"{rate:.1%}" if rate < 0.1 else f"{rate:.0%}"


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
        index: dict[str, int] | None = None,
    ) -> None:
        self.version = next(_versions)
        self.batches = batches
        self.now = now
        self.styles = styles
        self.labels: Mapping[str, str] = labels or {}
        self.columns = tuple(columns)
        self._index = index

    def at(self, now: datetime) -> BatchRows:
        """The same rows seen at another moment (ages and countdowns change)."""
        return BatchRows(self.batches, now, self.styles, self.labels, columns=self.columns,
                         index=self._index)

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
        return "dim" if self.batches[index].archived_at is not None else None

    def cells(self, index: int) -> list[Text]:
        batch = self.batches[index]
        return [self.cell(batch, column.key) for column in self.columns]

    def cell(self, batch: BatchSnapshot, key: str) -> Text:
        """One cell; every piece of text from the API goes through safe_cell."""
        style = self.styles
        counts = batch.request_counts
        ended = batch.is_ended
        if key == "id":
            return Text(safe_cell(batch.id, ID_WIDTH))
        if key == "label":
            return Text(safe_cell(self.labels.get(batch.id, ""), LABEL_WIDTH), style("muted"))
        if key == "created":
            return Text(short_duration((self.now - batch.created_at).total_seconds()),
                        style("muted"))
        if key == "status":
            shown = shown_status(batch)
            return Text(STATUS_GLYPHS[shown], style(_STATUS_STYLE[shown]))
        if key == "processing":
            return _count(counts.processing, None if counts.processing else style("muted"))
        if key in ("succeeded", "errored", "canceled", "expired"):
            if not ended:
                # The API keeps these at 0 until the batch ends: show "unknown", not 0.
                return Text(DASH, style("muted"))
            value: int = getattr(counts, key)
            if not value:
                return _count(0, style("muted"))
            if key in ("errored", "expired"):
                return _count(value, style("error"))
            return _count(value, style("canceled") if key == "canceled" else None)
        if key == "outcome":
            return self._bar(batch)
        if key == "error_rate":
            if not ended:
                return Text(DASH, style("muted"))
            rate = counts.error_rate
            return Text(_rate(rate), style("error") if rate else style("muted"))
        if key == "duration":
            return Text(human_duration(batch.duration_seconds(self.now)),
                        style("muted") if ended else "")
        if key == "deadline":
            return self._deadline(batch)
        return Text()

    def _bar(self, batch: BatchSnapshot) -> Text:
        counts = batch.request_counts
        bar = Text()
        for segment, cells in bar_segments(
            counts.succeeded, counts.failed, counts.canceled, counts.processing, BAR_WIDTH
        ):
            bar.append(BAR_GLYPHS[segment] * cells, self.styles(f"bar-{segment.value}"))
        return bar

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
