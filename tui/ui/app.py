"""BatchtopApp: holds the services, installs the screens, turns monitor state into messages."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Protocol

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from tui.core.alerts import Alert, Severity
from tui.core.cost import BatchCost, ModelCost
from tui.core.events import Event
from tui.core.models import BatchSnapshot
from tui.core.sanitize import safe_text
from tui.core.timefmt import utcnow
from tui.service.actions import Actions
from tui.service.alerting import AlertService
from tui.service.api import ApiError, BatchesAPI
from tui.service.costing import CostService
from tui.service.credentials import MissingApiKey
from tui.service.ledger import Ledger
from tui.service.monitor import Monitor, MonitorState
from tui.service.results_store import ResultsStore
from tui.settings import ConfigError, ProfileSummary, Settings
from tui.ui.action_flows import ActionFlows, reconcile_text
from tui.ui.commands import BatchActions, GoToBatch, ScreenActions, unknown_binding_ids
from tui.ui.messages import MonitorUpdated
from tui.ui.render import should_toast
from tui.ui.screens.batch import BatchScreen
from tui.ui.screens.batches import BatchesScreen
from tui.ui.screens.help import HelpScreen, help_rows
from tui.ui.screens.jump import JumpScreen, JumpVerb, parse_jump
from tui.ui.screens.nokey import NoKeyScreen, no_key_text
from tui.ui.screens.profiles import ProfilesScreen
from tui.ui.theme import apply_theme, register_themes
from tui.ui.watch import merge_states, watch_label
from tui.ui.widgets.status_header import HeaderInfo

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
STOP_TIMEOUT_S = 5.0
ALERT_TOASTS = 3  # alerts arriving together beyond this many share one toast
ALERT_TIMEOUT_S = 10.0
_TOAST_SEVERITY: Mapping[Severity, SeverityLevel] = {
    Severity.INFO: "information",
    Severity.WARNING: "warning",
    Severity.ERROR: "error",
}
_ALERT_RANK = (Severity.INFO, Severity.WARNING, Severity.ERROR)

BUSY_GROUPS = ("actions", "flow")  # work a profile switch must not cut short
SESSION_GROUPS = ("services", "costs", "refresh", "reconcile")  # work of the current services


class AuditSink(Protocol):
    """What the app needs from the audit log: writing (for the monitor) and closing."""

    async def record(self, event: Event) -> None: ...
    async def close(self) -> None: ...


@dataclass
class Services:
    """Everything behind the UI; built by a factory inside the app's event loop."""

    api: BatchesAPI
    audit: AuditSink
    monitor: Monitor
    clock: Clock = utcnow
    where: str = "default"  # profile / workspace shown in the header
    on_close: Callable[[], Awaitable[None]] | None = None  # e.g. stop an in-process emulator
    # The features around the monitor (`tui.ui.launch.assemble` builds them); without them
    # the app only watches. Actions and alerts write through `audit` too.
    actions: Actions | None = None
    store: ResultsStore | None = None
    alerts: AlertService | None = None
    costs: CostService | None = None


ServicesFactory = Callable[[], Awaitable[Services]]


class ProfileSource(Protocol):
    """The profiles of the config file, for `P` (`tui.ui.launch.ConfiguredProfiles`)."""

    def summaries(self, settings: Settings) -> list[ProfileSummary]:
        """Every profile, with its base URL and read-only flag (never its key)."""
        ...

    def open(self, name: str) -> tuple[Settings, ServicesFactory]:
        """The settings of profile `name` and its services (blocking: may run a key command);
        raises ConfigError or MissingApiKey with a message for the user."""
        ...


def alert_toast(alerts: list[Alert]) -> tuple[str, SeverityLevel]:
    """One toast for alerts that arrived together: each on a line, or a count past a few."""
    worst = max((alert.severity for alert in alerts), key=_ALERT_RANK.index)
    lines = [safe_text(alert.message) for alert in alerts[:ALERT_TOASTS]]
    if len(alerts) > ALERT_TOASTS:
        lines.append(f"… and {len(alerts) - ALERT_TOASTS} more (:audit lists them)")
    return "\n".join(lines), _TOAST_SEVERITY[worst]


class BatchtopApp(App[int]):
    """The batchtop TUI. Public hooks: open_batch, open_audit, set_labels, start_action,
    monitor_state, clock(), flows, and the api / monitor / audit / actions / ledger /
    results_store / alerts / costs / settings properties."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "batchtop"
    COMMANDS = App.COMMANDS | {ScreenActions, BatchActions, GoToBatch}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_or_back", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        # Priority, so that keys typed right after `:` reach the jump line.
        Binding("colon", "jump", "Jump", id="app.jump", priority=True),
        Binding("ctrl+p", "command_palette", "Commands", show=False, priority=True,
                id="app.command_palette"),
        Binding("P", "profiles", "Profiles", show=False, id="app.profiles"),
        Binding("ctrl+t", "change_theme", "Theme", show=False, id="app.theme"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        services: ServicesFactory | None,
        demo: ServicesFactory | None = None,
        no_key_reason: str | None = None,
        profiles: ProfileSource | None = None,
        watch: Mapping[str, tuple[Settings, ServicesFactory]] | None = None,
        clock: Clock | None = None,
        tz: tzinfo | None = None,
        handle_signals: bool = False,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.tz = tz
        self.labels: dict[str, str] = {}
        self.lineage: dict[str, tuple[str, int]] = {}  # retry batch -> (parent, generation)
        self.cost_today: BatchCost | None = None  # stored batches that ended today
        self.history_loaded = False  # ETAs wait for it (else a row would read the audit log)
        self.flows = ActionFlows(self)
        self._factory = services
        self._demo_factory = demo
        self._no_key_reason = no_key_reason
        self._profiles = profiles
        self._warned: set[str] = set()
        self._clock = clock or utcnow
        self._handle_signals = handle_signals
        self._services: Services | None = None
        self._monitor_worker: Worker[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._unsubscribe_alerts: Callable[[], None] | None = None
        self._alert_burst: list[Alert] = []
        self._reconciled = False
        self._costs_wanted = False
        self._costs_running = False
        self._state = MonitorState()
        self._user_paused = False
        self._stopped = False
        self._batches: BatchesScreen | None = None
        # Several profiles side by side (`watch_profiles`): each its services and state;
        # `_services` is then the active one, the profile of the batch being acted on.
        self._watch = dict(watch or {})
        self._watched: dict[str, Services] = {}
        self._watch_settings: dict[str, Settings] = {}
        self._states: dict[str, MonitorState] = {}
        self._owners: Mapping[str, str] = {}
        self._watch_workers: dict[str, Worker[None]] = {}
        self._watch_stops: list[Callable[[], None]] = []
        self._reconciled_profiles: set[str] = set()
        self._watch_where = ""
        # Light over SSH: no animation unless TEXTUAL_ANIMATIONS asks for it.
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            self.animation_level = "none"

    # -- public hooks ---------------------------------------------------------------------------

    @property
    def services(self) -> Services | None:
        return self._services

    def _require(self) -> Services:
        if self._services is None:
            raise RuntimeError("the API services are not started yet")
        return self._services

    @property
    def api(self) -> BatchesAPI:
        return self._require().api

    @property
    def monitor(self) -> Monitor:
        return self._require().monitor

    @property
    def audit(self) -> AuditSink:
        return self._require().audit

    @property
    def actions(self) -> Actions:
        """The actions layer (cancel, retry, submit…); RuntimeError while there is none."""
        actions = self._require().actions
        if actions is None:
            raise RuntimeError("actions are not available in this session")
        return actions

    @property
    def ledger(self) -> Ledger | None:
        """The request ledger (labels, lineage, submitted requests), None until started."""
        services = self._services
        return services.actions.ledger if services and services.actions else None

    @property
    def results_store(self) -> ResultsStore | None:
        """The results store the batch screen and the cost column share."""
        return self._services.store if self._services is not None else None

    @property
    def alerts(self) -> AlertService | None:
        return self._services.alerts if self._services is not None else None

    @property
    def costs(self) -> CostService | None:
        return self._services.costs if self._services is not None else None

    @property
    def watching(self) -> bool:
        """Several profiles are watched side by side (the list has a profile column)."""
        return bool(self._watch)

    def profile_of(self, batch_id: str) -> str | None:
        """The watched profile a batch belongs to (None when only one profile is watched)."""
        return self._owners.get(batch_id) if self._watch else None

    def _services_of(self, batch_id: str) -> Services | None:
        name = self.profile_of(batch_id)
        return self._watched.get(name) if name is not None else self._services

    def costs_of(self, batch_id: str) -> CostService | None:
        """The cost service of the batch's workspace."""
        services = self._services_of(batch_id)
        return services.costs if services is not None else None

    def activate_for(self, batch_ids: Sequence[str]) -> bool:
        """Make the profile of these batches the active one (every screen reads its
        services); False, with a toast, when they belong to several profiles."""
        if not self._watch:
            return True
        names = {self._owners[b] for b in batch_ids if b in self._owners}
        if len(names) > 1:
            self.notify("the marked batches belong to several profiles: act on one profile "
                        "at a time", severity="warning", markup=False)
            return False
        if names:
            self._activate(names.pop())
        return True

    def _activate(self, name: str) -> None:
        services = self._watched.get(name)
        if services is None or services is self._services:
            return
        previous, self._services = self._services, services
        self.settings = self._watch_settings[name]
        if previous is not None:
            previous.monitor.focus(None)

    @property
    def monitor_state(self) -> MonitorState:
        """The newest state the monitor published."""
        return self._state

    @property
    def batches_screen(self) -> BatchesScreen | None:
        return self._batches

    def clock(self) -> datetime:
        """Now, on the services' clock (the emulator's in the demo and in tests)."""
        return self._services.clock() if self._services is not None else self._clock()

    def open_batch(self, batch_id: str) -> None:
        """Drill into a batch: cursor onto it in the list, then its screen on top."""
        self.activate_for([batch_id])
        if self._batches is not None:
            self._pop_to(self._batches)
            self._batches.move_to(batch_id)
        self.push_screen(self.make_batch_screen(batch_id))

    def make_batch_screen(self, batch_id: str) -> Screen[Any]:
        """The drill-in screen of a batch (override to change it)."""
        return BatchScreen(batch_id)

    def open_audit(self, batch_id: str | None = None) -> None:
        """The audit log (a batch's timeline with `batch_id`); the event pane without it."""
        try:
            module = importlib.import_module("tui.ui.screens.audit")
        except ImportError:
            module = None
        if module is not None and hasattr(module, "AuditScreen"):
            self.push_screen(module.AuditScreen(batch_id))
            return
        if self._batches is not None:
            self._pop_to(self._batches)
            self._batches.show_events()

    def set_labels(self, labels: Mapping[str, str]) -> None:
        """Local labels of batches (matched by `/` and shown in a label column).

        Called after every action that may have changed the ledger, so the lineage of retry
        batches is read again here too.
        """
        if self._watch:  # every watched workspace's ledger
            merged: dict[str, str] = {}
            lineage: dict[str, tuple[str, int]] = {}
            for services in self._watched.values():
                if services.actions is not None:
                    merged.update(services.actions.ledger.labels())
                    lineage.update(services.actions.ledger.lineage())
            self.labels, self.lineage = merged, lineage
            self.repaint_rows()
            return
        self.labels = dict(labels)
        ledger = self.ledger
        if ledger is not None:
            self.lineage = ledger.lineage()
        self.repaint_rows()

    def forget_batches(self, batch_ids: Sequence[str]) -> None:
        """Batches deleted by an action: the monitor drops them now (`batch.gone`, reason
        "deleted"), so they leave the list without waiting for its next sweep."""
        services = self._services
        if services is not None:
            for batch_id in batch_ids:
                services.monitor.forget(batch_id)
        self.repaint_rows()

    def repaint_rows(self) -> None:
        """Labels, lineage, costs or alerts changed: the list draws its rows again."""
        if self._batches is not None:
            self._batches.refresh_labels()

    def start_action(self, flow: Coroutine[Any, Any, bool], *, follow_new: bool = False
                     ) -> Worker[bool]:
        """Run an action flow; when it created batches (`follow_new`) the cursor goes to them."""
        return self.flows.run(self._followed(flow, follow_new))

    async def _followed(self, flow: Coroutine[Any, Any, bool], follow_new: bool) -> bool:
        ledger = self.ledger if follow_new else None
        before = ledger.known_batch_ids() if ledger is not None else set()
        done = await flow
        if done and self._batches is not None:
            # The batches this flow created are the ones the ledger learnt meanwhile.
            mine = ledger.known_batch_ids() - before if ledger is not None else set()
            listed = [batch_id for batch_id in self._state.order if batch_id in mine]
            self._batches.action_done(listed or sorted(mine))
        return done

    # -- start-up -------------------------------------------------------------------------------

    def on_mount(self) -> None:
        register_themes(self)
        self._apply_look(self.settings)
        self.screen_change_signal.subscribe(self, self._on_screen_change)
        self.set_interval(1.0, self._tick)
        if self._handle_signals:
            self._install_signal_handlers()
        if self._watch:
            self._open_watch()
        elif self._factory is None:
            self.push_screen(NoKeyScreen(self._no_key_message()))
        else:
            self._open_list(self._factory)

    def _apply_look(self, settings: Settings) -> None:
        """Theme and keymap of `settings`, with a warning toast for each thing not understood."""
        warnings = list(settings.warnings)
        unknown_theme = apply_theme(self, settings.theme)
        if unknown_theme is not None:
            warnings.append(unknown_theme)
        self.set_keymap(dict(settings.keymap))
        unknown = unknown_binding_ids(settings.keymap)
        if unknown:
            warnings.append(f"[keymap] names no binding: {', '.join(unknown)} "
                            "(? lists each screen's binding ids)")
        for warning in warnings:
            if warning not in self._warned:  # once a session, not again at each switch
                self._warned.add(warning)
                self.notify(safe_text(warning), severity="warning", markup=False, timeout=10)

    def _no_key_message(self) -> Any:
        settings = self.settings
        config = str(settings.config_file) if settings.config_file else None
        return no_key_text(settings.api_key_env, settings.profile, config, self._no_key_reason)

    def _header_info(self, where: str) -> HeaderInfo:
        read_only = self.settings.read_only and not self._watch  # then [RO] per profile
        return HeaderInfo(where=where, read_only=read_only, tz=self.tz)

    def _open_list(self, factory: ServicesFactory) -> None:
        self._batches = BatchesScreen(self._header_info(f"{self.settings.profile} · connecting…"))
        if self.screen_stack and isinstance(self.screen, NoKeyScreen | BatchesScreen):
            self.switch_screen(self._batches)
        else:
            self.push_screen(self._batches)
        self._start_services(factory)

    def _open_watch(self) -> None:
        self._batches = BatchesScreen(self._header_info(f"{' + '.join(self._watch)} · "
                                                        "connecting…"))
        self.push_screen(self._batches)
        self._start_watch()

    def _show_watch_info(self) -> None:
        read_only = {name: settings.read_only for name, (settings, _f) in self._watch.items()}
        where = watch_label(list(self._watch), read_only, self._states)
        if where != self._watch_where and self._batches is not None:
            self._watch_where = where
            self._batches.set_info(self._header_info(where))

    @work(exclusive=True, group="services", exit_on_error=False, name="start services")
    async def _start_watch(self) -> None:
        """Every watched profile's services, each monitor publishing into the merged state."""
        for name, (settings, factory) in self._watch.items():
            services = await factory()
            if self._stopped:
                await self._close_services(services)
                return
            self._watched[name] = services
            self._watch_settings[name] = settings
            if self._services is None:
                self._activate(name)
            self._watch_stops.append(
                services.monitor.subscribe(partial(self._on_profile_state, name)))
            self._watch_workers[name] = self.run_worker(
                services.monitor.run(), name=f"monitor {name}", group="monitor",
                exit_on_error=False)
        self._show_watch_info()
        self.set_labels({})
        self._sync_pause()
        watched = list(self._watched.values())
        for services in watched:
            if services.costs is not None:
                await services.costs.load_history()
        self.history_loaded = True
        self.repaint_rows()
        for services in watched:
            if services.alerts is not None and not self._stopped:
                self._watch_stops.append(services.alerts.subscribe(self._on_alert))
                await services.alerts.start()

    def _on_profile_state(self, name: str, state: MonitorState) -> None:
        self._states[name] = state
        merged = merge_states(self._states)
        self._owners = merged.owners
        self._state = merged.state
        self.post_message(MonitorUpdated(merged.state))

    def _observe_watched(self) -> None:
        """Costs and the one reconcile of each watched profile, on its own batches."""
        self._show_watch_info()
        for name, services in self._watched.items():
            own = self._states.get(name)
            if own is None:
                continue
            if services.costs is not None:
                services.costs.observe(own.batches)
                self._want_costs()
            if own.synced and name not in self._reconciled_profiles and services.actions:
                self._reconciled_profiles.add(name)
                self._reconcile_profile(name, services.actions, list(own.batches.values()))

    @work(group="reconcile", exit_on_error=False, name="reconcile")
    async def _reconcile_profile(self, name: str, actions: Actions,
                                 batches: list[BatchSnapshot]) -> None:
        matches = await actions.reconcile(batches)
        text = reconcile_text(matches, actions.read_only)
        if text is not None:
            self.notify(safe_text(f"{name}: {text}"), title="submits settled", timeout=10,
                        markup=False)
        if any(match.verdict == "matched" for match in matches) and not actions.read_only:
            self.set_labels({})

    def action_start_demo(self) -> None:
        if self._demo_factory is not None and self._services is None:
            self._open_list(self._demo_factory)

    @work(exclusive=True, group="services", exit_on_error=False, name="start services")
    async def _start_services(self, factory: ServicesFactory) -> None:
        services = await factory()
        if self._stopped:
            await self._close_services(services)
            return
        self._services = services
        if self._batches is not None:
            self._batches.set_info(self._header_info(services.where))
        if services.actions is not None:
            self.set_labels(services.actions.ledger.labels())
        self._unsubscribe = services.monitor.subscribe(self._on_monitor_state)
        self._monitor_worker = self.run_worker(
            services.monitor.run(), name="monitor", group="monitor", exit_on_error=False
        )
        self._sync_pause()
        # Both read the audit log (in a thread) while the first list loads.
        if services.costs is not None:
            for warning in services.costs.warnings:
                self.notify(safe_text(warning), severity="warning", markup=False, timeout=10)
            await services.costs.load_history()
            self.history_loaded = True
            self.repaint_rows()  # the ETAs now have their history
        if services.alerts is not None and not self._stopped:
            # Listen first: the service evaluates the monitor's current state as it starts.
            self._unsubscribe_alerts = services.alerts.subscribe(self._on_alert)
            await services.alerts.start()

    def _on_monitor_state(self, state: MonitorState) -> None:
        # Called by the monitor; post_message is thread-safe and the message coalesces.
        self._state = state
        self.post_message(MonitorUpdated(state))

    def on_monitor_updated(self, message: MonitorUpdated) -> None:
        state = message.state
        if state is not self._state:
            return  # from the services of a profile switched away from
        for screen in self.screen_stack:
            if not isinstance(screen, ModalScreen):
                screen.post_message(MonitorUpdated(state))
        services = self._services
        if services is None or self._stopped:
            return
        if self._watch:
            self._observe_watched()
            return
        if services.costs is not None:
            services.costs.observe(state.batches)
            self._want_costs()
        if state.synced and not self._reconciled and services.actions is not None:
            self._reconciled = True
            self._reconcile(list(state.batches.values()))

    @work(group="reconcile", exit_on_error=False, name="reconcile")
    async def _reconcile(self, batches: list[BatchSnapshot]) -> None:
        """Once, after the first full list: settle submits a crash left pending."""
        await self.flows.reconcile(batches)

    # -- alerts and costs -----------------------------------------------------------------------

    def _on_alert(self, alert: Alert) -> None:
        if not should_toast(alert):  # INFO ("batch ended"): event pane and audit only
            return
        # Alerts raised by one state change arrive one by one: toast them together.
        if not self._alert_burst:
            self.call_later(self._flush_alerts)
        self._alert_burst.append(alert)

    def _flush_alerts(self) -> None:
        burst, self._alert_burst = self._alert_burst, []
        if not burst or self._stopped:
            return
        message, severity = alert_toast(burst)
        self.notify(message, title="alert" if len(burst) == 1 else f"{len(burst)} alerts",
                    severity=severity, timeout=ALERT_TIMEOUT_S, markup=False)
        alerts = self.alerts
        if alerts is not None and alerts.bell:
            self.bell()
        self.repaint_rows()

    def alerted(self, batch_id: str) -> bool:
        """A warning or an error alert fired for the batch (its row is highlighted)."""
        services = self._services_of(batch_id)
        alerts = services.alerts if services is not None else None
        worst = alerts.worst(batch_id) if alerts is not None else None
        return worst is Severity.WARNING or worst is Severity.ERROR

    def _want_costs(self) -> None:
        """Cost the stored batches not costed yet (one worker at a time, again if asked)."""
        self._costs_wanted = True
        if not self._costs_running:
            self._costs_running = True
            self.run_worker(self._load_costs(), name="costs", group="costs",
                            exit_on_error=False)

    async def _load_costs(self) -> None:
        try:
            while self._costs_wanted and not self._stopped:
                self._costs_wanted = False
                found = await self._cost_pass()
                if found is None:
                    return
                costed, today = found
                changed = today != self.cost_today
                self.cost_today = today
                if costed or changed:
                    self.repaint_rows()
        finally:
            self._costs_running = False

    async def _cost_pass(self) -> tuple[bool, BatchCost] | None:
        """Cost each workspace's stored batches; today's total over all of them."""
        if self._watch:
            parts = [(services.costs, list(self._states[name].batches.values()))
                     for name, services in self._watched.items()
                     if services.costs is not None and name in self._states]
        elif self.costs is not None:
            parts = [(self.costs, list(self._state.batches.values()))]
        else:
            return None
        costed, lines = False, list[ModelCost]()
        for costs, batches in parts:
            costed = bool(await costs.load(batches)) or costed
            day = await asyncio.to_thread(costs.daily_totals, batches, self.clock(), self.tz)
            lines.extend(day.lines)
        return costed, BatchCost(lines=tuple(lines))

    def _tick(self) -> None:
        if self._batches is not None:
            self._batches.tick()

    # -- pause while a dialog is open; focused polling for the open batch -------------------------

    def _on_screen_change(self, screen: Screen[Any]) -> None:
        self._sync_pause()
        if self._services is not None:
            batch_id = getattr(self.screen, "batch_id", None)
            self._services.monitor.focus(batch_id if isinstance(batch_id, str) else None)

    def modal_open(self) -> bool:
        return any(isinstance(screen, ModalScreen) for screen in self.screen_stack)

    def _sync_pause(self) -> None:
        if self._services is None or self._stopped:
            return
        want = self._user_paused or self.modal_open()
        for monitor in self._monitors():
            if want and not monitor.state.paused:
                monitor.pause()
            elif not want and monitor.state.paused:
                monitor.resume()

    def _monitors(self) -> list[Monitor]:
        if self._watched:
            return [services.monitor for services in self._watched.values()]
        return [self._services.monitor] if self._services is not None else []

    def action_toggle_pause(self) -> None:
        self._user_paused = not self._user_paused
        self._sync_pause()

    @property
    def user_paused(self) -> bool:
        return self._user_paused

    def action_refresh_now(self) -> None:
        if self._services is not None:
            self._refresh_now()

    @work(exclusive=True, group="refresh", exit_on_error=False, name="refresh")
    async def _refresh_now(self) -> None:
        for monitor in self._monitors():
            await monitor.refresh_now()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "jump":
            # A `:` typed into an input (the filter, a dialog) is text.
            return not isinstance(self.focused, Input) and not isinstance(self.screen, ModalScreen)
        return True

    # -- help, jump, quit -----------------------------------------------------------------------

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, ModalScreen):
            return
        title = getattr(screen, "HELP_TITLE", type(screen).__name__)
        intro = getattr(screen, "HELP_INTRO", "")
        self.push_screen(HelpScreen(str(title), str(intro), help_rows(screen)))

    async def action_jump(self) -> None:
        if not isinstance(self.screen, ModalScreen):
            # Awaited: keys typed right after `:` must reach the mounted line.
            await self.push_screen(JumpScreen(), callback=self._on_jump)

    async def _on_jump(self, text: str | None) -> None:
        if text is None:
            return
        command = parse_jump(text)
        if command.verb is JumpVerb.BATCH:
            if command.arg not in self._state.batches:
                self.notify(f"{safe_text(command.arg)} is not in the list", severity="warning",
                            markup=False)
            self.open_batch(command.arg)
        elif command.verb is JumpVerb.AUDIT:
            self.open_audit(command.arg or None)
        elif command.verb is JumpVerb.QUIT:
            await self.action_quit()
        elif command.verb is JumpVerb.HELP:
            self.action_help()
        elif command.verb is JumpVerb.THEME:
            self.action_change_theme()
        elif command.verb is JumpVerb.PROFILE:
            self.action_profiles()
        elif command.verb is JumpVerb.UNKNOWN:
            self.notify(f"unknown command :{safe_text(command.arg)} — try :b ID, :audit, :q",
                        severity="warning", markup=False)

    async def action_quit(self) -> None:
        await self.stop_services()
        self.exit(0)

    async def action_quit_or_back(self) -> None:
        """`q`: quit from the list (or the first screen); elsewhere back one level."""
        if len(self.screen_stack) > 1 and self.screen is not self._batches:
            await self.screen.dismiss(None)
            return
        await self.action_quit()

    def _pop_to(self, screen: Screen[Any]) -> None:
        while len(self.screen_stack) > 1 and self.screen is not screen:
            self.pop_screen()

    # -- profiles -------------------------------------------------------------------------------

    def action_profiles(self) -> None:
        """`P`: the profile picker (its choice restarts the services on that profile)."""
        if self.modal_open():
            return
        if self._profiles is None:
            self.notify("no profiles to switch to in this session", severity="warning",
                        markup=False)
            return
        summaries = self._profiles.summaries(self.settings)
        self.push_screen(ProfilesScreen(summaries, self.settings.profile),
                         callback=self._on_profile_chosen)

    def _on_profile_chosen(self, name: str | None) -> None:
        if name is not None:
            self.switch_profile(name)

    @work(exclusive=True, group="profile", exit_on_error=False, name="switch profile")
    async def switch_profile(self, name: str) -> None:
        """Stop the services cleanly, load profile `name`, and watch its workspace instead.

        Nothing is stopped until the new profile has loaded and its key is found; an action
        still running (a submit, a download) is left to finish first.
        """
        source = self._profiles
        if source is None or self._stopped:
            return
        if any(w.group in BUSY_GROUPS and not w.is_finished for w in self.workers):
            self.notify("an action is still running: switch when it has finished",
                        severity="warning", markup=False)
            return
        try:
            settings, factory = await asyncio.to_thread(source.open, name)
        except (ConfigError, MissingApiKey) as exc:
            self.notify(safe_text(str(exc)), title=f"cannot open profile {safe_text(name)}",
                        severity="error", timeout=10, markup=False)
            return
        for group in SESSION_GROUPS:
            self.workers.cancel_group(self, group)
        await self._shut_down()
        self._forget_session(settings)
        if self._batches is not None:
            while len(self.screen_stack) > 1 and self.screen is not self._batches:
                await self.pop_screen()
        self._apply_look(settings)
        self._open_list(factory)
        self.notify(f"watching profile {safe_text(name)}", markup=False)

    def _forget_session(self, settings: Settings) -> None:
        """What belonged to the previous profile's workspace."""
        self.settings = settings
        self.labels = {}
        self.lineage = {}
        self.cost_today = None
        self.history_loaded = False
        self.flows = ActionFlows(self)
        self._alert_burst = []
        self._reconciled = False
        self._costs_wanted = False
        self._state = MonitorState()
        self._user_paused = False
        self._watch = {}
        self._watch_settings = {}
        self._states = {}
        self._owners = {}
        self._reconciled_profiles = set()
        self._watch_where = ""

    # -- failures -------------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place where background failures become visible (a toast, no traceback)."""
        if event.state is not WorkerState.ERROR or self._stopped:
            return
        error = event.worker.error
        if error is None:
            return
        log.error("worker %s failed", event.worker.name, exc_info=error)
        self.report_error(event.worker.name, error)

    def report_error(self, what: str, error: BaseException) -> None:
        if isinstance(error, ApiError):
            detail = str(error)
            if error.kind == "auth":
                detail += " — check the API key of this profile"
        else:
            detail = f"{type(error).__name__}: {error}"
        self.notify(safe_text(detail), title=f"{what} failed", severity="error",
                    timeout=10, markup=False)

    # -- shutdown -------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_hangup)

    def _on_hangup(self) -> None:
        # The terminal went away (or we were told to stop): write session.ended and leave.
        self.call_later(self.action_quit)

    async def stop_services(self) -> None:
        """Close the alerts, stop the monitor (session.ended is written), close the audit log
        and the client."""
        if self._stopped:
            return
        self._stopped = True
        await self._shut_down()

    async def _shut_down(self) -> None:
        """Unsubscribe, then close the current services (see `_close_services`)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._unsubscribe_alerts is not None:
            self._unsubscribe_alerts()
            self._unsubscribe_alerts = None
        if self._watched:
            for stop in self._watch_stops:
                stop()
            self._watch_stops = []
            watched, self._watched = self._watched, {}
            workers, self._watch_workers = self._watch_workers, {}
            self._services = None
            await asyncio.gather(*(self._close_services(services, workers.get(name))
                                   for name, services in watched.items()))
            return
        services, self._services = self._services, None
        if services is None:
            return
        worker, self._monitor_worker = self._monitor_worker, None
        await self._close_services(services, worker)

    async def _close_services(self, services: Services,
                              monitor_worker: Worker[None] | None = None) -> None:
        """Alerts first, so that alerts raised at the end land before the monitor's
        `session.ended` (as `watch --headless` does); then the monitor, waiting for its
        worker to write `session.ended`; then the audit log, the client and the files."""
        if services.alerts is not None:
            await self._close(services.alerts.close)
        services.monitor.stop()
        if monitor_worker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(monitor_worker.wait(), STOP_TIMEOUT_S)
        closers: list[Callable[[], Awaitable[None]]] = [services.audit.close, services.api.close]
        if services.on_close is not None:
            closers.append(services.on_close)
        for close in closers:
            await self._close(close)
        files = [services.actions.ledger.close] if services.actions is not None else []
        if services.store is not None:
            files.append(services.store.close)
        for close_file in files:
            try:
                close_file()
            except Exception:
                log.exception("closing %s failed", close_file)

    @staticmethod
    async def _close(close: Callable[[], Awaitable[None]]) -> None:
        """One closer, bounded in time; a failure is logged, the others still run."""
        try:
            await asyncio.wait_for(close(), STOP_TIMEOUT_S)
        except Exception:
            log.exception("closing %s failed", close)

    async def on_unmount(self) -> None:
        if self._handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
        await self.stop_services()
