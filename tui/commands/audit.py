"""`batchtop audit`: read the audit logs (every file, merged by time), or follow them live."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

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
from tui.core.models import parse_time
from tui.core.timefmt import utcnow
from tui.paths import locations
from tui.service.audit import follow_audit, read_audit

RECORD_CHARS = 4000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``3d``, ``1w`` or combinations like ``1h30m``."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _PART.sub("", compact):
        raise ValueError(f"not a duration: {text!r} (examples: 90s, 15m, 2h, 1d12h, 1w)")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(compact))
    return timedelta(seconds=seconds)


def since_value(text: str) -> datetime:
    """An argparse type: a duration back from now, or an RFC 3339 timestamp."""
    try:
        return utcnow() - parse_duration(text)
    except ValueError as duration_error:
        try:
            moment = parse_time(text)
        except ValueError:
            moment = None
        if moment is None:
            raise argparse.ArgumentTypeError(str(duration_error)) from None
        return moment


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit", parents=parents, help="read or follow the audit logs",
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


def event_matcher(spec: str | None) -> re.Pattern[str] | None:
    """A regex for comma-separated event globs; None matches everything."""
    if not spec:
        return None
    globs = [part.strip() for part in spec.split(",") if part.strip()]
    return re.compile("|".join(f"(?:{fnmatch.translate(glob)})" for glob in globs))


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
