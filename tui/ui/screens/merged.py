"""The merged view: the final outcome of every custom_id across a batch and its retries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.core.retry_plan import MergedOutcome, reason_of
from tui.core.sanitize import safe_cell
from tui.service.actions import ActionFailed, MergedView
from tui.service.api import ApiError
from tui.ui.clipboard import copy_value
from tui.ui.render import (
    RETRY_CLASS_STYLES,
    CellStyles,
    component_classes,
    inert,
    resolve_styles,
    style_css,
)
from tui.ui.widgets.vtable import Column, ListSource, VirtualTable

ID_WIDTH = 64
SEP = " · "
COLUMNS: tuple[Column, ...] = (
    Column("custom_id", "custom_id", 40, sortable=False),
    Column("outcome", "final outcome", 24, sortable=False),
    Column("generation", "gen", 4, "right", sortable=False),
    Column("attempts", "tries", 5, "right", sortable=False),
    Column("batch", "decided by batch", 0, sortable=False),
)
HELP_INTRO = (
    "The final outcome of every request across an original batch and all its retries: the "
    "first success wins, otherwise the latest attempt. Requests that still failed come first. "
    "'pending' means a retry holding the request is still running. enter opens the batch that "
    "decided a request, y copies its custom_id."
)


def ordered(view: MergedView) -> list[MergedOutcome]:
    """Requests that did not succeed first, then the rest, each by custom_id."""
    return sorted(view.outcomes.values(), key=lambda o: (o.type == "succeeded", o.custom_id))


def outcome_style(outcome: MergedOutcome) -> str:
    return "running" if outcome.type == "pending" else RETRY_CLASS_STYLES[outcome.retry_class]


def merged_cells(outcome: MergedOutcome, styles: CellStyles) -> list[Text]:
    return [
        inert(outcome.custom_id, 40),
        inert(reason_of(outcome.type, outcome.error_type), 24, styles(outcome_style(outcome))),
        Text(str(outcome.generation), styles("muted")),
        Text(str(outcome.attempts), styles("muted") if outcome.attempts == 1 else ""),
        inert(outcome.batch_id, ID_WIDTH, styles("muted")),
    ]


def merged_heading(view: MergedView, rows: Sequence[MergedOutcome], styles: CellStyles) -> Text:
    """Which batches were merged, then the final outcomes counted by reason."""
    muted = styles("muted")
    text = Text(" ")
    text.append("merged outcomes of ", muted)
    text.append(safe_cell(view.root_id, ID_WIDTH), styles("heading"))
    text.append(f" and {len(view.batches) - 1:,} retr{'y' if len(view.batches) == 2 else 'ies'}",
                muted)
    text.append("\n ")
    for n, (batch_id, generation) in enumerate(view.batches):
        if n:
            text.append(SEP, muted)
        text.append(f"gen {generation} ", muted)
        text.append(safe_cell(batch_id, ID_WIDTH))
    text.append(f"\n {len(rows):,} requests: ", styles("heading"))
    style_of = {reason_of(o.type, o.error_type): outcome_style(o) for o in rows}
    counts = sorted(view.counts.items(), key=lambda item: (item[0] != "succeeded", -item[1]))
    for n, (reason, count) in enumerate(counts):
        if n:
            text.append(SEP, muted)
        text.append_text(inert(reason, 32, styles(style_of.get(reason, "warning"))))
        text.append(f" {count:,}")
    return text


class MergedScreen(Screen[None]):
    """`MergedScreen(batch_id, load)`: `load` gives the MergedView (it may download results)."""

    HELP_TITLE = "merged outcomes"
    HELP_INTRO = HELP_INTRO

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,h,q", "back", "Back", id="merged.back"),
        Binding("y", "copy_id", "Copy id", id="merged.copy_id"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = component_classes("merged")
    DEFAULT_CSS = style_css("MergedScreen", "merged") + """
    MergedScreen {
        #merged-head { height: auto; background: $panel; }
        #merged-table { height: 1fr; }
    }
    """

    def __init__(self, batch_id: str, load: Callable[[], Awaitable[MergedView]]) -> None:
        super().__init__()
        self.batch_id = batch_id  # the app keeps polling this batch faster while shown
        self._load_view = load
        self._view: MergedView | None = None
        self._rows: list[MergedOutcome] = []
        self._styles = CellStyles({})

    @property
    def view(self) -> MergedView | None:
        return self._view

    def compose(self) -> ComposeResult:
        yield Static(Text(f" merged outcomes of {safe_cell(self.batch_id, ID_WIDTH)}: reading "
                          "the results of every batch in the lineage…"), id="merged-head")
        yield VirtualTable(COLUMNS, id="merged-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._styles = resolve_styles(self, "merged")
        self._load()

    @work(exclusive=True, exit_on_error=False, name="merged view")
    async def _load(self) -> None:
        head = self.query_one("#merged-head", Static)
        try:
            view = await self._load_view()
        except (ActionFailed, ApiError) as exc:
            message = Text(" the merged view could not be built: ", self._styles("error"))
            message.append_text(inert(str(exc), 140))
            head.update(message)
            return
        self._view, self._rows = view, ordered(view)
        rows, styles = self._rows, self._styles
        head.update(merged_heading(view, rows, styles))
        table = self.query_one("#merged-table", VirtualTable)
        table.set_source(ListSource([o.custom_id for o in rows],
                                    lambda i: merged_cells(rows[i], styles)))
        table.focus()

    @on(VirtualTable.Selected, "#merged-table")
    def _on_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        open_batch = getattr(self.app, "open_batch", None)
        if event.index < len(self._rows) and callable(open_batch):
            open_batch(self._rows[event.index].batch_id)

    def action_copy_id(self) -> None:
        index = self.query_one("#merged-table", VirtualTable).cursor_index
        if index < len(self._rows):
            copy_value(self.app, self._rows[index].custom_id, "custom_id")

    def action_back(self) -> None:
        self.dismiss(None)
