"""`batchtop audit`: read the audit logs (every file, merged by time), or follow them live."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from tui.commands import common
from tui.commands.common import (
    EXIT_OK,
    Subparsers,
    emit_json_line,
    error_line,
    guarded,
    note,
    on_stop_signals,
    one_line,
)
from tui.core.audit_filter import event_matcher, parse_since
from tui.core.timefmt import utcnow
from tui.paths import locations
from tui.service.audit import follow_audit, read_audit

RECORD_CHARS = 4000


def since_value(text: str) -> datetime:
    """An argparse type: a duration back from now, or an RFC 3339 timestamp."""
    try:
        return parse_since(text, utcnow())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = common.add_command(
        subparsers, "audit", parents, help="read or follow the audit logs",
        description="Print audit records from every log file, merged by time. --json prints "
                    "one JSON record per line. A torn last line (a write cut short) is skipped "
                    "and named on stderr.")
    parser.add_argument("--batch", metavar="ID", help="only this batch's records")
    parser.add_argument("--event", metavar="GLOB",
                        help="only events matching this pattern, e.g. 'batch.*' or "
                             "'action.cancel,action.retry'")
    parser.add_argument("--since", type=since_value, metavar="DURATION",
                        help="only records from this long ago on (90s, 15m, 2h, 3d) or from an "
                             "RFC 3339 time")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing new records until interrupted")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return guarded(lambda: asyncio.run(audit(args)))


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def record_line(record: Mapping[str, Any]) -> str:
    """One inert line: timestamp, event, batch id, then the data as key=value pairs."""
    data = record.get("data")
    pairs = (" ".join(f"{key}={_value(value)}" for key, value in data.items())
             if isinstance(data, Mapping) else _value(data))
    text = "  ".join((
        str(record.get("timestamp", "?")), str(record.get("event", "?")),
        str(record.get("batch_id") or "-"), pairs,
    ))
    return one_line(text.rstrip(), RECORD_CHARS)


def emit_record(record: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json_line(record)
    else:
        print(record_line(record), flush=True)


async def _follow(args: argparse.Namespace, wanted: re.Pattern[str] | None) -> None:
    records = follow_audit(locations().audit, batch_id=args.batch, since=args.since)
    async with contextlib.aclosing(records):
        async for record in records:
            if wanted is None or wanted.fullmatch(str(record.get("event"))):
                emit_record(record, bool(args.json))


async def audit(args: argparse.Namespace) -> int:
    wanted = event_matcher(args.event)
    if args.follow:
        task = asyncio.create_task(_follow(args, wanted))
        with on_stop_signals(task.cancel), contextlib.suppress(asyncio.CancelledError):
            await task
        return EXIT_OK
    found = await asyncio.to_thread(read_audit, locations().audit, batch_id=args.batch,
                                    since=args.since)
    for record in found.records:
        if wanted is None or wanted.fullmatch(str(record.get("event"))):
            emit_record(record, bool(args.json))
    for where in found.torn:
        note(error_line(f"skipped a torn last line at {where} (a write cut short)"))
    for where in found.bad:
        note(error_line(f"skipped an unreadable line at {where}"))
    return EXIT_OK
