"""`batchtop watch --headless`: the app's monitor without a screen, until SIGINT or SIGTERM.

Same cadence, same audit events; each event is also printed once the audit log has it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

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
from tui.core.events import Event
from tui.service.audit import AuditLog

Echo = Callable[[Event], None]


class EchoingAudit:
    """The audit log, echoing each event once the log has taken it.

    A `BulkEventSink` and a `BacklogSink`: what the log could not write yet (a full disk)
    stays visible to the monitor, which retries and reports it as in the app.
    """

    def __init__(self, audit: AuditLog, echo: Echo) -> None:
        self.audit = audit
        self.echo = echo

    @property
    def pending_count(self) -> int:
        return self.audit.pending_count

    @property
    def last_error(self) -> str | None:
        return self.audit.last_error

    async def flush_pending(self) -> bool:
        return await self.audit.flush_pending()

    async def record(self, event: Event) -> None:
        await self.record_many((event,))

    async def record_many(self, events: Iterable[Event]) -> None:
        batch = list(events)
        await self.audit.record_many(batch)
        for event in batch:
            self.echo(event)


def printer(audit: AuditLog, as_json: bool) -> Echo:
    """Print an event as the audit record it became (stamped now, secrets scrubbed)."""

    def echo(event: Event) -> None:
        try:
            emit_record(orjson.loads(audit.encode(event)), as_json)
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
    # max_retries=0: the monitor backs off by itself, as in the app.
    return common.run(args, watch, max_retries=0)


async def watch(ctx: Context) -> int:
    from tui.service.monitor import Monitor

    sink = EchoingAudit(ctx.audit, printer(ctx.audit, ctx.json))
    monitor = Monitor(ctx.api, sink, ctx.settings.cadence)
    with on_stop_signals(monitor.stop):
        await monitor.run()
    return EXIT_OK
