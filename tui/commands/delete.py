"""`batchtop delete ID...`: delete ended batches from the API, after the app's preview."""

from __future__ import annotations

import argparse

from tui.commands import common
from tui.commands.common import Context, Subparsers, act_on_targets, add_targets

PRELOAD = common.API_MODULES  # loaded as the process starts (tui.cli.entry)


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = common.add_command(
        subparsers, "delete", parents, help="delete ended batches (and their results) from the API",
        description="Delete ended batches from the API for good; local copies (results, "
                    "requests, audit) stay. Shows the preview on stderr and asks on the "
                    "terminal; without a terminal it refuses (exit 3) unless --yes is given. "
                    "Prints the deleted batch ids.")
    add_targets(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return common.run(args, delete)


async def delete(ctx: Context) -> int:
    return await act_on_targets(ctx, "delete", deleting=True)
