"""`batchtop watch --headless`: the app's monitor without a screen, until SIGINT or SIGTERM.

Same cadence, audit events and alerts; each record the audit log takes (alerts included) is
also printed as written, and stderr says when the audit log cannot be written."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from tui.commands import common
from tui.commands.audit import emit_record
from tui.commands.common import (
    EXIT_OK,
    EXIT_USAGE,
    Context,
    Subparsers,
    error_line,
    on_stop_signals,
)
from tui.service.audit import AuditLog

PRELOAD = common.API_MODULES  # loaded as the process starts (tui.cli.entry)


if TYPE_CHECKING:
    from tui.service.monitor import MonitorState

Echo = Callable[[bytes], None]
DRAIN_S = 5.0


def printer(as_json: bool) -> Echo:
    """Print an audit line as it was written (stamped, `seq` given, secrets scrubbed)."""

    def echo(line: bytes) -> None:
        try:
            emit_record(orjson.loads(line), as_json)
        except BrokenPipeError:
            common.silence_stdout()  # nobody reads stdout any more; keep recording

    return echo


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = common.add_command(
        subparsers, "watch", parents, help="run the monitor headless, recording audit events",
        description="Poll every batch with the app's cadence and write the same audit events, "
                    "printing one line per event, until SIGINT or SIGTERM (then exit 0). The "
                    "app itself is `batchtop` with no command.")
    parser.add_argument("--headless", action="store_true",
                        help="run without a screen (required: the app has no sub-command)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.headless:
        common.note(error_line("watch needs --headless (run `batchtop` alone for the app)"))
        return EXIT_USAGE
    # The app's services: the monitor backs off by itself (no SDK retries), alerts included.
    return common.run(args, watch, max_retries=0, for_monitor=True)


class AuditErrorReporter:
    """A monitor subscriber saying on stderr when the audit log cannot be written (once per
    reason, not per event held) and when it can again."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self.reason: str | None = None

    def __call__(self, state: MonitorState) -> None:
        if state.audit_error is None:
            if self.reason is not None:
                self.reason = None
                common.note("batchtop: audit log writable again")
            return
        reason = self.audit.last_error or state.audit_error
        if reason == self.reason:
            return
        self.reason = reason
        held = common.plural(self.audit.pending_count, "event")
        common.note(error_line(f"audit log not writable: {reason}; {held} held, retrying"))


async def watch(ctx: Context) -> int:
    services = ctx.services
    monitor, alerts = services.monitor, services.alerts
    assert monitor is not None and alerts is not None  # built with for_monitor=True
    unsubscribe_echo = services.audit.listen(printer(ctx.json))
    unsubscribe_state = monitor.subscribe(AuditErrorReporter(services.audit))
    stopping: list[asyncio.Task[None]] = []

    async def shutdown() -> None:
        """Alerts first (a running on_alert command may finish), so that the monitor's
        `session.ended` is the last record of the session."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(alerts.drain(), DRAIN_S)
        await alerts.close()
        monitor.stop()

    def stop() -> None:
        if not stopping:
            stopping.append(asyncio.get_running_loop().create_task(shutdown()))

    try:
        await alerts.start()
        with on_stop_signals(stop):
            await monitor.run()
        await asyncio.gather(*stopping)
    finally:
        unsubscribe_state()
        unsubscribe_echo()
    return EXIT_OK
