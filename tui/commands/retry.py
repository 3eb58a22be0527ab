"""`batchtop retry ID`: resubmit a batch's failed requests, after the same preview as the app."""

from __future__ import annotations

import argparse
from pathlib import Path

from tui.commands import common
from tui.commands.common import (
    Context,
    Subparsers,
    add_yes,
    confirm,
    creating,
    plural,
    positive_int,
    show_preview,
)
from tui.core.retry_plan import DEFAULT_INCLUDE, parse_include
from tui.core.sanitize import safe_text

PRELOAD = common.API_MODULES  # loaded as the process starts (tui.cli.entry)


def include_list(text: str) -> frozenset[str]:
    """An argparse type: ``expired,canceled,...`` checked by the retry planner."""
    try:
        chosen = parse_include(text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not chosen:
        raise argparse.ArgumentTypeError("nothing to include")
    return chosen


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = common.add_command(
        subparsers, "retry", parents, help="resubmit a batch's failed requests as a new batch",
        description="Resubmit the failed requests of an ended batch with their original "
                    "params (kept by batchtop for batches it submitted; otherwise give the "
                    "file you submitted with --requests). Shows the preview on stderr and "
                    "asks; without a terminal it refuses (exit 3) unless --yes is given. "
                    "Prints the new batch ids.")
    parser.add_argument("batch_id", metavar="ID", help="the ended batch whose failures to retry")
    parser.add_argument("--requests", type=Path, metavar="FILE",
                        help="the JSONL request file the batch was created from (attached to "
                             "the batch first)")
    parser.add_argument("--include", type=include_list, default=DEFAULT_INCLUDE, metavar="LIST",
                        help="what to retry: retryable (the default: retryable errors and "
                             "expired), permanent, canceled, unknown, errored, expired, "
                             "missing, an error type like overloaded_error, or all")
    parser.add_argument("--max-per-batch", type=positive_int, metavar="N",
                        help="split into batches of at most N requests (default: the config's "
                             "max_per_batch)")
    add_yes(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return common.run(args, retry)


async def attach(ctx: Context, batch_id: str, path: Path) -> None:
    """Attach the user's request file to the batch, so its failures have their params."""
    actions = ctx.actions
    preview = await actions.plan_attach(batch_id, path)
    show_preview(preview)
    await actions.attach(preview)  # local only; refused in read-only mode, fails on problems


async def retry(ctx: Context) -> int:
    args = ctx.args
    actions = ctx.actions
    if args.requests is not None:
        await attach(ctx, args.batch_id, args.requests)
    preview = await actions.plan_retry(
        args.batch_id, args.include,
        max_per_batch=args.max_per_batch or ctx.settings.max_per_batch,
    )
    show_preview(preview)
    if actions.read_only:
        await actions.refuse_read_only(preview.action, preview.targets)
    if not preview.allowed:
        await actions.retry(preview)  # the actions layer fails it, and records it
    subject = (f"retry {plural(preview.request_count, 'request')} of "
               f"{safe_text(preview.batch_id)}")
    if preview.previous_retries:
        subject += " again"
    await confirm(ctx, preview, subject)
    # The user saw the warning naming earlier retries before saying yes (or gave --yes).
    return await creating(ctx, actions.retry(preview, allow_repeat=True))
