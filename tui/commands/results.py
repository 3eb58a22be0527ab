"""`batchtop results ID`: a batch's results on stdout as JSONL (byte-exact), CSV or a table.

Also the filters and the "results in the local store" step that `export` shares."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from typing import IO, TYPE_CHECKING

from tui.commands import common
from tui.commands.common import (
    EXIT_OK,
    CliError,
    Context,
    Subparsers,
    end_progress,
    progress_printer,
)
from tui.commands.formats import write_csv, write_jsonl, write_table
from tui.core.models import BatchSnapshot
from tui.core.results import KNOWN_TYPES, MALFORMED

PRELOAD = common.API_MODULES  # loaded as the process starts (tui.cli.entry)


if TYPE_CHECKING:
    from tui.service.results_store import ResultFilter

FORMATS = ("jsonl", "csv", "table")
RESULT_TYPES: frozenset[str] = KNOWN_TYPES | {MALFORMED}


def result_types(text: str) -> frozenset[str]:
    """An argparse type: ``succeeded,errored`` → the set, each checked."""
    chosen = frozenset(part.strip().lower() for part in text.split(",") if part.strip())
    unknown = sorted(chosen - RESULT_TYPES)
    if unknown or not chosen:
        known = ", ".join(sorted(RESULT_TYPES))
        raise argparse.ArgumentTypeError(f"unknown result type {', '.join(unknown) or text!r} "
                                         f"(known: {known})")
    return chosen


def custom_id_regex(text: str) -> str:
    """An argparse type: a regular expression that compiles."""
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"bad regular expression {text!r}: {exc}") from None
    return text


def add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", dest="types", type=result_types, metavar="TYPES",
                        help="comma-separated result types: succeeded, errored, canceled, "
                             "expired (and malformed)")
    parser.add_argument("--error-type", metavar="T",
                        help="only errored results with this error type (e.g. overloaded_error)")
    parser.add_argument("--match", type=custom_id_regex, metavar="REGEX",
                        help="only custom_ids matching this regular expression")


def filters_from(args: argparse.Namespace) -> ResultFilter:
    chosen: ResultFilter = {}
    if args.types is not None:
        chosen["types"] = args.types
    if args.error_type:
        chosen["error_type"] = args.error_type
    if args.match is not None:
        chosen["search"] = args.match
        chosen["regex"] = True
    return chosen


async def stored_batch(ctx: Context, batch_id: str) -> BatchSnapshot:
    """The batch, with all of its results in the local store (downloaded now if needed)."""
    batch = await ctx.api.retrieve(batch_id)
    store = ctx.store
    status = store.status(batch.id)
    if status is None or not status.complete:
        if batch.archived_at is not None:
            raise CliError(f"batch {batch.id} is archived: its results can no longer be "
                           "downloaded")
        try:
            status = await store.ensure(ctx.api.client, batch, progress=progress_printer(),
                                        audit=ctx.audit)
        finally:
            end_progress()
    if not status.complete:
        raise CliError(f"the results of {batch.id} are incomplete: {status.missing:,} of "
                       f"{status.expected:,} missing after {status.attempts} attempts")
    return batch


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = common.add_command(
        subparsers, "results", parents, help="stream a batch's results to stdout",
        description="Stream an ended batch's results to stdout. jsonl writes the API's result "
                    "lines unchanged; csv has stable columns; table is for people. The default "
                    "is table on a terminal, jsonl otherwise (--json: jsonl).")
    parser.add_argument("batch_id", metavar="ID", help="the batch id (msgbatch_...)")
    add_filters(parser)
    parser.add_argument("--format", choices=FORMATS, help="jsonl, csv or table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return common.run(args, print_results)


def _format(args: argparse.Namespace, out: IO[str]) -> str:
    if args.format:
        return str(args.format)
    if getattr(args, "json", False):
        return "jsonl"
    return "table" if out.isatty() else "jsonl"


async def print_results(ctx: Context) -> int:
    batch = await stored_batch(ctx, ctx.args.batch_id)
    lines = ctx.store.iter_raw(batch.id, **filters_from(ctx.args))
    out = sys.stdout
    chosen = _format(ctx.args, out)
    try:
        if chosen == "jsonl":
            out.flush()
            write_jsonl(lines, out.buffer, inert=out.isatty())
            out.buffer.flush()
        elif chosen == "csv":
            write_csv(lines, out, inert=out.isatty())
        else:
            write_table(lines, out, width=shutil.get_terminal_size((120, 24)).columns)
        out.flush()
    except BrokenPipeError:
        common.silence_stdout()
    return EXIT_OK
