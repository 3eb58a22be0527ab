"""`batchtop` with no sub-command: settings, key, services (or the demo emulator), then the app."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from functools import partial

from tui.paths import locations
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog
from tui.service.credentials import MissingApiKey
from tui.service.monitor import Monitor
from tui.settings import ConfigError, Settings, load_settings
from tui.ui.app import BatchtopApp, Services, ServicesFactory

EXIT_USAGE = 2
DEMO_KEY = "demo-key"
DEMO_SPEED = 10.0  # the demo's emulator time runs this much faster than the wall clock


async def live_services(settings: Settings, api_key: str) -> Services:
    """The real thing: the configured workspace through the SDK."""
    api = BatchesAPI.connect(api_key, settings.base_url, max_retries=0)
    audit = AuditLog(locations().audit, secrets=[api_key])
    monitor = Monitor(api, audit, settings.cadence)
    return Services(api=api, audit=audit, monitor=monitor, where=settings.profile)


def scaled_sleep(speed: float) -> Callable[[float], Awaitable[object]]:
    """Sleep in emulator seconds: the monitor's cadence follows the emulator's clock."""

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds / speed)

    return sleep


async def demo_services(settings: Settings, speed: float = DEMO_SPEED) -> Services:
    """Start the emulator's demo scenario in this event loop on a free loopback port."""
    from tui.emulator.server import EmulatorConfig, start_emulator

    emulator = await start_emulator(
        EmulatorConfig(scenario="demo", speed=speed, api_key=DEMO_KEY)
    )
    clock = emulator.engine.clock.now
    api = BatchesAPI.connect(DEMO_KEY, emulator.url, max_retries=0)
    audit = AuditLog(locations().audit, secrets=[DEMO_KEY], clock=clock)
    monitor = Monitor(api, audit, settings.cadence, clock=clock, sleep=scaled_sleep(speed))
    where = f"demo · local emulator ×{speed:g}" if speed != 1 else "demo · local emulator"
    return Services(api=api, audit=audit, monitor=monitor, clock=clock, where=where,
                    on_close=emulator.stop)


def build_app(args: argparse.Namespace, settings: Settings) -> BatchtopApp:
    """The app for these arguments: demo, live, or the no-key screen."""
    demo = partial(demo_services, settings)
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
                       handle_signals=True)


def run_app(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args)
    except ConfigError as exc:
        print(f"batchtop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app = build_app(args, settings)
    app.run(mouse=not settings.no_mouse)
    return app.return_code or 0
