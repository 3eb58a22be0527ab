"""`batchtop` with no sub-command: settings, key, services (or the demo emulator), then the app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tui.core.timefmt import utcnow
from tui.paths import locations
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog
from tui.service.credentials import MissingApiKey
from tui.service.ledger import Ledger
from tui.service.monitor import Monitor
from tui.service.wiring import ServiceSet, build_services, wire_services
from tui.settings import (
    ConfigError,
    ProfileSummary,
    Settings,
    load_settings,
    profile_args,
    profile_summaries,
)
from tui.ui.app import BatchtopApp, Clock, Services, ServicesFactory
from tui.ui.screens.batch import store_for

EXIT_USAGE = 2
DEMO_KEY = "demo-key"
DEMO_SPEED = 10.0  # the demo's emulator time runs this much faster than the wall clock
DEMO_LEDGER_FILE = "demo-ledger.sqlite3"


def assemble(
    api: BatchesAPI,
    audit: AuditLog,
    monitor: Monitor,
    settings: Settings,
    ledger: Ledger,
    *,
    clock: Clock = utcnow,
    where: str = "default",
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> Services:
    """Everything behind the UI around one API client, its audit log and its monitor, wired
    by `wire_services` as for `batchtop` itself: actions, alerts, costs, results store.

    The client must not retry by itself (`max_retries=0`): the monitor backs off on its own
    and a create must never be sent twice. The store is the one the batch screen reads.
    """
    built = wire_services(settings, api, audit, ledger, clock=clock, monitor=monitor,
                          store=store_for(api))
    return app_services(built, where=where, on_close=on_close)


def app_services(built: ServiceSet, *, where: str,
                 on_close: Callable[[], Awaitable[None]] | None = None) -> Services:
    """The app's view of the shared builder's services (built `for_monitor`)."""
    if built.monitor is None:
        raise ValueError("the app needs services built for_monitor")
    return Services(api=built.api, audit=built.audit, monitor=built.monitor, clock=built.clock,
                    where=where, on_close=on_close, actions=built.actions, store=built.store,
                    alerts=built.alerts, costs=built.costs)


async def live_services(settings: Settings, api_key: str) -> Services:
    """The real thing: the configured workspace through the SDK."""
    built = await build_services(settings, api_key, settings.base_url, for_monitor=True,
                                 open_store=store_for)
    return app_services(built, where=settings.profile)


def scaled_sleep(speed: float) -> Callable[[float], Awaitable[object]]:
    """Sleep in emulator seconds: the monitor's cadence follows the emulator's clock."""

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds / speed)

    return sleep


def fresh_demo_ledger() -> Path:
    """The demo's own ledger file, emptied at every start like the demo's emulator."""
    path = locations().data / DEMO_LEDGER_FILE
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    return path


def demo_ledger(clock: Clock) -> Ledger:
    """A ledger of its own for the demo, empty at every start."""
    return Ledger(fresh_demo_ledger(), clock=clock)


async def demo_services(settings: Settings, speed: float = DEMO_SPEED) -> Services:
    """Start the emulator's demo scenario in this event loop on a free loopback port."""
    from tui.emulator.server import EmulatorConfig, start_emulator

    emulator = await start_emulator(
        EmulatorConfig(scenario="demo", speed=speed, api_key=DEMO_KEY)
    )
    where = f"demo · local emulator ×{speed:g}" if speed != 1 else "demo · local emulator"
    try:
        built = await build_services(settings, DEMO_KEY, emulator.url,
                                     clock=emulator.engine.clock.now,
                                     ledger_path=fresh_demo_ledger(), for_monitor=True,
                                     sleep=scaled_sleep(speed), open_store=store_for)
    except BaseException:
        await emulator.stop()
        raise
    return app_services(built, where=where, on_close=emulator.stop)


@dataclass(frozen=True, slots=True)
class ConfiguredProfiles:
    """The config file's profiles, loaded with the rest of this command line (`P`)."""

    args: argparse.Namespace

    def summaries(self, settings: Settings) -> list[ProfileSummary]:
        return profile_summaries(self.args, settings.profiles)

    def open(self, name: str) -> tuple[Settings, ServicesFactory]:
        settings = load_settings(profile_args(self.args, name))
        key = settings.resolve_api_key()
        if not key:
            raise MissingApiKey(f"profile {name} has no API key: set {settings.api_key_env} "
                                f"or give [profiles.{name}] an api_key_command")
        return settings, partial(live_services, settings, key)


def build_app(args: argparse.Namespace, settings: Settings) -> BatchtopApp:
    """The app for these arguments: demo, live (one profile, or several side by side), or
    the no-key screen; raises ConfigError or MissingApiKey for a watched profile."""
    demo = partial(demo_services, settings)
    if len(settings.watch_profiles) > 1 and not getattr(args, "demo", False):
        # Several workspaces side by side; a missing key stops the start (run_app says why).
        profiles = ConfiguredProfiles(args)
        watch = {name: profiles.open(name) for name in settings.watch_profiles}
        first = next(iter(watch.values()))[0]
        return BatchtopApp(first, services=None, demo=demo, profiles=profiles, watch=watch,
                           handle_signals=True)
    factory: ServicesFactory | None
    reason: str | None = None
    if getattr(args, "demo", False):
        factory = demo
    else:
        try:
            key = settings.resolve_api_key()
        except MissingApiKey as exc:
            key, reason = None, str(exc)
        factory = partial(live_services, settings, key) if key else None
    return BatchtopApp(settings, services=factory, demo=demo, no_key_reason=reason,
                       profiles=ConfiguredProfiles(args), handle_signals=True)


def run_app(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args)
        app = build_app(args, settings)
    except (ConfigError, MissingApiKey) as exc:
        print(f"batchtop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app.run(mouse=not settings.no_mouse)
    return app.return_code or 0
