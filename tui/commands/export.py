"""`batchtop export ID --output FILE`: results to a file that only appears once it is complete.

Streamed into a hidden temporary file beside FILE, renamed over it after the last line."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from tui.commands import common
from tui.commands.common import EXIT_OK, CliError, Context, Subparsers, emit_json, one_line
from tui.commands.formats import write_csv, write_jsonl
from tui.commands.results import add_filters, filters_from, stored_batch

PRELOAD = common.API_MODULES  # loaded as the process starts (tui.cli.entry)


FORMATS = ("jsonl", "csv")
TEMP_SUFFIX = ".part"


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = common.add_command(
        subparsers, "export", parents, help="write a batch's results to a file (JSONL or CSV)",
        description="Write an ended batch's results to FILE, streaming, through a temporary "
                    "file renamed into place when complete. Prints how many were written.")
    parser.add_argument("batch_id", metavar="ID", help="the batch id (msgbatch_...)")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="FILE",
                        help="the file to write (replaced if it exists)")
    parser.add_argument("--format", choices=FORMATS,
                        help="jsonl (the API's lines unchanged) or csv; default: csv when FILE "
                             "ends in .csv, jsonl otherwise")
    add_filters(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return common.run(args, export)


def chosen_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    return "csv" if args.output.suffix.lower() == ".csv" else "jsonl"


def writer_for(fmt: str, lines: Iterable[bytes]) -> Callable[[IO[bytes]], int]:
    """A function writing `lines` in `fmt` to a binary file; it returns the rows written."""
    if fmt == "jsonl":
        return lambda handle: write_jsonl(lines, handle)

    def csv_rows(handle: IO[bytes]) -> int:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=True)
        try:
            return write_csv(lines, text)
        finally:
            text.flush()
            text.detach()  # the caller closes the file

    return csv_rows


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(path: Path, write: Callable[[IO[bytes]], int]) -> int:
    """Run `write` on a temporary file beside `path`, then rename it to `path`.

    Any failure or interruption (KeyboardInterrupt included) removes the temporary file and
    leaves an existing `path` as it was. The new file is private (0600), like every file
    batchtop writes.
    """
    directory = path.parent
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            count = write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)
    return count


async def export(ctx: Context) -> int:
    args = ctx.args
    path: Path = args.output
    fmt = chosen_format(args)
    if not path.parent.is_dir():  # before the download, not after it
        raise CliError(f"{path.parent}: no such directory")
    batch = await stored_batch(ctx, args.batch_id)
    lines = ctx.store.iter_raw(batch.id, **filters_from(args))
    count = write_atomically(path, writer_for(fmt, lines))
    if ctx.json:
        emit_json({"batch_id": batch.id, "file": str(path), "format": fmt, "count": count})
    else:
        print(f"{count:,} results written to {one_line(str(path))}")
    return EXIT_OK
