"""Several profiles watched side by side: their monitor states merged into one for the list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from tui.core.models import BatchSnapshot
from tui.service.monitor import MonitorState

FEED_LIMIT = 200  # events of every profile kept together for the event pane


@dataclass(frozen=True, slots=True)
class Merged:
    """The list's one state, and which profile each of its batches belongs to."""

    state: MonitorState
    owners: Mapping[str, str]


def _earliest(times: list[datetime | None]) -> datetime | None:
    known = [when for when in times if when is not None]
    return min(known) if known else None


def merge_states(states: Mapping[str, MonitorState]) -> Merged:
    """One state over every profile's: batches together (newest first), synced once all are,
    the oldest sync, the first degradation (with its profile named), calls summed."""
    batches: dict[str, BatchSnapshot] = {}
    owners: dict[str, str] = {}
    for name, state in states.items():
        for batch_id, batch in state.batches.items():
            batches[batch_id] = batch
            owners[batch_id] = name
    order = tuple(sorted(batches, key=lambda batch_id: batches[batch_id].created_at,
                         reverse=True))
    listed = list(states.values())
    degraded = next((replace(state.degraded, message=f"{name}: {state.degraded.message}")
                     for name, state in states.items() if state.degraded is not None), None)
    events = tuple(entry for state in listed for entry in state.recent_events)[-FEED_LIMIT:]
    merged = MonitorState(
        batches=batches,
        order=order,
        synced=bool(listed) and all(state.synced for state in listed),
        last_sync=(None if any(state.last_sync is None for state in listed)
                   else _earliest([state.last_sync for state in listed])),
        next_poll_at=_earliest([state.next_poll_at for state in listed]),
        fetching=any(state.fetching for state in listed),
        paused=bool(listed) and all(state.paused for state in listed),
        degraded=degraded,
        focused=next((state.focused for state in listed if state.focused), None),
        api_calls=sum(state.api_calls for state in listed),
        recent_events=events,
        audit_error=next((state.audit_error for state in listed if state.audit_error), None),
    )
    return Merged(merged, owners)


def watch_label(names: list[str], read_only: Mapping[str, bool],
                states: Mapping[str, MonitorState]) -> str:
    """The header's "prod + staging [RO]", with each profile's trouble after its name."""
    parts = []
    for name in names:
        part = name + (" [RO]" if read_only.get(name) else "")
        state = states.get(name)
        if state is not None and state.degraded is not None:
            part += " DEGRADED"
        parts.append(part)
    return " + ".join(parts)
