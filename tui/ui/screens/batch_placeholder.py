"""A plain details view of one batch, shown on drill-in until the full batch screen exists."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, cast

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.core.batch_view import deadline_of, shown_status
from tui.core.models import COUNT_FIELDS, BatchSnapshot, format_time
from tui.core.sanitize import safe_cell
from tui.core.timefmt import human_duration
from tui.ui.batch_rows import STATUS_GLYPHS
from tui.ui.messages import MonitorUpdated

if TYPE_CHECKING:
    from tui.ui.app import BatchtopApp


def details_table(batch: BatchSnapshot, now: datetime) -> Table:
    """Every field of the snapshot, as inert text."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    counts = batch.request_counts

    def row(name: str, value: str) -> None:
        table.add_row(Text(name), Text(safe_cell(value, 100)))

    row("id", batch.id)
    row("status", f"{STATUS_GLYPHS[shown_status(batch)]} ({batch.processing_status})")
    row("requests", f"{counts.total:,}")
    for name in COUNT_FIELDS:
        row(f"  {name}", f"{getattr(counts, name):,}")
    if batch.is_ended:
        row("error rate", f"{counts.error_rate:.2%}")
    row("created", format_time(batch.created_at) or "")
    if batch.ended_at is not None:
        row("ended", format_time(batch.ended_at) or "")
        row("duration", human_duration(batch.duration_seconds(now)))
    else:
        row("elapsed", human_duration(batch.duration_seconds(now)))
    if batch.is_ended:
        row("results until", format_time(deadline_of(batch)) or "")
    else:
        row("expires", format_time(batch.expires_at) or "")
    if batch.cancel_initiated_at:
        row("cancel requested", format_time(batch.cancel_initiated_at) or "")
    if batch.archived_at:
        row("archived", format_time(batch.archived_at) or "")
    return table


class BatchPlaceholderScreen(Screen[None]):
    """Drill-in target: the batch's fields, kept live; esc / backspace / h / q go back."""

    HELP_TITLE = "batch"
    HELP_INTRO = "The fields of one batch, updated live. esc, backspace, h or q go back."

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,h,q", "back", "Back", id="batch.back"),
        Binding("r", "app.refresh_now", "Refresh", id="batch.refresh"),
        Binding("p", "app.toggle_pause", "Pause", id="batch.pause"),
    ]

    def __init__(self, batch_id: str) -> None:
        super().__init__()
        self.batch_id = batch_id  # the app focuses polling on the screen's batch_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="batch-box") as box:
            box.border_title = f"batch {safe_cell(self.batch_id, 40)}"
            yield Static(id="batch-details")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._show(cast("BatchtopApp", self.app).monitor_state.batches.get(self.batch_id))

    def on_monitor_updated(self, message: MonitorUpdated) -> None:
        self._show(message.state.batches.get(self.batch_id))

    def _show(self, batch: BatchSnapshot | None) -> None:
        details = self.query_one("#batch-details", Static)
        if batch is None:
            details.update(Text("This batch is not in the list (yet): it may not exist, or "
                                "belong to another workspace."))
            return
        details.update(details_table(batch, cast("BatchtopApp", self.app).clock()))

    def action_back(self) -> None:
        self.dismiss(None)
