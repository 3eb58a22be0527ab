"""`batchtop show ID`: one batch with counts, timing, lineage and, once ended, cost and errors."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tui.commands import common
from tui.commands.common import (
    EXIT_OK,
    Context,
    Subparsers,
    batch_json,
    counts_text,
    emit_json,
    end_progress,
    one_line,
    progress_printer,
)
from tui.core.batch_view import shown_status
from tui.core.cost import BatchCost, format_rate, format_usd
from tui.core.models import BatchSnapshot, format_time
from tui.core.results import ErrorGroup, ModelTokenSums, StoreStatus
from tui.core.sanitize import safe_text
from tui.core.timefmt import human_age, human_duration, utcnow
from tui.paths import locations

PRELOAD = common.API_MODULES  # loaded as the process starts (tui.cli.entry)


ERROR_GROUPS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Details:
    """Everything `show` prints about one batch."""

    batch: BatchSnapshot
    label: str | None = None
    parent: str | None = None
    generation: int = 0
    retries: tuple[str, ...] = ()
    results: StoreStatus | None = None
    results_note: str | None = None
    errors: tuple[ErrorGroup, ...] = ()
    usage: Mapping[str, ModelTokenSums] = dataclasses.field(default_factory=dict)
    cost: BatchCost | None = None


def register(subparsers: Subparsers, parents: list[argparse.ArgumentParser]) -> None:
    parser = common.add_command(
        subparsers, "show", parents, help="one batch: counts, timing, cost and errors",
        description="Show one batch. Once it has ended its results are downloaded to the "
                    "local store (progress on stderr when it is a terminal) for the cost and "
                    "the error summary.")
    parser.add_argument("batch_id", metavar="ID", help="the batch id (msgbatch_...)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return common.run(args, show_batch)


def _usd(amount: Any) -> float:
    return float(round(amount, 6))


def cost_json(cost: BatchCost) -> dict[str, Any]:
    return {
        "batch_usd": _usd(cost.batch_cost),
        "standard_usd": _usd(cost.standard_cost),
        "saving_usd": _usd(cost.saving),
        "cache_hit_rate": None if cost.cache_hit_rate is None else round(cost.cache_hit_rate, 6),
        "complete": cost.complete,
        "unknown_models": list(cost.unknown_models),
        "label": cost.label(),
    }


def results_json(status: StoreStatus | None, note: str | None) -> dict[str, Any] | None:
    if status is None:
        return None if note is None else {"note": note}
    return {
        "stored": status.results, "expected": status.expected, "complete": status.complete,
        "malformed": status.malformed, "unknown": status.unknown, "missing": status.missing,
        "downloaded_at": status.downloaded_at, "note": note,
    }


def details_json(details: Details, now: datetime) -> dict[str, Any]:
    """`batch_json` plus lineage, duration, stored results, error groups, usage and cost."""
    batch = details.batch
    return {
        **batch_json(batch, details.label, details.parent),
        "status": shown_status(batch).value,
        "generation": details.generation,
        "retries": list(details.retries),
        "duration_s": round(batch.duration_seconds(now), 3),
        "results": results_json(details.results, details.results_note),
        "errors": [
            {"result_type": g.result_type, "error_type": g.error_type, "message": g.message,
             "count": g.count, "retry_class": str(g.retry_class)}
            for g in details.errors
        ],
        "usage": {model: dataclasses.asdict(u) for model, u in details.usage.items()},
        "cost": None if details.cost is None else cost_json(details.cost),
    }


def _when(moment: datetime | None, now: datetime) -> str | None:
    if moment is None:
        return None
    return f"{format_time(moment)} ({human_age(moment, now)})"


def _error_rows(groups: Sequence[ErrorGroup]) -> list[str]:
    shown = groups[:ERROR_GROUPS_SHOWN]
    width = max((len(f"{g.count:,}") for g in shown), default=1)
    kind = max((len(safe_text(g.error_type or g.result_type)) for g in shown), default=1)
    lines = [
        f"  {g.count:>{width},}  {one_line(g.error_type or g.result_type):<{kind}}  "
        f"{g.retry_class!s:<9}  {one_line(g.message, 80)}".rstrip()
        for g in shown
    ]
    if len(groups) > len(shown):
        lines.append(f"  ... and {len(groups) - len(shown)} more groups (--json lists all)")
    return lines


def details_lines(details: Details, now: datetime) -> list[str]:
    """The plain-text view: one `name  value` line per fact, then the error groups."""
    batch = details.batch
    counts = batch.request_counts
    rows: list[tuple[str, str | None]] = [
        ("id", safe_text(batch.id)),
        ("label", one_line(details.label) if details.label else None),
        ("status", f"{shown_status(batch).value} ({batch.processing_status})"),
        ("requests", counts_text(counts)),
        ("error rate", f"{counts.error_rate * 100:.1f}%" if batch.is_ended else None),
        ("created", _when(batch.created_at, now)),
        ("cancel at", _when(batch.cancel_initiated_at, now)),
        ("ended", _when(batch.ended_at, now)),
        ("expires", None if batch.is_ended else _when(batch.expires_at, now)),
        ("archived", _when(batch.archived_at, now)),
        ("duration", human_duration(batch.duration_seconds(now))),
        ("parent", f"{safe_text(details.parent)} (generation {details.generation})"
                   if details.parent else None),
        ("retries", ", ".join(map(safe_text, details.retries)) or None),
    ]
    status = details.results
    if status is not None:
        stored = f"{status.results:,} of {status.expected:,} stored locally"
        if status.malformed:
            stored += f", {status.malformed:,} malformed lines"
        rows.append(("results", stored))
    if details.results_note:
        rows.append(("results" if status is None else "", details.results_note))
    if details.cost is not None:
        cost = details.cost
        text = f"{cost.label()} at batch rates"
        if any(line.priced for line in cost.lines):
            text += (f" (standard {format_usd(cost.standard_cost)}, saved "
                     f"{format_usd(cost.saving)})")
        rows.append(("cost", f"{text}, cache hits {format_rate(cost.cache_hit_rate)}"))
        rows.extend(("", one_line(warning)) for warning in cost.warnings)
    lines = [f"{name:<11} {value}".rstrip() for name, value in rows if value is not None]
    if details.errors:
        lines.append("errors")
        lines.extend(_error_rows(details.errors))
    return lines


async def gather(ctx: Context, batch: BatchSnapshot) -> tuple[Details, BaseException | None]:
    """Collect the details; a failed results download is returned, not raised.

    The cost comes from `CostService`, as in the app: the same figures, 1-hour cache writes
    priced as such, and a warning for results billed outside the batch tier.
    """
    from tui.service.costing import CostService
    from tui.service.results_store import ResultsDownloadError

    ledger = ctx.ledger
    base = Details(batch, label=ledger.label_for(batch.id), parent=ledger.parent_of(batch.id),
                   generation=ledger.generation(batch.id),
                   retries=tuple(ledger.children_of(batch.id)))
    if not batch.is_ended:
        return base, None
    store = ctx.store
    status = store.status(batch.id)
    failure: BaseException | None = None
    note: str | None = None
    if status is None or not status.complete:
        if batch.archived_at is not None:
            note = "archived: results can no longer be downloaded"
        else:
            try:
                status = await store.ensure(ctx.api.client, batch, progress=progress_printer(),
                                            audit=ctx.audit)
            except ResultsDownloadError as exc:
                failure, status = exc, exc.store_status
                note = "download failed: the figures below cover the stored results only"
            finally:
                end_progress()
    if status is not None and status.complete is False and note is None:
        note = f"incomplete: {status.missing:,} results missing"
    if status is None:
        return dataclasses.replace(base, results_note=note), failure
    costs = CostService(store, ctx.settings, locations().audit, prices=ctx.prices)
    cost = costs.batch_cost(batch) if status.complete else costs.stored_cost(batch)
    return dataclasses.replace(
        base, results=status, results_note=note, errors=tuple(store.error_summary(batch.id)),
        usage=store.usage_totals(batch.id), cost=cost,
    ), failure


async def show_batch(ctx: Context) -> int:
    batch = await ctx.api.retrieve(ctx.args.batch_id)
    details, failure = await gather(ctx, batch)
    now = utcnow()
    if ctx.json:
        emit_json(details_json(details, now))
    else:
        print("\n".join(details_lines(details, now)))
    if failure is not None:
        raise failure  # after the details: what is known is printed, the exit code says it failed
    return EXIT_OK
