"""Snapshot diffs become events that, replayed, rebuild exactly what was observed."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tui.core.events import (
    BATCH_ARCHIVED,
    BATCH_COUNTS_CHANGED,
    BATCH_DISCOVERED,
    BATCH_ENDED,
    BATCH_GONE,
    BATCH_STATUS_CHANGED,
    EVENT_NAMES,
    Event,
    diff_sets,
    diff_snapshots,
    gone_event,
    is_known_event,
)
from tui.core.models import BatchSnapshot, RequestCounts, parse_time

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STATUSES = ("in_progress", "canceling", "ended")


def snap(
    batch_id: str = "msgbatch_a",
    status: str = "in_progress",
    counts: RequestCounts | None = None,
    archived: bool = False,
) -> BatchSnapshot:
    ended = status == "ended"
    return BatchSnapshot(
        id=batch_id,
        processing_status=status,
        request_counts=counts or RequestCounts(processing=10),
        created_at=CREATED,
        expires_at=CREATED + timedelta(hours=24),
        ended_at=CREATED + timedelta(minutes=25) if ended else None,
        archived_at=CREATED + timedelta(days=29) if archived else None,
    )


def names(events: list[Event]) -> list[str]:
    return [event.event for event in events]


def test_first_sighting_is_one_discovery_with_the_whole_state() -> None:
    ended = snap(status="ended", counts=RequestCounts(succeeded=9, errored=1), archived=True)
    (event,) = diff_snapshots(None, ended)
    assert event == Event(BATCH_DISCOVERED, "msgbatch_a", event.data)
    assert event.data["status"] == "ended"
    assert event.data["counts"]["errored"] == 1
    assert event.data["archived_at"] is not None


def test_no_change_no_event() -> None:
    assert diff_snapshots(snap(), snap()) == []


def test_ending_emits_status_counts_then_ended_with_summary() -> None:
    running = snap(counts=RequestCounts(processing=10))
    done = snap(status="ended", counts=RequestCounts(succeeded=8, errored=1, expired=1))
    events = diff_snapshots(running, done)
    assert names(events) == [BATCH_STATUS_CHANGED, BATCH_COUNTS_CHANGED, BATCH_ENDED]
    assert events[0].data == {"from": "in_progress", "to": "ended"}
    assert events[1].data["from"]["processing"] == 10
    assert events[1].data["to"]["succeeded"] == 8
    assert events[2].data == {
        "counts": {"processing": 0, "succeeded": 8, "errored": 1, "canceled": 0, "expired": 1},
        "duration_s": 1500.0,
        "error_rate": 0.2,
        "ended_at": "2026-03-01T12:25:00.000000Z",
    }


def test_archiving_is_noticed_once() -> None:
    ended = snap(status="ended")
    archived = snap(status="ended", archived=True)
    events = diff_snapshots(ended, archived)
    assert names(events) == [BATCH_ARCHIVED]
    assert parse_time(events[0].data["archived_at"]) == archived.archived_at
    assert diff_snapshots(archived, archived) == []


def test_gone_event_keeps_the_last_known_state() -> None:
    event = gone_event(snap(status="ended", counts=RequestCounts(succeeded=3)))
    assert event.event == BATCH_GONE
    assert event.batch_id == "msgbatch_a"
    assert event.data["last_status"] == "ended"
    assert event.data["counts"]["succeeded"] == 3


def test_diff_sets_only_reports_gone_for_a_complete_list() -> None:
    before = {"a": snap("a"), "b": snap("b")}
    page = {"a": snap("a", status="canceling")}
    assert names(diff_sets(before, page, complete=False)) == [BATCH_STATUS_CHANGED]
    events = diff_sets(before, page, complete=True)
    assert [(e.event, e.batch_id) for e in events] == [
        (BATCH_STATUS_CHANGED, "a"),
        (BATCH_GONE, "b"),
    ]
    assert names(diff_sets({}, {"c": snap("c")}, complete=True)) == [BATCH_DISCOVERED]


def test_events_are_plain_json_data() -> None:
    import json

    events = diff_snapshots(snap(), snap(status="ended", counts=RequestCounts(succeeded=10)))
    for event in events:
        json.dumps(event.data)


def test_event_names() -> None:
    assert all(is_known_event(name) for name in EVENT_NAMES)
    assert is_known_event("action.cancel")
    assert is_known_event("alert.error_rate")
    assert not is_known_event("nonsense")


# --- replay: the events are a lossless account of the observations ---------------------

counts_st = st.builds(
    RequestCounts,
    processing=st.integers(0, 3),
    succeeded=st.integers(0, 3),
    errored=st.integers(0, 2),
    canceled=st.integers(0, 1),
    expired=st.integers(0, 1),
)
observation_st = st.tuples(st.sampled_from(STATUSES), counts_st, st.booleans())


def sequence(
    batch_id: str, observations: list[tuple[str, RequestCounts, bool]]
) -> list[BatchSnapshot]:
    """Snapshots in which archiving, once seen, stays (as it does in the API)."""
    result = []
    archived = False
    for status, counts, archive in observations:
        archived = archived or archive
        result.append(snap(batch_id, status, counts, archived))
    return result


State = dict[str, Any]


def apply(states: dict[str, State], event: Event) -> None:
    """Replay one event onto the reconstructed world, checking it against what came before."""
    assert event.batch_id is not None
    if event.event == BATCH_DISCOVERED:
        assert event.batch_id not in states, "discovered twice without going away"
        states[event.batch_id] = {
            "status": event.data["status"],
            "counts": event.data["counts"],
            "archived": event.data["archived_at"] is not None,
        }
        return
    state = states[event.batch_id]
    if event.event == BATCH_STATUS_CHANGED:
        assert state["status"] == event.data["from"] != event.data["to"]
        state["status"] = event.data["to"]
    elif event.event == BATCH_COUNTS_CHANGED:
        assert state["counts"] == event.data["from"] != event.data["to"]
        state["counts"] = event.data["to"]
    elif event.event == BATCH_ENDED:
        assert state["status"] == "ended"
        assert state["counts"] == event.data["counts"]
    elif event.event == BATCH_ARCHIVED:
        assert not state["archived"]
        state["archived"] = True
    elif event.event == BATCH_GONE:
        del states[event.batch_id]
    else:  # pragma: no cover - a new event kind needs a replay rule
        raise AssertionError(event.event)


def expected(batch: BatchSnapshot) -> State:
    return {
        "status": batch.processing_status,
        "counts": batch.request_counts.to_api(),
        "archived": batch.archived_at is not None,
    }


@given(st.lists(observation_st, min_size=1, max_size=12))
def test_replaying_one_batch_rebuilds_every_observation(
    observations: list[tuple[str, RequestCounts, bool]],
) -> None:
    snaps = sequence("msgbatch_x", observations)
    states: dict[str, State] = {}
    all_events: list[Event] = []
    previous: BatchSnapshot | None = None
    for current in snaps:
        events = diff_snapshots(previous, current)
        assert len(names(events)) == len(set(names(events)))
        for event in events:
            apply(states, event)
        assert states["msgbatch_x"] == expected(current)
        all_events.extend(events)
        previous = current
    pairs = list(itertools.pairwise(snaps))
    assert names(all_events).count(BATCH_STATUS_CHANGED) == sum(
        a.processing_status != b.processing_status for a, b in pairs
    )
    assert names(all_events).count(BATCH_ENDED) == sum(
        b.is_ended and not a.is_ended for a, b in pairs
    )


@given(st.lists(st.tuples(st.sampled_from([0, 1, 2]), counts_st), min_size=1, max_size=10))
def test_a_real_lifecycle_ends_exactly_once(steps: list[tuple[int, RequestCounts]]) -> None:
    # Status only moves forward in the API: in_progress -> canceling -> ended.
    ranks = list(itertools.accumulate((rank for rank, _ in steps), max))
    snaps = [
        snap("b", STATUSES[rank], counts) for rank, (_, counts) in zip(ranks, steps, strict=True)
    ]
    snaps.insert(0, snap("b"))
    events = [e for a, b in itertools.pairwise(snaps) for e in diff_snapshots(a, b)]
    assert names(events).count(BATCH_ENDED) == (1 if snaps[-1].is_ended else 0)
    transitions = [
        (e.data["from"], e.data["to"]) for e in events if e.event == BATCH_STATUS_CHANGED
    ]
    assert len(transitions) == len(set(transitions))


view_st = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), observation_st, max_size=4)


@given(st.lists(view_st, min_size=1, max_size=8))
def test_replaying_full_lists_rebuilds_the_final_view(
    views: list[dict[str, tuple[str, RequestCounts, bool]]],
) -> None:
    states: dict[str, State] = {}
    previous: dict[str, BatchSnapshot] = {}
    archived_once: set[str] = set()
    for view in views:
        current: dict[str, BatchSnapshot] = {}
        for batch_id, (status, counts, archive) in sorted(view.items()):
            stays_archived = archive or (batch_id in archived_once and batch_id in previous)
            current[batch_id] = snap(batch_id, status, counts, stays_archived)
        archived_once = {k for k, v in current.items() if v.archived_at is not None}
        events = diff_sets(previous, current, complete=True)
        assert events == diff_sets(previous, current, complete=True)  # deterministic
        for event in events:
            apply(states, event)
        assert states == {batch_id: expected(batch) for batch_id, batch in current.items()}
        previous = current


def test_snapshot_replace_does_not_leak_between_events() -> None:
    base = snap()
    changed = replace(base, request_counts=RequestCounts(processing=9, canceled=1))
    (event,) = diff_snapshots(base, changed)
    event.data["to"]["processing"] = 0
    assert changed.request_counts.processing == 9
