"""Expected end times come from similar past batches, say why, and stay silent without history."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.core.eta import bucket_of, estimate_end, history_points
from tui.core.events import diff_snapshots
from tui.core.models import ENDED, IN_PROGRESS, BatchSnapshot, RequestCounts

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def running(requests: int, age_s: float = 60.0) -> BatchSnapshot:
    created = NOW - timedelta(seconds=age_s)
    return BatchSnapshot(
        id="msgbatch_running",
        processing_status=IN_PROGRESS,
        request_counts=RequestCounts(processing=requests),
        created_at=created,
        expires_at=created + timedelta(hours=24),
    )


def test_no_history_no_eta() -> None:
    assert estimate_end(running(5_000), [], NOW) is None


def test_median_of_the_same_size_bucket() -> None:
    history = [(2_000 + i, 600.0 + 60 * i) for i in range(12)] + [(50, 5.0), (90_000, 9_000.0)]
    eta = estimate_end(running(5_000, age_s=300), history, NOW)
    assert eta is not None
    assert eta.basis == "median of 12 batches of 1k–10k requests"
    assert eta.median_s == 930.0  # median of 600, 660, …, 1260
    assert eta.expected_end == NOW - timedelta(seconds=300) + timedelta(seconds=930)
    assert eta.same_size and eta.samples == 12
    assert eta.remaining_s(NOW) == 630.0 and not eta.overdue(NOW)


def test_overdue_batches_say_so() -> None:
    eta = estimate_end(running(10, age_s=1_000), [(10, 100.0)], NOW)
    assert eta is not None and eta.basis == "median of 1 batch of 1–100 requests"
    assert eta.overdue(NOW) and eta.remaining_s(NOW) == 0.0


def test_falls_back_to_all_sizes_with_enough_points() -> None:
    history = [(50, 100.0), (60, 200.0), (500, 300.0)]
    eta = estimate_end(running(20_000), history, NOW)
    assert eta is not None and not eta.same_size
    assert eta.basis == "median of 3 batches of all sizes (none of 10k–100k requests)"
    assert eta.median_s == 200.0
    assert estimate_end(running(20_000), history[:2], NOW) is None


def test_only_running_batches_get_an_eta() -> None:
    done = replace(running(10), processing_status=ENDED, ended_at=NOW)
    assert estimate_end(done, [(10, 100.0)], NOW) is None


@pytest.mark.parametrize(
    ("requests", "bucket"),
    [(0, 0), (1, 0), (100, 0), (101, 1), (1_000, 1), (1_001, 2), (10_000, 2), (10_001, 3),
     (100_000, 3), (250_000, 3)],
)
def test_bucket_edges(requests: int, bucket: int) -> None:
    assert bucket_of(requests) == bucket


def ended(batch_id: str, requests: int, duration_s: float, canceled: bool = False) -> BatchSnapshot:
    created = NOW - timedelta(days=1)
    return BatchSnapshot(
        id=batch_id,
        processing_status=ENDED,
        request_counts=RequestCounts(succeeded=requests),
        created_at=created,
        expires_at=created + timedelta(hours=24),
        ended_at=created + timedelta(seconds=duration_s),
        cancel_initiated_at=created if canceled else None,
    )


def test_history_from_store_and_audit_log() -> None:
    before = replace(ended("msgbatch_a", 300, 120.0), processing_status=IN_PROGRESS,
                     ended_at=None, request_counts=RequestCounts(processing=300))
    [ended_event] = [e for e in diff_snapshots(before, ended("msgbatch_a", 300, 120.0))
                     if e.event == "batch.ended"]
    records: list[dict[str, Any]] = [
        {"event": ended_event.event, "batch_id": ended_event.batch_id, "data": ended_event.data},
        {"event": "batch.ended", "batch_id": "msgbatch_b", "data": {
            "counts": {"succeeded": 5, "canceled": 0}, "duration_s": 50.0}},
        {"event": "batch.ended", "batch_id": "msgbatch_c", "data": {
            "counts": {"succeeded": 5, "canceled": 5}, "duration_s": 10.0}},
        {"event": "batch.ended", "batch_id": "msgbatch_d", "data": {"counts": "bad"}},
        {"event": "batch.ended", "batch_id": "msgbatch_e", "data": {
            "counts": {"succeeded": 5}, "duration_s": "soon"}},
        {"event": "batch.discovered", "batch_id": "msgbatch_f", "data": {}},
    ]
    snapshots = [
        ended("msgbatch_b", 5, 55.0),           # the store's view wins over the record
        ended("msgbatch_g", 2_000, 900.0),
        ended("msgbatch_h", 2_000, 30.0, canceled=True),
        running(7),
    ]
    points = history_points(snapshots, records)
    assert sorted(points) == [(5, 55.0), (300, 120.0), (2_000, 900.0)]


@given(st.lists(st.tuples(st.integers(1, 100_000), st.floats(0, 86_400)), min_size=1),
       st.integers(1, 100_000))
def test_eta_stays_within_the_history(history: list[tuple[int, float]], size: int) -> None:
    eta = estimate_end(running(size), history, NOW)
    same = [d for n, d in history if bucket_of(n) == bucket_of(size)]
    if eta is None:
        assert not same and len(history) < 3
        return
    durations = same if eta.same_size else [d for _, d in history]
    assert min(durations) <= eta.median_s <= max(durations)
    assert eta.samples == len(durations)


def test_history_leaves_out_records_of_other_workspaces() -> None:
    """The audit directory is shared by every profile: ``batch.ended`` names its workspace."""
    before = replace(ended("msgbatch_a", 300, 120.0), processing_status=IN_PROGRESS,
                     ended_at=None, request_counts=RequestCounts(processing=300))
    [mine] = [e for e in diff_snapshots(before, ended("msgbatch_a", 300, 120.0), "ws-1")
              if e.event == "batch.ended"]
    assert mine.data["workspace"] == "ws-1"
    assert "workspace" not in next(e for e in diff_snapshots(
        before, ended("msgbatch_a", 300, 120.0)) if e.event == "batch.ended").data

    def record(batch_id: str, size: int, **extra: Any) -> dict[str, Any]:
        return {"event": "batch.ended", "batch_id": batch_id,
                "data": {"counts": {"succeeded": size}, "duration_s": 60.0, **extra}}

    records = [{"event": mine.event, "batch_id": mine.batch_id, "data": mine.data},
               record("msgbatch_other", 7, workspace="ws-2"),
               record("msgbatch_older", 9)]  # written before records named a workspace
    assert sorted(history_points((), records, "ws-1")) == [(9, 60.0), (300, 120.0)]
    assert sorted(history_points((), records)) == [(7, 60.0), (9, 60.0), (300, 120.0)]
