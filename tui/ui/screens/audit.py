"""The audit viewer: every audit record newest first, filtered; a batch's timeline oldest first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static

from tui.core.audit_filter import (
    AuditEntry,
    AuditQuery,
    cycle,
    kind_choices,
    parse_duration,
    select,
)
from tui.core.batch_view import TextFilter
from tui.core.sanitize import safe_cell
from tui.core.timefmt import utcnow
from tui.paths import locations
from tui.service.audit import Loaded, LogReader
from tui.ui.audit_rows import (
    BATCH_WIDTH,
    COLUMNS,
    TIMELINE_COLUMNS,
    AuditRows,
    record_text,
    skipped_note,
    status_line,
    time_cell,
)
from tui.ui.batch_rows import CellStyles
from tui.ui.clipboard import copy_value
from tui.ui.filter_input import read_filter
from tui.ui.render import component_classes, resolve_styles, style_css
from tui.ui.widgets.scrolling import scroll_bindings, scroll_to
from tui.ui.widgets.vtable import VirtualTable

POLL_S = 2.0
WINDOWS: dict[str, timedelta | None] = {
    "all": None, **{name: parse_duration(name) for name in ("1h", "24h", "7d")},
}

HELP_INTRO = (
    "Every record of the local audit log (one JSONL file per batch), newest first, updated "
    "while the screen is open; the cursor stays on its record. Times are UTC, as in the files. "
    "A torn or unreadable line (a write cut short) is skipped and named in the status line.\n"
    "/ filters by a regex over the event, batch id, actor and data (! in front inverts). b keeps "
    "only the batch under the cursor (again shows all), e / E cycle through the event kinds "
    "present (batch.* and the like first), 1-4 pick a time window (all, 1 h, 24 h, 7 d), "
    "o flips the order. enter shows the whole record as JSON.\n"
    "A batch's timeline (T on the batch screen) is the same view for one batch, oldest first."
)

class AuditTable(VirtualTable):
    """The virtual table without sort and marks: the log has one order and no bulk actions."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action not in ("sort", "toggle_mark")


class AuditRecordScreen(ModalScreen[None]):
    """One audit record in full, as indented JSON made inert."""

    COMPONENT_CLASSES: ClassVar[set[str]] = component_classes("audit-record")
    DEFAULT_CSS = style_css("AuditRecordScreen", "audit-record") + """
    AuditRecordScreen { align: center middle; }
    AuditRecordScreen > #audit-record-box {
        width: 90%;
        max-width: 140;
        height: 85%;
        border: round $primary;
        background: $surface;
    }
    AuditRecordScreen #audit-record-title { height: 1; background: $panel; }
    AuditRecordScreen #audit-record-scroll { height: 1fr; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,h,q,enter", "close", "Close", id="audit_record.close"),
        Binding("y", "copy_batch", "Copy batch id", id="audit_record.copy_batch"),
        *scroll_bindings("audit_record"),
    ]

    def __init__(self, entry: AuditEntry) -> None:
        super().__init__()
        self.entry = entry
        self.body_text = record_text(entry.record)

    def compose(self) -> ComposeResult:
        with Vertical(id="audit-record-box") as box:
            box.border_subtitle = "esc closes"
            yield Static(id="audit-record-title")
            with VerticalScroll(id="audit-record-scroll"):
                yield Static(self.body_text, id="audit-record-body")

    def on_mount(self) -> None:
        styles = resolve_styles(self, "audit-record")
        entry = self.entry
        title = Text(f" {time_cell(entry)}  ", styles("muted"))
        title.append(safe_cell(entry.event, 40), styles("heading"))
        if entry.batch_id:
            title.append("  " + safe_cell(entry.batch_id, BATCH_WIDTH))
        self.query_one("#audit-record-title", Static).update(title)
        self.query_one("#audit-record-scroll", VerticalScroll).focus()

    def action_copy_batch(self) -> None:
        if self.entry.batch_id:
            copy_value(self.app, self.entry.batch_id, "batch id")

    def action_scroll(self, where: str) -> None:
        scroll_to(self.query_one("#audit-record-scroll", VerticalScroll), where)

    def action_close(self) -> None:
        self.dismiss(None)


class AuditScreen(Screen[None]):
    """`AuditScreen()`: the whole log; `AuditScreen(batch_id)`: that batch's timeline.

    `directory` defaults to the app's audit log directory (else the configured one), `clock`
    to the app's clock (else utcnow); time windows count back from it.
    """

    HELP_TITLE = "audit log"
    HELP_INTRO = HELP_INTRO

    _WINDOW = Binding.Group("window", compact=True)
    _KIND = Binding.Group("kind", compact=True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,h,q", "back", "Back", id="audit.back"),
        # Priority: the keys typed right after `/` must reach the filter line.
        Binding("slash", "start_filter", "Filter", id="audit.filter", priority=True),
        Binding("b", "toggle_batch", "This batch", id="audit.batch"),
        Binding("e", "cycle_kind(False)", "Event kind", group=_KIND, id="audit.kind_next"),
        Binding("E", "cycle_kind(True)", "Previous kind", group=_KIND, show=False,
                id="audit.kind_previous"),
        Binding("1", "window('all')", "All", group=_WINDOW, id="audit.window_all"),
        Binding("2", "window('1h')", "1h", group=_WINDOW, id="audit.window_1h"),
        Binding("3", "window('24h')", "24h", group=_WINDOW, id="audit.window_24h"),
        Binding("4", "window('7d')", "7d", group=_WINDOW, id="audit.window_7d"),
        Binding("o", "toggle_order", "Order", id="audit.order"),
        Binding("y", "copy_batch", "Copy batch id", show=False, id="audit.copy_batch"),
        Binding("r", "reload", "Reload", show=False, id="audit.reload"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = component_classes("audit")
    DEFAULT_CSS = style_css("AuditScreen", "audit") + """
    AuditScreen {
        #audit-title { height: 1; background: $panel; }
        #audit-status { height: 1; background: $surface; }
        #audit-table { height: 1fr; }
        #audit-filter { height: 1; border: none; padding: 0 1; background: $boost; }
    }
    """

    def __init__(
        self,
        batch_id: str | None = None,
        *,
        directory: Path | None = None,
        clock: Callable[[], datetime] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__()
        self.batch_id = batch_id  # a timeline; the app focuses polling on a screen's batch_id
        self._columns = COLUMNS if batch_id is None else TIMELINE_COLUMNS
        self._directory_arg = directory
        self._clock_arg = clock
        self._poll_s = poll_s
        self._query = AuditQuery(batch_id=batch_id, newest_first=batch_id is None)
        self._entries: list[AuditEntry] | None = None
        self._rows: AuditRows | None = None
        self._reader: LogReader | None = None
        self._skipped: str | None = None
        self._error: str | None = None
        self._filter_error: str | None = None
        self._editing_from: TextFilter | None = None
        self._reading = False
        self._new_above = 0
        self._styles = CellStyles({})

    # -- services -----------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """Where the audit files are read from."""
        if self._directory_arg is not None:
            return self._directory_arg
        try:
            audit = getattr(self.app, "audit", None)
        except RuntimeError:  # the app's services are not started yet
            audit = None
        found = getattr(audit, "directory", None)
        return found if isinstance(found, Path) else locations().audit

    def now(self) -> datetime:
        if self._clock_arg is not None:
            return self._clock_arg()
        clock = getattr(self.app, "clock", None)
        if callable(clock):
            moment = clock()
            if isinstance(moment, datetime):
                return moment
        return utcnow()

    @property
    def audit_query(self) -> AuditQuery:
        """The filters and order shown now."""
        return self._query

    @property
    def rows(self) -> AuditRows | None:
        return self._rows

    @property
    def entries(self) -> list[AuditEntry] | None:
        """Every record read (oldest first), before filtering; None before the first read."""
        return self._entries

    @property
    def skipped(self) -> str | None:
        """What the status line says about torn or unreadable lines."""
        return self._skipped

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="audit-title")
        yield Static(id="audit-status")
        yield AuditTable(self._columns, id="audit-table")
        yield Input(placeholder="regex over event, batch id, actor and data (!regex inverts) · "
                                "enter keeps · esc clears", id="audit-filter")
        yield Footer(compact=True)

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#audit-table", VirtualTable)

    def on_mount(self) -> None:
        self.query_one("#audit-filter", Input).display = False
        self._styles = resolve_styles(self, "audit")
        self.query_one("#audit-title", Static).update(self._title())
        self._render_status()
        self.table.focus()
        self.reload()
        self.set_interval(self._poll_s, self._poll)

    def _title(self) -> Text:
        styles = self._styles
        if self.batch_id is None:
            title = Text(" audit log", styles("heading"))
            title.append("  every batch and session", styles("muted"))
            return title
        title = Text(" timeline of ", styles("muted"))
        title.append(safe_cell(self.batch_id, 64), styles("heading"))
        return title

    # -- reading ------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the log again now (the files are re-read even if they look unchanged)."""
        self._reading = True
        self._read(force=True)

    def _poll(self) -> None:
        # Ticks never overlap, and nothing is read while a dialog covers the screen.
        if self._reading or not self.is_current:
            return
        self._reading = True
        self._read(force=False)

    @work(group="audit-read", exit_on_error=False, name="audit read")
    async def _read(self, force: bool) -> None:
        try:
            reader = self._reader
            if reader is None:
                reader = self._reader = LogReader(self.directory, self.batch_id)
            try:
                loaded = await asyncio.to_thread(reader.poll, force=force)
            except OSError as exc:
                self._error = f"cannot read {reader.directory}: {exc.strerror or exc}"
                self._render_status()
                return
            if loaded is not None:
                self._error = None
                self._apply(loaded)
            elif self._error is not None:
                self._error = None
                self._render_status()
        finally:
            self._reading = False

    def _apply(self, loaded: Loaded) -> None:
        first = self._entries is None
        self._entries = loaded.entries
        self._skipped = skipped_note(loaded.torn, loaded.bad)
        self._rebuild(data_changed=not first)

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        if self.is_mounted:
            self._poll()

    # -- the rows -----------------------------------------------------------------------------

    def _rebuild(self, *, data_changed: bool) -> None:
        if not self.is_mounted:
            return
        table = self.table
        old_key, old_index = table.cursor_key, table.cursor_index
        old_top = table.scroll_offset.y
        view = select(self._entries or [], self._query, self.now())
        rows = AuditRows(view, self._styles, self._columns)
        self._rows = rows
        table.set_source(rows)
        index = rows.index_of(old_key) if old_key is not None else None
        if not data_changed:
            self._new_above = 0
            if index is not None:
                table.move_to_key(old_key or "")
        elif index is not None and index > old_index and self._query.newest_first:
            # New records above the cursor: they show at the top while the cursor stays in
            # view; otherwise the cursor keeps its line and a hint counts them.
            line = old_index - old_top
            visible = max(1, table.scrollable_content_region.height - 1)
            if old_top > 0 or index >= visible:
                table.scroll_to(y=max(0, index - line), animate=False, force=True)
                self._new_above += index - old_index
        self._render_status()

    def _render_status(self) -> None:
        rows, entries = self._rows, self._entries
        total = len(entries) if entries is not None else 0
        if self.batch_id is not None and entries is not None:
            total = sum(1 for e in entries if e.batch_id == self.batch_id)
        error = self._error or self._filter_error
        line = status_line(self._query, len(rows) if rows is not None else None, total,
                           self._styles, skipped=self._skipped, error=error,
                           new_above=self._new_above, timeline=self.batch_id is not None)
        self.query_one("#audit-status", Static).update(line)

    @on(VirtualTable.Highlighted, "#audit-table")
    def _on_highlighted(self, event: VirtualTable.Highlighted) -> None:
        event.stop()
        if self._new_above and event.index == 0:
            self._new_above = 0
            self._render_status()

    def set_query(self, query: AuditQuery) -> None:
        """Show other filters or order; the cursor stays on its record when still shown."""
        self._query = query
        self._rebuild(data_changed=False)
        self.refresh_bindings()

    def cursor_entry(self) -> AuditEntry | None:
        rows, index = self._rows, self.table.cursor_index
        if rows is None or not len(rows):
            return None
        return rows.entry_at(index)

    # -- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_batch":
            return self.batch_id is None
        if action == "start_filter":
            return not isinstance(self.app.focused, Input)
        return True

    @on(VirtualTable.Selected, "#audit-table")
    def _on_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        rows = self._rows
        if rows is not None and event.index < len(rows):
            self.app.push_screen(AuditRecordScreen(rows.entry_at(event.index)))

    def action_toggle_batch(self) -> None:
        if self._query.batch_id is not None:
            self.set_query(replace(self._query, batch_id=None))
            return
        entry = self.cursor_entry()
        if entry is None or entry.batch_id is None:
            self.notify("this record concerns no batch", severity="warning", timeout=3)
            return
        self.set_query(replace(self._query, batch_id=entry.batch_id))

    def action_cycle_kind(self, backwards: bool) -> None:
        entries = self._entries or []
        if self._query.batch_id is not None:
            entries = [e for e in entries if e.batch_id == self._query.batch_id]
        chosen = cycle(self._query.events, kind_choices(entries), backwards=backwards)
        self.set_query(replace(self._query, events=chosen))

    def action_window(self, name: str) -> None:
        self.set_query(replace(self._query, window=WINDOWS[name]))

    def action_toggle_order(self) -> None:
        self.set_query(replace(self._query, newest_first=not self._query.newest_first))

    def action_copy_batch(self) -> None:
        entry = self.cursor_entry()
        if entry is not None and entry.batch_id:
            copy_value(self.app, entry.batch_id, "batch id")

    def action_reload(self) -> None:
        if not self._reading:
            self.reload()

    def action_back(self) -> None:
        field = self.query_one("#audit-filter", Input)
        if field.display:
            self._close_filter(restore=True)
        elif self._query.text is not None:
            self.set_query(replace(self._query, text=None))
        else:
            self.dismiss(None)

    # -- the filter line ----------------------------------------------------------------------

    def action_start_filter(self) -> None:
        field = self.query_one("#audit-filter", Input)
        self._editing_from = self._query.text
        field.value = self._query.text.text if self._query.text else ""
        field.display = True
        self.set_focus(field)  # now: keys typed right after `/` belong to it

    @on(Input.Changed, "#audit-filter")
    def _on_filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        typed = read_filter(event.value)
        self._filter_error = typed.error
        if typed.error is None:
            self.set_query(replace(self._query, text=typed.text))
        else:
            self._render_status()

    @on(Input.Submitted, "#audit-filter")
    def _on_filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._filter_error is not None:
            self.notify(self._filter_error, severity="error", markup=False)
            return
        self._close_filter(restore=False)

    def _close_filter(self, *, restore: bool) -> None:
        self.query_one("#audit-filter", Input).display = False
        if restore:
            self._filter_error = None
            self.set_query(replace(self._query, text=self._editing_from))
        self.set_focus(self.table)
        self._render_status()
