"""`batchtop cancel ID...`: cancel running batches, after the same preview the app shows."""

from __future__ import annotations

import argparse

from tui.commands import common
from tui.commands.common import Context, Subparsers, act_on_targets, add_targets

PRELOAD = common.API_MODULES  # loaded as the process starts (tui.cli.entry)


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = common.add_command(
        subparsers, "cancel", parents, help="cancel in-progress batches",
        description="Cancel in-progress batches. Shows the preview on stderr and asks on the "
                    "terminal; without a terminal it refuses (exit 3) unless --yes is given. "
                    "Prints the canceled batch ids (--json: the batch objects).")
    add_targets(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return common.run(args, cancel)


async def cancel(ctx: Context) -> int:
    return await act_on_targets(ctx, "cancel", deleting=False)
