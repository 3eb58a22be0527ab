"""`batchtop ls`: every batch of the workspace, newest first, as a table or one JSON array."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from tui.commands import common
from tui.commands.common import (
    EXIT_OK,
    Context,
    Subparsers,
    TableColumn,
    batch_json,
    emit_json,
    positive_int,
    print_table,
)
from tui.core.batch_view import StatusFilter, matches_status, shown_status
from tui.core.models import BatchSnapshot
from tui.core.timefmt import human_age, human_duration, utcnow

PRELOAD = common.API_MODULES  # loaded as the process starts (tui.cli.entry)


if TYPE_CHECKING:
    from tui.service.api import BatchesAPI

STATUS_CHOICES: Mapping[str, StatusFilter] = {
    "running": StatusFilter.RUNNING,
    "ended": StatusFilter.ENDED,
    "failed": StatusFilter.FAILURES,
}

COLUMNS: tuple[TableColumn, ...] = (
    TableColumn("ID", max_width=64),
    TableColumn("STATUS"),
    TableColumn("REQUESTS", "right"),
    TableColumn("PROCESSING", "right"),
    TableColumn("SUCCEEDED", "right"),
    TableColumn("ERRORED", "right"),
    TableColumn("EXPIRED", "right"),
    TableColumn("CANCELED", "right"),
    TableColumn("ERR%", "right"),
    TableColumn("CREATED"),
    TableColumn("DURATION", "right"),
    TableColumn("LABEL", max_width=40),
)

Lineage = Mapping[str, tuple[str, int]]


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = common.add_command(
        subparsers, "ls", parents, help="list batches, newest first",
        description="List every batch of the workspace (all pages), newest first. --json "
                    "prints one JSON array of the API's batch objects with label, error_rate "
                    "(errored + expired over total; null until the batch has ended, as the "
                    "API keeps those counts at 0 while it runs) and parent_batch_id added.")
    parser.add_argument("--status", choices=tuple(STATUS_CHOICES),
                        help="running (in progress or canceling), ended, or failed (ended "
                             "with errored or expired requests)")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="at most N batches (the newest)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return common.run(args, list_batches)


async def select(api: BatchesAPI, status: StatusFilter | None,
                 limit: int | None) -> list[BatchSnapshot]:
    """Matching batches newest first; stops reading pages once `limit` are found."""
    found: list[BatchSnapshot] = []
    async with contextlib.aclosing(api.iter_pages()) as pages:
        async for page in pages:
            found.extend(b for b in page if status is None or matches_status(b, status))
            if limit is not None and len(found) >= limit:
                break
    found.sort(key=lambda batch: batch.created_at, reverse=True)  # stable: API order on ties
    return found[:limit] if limit is not None else found


def table_rows(batches: Sequence[BatchSnapshot], labels: Mapping[str, str],
               now: datetime) -> list[list[str]]:
    rows: list[list[str]] = []
    for batch in batches:
        counts = batch.request_counts
        rate = f"{counts.error_rate * 100:.1f}" if batch.is_ended else "—"
        rows.append([
            batch.id, shown_status(batch).value, f"{counts.total:,}", f"{counts.processing:,}",
            f"{counts.succeeded:,}", f"{counts.errored:,}", f"{counts.expired:,}",
            f"{counts.canceled:,}", rate, human_age(batch.created_at, now),
            human_duration(batch.duration_seconds(now)), labels.get(batch.id, ""),
        ])
    return rows


def json_rows(batches: Sequence[BatchSnapshot], labels: Mapping[str, str],
              lineage: Lineage) -> list[dict[str, object]]:
    return [
        batch_json(batch, labels.get(batch.id), lineage[batch.id][0]
                   if batch.id in lineage else None)
        for batch in batches
    ]


async def list_batches(ctx: Context) -> int:
    status = STATUS_CHOICES[ctx.args.status] if ctx.args.status else None
    batches = await select(ctx.api, status, ctx.args.limit)
    labels = ctx.ledger.labels()
    if ctx.json:
        emit_json(json_rows(batches, labels, ctx.ledger.lineage()))
    else:
        print_table(COLUMNS, table_rows(batches, labels, utcnow()))
    return EXIT_OK
