"""Typed events and the diff of two batch observations into them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tui.core.models import BatchSnapshot, format_time

SESSION_STARTED = "session.started"
SESSION_ENDED = "session.ended"
BATCH_DISCOVERED = "batch.discovered"
BATCH_STATUS_CHANGED = "batch.status_changed"
BATCH_COUNTS_CHANGED = "batch.counts_changed"
BATCH_ENDED = "batch.ended"
BATCH_ARCHIVED = "batch.archived"
BATCH_GONE = "batch.gone"
API_ERROR = "api.error"
API_RECOVERED = "api.recovered"
AUDIT_DROPPED = "audit.dropped"

# Families owned by later features (actions, results downloads, alerts); the names inside
# them are defined where they are emitted, the prefixes are reserved here.
ACTION_PREFIX = "action."
RESULTS_PREFIX = "results."
ALERT_PREFIX = "alert."

BATCH_EVENTS: tuple[str, ...] = (
    BATCH_DISCOVERED,
    BATCH_STATUS_CHANGED,
    BATCH_COUNTS_CHANGED,
    BATCH_ENDED,
    BATCH_ARCHIVED,
    BATCH_GONE,
)
EVENT_NAMES: tuple[str, ...] = (
    SESSION_STARTED,
    SESSION_ENDED,
    *BATCH_EVENTS,
    API_ERROR,
    API_RECOVERED,
    AUDIT_DROPPED,
)
RESERVED_PREFIXES: tuple[str, ...] = (ACTION_PREFIX, RESULTS_PREFIX, ALERT_PREFIX)

# Names in those families that describing and styling a record needs to know.
RESULTS_DOWNLOADED = RESULTS_PREFIX + "downloaded"
RESULTS_FAILED = RESULTS_PREFIX + "failed"
RESULTS_OPENED = RESULTS_PREFIX + "opened"
ALERT_HOOK_FAILED = ALERT_PREFIX + "hook_failed"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a name, the batch it concerns (if any) and JSON-able data."""

    event: str
    batch_id: str | None
    data: dict[str, Any]


def is_known_event(name: str) -> bool:
    """True for a defined name or a name in a reserved family."""
    return name in EVENT_NAMES or name.startswith(RESERVED_PREFIXES)


def snapshot_data(batch: BatchSnapshot) -> dict[str, Any]:
    """The part of a snapshot an event log needs to rebuild what the batch looked like."""
    return {
        "status": batch.processing_status,
        "counts": batch.request_counts.to_api(),
        "created_at": format_time(batch.created_at),
        "expires_at": format_time(batch.expires_at),
        "ended_at": format_time(batch.ended_at),
        "cancel_initiated_at": format_time(batch.cancel_initiated_at),
        "archived_at": format_time(batch.archived_at),
    }


def _ended_data(batch: BatchSnapshot, workspace: str | None) -> dict[str, Any]:
    counts = batch.request_counts
    duration = batch.duration_seconds(batch.ended_at) if batch.ended_at is not None else None
    data: dict[str, Any] = {
        "counts": counts.to_api(),
        "duration_s": duration,
        "error_rate": counts.error_rate,
        "ended_at": format_time(batch.ended_at),
    }
    if workspace is not None:
        data["workspace"] = workspace  # ETA history is per workspace; the audit log is not
    return data


def diff_snapshots(prev: BatchSnapshot | None, curr: BatchSnapshot,
                   workspace: str | None = None) -> list[Event]:
    """Events that turn observation `prev` into `curr`, in a fixed order.

    A first sighting is one ``batch.discovered`` carrying the whole state. After that:
    status change, counts change, end, archive — each at most once per pair. ``batch.ended``
    names the `workspace` (a `workspace_key`) when given.
    """
    batch_id = curr.id
    if prev is None:
        return [Event(BATCH_DISCOVERED, batch_id, snapshot_data(curr))]
    events: list[Event] = []
    if prev.processing_status != curr.processing_status:
        events.append(
            Event(
                BATCH_STATUS_CHANGED,
                batch_id,
                {"from": prev.processing_status, "to": curr.processing_status},
            )
        )
    if prev.request_counts != curr.request_counts:
        events.append(
            Event(
                BATCH_COUNTS_CHANGED,
                batch_id,
                {"from": prev.request_counts.to_api(), "to": curr.request_counts.to_api()},
            )
        )
    if curr.is_ended and not prev.is_ended:
        events.append(Event(BATCH_ENDED, batch_id, _ended_data(curr, workspace)))
    if curr.archived_at is not None and prev.archived_at is None:
        events.append(
            Event(BATCH_ARCHIVED, batch_id, {"archived_at": format_time(curr.archived_at)})
        )
    return events


def gone_event(prev: BatchSnapshot) -> Event:
    """``batch.gone``: the batch vanished (deleted, or moved out of this workspace)."""
    return Event(
        BATCH_GONE,
        prev.id,
        {"last_status": prev.processing_status, "counts": prev.request_counts.to_api()},
    )


def diff_sets(
    prev: Mapping[str, BatchSnapshot],
    curr: Mapping[str, BatchSnapshot],
    complete: bool,
) -> list[Event]:
    """Events between two views of many batches, keyed by id.

    Batches are visited in `curr`'s order, then vanished ones in `prev`'s order. Only when
    `complete` (curr is the whole list, not one page) does a missing id mean ``batch.gone``.
    """
    events: list[Event] = []
    for batch_id, snapshot in curr.items():
        events.extend(diff_snapshots(prev.get(batch_id), snapshot))
    if complete:
        events.extend(gone_event(old) for batch_id, old in prev.items() if batch_id not in curr)
    return events
