"""One batch: its live state while it runs; once ended, every result, filtered, searched, sorted."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import Any, ClassVar, Protocol, cast

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Input, ProgressBar, Static
from textual.worker import Worker, WorkerCancelled, WorkerFailed

from tui.core.batch_view import FilterError, TextFilter
from tui.core.events import RESULTS_PREFIX, Event
from tui.core.models import CANCELING, BatchSnapshot
from tui.core.results import ERRORED, DownloadProgress, StoreStatus
from tui.core.sanitize import safe_cell
from tui.paths import locations
from tui.service.actions import Actions
from tui.service.api import ApiError, BatchesAPI
from tui.service.costing import CostService
from tui.service.ledger import Ledger
from tui.service.monitor import Monitor, MonitorState
from tui.service.results_store import (
    AuditSink,
    ResultsDownloadError,
    ResultsNotReady,
    ResultsStore,
)
from tui.settings import Settings
from tui.ui.action_flows import ActionFlows
from tui.ui.batch_lineage import load_extras, load_facts
from tui.ui.batch_store import DownloadProgressed, query_rows, store_for
from tui.ui.clipboard import copy_value
from tui.ui.messages import MonitorUpdated
from tui.ui.render import CellStyles, component_classes, resolve_styles, style_css
from tui.ui.result_rows import (
    MISSING,
    MISSING_COLUMNS,
    RESULT_COLUMNS,
    ResultRows,
    ResultView,
    RowCache,
    missing_rows,
    next_version,
    parse_search,
    view_bar,
)
from tui.ui.screens.batch_keys import HELP_INTRO, Keys, allowed
from tui.ui.screens.batch_search import SEARCH_PLACEHOLDER, find_match, no_match_text
from tui.ui.screens.merged import MergedScreen
from tui.ui.screens.result import ResultScreen
from tui.ui.widgets.batch_summary import (
    BatchSummary,
    Lineage,
    Phase,
    ResultsState,
    cost_text,
    lineage_text,
    live_text,
)
from tui.ui.widgets.error_summary import ErrorSummary
from tui.ui.widgets.vtable import Column, ListSource, VirtualTable

__all__ = ["BatchHost", "BatchScreen", "DownloadProgressed", "store_for"]

RESULTS_OPENED = RESULTS_PREFIX + "opened"
Flow = Callable[[ActionFlows], Coroutine[Any, Any, bool]]

class BatchHost(Protocol):
    """What the screen reads from the app (BatchtopApp provides all of it)."""

    tz: tzinfo | None

    @property
    def monitor_state(self) -> MonitorState: ...
    @property
    def api(self) -> BatchesAPI: ...
    @property
    def monitor(self) -> Monitor: ...
    @property
    def audit(self) -> AuditSink: ...
    def clock(self) -> datetime: ...


class BatchScreen(Screen[None]):
    """Drill-in target of the list: `BatchScreen(batch_id)`, services read from the app."""

    HELP_TITLE = "batch"
    HELP_INTRO = HELP_INTRO

    INGEST_REFRESH_S: ClassVar[float] = 0.25
    """Least time between two table refreshes while results are coming in."""
    PROGRESS_EVERY_S: ClassVar[float] = 0.1
    """Least time between two progress reports shown while results are coming in."""

    _TYPES = Binding.Group("by type", compact=True)
    _MATCH = Binding.Group("match", compact=True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,h,q", "back", "Back", id="batch.back"),
        Binding("1", "kind('all')", "All", group=_TYPES, id="batch.filter_all"),
        Binding("2", "kind('errored')", "Errored", group=_TYPES, id="batch.filter_errored"),
        Binding("3", "kind('expired')", "Expired", group=_TYPES, id="batch.filter_expired"),
        Binding("4", "kind('canceled')", "Canceled", group=_TYPES, id="batch.filter_canceled"),
        Binding("5", "kind('succeeded')", "Succeeded", group=_TYPES,
                id="batch.filter_succeeded"),
        Binding("6", "kind('missing')", "Not returned", group=_TYPES,
                id="batch.filter_missing"),
        Binding("E", "cycle_error_type", "Error type", id="batch.cycle_error_type"),
        Binding("slash", "start_search", "Search", id="batch.search"),
        Binding("n", "match(False)", "Next match", group=_MATCH, id="batch.next_match"),
        Binding("N", "match(True)", "Previous match", group=_MATCH, id="batch.prev_match"),
        Binding("y", "copy_id", "Copy id", id="batch.copy_id"),
        Binding("r", "refresh", "Refresh / retry", id="batch.refresh"),
        Binding("p", "app.toggle_pause", "Pause", show=False, id="batch.pause"),
        Binding("c", "cancel_batch", "Cancel", id="batch.cancel"),
        Binding("R", "retry_batch", "Retry failed", id="batch.retry"),
        Binding("D", "delete_batch", "Delete", id="batch.delete"),
        Binding("a", "attach", "Attach requests", show=False, id="batch.attach"),
        Binding("t", "label", "Label", show=False, id="batch.label"),
        Binding("M", "merged", "Merged", id="batch.merged"),
        Binding("T", "timeline", "Timeline", id="batch.timeline"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = component_classes("batch")
    DEFAULT_CSS = style_css("BatchScreen", "batch") + """
    BatchScreen {
        #progress { height: 1; padding: 0 1; }
        #progress Bar { width: 1fr; }
        #live { height: 1fr; padding: 1 2; background: $surface; }
        #view-bar { height: 1; background: $surface; }
        #results { height: 1fr; }
        #search { height: 1; border: none; padding: 0 1; background: $boost; }
    }
    """

    def __init__(
        self,
        batch_id: str,
        *,
        store: ResultsStore | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        super().__init__()
        self.batch_id = batch_id  # the app focuses polling on the screen's batch_id
        self._store = store
        self._ledger = ledger
        self._batch: BatchSnapshot | None = None
        self._phase = Phase.LOADING
        self._progress: DownloadProgress | None = None
        self._progress_posted: DownloadProgress | None = None  # the last report passed on
        self._progress_posted_at = 0.0
        self._status: StoreStatus | None = None
        self._error: str | None = None
        self._attempt = 0
        self._version = next_version()
        self._cache: RowCache | None = None
        self._rows: ResultRows | ListSource | None = None
        self._view = ResultView()
        self._counts: dict[str, int] = {}  # results per type, as last counted
        self._final_counts: dict[str, int] | None = None  # counted after the download
        self._missing: list[str] | None = None
        self._submitted: int | None = None
        self._search_error: str | None = None
        self._last_search: TextFilter | None = None  # what n / N look for
        self._editing_from: TextFilter | None = None  # the search before `/` (esc restores)
        self._last_refresh = 0.0
        self._querying = False
        self._bindings_key: Keys | None = None
        self._lineage = Lineage()
        self._local_costs: CostService | None = None
        self._query_wanted = False
        self._opened_recorded = False
        self._styles = CellStyles({})

    # -- services -----------------------------------------------------------------------------

    @property
    def host(self) -> BatchHost:
        return cast(BatchHost, self.app)

    def _service(self, name: str) -> object:
        """An optional service of the app; None when it has none or has not started it yet."""
        try:
            return getattr(self.app, name, None)
        except RuntimeError:
            return None

    @property
    def store(self) -> ResultsStore:
        """The results store (the app's `results_store` when it has one)."""
        if self._store is None:
            shared = self._service("results_store")
            self._store = shared if isinstance(shared, ResultsStore) else store_for(self.host.api)
        return self._store

    def _given_ledger(self) -> Ledger | None:
        """The request ledger given or held by the app (None: open the default one)."""
        if self._ledger is not None:
            return self._ledger
        for found in (self._service("ledger"), getattr(self._service("actions"), "ledger", None)):
            if isinstance(found, Ledger):
                return found
        return None

    @property
    def read_only(self) -> bool:
        return bool(getattr(self._service("settings"), "read_only", False))

    @property
    def lineage(self) -> Lineage:
        """Where the batch sits among retries (from the request ledger)."""
        return self._lineage

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def view(self) -> ResultView:
        return self._view

    @property
    def rows(self) -> ResultRows | ListSource | None:
        return self._rows

    @property
    def results_state(self) -> ResultsState:
        return ResultsState(self._phase, self._progress, self._status, self._error,
                            self._submitted,
                            len(self._missing) if self._missing is not None else None)

    def _now(self) -> datetime:
        return self.host.clock()

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield BatchSummary(self.batch_id, id="summary")
        yield ProgressBar(show_eta=False, id="progress")
        yield Static(id="live")
        yield ErrorSummary(id="errors")
        yield Static(id="view-bar")
        yield VirtualTable(RESULT_COLUMNS, id="results")
        yield Input(placeholder=SEARCH_PLACEHOLDER, id="search")
        yield Footer(compact=True)

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#results", VirtualTable)

    @property
    def summary(self) -> BatchSummary:
        return self.query_one("#summary", BatchSummary)

    @property
    def errors(self) -> ErrorSummary:
        return self.query_one("#errors", ErrorSummary)

    def on_mount(self) -> None:
        for selector in ("#progress", "#live", "#errors", "#view-bar", "#results", "#search"):
            self.query_one(selector).display = False
        self._styles = resolve_styles(self, "batch")
        self._focus_polling(self.batch_id)
        self.set_interval(1.0, self._tick)
        self._load_ledger_facts()
        self._start()

    def on_unmount(self) -> None:
        self._focus_polling(None)

    def _focus_polling(self, batch_id: str | None) -> None:
        try:
            monitor = self.host.monitor
        except (RuntimeError, AttributeError):
            return  # no services yet (or a host without a monitor)
        if batch_id is None and monitor.state.focused != self.batch_id:
            return  # another screen has already taken the focus
        monitor.focus(batch_id)

    def _start(self) -> None:
        """First look: the store (instant reopen), else the batch's state decides."""
        self._batch = self.host.monitor_state.batches.get(self.batch_id)
        try:
            status = self.store.status(self.batch_id)
        except RuntimeError as exc:  # the app has no API services yet
            self._set_phase(Phase.NOT_FOUND, str(exc))
            return
        if status is not None and status.complete:
            self._status = status
            self._set_phase(Phase.READY)
            self._results_ready("store")
        elif self._batch is None:
            self._set_phase(Phase.LOADING)
            self._lookup()
        else:
            self._status = status
            self._consider(self._batch)

    def _consider(self, batch: BatchSnapshot) -> None:
        """Act on the batch's state: wait while it runs, download once it has ended."""
        if self._phase in (Phase.DOWNLOADING, Phase.READY):
            self._show_state()
            return
        if not batch.is_ended:
            self._set_phase(Phase.LIVE)
        elif batch.archived_at is not None:
            status = self._status
            if status is not None and status.lines:
                self._set_phase(Phase.INCOMPLETE, "archived: the rest can no longer be "
                                "downloaded")
                self._results_ready("store")
            else:
                self._set_phase(Phase.UNAVAILABLE)
        elif self._phase is not Phase.INCOMPLETE or self._status is None:
            self._download(batch)
        else:
            self._show_state()

    def _set_phase(self, phase: Phase, error: str | None = None) -> None:
        self._phase = phase
        self._error = error
        self._show_state()

    # -- monitor state and time ---------------------------------------------------------------

    def on_monitor_updated(self, message: MonitorUpdated) -> None:
        batch = message.state.batches.get(self.batch_id)
        if batch is None or not self.is_mounted:
            return
        first_look, self._batch = self._batch is None, batch
        if first_look and self._phase is Phase.READY:
            self._load_cost()  # opened from the store before the monitor knew the batch
        if self._phase in (Phase.LIVE, Phase.LOADING) or (
            self._phase is Phase.NOT_FOUND and batch.is_ended
        ):
            self._consider(batch)  # ended while open: the download starts by itself
        else:
            self._show_state()

    def _tick(self) -> None:
        if self.is_current:
            self._show_state()

    # -- download -----------------------------------------------------------------------------

    @work(exclusive=True, group="lookup", exit_on_error=False, name="batch lookup")
    async def _lookup(self) -> None:
        try:
            batch = await self.host.api.retrieve(self.batch_id)
        except (ApiError, RuntimeError) as exc:  # RuntimeError: no API services yet
            if self._phase is Phase.LOADING:
                self._set_phase(Phase.NOT_FOUND, str(exc))
            return
        self._batch = batch
        self._consider(batch)

    @work(exclusive=True, group="download", exit_on_error=False, name="results download")
    async def _download(self, batch: BatchSnapshot) -> None:
        self._progress = self._progress_posted = None
        self._new_download()
        self._set_phase(Phase.DOWNLOADING)
        host = self.host
        try:
            status = await self.store.ensure(
                host.api.client, batch, progress=self._post_progress, audit=host.audit
            )
        except ResultsDownloadError as exc:
            self._status = exc.store_status
            self._progress = None
            self._set_phase(Phase.INCOMPLETE, str(exc))
        except ResultsNotReady:
            self._set_phase(Phase.LIVE)
            return
        except Exception as exc:  # the app's worker handler reports it; r tries again
            self._progress = None
            self._set_phase(Phase.INCOMPLETE, f"{type(exc).__name__}: {exc}")
            raise
        else:
            self._status = status
            self._progress = None
            if status.complete:
                self._set_phase(Phase.READY)
            else:
                self._set_phase(Phase.INCOMPLETE, status.last_error)
        if self._status is not None:
            self._results_ready("download")

    def _post_progress(self, progress: DownloadProgress) -> None:
        """Pass a download's progress on to the screen: the first report of an attempt, the
        first with rows, then one per `PROGRESS_EVERY_S` (a 100 MB download reports about a
        hundred times; redrawing for each cost a third of a second)."""
        now, shown = time.monotonic(), self._progress_posted
        if (shown is None or shown.attempt != progress.attempt
                or (not shown.lines and progress.lines)
                or now - self._progress_posted_at >= self.PROGRESS_EVERY_S):
            self._progress_posted, self._progress_posted_at = progress, now
            self.post_message(DownloadProgressed(progress))

    def _new_download(self) -> None:
        """A (new) download rewrites the index: cached rows and rendered strips are stale."""
        self._version = next_version()
        self._final_counts = None
        if self._cache is not None:
            self._cache.clear()

    def on_download_progressed(self, message: DownloadProgressed) -> None:
        progress = message.progress
        if self._phase is not Phase.DOWNLOADING:
            return
        if progress.attempt != self._attempt:
            self._attempt = progress.attempt
            self._new_download()
        self._progress = progress
        self._show_state()
        now = time.monotonic()
        if progress.lines and now - self._last_refresh >= self.INGEST_REFRESH_S:
            self._last_refresh = now
            self._requery()

    def _results_ready(self, source: str) -> None:
        """Results are in the store (all or part): show them, their failures, and audit it."""
        self._requery()
        self._load_extras()
        self._load_cost()
        if not self._opened_recorded:
            self._opened_recorded = True
            self._record_opened(source)

    @work(group="audit", exit_on_error=False, name="audit results.opened")
    async def _record_opened(self, source: str) -> None:
        status = self._status
        data: dict[str, object] = {"source": source}
        if status is not None:
            data.update(results=status.results, expected=status.expected,
                        complete=status.complete, malformed=status.malformed,
                        unknown=status.unknown)
        await self.host.audit.record(Event(RESULTS_OPENED, self.batch_id, data))

    # -- the rows -----------------------------------------------------------------------------

    def _known_lines(self) -> int | None:
        """Rows the index holds for sure (the whole stream order is 0..lines-1)."""
        if self._phase is Phase.DOWNLOADING:
            return self._progress.lines if self._progress is not None else None
        return self._status.lines if self._status is not None else None

    def _requery(self) -> None:
        """Read the view's rows again. While a query runs, one more follows it (not a cancel:
        during a download a slow query would otherwise never land)."""
        self._query_wanted = True
        if not self._querying:
            self._querying = True
            self._run_queries()

    @work(group="query", exit_on_error=False, name="results query")
    async def _run_queries(self) -> None:
        try:
            while self._query_wanted:
                self._query_wanted = False
                await self._query_once()
        finally:
            self._querying = False

    async def _query_once(self) -> None:
        view = self._view
        if view.kind == MISSING:
            self._show_source(missing_rows(self._missing or [], self._styles), MISSING_COLUMNS)
            return
        store, batch_id, lines = self.store, self.batch_id, self._known_lines()
        # The counts per type change only while results come in: count once after that.
        settled, version = self._phase is not Phase.DOWNLOADING, self._version
        counted = self._final_counts if settled else None

        try:
            seqs, counts = await asyncio.to_thread(query_rows, store, batch_id, view, lines,
                                                   counted)
        except ValueError as exc:  # a regex SQLite's side refused
            self._search_error = str(exc)
            self._render_view_bar()
            return
        if view != self._view:
            return  # the view changed meanwhile; the query that follows shows it
        self._counts = counts
        if settled and version == self._version:
            self._final_counts = counts
        if self._cache is None:
            self._cache = RowCache(store, batch_id)
        self._show_source(ResultRows(seqs, self._cache, self._styles, self._version),
                          RESULT_COLUMNS)

    def _show_source(self, source: ResultRows | ListSource, columns: Sequence[Column]) -> None:
        table = self.table
        if tuple(columns) != table.columns:
            table.set_columns(columns)
        self._rows = source
        table.set_source(source)
        if not table.display:
            table.display = True
            self.query_one("#view-bar").display = True
            if not self.query_one("#search", Input).has_focus:
                table.focus()
        self._render_view_bar()

    @work(exclusive=True, group="extras", exit_on_error=False, name="failure summary")
    async def _load_extras(self) -> None:
        extras = await asyncio.to_thread(load_extras, self.store, self.batch_id,
                                         self._given_ledger())
        self._submitted, self._missing = extras.submitted, extras.missing
        self.errors.show(extras.groups, self._styles, len(extras.missing or ()))
        self._show_state()
        self._sync_bindings()

    @work(exclusive=True, group="ledger", exit_on_error=False, name="batch lineage")
    async def _load_ledger_facts(self) -> None:
        """The local label and the retry lineage (again after a retry, a label or an attach)."""
        label, lineage = await asyncio.to_thread(load_facts, self.batch_id,
                                                 self._given_ledger())
        self._lineage = lineage
        if not self.is_mounted:
            return
        summary = self.summary
        summary.notes = replace(summary.notes, label=label,
                                lineage=lineage_text(lineage, self._styles))
        self._show_state()

    def _cost_service(self) -> CostService | None:
        """The app's cost service when it prices from a store; else one of this screen's."""
        shared = self._service("costs")
        if isinstance(shared, CostService) and shared.store is not None:
            return shared
        return self._local_costs

    @work(exclusive=True, group="cost", exit_on_error=False, name="batch cost")
    async def _load_cost(self) -> None:
        """The cost line, once the batch has ended and its results are all stored."""
        batch = self._batch
        if batch is None or not batch.is_ended:
            return
        costs = self._cost_service()
        if costs is None:
            store = self.store
            settings = self._service("settings")
            config = settings if isinstance(settings, Settings) else Settings()
            costs = self._local_costs = await asyncio.to_thread(
                CostService, store, config, locations().audit)
        cost = await asyncio.to_thread(costs.batch_cost, batch)
        if cost is None or not self.is_mounted:
            return
        summary = self.summary
        summary.notes = replace(summary.notes,
                                cost=cost_text(cost, costs.warnings, self._styles))
        self._show_state()

    # -- rendering ----------------------------------------------------------------------------

    def _show_state(self) -> None:
        if not self.is_mounted:
            return
        host, batch, phase = self.host, self._batch, self._phase
        now = self._now()
        self.summary.show(batch, self.results_state, now, self._styles, host.tz)
        progress = self.query_one("#progress", ProgressBar)
        progress.display = phase is Phase.DOWNLOADING
        if phase is Phase.DOWNLOADING and self._progress is not None:
            progress.update(total=max(1, self._progress.expected),
                            progress=self._progress.lines)
        live = self.query_one("#live", Static)
        live.display = phase is Phase.LIVE and batch is not None
        if live.display and batch is not None:
            live.update(live_text(batch, now, self._styles, host.tz))
        self._sync_bindings()

    def _render_view_bar(self) -> None:
        shown = len(self._rows) if self._rows is not None else None
        bar = view_bar(self._view, self._counts, self._styles, shown=shown,
                       missing=len(self._missing or ()), error=self._search_error,
                       settled=self._phase is not Phase.DOWNLOADING)
        self.query_one("#view-bar", Static).update(bar)

    # -- view changes -------------------------------------------------------------------------

    def set_view(self, view: ResultView) -> None:
        """Show another filter or order; the cursor stays on its result when still shown."""
        self._view = view
        table = self.table
        table.sort_column = None if view.order_by == "seq" else view.order_by
        table.sort_descending = view.descending
        if self._rows is not None or view.kind == MISSING:
            self._requery()
        self._sync_bindings()

    def _bindings_state(self) -> Keys:
        has_rows = self._status is not None or self._phase is Phase.DOWNLOADING
        error_types = self.is_mounted and any(
            g.result_type == ERRORED for g in self.errors.groups)
        batch = self._batch
        ended = batch is not None and batch.is_ended
        counts = batch.request_counts if batch is not None else None
        return Keys(
            has_rows, bool(self._missing), error_types, self._last_search is not None,
            self.read_only,
            cancelable=batch is not None and not ended
            and batch.processing_status != CANCELING and batch.cancel_initiated_at is None,
            ended=ended,
            failures=ended and counts is not None
            and counts.errored + counts.expired + counts.canceled > 0,
            related=self._lineage.related,
        )

    def _sync_bindings(self) -> None:
        # A refresh rebuilds the footer: only when an answer of check_action may change.
        state = self._bindings_state()
        if state != self._bindings_key:
            self._bindings_key = state
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return allowed(self._bindings_state(), action, parameters)

    # -- actions on the batch -----------------------------------------------------------------

    def action_cancel_batch(self) -> None:
        self._run_flow("cancel", lambda flows: flows.cancel([self.batch_id]))

    def action_retry_batch(self) -> None:
        self._run_flow("retry", lambda flows: flows.retry(self.batch_id),
                       then=self._load_ledger_facts)

    def action_delete_batch(self) -> None:
        self._run_flow("delete", lambda flows: flows.delete([self.batch_id]),
                       then=self._leave_deleted)

    def action_attach(self) -> None:
        self._run_flow("attach requests", lambda flows: flows.attach(self.batch_id),
                       then=self._attached)

    def action_label(self) -> None:
        self._run_flow("label", lambda flows: flows.label(self.batch_id),
                       then=self._load_ledger_facts)

    def _run_flow(self, name: str, flow: Flow, then: Callable[[], object] | None = None) -> None:
        """Start the app's flow (it outlives this screen); `then` runs here when it succeeds."""
        flows = self._service("flows")
        if not isinstance(flows, ActionFlows):
            self.notify("actions are not available: not connected to the API yet",
                        severity="warning")
            return
        worker = flows.run(flow(flows), name=name)
        if then is not None:
            self._after_flow(worker, then)

    @work(group="flow", exit_on_error=False, name="after action")
    async def _after_flow(self, worker: Worker[bool], then: Callable[[], object]) -> None:
        try:
            done = await worker.wait()
        except (WorkerCancelled, WorkerFailed):  # a failure is reported by the app
            return
        if done and self.is_mounted:
            then()

    def _leave_deleted(self) -> None:
        if self.is_current:
            self.dismiss(None)

    def _attached(self) -> None:
        self._load_ledger_facts()
        if self._status is not None:
            self._load_extras()  # the submitted requests are known now: "6" may list some

    def action_merged(self) -> None:
        actions = self._service("actions")
        if not isinstance(actions, Actions):
            self.notify("the merged view is not available: not connected to the API yet",
                        severity="warning")
            return
        batch_id = self.batch_id
        self.app.push_screen(MergedScreen(batch_id, lambda: actions.merged_outcomes(batch_id)))

    def action_timeline(self) -> None:
        try:
            module = importlib.import_module("tui.ui.screens.audit")
            screen: Screen[Any] = module.AuditScreen(batch_id=self.batch_id)
        except (ImportError, AttributeError):
            self.notify("audit viewer not available", severity="warning")
            return
        self.app.push_screen(screen)

    def action_kind(self, kind: str) -> None:
        self.set_view(replace(self._view, kind=kind, error_type=None))

    def action_cycle_error_type(self) -> None:
        names = [g.error_type for g in self.errors.groups
                 if g.result_type == ERRORED and g.error_type is not None]
        if not names:
            return
        current = self._view.error_type
        if current in names and names.index(current) + 1 < len(names):
            chosen: str | None = names[names.index(current) + 1]
        else:
            chosen = names[0] if current is None else None
        self.set_view(replace(self._view, kind="errored", error_type=chosen))
        if chosen is None:
            self.notify("all error types", timeout=2)

    @on(ErrorSummary.Picked)
    def _on_picked(self, event: ErrorSummary.Picked) -> None:
        event.stop()
        self.set_view(replace(self._view, kind=event.result_type, error_type=event.error_type))
        self.table.focus()

    @on(VirtualTable.SortRequested, "#results")
    def _on_sort(self, event: VirtualTable.SortRequested) -> None:
        event.stop()
        if self._view.kind != MISSING:
            self.set_view(replace(self._view, order_by=event.column_key,
                                  descending=event.descending))

    @on(VirtualTable.Selected, "#results")
    def _on_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        rows = self._rows
        if not isinstance(rows, ResultRows):
            self.notify(f"{safe_cell(event.key, 64)}: submitted, but no result came back",
                        markup=False)
            return
        row = rows.row_at(event.index)
        if row is None:
            return
        self.app.push_screen(ResultScreen(self.store, self.batch_id, row.seq, row.custom_id,
                                          self._known_lines()))

    def action_copy_id(self) -> None:
        rows, index = self._rows, self.table.cursor_index
        if isinstance(rows, ResultRows) and index < len(rows):
            row = rows.row_at(index)
            if row is not None:
                copy_value(self.app, row.custom_id, "custom_id")
                return
        elif isinstance(rows, ListSource) and index < len(rows):
            copy_value(self.app, rows.key_at(index), "custom_id")
            return
        copy_value(self.app, self.batch_id, "batch id")

    def action_refresh(self) -> None:
        batch = self._batch
        if self._phase is Phase.INCOMPLETE and batch is not None and batch.archived_at is None:
            self._download(batch)
        elif self._phase is Phase.NOT_FOUND:
            self._set_phase(Phase.LOADING)
            self._start()
        else:
            refresh = getattr(self.app, "action_refresh_now", None)
            if callable(refresh):
                refresh()

    def action_back(self) -> None:
        field = self.query_one("#search", Input)
        if field.display:
            self._close_search(restore=True)
        elif self._view.search is not None:
            self._last_search = self._view.search
            self.set_view(replace(self._view, search=None))
        else:
            self.dismiss(None)

    # -- search -------------------------------------------------------------------------------

    def action_start_search(self) -> None:
        field = self.query_one("#search", Input)
        self._editing_from = self._view.search
        field.value = self._view.search.text if self._view.search else ""
        field.display = True
        field.focus()

    @on(Input.Changed, "#search")
    def _on_search_changed(self, event: Input.Changed) -> None:
        event.stop()
        try:
            search = parse_search(event.value)
        except FilterError as exc:
            self._search_error = str(exc)
            self._render_view_bar()
            return
        self._search_error = None
        self.set_view(replace(self._view, search=search))

    @on(Input.Submitted, "#search")
    def _on_search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._search_error is not None:
            self.notify(self._search_error, severity="error", markup=False)
            return
        self._last_search = self._view.search or self._last_search
        self._close_search(restore=False)

    def _close_search(self, *, restore: bool) -> None:
        field = self.query_one("#search", Input)
        field.display = False
        if restore:
            self._search_error = None
            self.set_view(replace(self._view, search=self._editing_from))
        self.table.focus()
        self._sync_bindings()

    def action_match(self, backwards: bool) -> None:
        if self._last_search is not None and isinstance(self._rows, ResultRows):
            self._find(self._last_search, backwards)

    @work(exclusive=True, group="match", exit_on_error=False, name="find match")
    async def _find(self, search: TextFilter, backwards: bool) -> None:
        rows = self._rows
        if not isinstance(rows, ResultRows) or not len(rows):
            return
        filters = replace(self._view, search=search).filters()
        found = await asyncio.to_thread(find_match, self.store, self.batch_id, filters,
                                        rows.seqs, self.table.cursor_index, backwards)
        if found is not None:
            self.table.cursor_index = found
        else:
            self.notify(no_match_text(search), severity="warning", markup=False)

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        self._show_state()

