"""Expected end of a running batch, from how long past batches of a similar size took."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tui.core.events import BATCH_ENDED
from tui.core.models import BatchSnapshot

FALLBACK_MIN_POINTS = 3

# (upper bound inclusive, label); sizes above the last bound share the last bucket.
BUCKETS: tuple[tuple[int, str], ...] = (
    (100, "1–100"),
    (1_000, "101–1k"),
    (10_000, "1k–10k"),
    (100_000, "10k–100k"),
)

HistoryPoint = tuple[int, float]  # (request count, processing duration in seconds)


def bucket_of(requests: int) -> int:
    """Index into BUCKETS for a batch of `requests` requests."""
    for index, (upper, _label) in enumerate(BUCKETS):
        if requests <= upper:
            return index
    return len(BUCKETS) - 1


def _batches(count: int) -> str:
    return "1 batch" if count == 1 else f"{count:,} batches"


@dataclass(frozen=True, slots=True)
class Eta:
    """When a running batch should end, and why we think so."""

    expected_end: datetime
    median_s: float
    samples: int
    basis: str  # e.g. "median of 12 batches of 1k–10k requests"
    same_size: bool  # False when the estimate fell back to batches of all sizes

    def remaining_s(self, now: datetime) -> float:
        """Seconds until the expected end; 0 once it has passed."""
        return max(0.0, (self.expected_end - now).total_seconds())

    def overdue(self, now: datetime) -> bool:
        """The batch has already run longer than similar batches took."""
        return now > self.expected_end


def estimate_end(batch: BatchSnapshot, history: Iterable[HistoryPoint],
                 now: datetime) -> Eta | None:
    """Expected end from past ended batches in the same size bucket.

    Falls back to batches of every size when the bucket is empty but there are at least
    FALLBACK_MIN_POINTS of them (the basis says so); None without usable history or when
    the batch is not running.
    """
    if not batch.is_running:
        return None
    size = batch.request_counts.total
    bucket = bucket_of(size)
    label = BUCKETS[bucket][1]
    everything: list[float] = []
    similar: list[float] = []
    for requests, duration in history:
        if not math.isfinite(duration) or duration < 0:
            continue
        everything.append(duration)
        if bucket_of(requests) == bucket:
            similar.append(duration)
    if similar:
        durations, same_size = similar, True
        basis = f"median of {_batches(len(similar))} of {label} requests"
    elif len(everything) >= FALLBACK_MIN_POINTS:
        durations, same_size = everything, False
        basis = f"median of {_batches(len(everything))} of all sizes (none of {label} requests)"
    else:
        return None
    median = float(statistics.median(durations))
    return Eta(
        expected_end=batch.created_at + timedelta(seconds=median),
        median_s=median,
        samples=len(durations),
        basis=basis,
        same_size=same_size,
    )


def _usable(total: int, canceled: int, duration: float | None) -> bool:
    """Canceled batches end early on purpose: their durations say nothing about processing."""
    return total > 0 and not canceled and duration is not None and math.isfinite(duration)


def history_points(snapshots: Iterable[BatchSnapshot] = (),
                   audit_records: Iterable[Mapping[str, Any]] = (),
                   workspace: str | None = None) -> list[HistoryPoint]:
    """(request count, duration) of past ended batches, one per batch id.

    From snapshots (the monitor's list or the results store) and from ``batch.ended`` audit
    records (``data.counts``, ``data.duration_s``); a snapshot wins over a record. With
    `workspace`, records that name another workspace are left out (the audit directory is
    shared by every profile; records written before they named one are kept).
    """
    points: dict[str, HistoryPoint] = {}
    for record in audit_records:
        batch_id = record.get("batch_id")
        data = record.get("data")
        if record.get("event") != BATCH_ENDED or not isinstance(batch_id, str):
            continue
        if not isinstance(data, Mapping) or not isinstance(data.get("counts"), Mapping):
            continue
        if workspace is not None and data.get("workspace", workspace) != workspace:
            continue
        counts = data["counts"]
        duration = data.get("duration_s")
        try:
            values = {name: int(counts.get(name) or 0) for name in counts}
            seconds = float(duration) if duration is not None else None
        except (TypeError, ValueError):
            continue
        total = sum(values.values())
        if _usable(total, values.get("canceled", 0), seconds):
            assert seconds is not None
            points[batch_id] = (total, seconds)
    for batch in snapshots:
        if not batch.is_ended or batch.ended_at is None:
            continue
        counts = batch.request_counts
        duration = batch.duration_seconds(batch.ended_at)
        if batch.cancel_initiated_at is None and _usable(counts.total, counts.canceled, duration):
            points[batch.id] = (counts.total, duration)
    return list(points.values())
