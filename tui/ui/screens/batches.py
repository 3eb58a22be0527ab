"""The batches list: live rows, filters, sort, "+N new", the event pane, actions on batches."""

from __future__ import annotations

import functools
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from tui.core.batch_view import (
    StatusFilter,
    TextFilter,
    ViewSpec,
    apply_view,
    next_match,
    summarize,
)
from tui.core.models import BatchSnapshot
from tui.core.sanitize import safe_cell
from tui.service.monitor import MonitorState
from tui.ui.action_flows import ActionFlows
from tui.ui.batch_rows import BatchRows, CellStyles, RowExtras, columns_for, eta_cell
from tui.ui.filter_input import read_filter
from tui.ui.messages import MonitorUpdated
from tui.ui.render import component_classes, resolve_styles, style_css
from tui.ui.widgets.event_pane import EventPane
from tui.ui.widgets.status_header import HeaderInfo, StatusHeader
from tui.ui.widgets.vtable import Column, VirtualTable

if TYPE_CHECKING:
    from tui.ui.app import BatchtopApp

AGE_REFRESH_TICKS = 5  # re-render ages and countdowns every this many header ticks

_STATUS = Binding.Group("status")
_MATCH = Binding.Group("match")
NOTE_WIDTH = 90
PREWARM_AFTER_S = 0.3  # the cursor rests this long on a batch before its workers boot

# Actions that change batches or the ledger: removed in read-only mode.
WRITE_ACTIONS = frozenset({"cancel", "delete", "retry", "submit", "attach", "label"})

STATUS_KEYS: dict[str, StatusFilter] = {
    "all": StatusFilter.ALL,
    "running": StatusFilter.RUNNING,
    "ended": StatusFilter.ENDED,
    "failures": StatusFilter.FAILURES,
}

HELP_INTRO = (
    "All batches of the workspace, updated in place: the cursor and the scroll position never "
    "move on a refresh; batches that arrive above the view show as a \"+N new\" hint (r or a "
    "click shows them).\n"
    "/ filters by a regex over the id and label (start with ! to invert); enter keeps it, esc "
    "clears it, and n / N then jump between matches in the full list; a second esc forgets "
    "the search, and n starts a new submit again. 1-4 filter by status. s sorts by the "
    "column under the column cursor (left / right move it), again inverts.\n"
    "c cancels, D deletes, R retries the failed requests, a attaches the request file a batch "
    "was made from, t labels: the marked batches (space) when there are any, else the one "
    "under the cursor. n submits a JSONL file as new batches. Each asks first; read-only "
    "mode ([RO]) removes them.\n"
    "lineage: ↻2 …a1b2c3d is the second retry down a line, with the end of its parent's id; "
    "the parent shows retried ×N. eta: expected end of a running batch, the median duration "
    "of past batches of a similar size (the line above the table gives the basis): \"due\" "
    "once past it, \"past median\" past twice it. A narrow window folds the counts into "
    "ok/err/exp and the lineage into the label. cost: "
    "what an ended batch cost at batch rates, once its results are stored (open it); the "
    "header sums the batches that ended today. Rows of batches with an alert are "
    "highlighted; A opens the audit log.\n"
    "Polling pauses while a dialog is open. Remap any key by its binding id in the [keymap] "
    "table of the config file."
)


def status_label(status: StatusFilter) -> str:
    return {
        StatusFilter.ALL: "all batches",
        StatusFilter.RUNNING: "running",
        StatusFilter.ENDED: "ended",
        StatusFilter.FAILURES: "with failures",
    }[status]


class BatchesScreen(Screen[None]):
    """The top-level screen. All data arrives as MonitorUpdated messages from the app."""

    HELP_TITLE = "batches"
    HELP_INTRO = HELP_INTRO

    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority: the keys typed right after `/` must reach the filter line, not the table.
        Binding("slash", "start_filter", "Filter", id="batches.filter", priority=True),
        Binding("1", "status('all')", "All", group=_STATUS, id="batches.status_all"),
        Binding("2", "status('running')", "Running", group=_STATUS,
                id="batches.status_running"),
        Binding("3", "status('ended')", "Ended", group=_STATUS, id="batches.status_ended"),
        Binding("4", "status('failures')", "With failures", group=_STATUS,
                id="batches.status_failures"),
        # `n` jumps to the next match while a search is active, else starts a new submit
        # (check_action hides whichever of the two does not apply).
        Binding("n", "match(False)", "Next match", group=_MATCH, id="batches.next_match"),
        Binding("N", "match(True)", "Previous match", group=_MATCH, id="batches.prev_match"),
        Binding("escape", "clear_filter", "Clear filter", id="batches.clear_filter"),
        Binding("c", "cancel", "Cancel", id="batches.cancel"),
        Binding("R", "retry", "Retry", id="batches.retry"),
        Binding("n", "submit", "Submit", id="batches.submit"),
        Binding("t", "label", "Label", id="batches.label"),
        Binding("D", "delete", "Delete", show=False, id="batches.delete"),
        Binding("a", "attach", "Attach requests", show=False, id="batches.attach"),
        Binding("r", "refresh", "Refresh", id="batches.refresh"),
        Binding("p", "app.toggle_pause", "Pause", id="batches.pause"),
        Binding("L", "toggle_events", "Events", id="batches.events"),
        Binding("A", "audit", "Audit log", show=False, id="batches.audit"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = component_classes("batches")
    DEFAULT_CSS = style_css("BatchesScreen", "batches")

    def __init__(self, info: HeaderInfo) -> None:
        super().__init__()
        self._info = info
        self._spec = ViewSpec()
        self._search: TextFilter | None = None  # last filter pattern: n / N find it
        self._editing_from: TextFilter | None = None  # filter before `/` (esc restores it)
        self._filter_error: str | None = None
        self._editing = False  # the `/` line is open
        self._state = MonitorState()
        self._rows: BatchRows | None = None
        self._seen: set[str] | None = None  # ids known before; None until the first sync
        self._pending: set[str] = set()  # new batches held back above the cursor
        self._dirty = False
        self._ticks = 0
        self._columns: tuple[Column, ...] = columns_for(False)  # the columns shown
        self._follow: str | None = None  # a batch this session created: the cursor goes there
        self._prewarm_timer: Timer | None = None

    @property
    def batches_app(self) -> BatchtopApp:
        return cast("BatchtopApp", self.app)

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusHeader(self._info, id="header")
        with Horizontal(id="view-bar"):
            yield Static(id="view-info")
            yield Static(id="row-note")
            yield Static(id="new-hint")
        table = VirtualTable(self._columns, id="batches")
        table.sort_column = self._spec.sort_key
        table.sort_descending = self._spec.descending
        yield table
        yield Input(placeholder="regex over id and label (!regex inverts) · enter keeps · esc "
                                "clears", id="filter")
        yield EventPane(tz=self._info.tz, id="events")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        pane = self.query_one("#events", EventPane)
        pane.display = False
        pane.border_title = "events · A opens the audit log"
        self.query_one("#new-hint", Static).display = False
        self.header.set_info(self._info)  # it may have changed while composing
        self.table.focus()
        self._apply_state(self._state, rebuild=True)

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#batches", VirtualTable)

    @property
    def header(self) -> StatusHeader:
        return self.query_one("#header", StatusHeader)

    @property
    def spec(self) -> ViewSpec:
        return self._spec

    @property
    def rows(self) -> BatchRows | None:
        return self._rows

    @property
    def new_count(self) -> int:
        """How many new batches wait in the "+N new" hint."""
        return len(self._pending)

    def set_info(self, info: HeaderInfo) -> None:
        """Where the list looks; called again once the services are up (the keys may change)."""
        self._info = info
        if self.is_mounted:
            self.header.set_info(info)
            self.refresh_bindings()

    # -- monitor state ------------------------------------------------------------------------

    def on_monitor_updated(self, message: MonitorUpdated) -> None:
        self._state = message.state
        if not self.is_mounted:
            return
        if not self.is_current:
            self._dirty = True  # hidden under another screen: catch up when shown again
            return
        self._apply_state(message.state, rebuild=True)

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        if self._dirty and self.is_mounted:
            self._dirty = False
            self._apply_state(self._state, rebuild=True)

    def _now(self) -> datetime:
        return self.batches_app.clock()

    def _apply_state(self, state: MonitorState, *, rebuild: bool) -> None:
        now = self._now()
        self._show_header(now)
        if rebuild:
            self._rebuild(now, data_changed=True)
        pane = self.query_one("#events", EventPane)
        if pane.display:
            pane.feed(state.recent_events)

    def _show_header(self, now: datetime) -> None:
        state = self._state
        cost = self.batches_app.cost_today
        self.header.show(state, summarize(state.batches.values(), now, self._info.tz), now,
                         cost_today=cost.label() if cost is not None and cost.lines else None)

    def tick(self) -> None:
        """Called every second by the app: header freshness; ages every few ticks."""
        if not self.is_mounted or not self.is_active:  # nothing ticks under a dialog
            return
        try:
            header, table = self.header, self.table
        except NoMatches:  # the app is closing: the widgets are already gone
            return
        now = self._now()
        header.tick(now)
        self._ticks += 1
        if self._ticks % AGE_REFRESH_TICKS == 0 and self._rows is not None:
            self._rows = self._rows.at(now)
            table.set_source(self._rows)
            self._update_row_note()

    def refresh_labels(self) -> None:
        """Labels, lineage, costs or alerts changed: draw the rows (and the header) again."""
        if self.is_mounted:
            now = self._now()
            self._show_header(now)
            self._rebuild(now, data_changed=False)

    # -- the rows -----------------------------------------------------------------------------

    def _styles(self) -> CellStyles:
        return resolve_styles(self, "batches")

    def _extras(self) -> RowExtras:
        """What the app knows about batches beside the API, for the rows."""
        app = self.batches_app
        if app.costs is None and not app.watching:
            return RowExtras(labels=app.labels, lineage=app.lineage, alerted=app.alerted)

        def cost(batch_id: str) -> str | None:
            costs = app.costs_of(batch_id)
            known = costs.peek(batch_id) if costs is not None else None
            return known.label() if known is not None else None

        def eta(batch: BatchSnapshot, now: datetime) -> tuple[str, str] | None:
            costs = app.costs_of(batch.id)
            found = costs.eta(batch, now) if costs is not None and app.history_loaded else None
            return eta_cell(found, now) if found is not None else None

        return RowExtras(labels=app.labels, lineage=app.lineage, cost=cost, eta=eta,
                         alerted=app.alerted, profile=app.profile_of)

    def _table_width(self) -> int:
        """Room for the columns: the table's width less a vertical scrollbar (always
        reserved, so that one appearing does not change the columns)."""
        width = self.table.size.width or self.app.size.width
        return max(0, width - self.table.styles.scrollbar_size_vertical)

    def on_resize(self, event: events.Resize) -> None:
        # The table has its new size only after this layout: choose the columns then.
        self.call_after_refresh(self._relayout)

    def _relayout(self) -> None:
        if self.is_mounted and self._rows is not None:
            self._rebuild(self._now(), data_changed=False)

    def _rebuild(self, now: datetime, *, data_changed: bool) -> None:
        state = self._state
        extras = self._extras()
        labels = extras.labels
        table = self.table
        columns = columns_for(bool(labels), any(key in state.batches for key in extras.lineage),
                              self._table_width(), has_profiles=self.batches_app.watching)
        if columns != self._columns:
            self._columns = columns
            table.set_columns(columns)
        full = apply_view(state.batches.values(), self._spec, now, labels)
        cursor_key = table.cursor_key
        if data_changed:
            self._hold_back(full, self._track_new(state), cursor_key)
        pending = self._pending
        if pending:
            pending.intersection_update(state.batches)
        view = [b for b in full if b.id not in pending] if pending else full
        rows = BatchRows(view, now, self._styles(), columns=columns, extras=extras)
        screen_line = table.cursor_index - table.scroll_offset.y
        self._rows = rows
        table.set_source(rows)
        if data_changed and cursor_key is not None:
            # A batch that vanished above the cursor must not move the cursor's line either.
            index = rows.index_of(cursor_key)
            if index is not None and index - table.scroll_offset.y != screen_line:
                table.scroll_to(y=max(0, index - screen_line), animate=False, force=True)
        follow = self._follow
        if follow is not None and follow in state.batches:
            self._follow = None  # once listed; a filter may hide it, and that is fine
            table.move_to_key(follow)
        self._update_view_bar()
        self._update_row_note()

    def _hold_back(self, full: list[BatchSnapshot], new: set[str], cursor_key: str | None) -> None:
        """New batches that would land above the cursor wait in the "+N new" hint."""
        new.discard(self._follow or "")  # created here: shown at once, with the cursor on it
        if not new or cursor_key is None:
            return
        for batch in full:
            if batch.id == cursor_key:
                return
            if batch.id in new:
                self._pending.add(batch.id)

    def _track_new(self, state: MonitorState) -> set[str]:
        """Ids that arrived since the last state (nothing counts as new before the first sync)."""
        if not state.synced:
            return set()
        if self._seen is None:
            self._seen = set(state.batches)
            return set()
        new = {i for i in state.batches if i not in self._seen}
        self._seen.update(new)
        return new

    def _update_view_bar(self) -> None:
        rows, state, spec = self._rows, self._state, self._spec
        shown = len(rows) if rows is not None else 0
        total = len(state.batches)
        info = Text(no_wrap=True, overflow="ellipsis")
        info.append(f" {status_label(spec.status)}", style="bold")
        if spec.text is not None:
            info.append("  /")
            info.append(safe_cell(spec.text.text, 40))
            info.append("/")
        elif self._search is not None:
            info.append("  n/N: /", self._style("muted"))
            info.append(safe_cell(self._search.text, 40), self._style("muted"))
            info.append("/ (esc forgets)", self._style("muted"))
        if self._filter_error:
            info.append(f"  {self._filter_error}", self._style("error"))
        info.append(f"  ·  {shown:,} of {total:,}" if shown != total else f"  ·  {total:,}")
        info.append(" batches", self._style("muted"))
        if not state.synced and not state.degraded:
            info.append("  ·  loading…", self._style("muted"))
        elif not state.synced:  # the API has not answered the first list yet
            info.append("  ·  not loaded yet: retrying (see above)", self._style("warning"))
        elif shown == 0:
            hint = ("no batches in this workspace yet" if total == 0
                    else "nothing matches — esc clears the filter, 1 shows all")
            info.append(f"  ·  {hint}", self._style("warning"))
        self.query_one("#view-info", Static).update(info)
        hint_widget = self.query_one("#new-hint", Static)
        count = len(self._pending)
        hint_widget.display = count > 0
        if count:
            hint_widget.update(Text(f" ↑ +{count} new · r shows ", no_wrap=True))

    def _style(self, name: str) -> str:
        return str(self.get_component_rich_style(f"batches--{name}", partial=True))

    def _cursor_batch(self) -> BatchSnapshot | None:
        rows, key = self._rows, self.table.cursor_key
        index = rows.index_of(key) if rows is not None and key is not None else None
        return rows.batches[index] if rows is not None and index is not None else None

    def _update_row_note(self) -> None:
        """The basis of the cursor row's ETA (the cell itself is only "~12m")."""
        batch, rows = self._cursor_batch(), self._rows
        eta = rows.eta(batch) if rows is not None and batch is not None else None
        note = self.query_one("#row-note", Static)
        note.display = eta is not None
        if eta is not None:
            note.update(Text(f" eta {eta[0]} · {safe_cell(eta[1], NOTE_WIDTH)} ", no_wrap=True,
                             overflow="ellipsis", style=self._style("muted")))

    @on(VirtualTable.Highlighted, "#batches")
    def _on_highlighted(self, event: VirtualTable.Highlighted) -> None:
        self._update_row_note()
        if self._prewarm_timer is not None:
            self._prewarm_timer.stop()
        self._prewarm_timer = self.set_timer(PREWARM_AFTER_S, self._prewarm)

    def _prewarm(self) -> None:
        """The cursor rests on a big ended batch not downloaded yet: boot the index workers
        now, so that opening it does not wait for them."""
        store, batch = self.batches_app.results_store, self._cursor_batch()
        if store is not None and batch is not None:
            self.run_worker(functools.partial(store.prewarm, batch), thread=True,
                            group="prewarm", exit_on_error=False, name="prewarm index workers")

    # -- "+N new" -----------------------------------------------------------------------------

    def reveal_new(self) -> None:
        """Show the held-back batches: scroll to the top, cursor on the first of them."""
        if not self._pending:
            return
        revealed = set(self._pending)
        self._pending.clear()
        self._rebuild(self._now(), data_changed=False)
        rows = self._rows
        found = [rows.index_of(key) for key in revealed] if rows is not None else []
        first = min((index for index in found if index is not None), default=0)
        self.table.scroll_to(y=0, animate=False, force=True)
        self.table.cursor_index = first

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.id == "new-hint":
            self.reveal_new()

    # -- actions ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False hides a binding and lets its key fall through to the next one (`n`);
        # None shows it dimmed.
        if action == "match":
            return self._search is not None
        if action in WRITE_ACTIONS and not self._can_act():
            return False
        if action == "submit":
            return self._search is None
        if action == "start_filter":
            return not self._editing and not isinstance(self.app.focused, Input)
        if action == "clear_filter":
            active = self._spec.text is not None or self._editing or self._search is not None
            return True if active else None
        return True

    @on(VirtualTable.Selected, "#batches")
    def _on_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        self.batches_app.open_batch(event.key)

    @on(VirtualTable.SortRequested, "#batches")
    def _on_sort(self, event: VirtualTable.SortRequested) -> None:
        event.stop()
        self.set_spec(replace(self._spec, sort_key=event.column_key,
                              descending=event.descending))

    def set_spec(self, spec: ViewSpec) -> None:
        """Change filter or sort; the cursor stays on its batch when it is still shown."""
        self._spec = spec
        self._pending.clear()  # the whole view is laid out anew: nothing to hold back
        table = self.table
        table.sort_column = spec.sort_key
        table.sort_descending = spec.descending
        self._rebuild(self._now(), data_changed=False)
        self.refresh_bindings()

    def action_status(self, name: str) -> None:
        self.set_spec(replace(self._spec, status=STATUS_KEYS[name]))

    def action_refresh(self) -> None:
        self.reveal_new()
        self.batches_app.action_refresh_now()

    # -- actions on batches (the flows ask, act, toast and refresh) ---------------------------

    def _can_act(self) -> bool:
        """Not read-only, and the services (once started) include the actions layer.

        With several profiles watched, read-only is the row's profile's: its flow refuses."""
        app = self.batches_app
        services = app.services
        read_only = app.settings.read_only and not app.watching
        return not read_only and (services is None or services.actions is not None)

    @property
    def flows(self) -> ActionFlows:
        return self.batches_app.flows

    def targets(self) -> list[str]:
        """The marked batches (in list order) when any are marked, else the cursor's batch."""
        table = self.table
        marked = table.marked
        if marked:
            ids = self._rows.ids if self._rows is not None else []
            shown = [batch_id for batch_id in ids if batch_id in marked]
            return shown + sorted(marked.difference(shown))
        key = table.cursor_key
        return [key] if key is not None else []

    def _one_target(self, verb: str) -> str | None:
        targets = self.targets()
        if len(targets) == 1:
            return targets[0]
        if targets:
            self.notify(f"{verb} works on one batch at a time: {len(targets)} are marked "
                        "(space unmarks)", severity="warning", markup=False)
        else:
            self.notify("no batch under the cursor", severity="warning", markup=False)
        return None

    def _start(self, flow: Coroutine[Any, Any, bool], *, follow_new: bool = False) -> None:
        """Run a flow on the services of its batches' profile (the cursor's for a submit)."""
        if not self.batches_app.activate_for(self.targets()):
            flow.close()
            return
        self.batches_app.start_action(flow, follow_new=follow_new)

    def action_cancel(self) -> None:
        self._start(self.flows.cancel(self.targets()))

    def action_delete(self) -> None:
        self._start(self.flows.delete(self.targets()))

    def action_retry(self) -> None:
        target = self._one_target("retry")
        if target is not None:
            self._start(self.flows.retry(target), follow_new=True)

    def action_submit(self) -> None:
        self._start(self.flows.submit(), follow_new=True)

    def action_attach(self) -> None:
        target = self._one_target("attach")
        if target is not None:
            self._start(self.flows.attach(target))

    def action_label(self) -> None:
        target = self._one_target("label")
        if target is not None:
            self._start(self.flows.label(target))

    def action_audit(self) -> None:
        self.batches_app.open_audit()

    def action_done(self, created: Sequence[str]) -> None:
        """An action went through: the marks are spent; the cursor goes to a created batch."""
        if not self.is_mounted:
            return
        self.table.clear_marks()
        if not created:
            return
        self._follow = created[0]
        self._pending.difference_update(created)
        self._rebuild(self._now(), data_changed=False)

    def action_toggle_events(self) -> None:
        pane = self.query_one("#events", EventPane)
        pane.display = not pane.display
        if pane.display:
            pane.reset()
            pane.feed(self._state.recent_events)

    def show_events(self) -> None:
        pane = self.query_one("#events", EventPane)
        if not pane.display:
            self.action_toggle_events()

    def action_match(self, backwards: bool) -> None:
        if self._search is None or self._rows is None:
            return
        index = next_match(self._rows.ids, self.table.cursor_index, self._search,
                           self.batches_app.labels, backwards=backwards)
        if index is None:
            self.notify(f"no batch matches /{self._search.text}/", severity="warning")
            return
        self.table.cursor_index = index

    def move_to(self, batch_id: str) -> bool:
        """Put the cursor on a batch, clearing filters that hide it; False if unknown."""
        if batch_id not in self._state.batches:
            return False
        if batch_id in self._pending:
            self.reveal_new()
        if self._rows is None or self._rows.index_of(batch_id) is None:
            self.set_spec(replace(self._spec, status=StatusFilter.ALL, text=None))
        return self.table.move_to_key(batch_id)

    # -- the filter line ----------------------------------------------------------------------

    def action_start_filter(self) -> None:
        field = self.query_one("#filter", Input)
        self._editing_from = self._spec.text
        field.value = self._spec.text.text if self._spec.text else ""
        field.display = True
        self._editing = True
        self.set_focus(field)  # now, not later: keys typed right after `/` belong to it
        self.refresh_bindings()

    @on(Input.Changed, "#filter")
    def _on_filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        typed = read_filter(event.value)
        self._filter_error = typed.error
        if typed.error is None:
            self.set_spec(replace(self._spec, text=typed.text))
        else:
            self._update_view_bar()

    @on(Input.Submitted, "#filter")
    def _on_filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._filter_error is None:
            self._search = self._spec.text or self._search
            self._close_filter()
        else:
            self.notify(self._filter_error, severity="error")

    def action_clear_filter(self) -> None:
        if self._editing:
            # esc while typing: back to the filter as it was before `/`.
            self._filter_error = None
            self._close_filter()
            self.set_spec(replace(self._spec, text=self._editing_from))
            return
        if self._spec.text is not None:
            self._search = self._spec.text
            self.set_spec(replace(self._spec, text=None))
        elif self._search is not None:
            # A second esc forgets the search: n starts a new submit again.
            self._search = None
            self._update_view_bar()
            self.refresh_bindings()

    def _close_filter(self) -> None:
        self.query_one("#filter", Input).display = False
        self._editing = False
        self.set_focus(self.table)
        self._update_view_bar()
        self.refresh_bindings()
