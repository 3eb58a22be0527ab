"""`batchtop submit FILE`: validate, split and create batches from a JSONL request file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.commands import common
from tui.commands.common import (
    EXIT_OK,
    Context,
    Subparsers,
    add_yes,
    confirm,
    creating,
    emit_json,
    one_line,
    plural,
    positive_int,
    show_preview,
)
from tui.commands.formats import message_text

PRELOAD = common.API_MODULES  # loaded as the process starts (tui.cli.entry)


if TYPE_CHECKING:
    from tui.service.actions import SubmitPreview


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = common.add_command(
        subparsers, "submit", parents, help="create batches from a JSONL request file",
        description="Validate a JSONL file of {custom_id, params} requests, split it into "
                    "batches and create them; every request is kept in the ledger first so "
                    "failures can be retried. Shows the preview on stderr and asks; without a "
                    "terminal it refuses (exit 3) unless --yes is given. Prints the new batch "
                    "ids.")
    parser.add_argument("file", type=Path, metavar="FILE", help="the JSONL request file")
    parser.add_argument("--max-per-batch", type=positive_int, metavar="N",
                        help="at most N requests per batch (default: the config's max_per_batch)")
    parser.add_argument("--dry-run", action="store_true",
                        help="send only the first request to the Messages API (billed at the "
                             "normal rate) and print the reply; create no batch")
    parser.add_argument("--label", metavar="TEXT",
                        help="label for the new batches (default: the file name)")
    add_yes(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return common.run(args, submit)


def _reply_summary(message: dict[str, Any]) -> str:
    usage = message.get("usage") or {}
    text = message_text({"result": {"message": message}}) or ""
    return (f"dry run: {one_line(str(message.get('stop_reason')))}, "
            f"{usage.get('input_tokens', 0):,} input / {usage.get('output_tokens', 0):,} "
            f"output tokens\n{one_line(text, 500)}")


async def dry_run(ctx: Context, preview: SubmitPreview) -> int:
    from tui.service.actions import DRY_RUN

    actions = ctx.actions
    if actions.read_only:
        await actions.refuse_read_only(DRY_RUN, [preview.source_file])
    if not preview.allowed:
        await actions.dry_run(preview)  # failed (and recorded) by the actions layer
    first = preview.chunks[0][0]
    await confirm(ctx, preview, f"send {one_line(first.custom_id)} to the Messages API "
                                "(billed at the normal rate)")
    message = await actions.dry_run(preview)
    if ctx.json:
        emit_json(message)
    else:
        print(_reply_summary(message))
    return EXIT_OK


async def submit(ctx: Context) -> int:
    from tui.service.actions import SUBMIT

    args = ctx.args
    actions = ctx.actions
    preview = await actions.plan_submit(
        args.file, max_per_batch=args.max_per_batch or ctx.settings.max_per_batch,
        label=args.label,
    )
    show_preview(preview)
    if args.dry_run:
        return await dry_run(ctx, preview)
    if actions.read_only:
        await actions.refuse_read_only(SUBMIT, [preview.source_file])
    if not preview.allowed:
        await actions.submit(preview)  # failed (and recorded) by the actions layer
    await confirm(ctx, preview, f"submit {plural(preview.request_count, 'request')} as "
                                f"{plural(preview.batches, 'batch')}")
    return await creating(ctx, actions.submit(preview))
