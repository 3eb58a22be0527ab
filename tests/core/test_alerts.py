"""Each alert fires once, only when due, and survives a restart through the audit log."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tui.core.alerts import (
    ALERT_RAISED,
    Alert,
    AlertKind,
    AlertRules,
    AlertTracker,
    Severity,
)
from tui.core.models import CANCELING, ENDED, IN_PROGRESS, BatchSnapshot, RequestCounts

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def running(batch_id: str = "msgbatch_run", age: timedelta = 10 * MIN,
            processing: int = 100, status: str = IN_PROGRESS) -> BatchSnapshot:
    created = NOW - age
    return BatchSnapshot(
        id=batch_id,
        processing_status=status,
        request_counts=RequestCounts(processing=processing),
        created_at=created,
        expires_at=created + 24 * HOUR,
    )


def ended(batch_id: str = "msgbatch_end", age: timedelta = 2 * HOUR,
          ended_ago: timedelta = 5 * MIN, succeeded: int = 100, errored: int = 0,
          expired: int = 0) -> BatchSnapshot:
    created = NOW - age
    return BatchSnapshot(
        id=batch_id,
        processing_status=ENDED,
        request_counts=RequestCounts(succeeded=succeeded, errored=errored, expired=expired),
        created_at=created,
        expires_at=created + 24 * HOUR,
        ended_at=NOW - ended_ago,
        results_url=f"https://example.invalid/{batch_id}/results",
    )


def nothing_stored(batch_id: str) -> bool:
    return False


def kinds(alerts: list[Alert]) -> list[tuple[str, AlertKind]]:
    return [(alert.batch_id, alert.kind) for alert in alerts]


def test_error_rate_fires_once_above_the_threshold() -> None:
    tracker = AlertTracker()
    bad = ended("msgbatch_bad", succeeded=88, errored=10, expired=2)
    borderline = ended("msgbatch_ten", succeeded=90, errored=10)
    alerts = tracker.evaluate([bad, borderline], NOW, nothing_stored)
    assert (bad.id, AlertKind.ERROR_RATE) in kinds(alerts)
    assert (borderline.id, AlertKind.ERROR_RATE) not in kinds(alerts)
    error = next(a for a in alerts if a.kind is AlertKind.ERROR_RATE)
    assert error.severity is Severity.ERROR
    assert error.message == (
        "msgbatch_bad: 12.0% of 100 requests failed (10 errored, 2 expired; alert above 10%)"
    )
    assert tracker.evaluate([bad, borderline], NOW + MIN, nothing_stored) == []


def test_ended_fires_when_a_watched_batch_ends() -> None:
    tracker = AlertTracker()
    batch = running("msgbatch_a", age=30 * MIN)
    assert tracker.evaluate([batch], NOW, nothing_stored) == []
    done = replace(batch, processing_status=ENDED, ended_at=NOW + MIN,
                   request_counts=RequestCounts(succeeded=99, errored=1))
    alerts = tracker.evaluate([done], NOW + MIN, nothing_stored)
    assert kinds(alerts) == [("msgbatch_a", AlertKind.ENDED)]
    assert alerts[0].severity is Severity.INFO
    assert alerts[0].message == "msgbatch_a ended after 31m 00s: 99 succeeded, 1 errored"
    assert tracker.evaluate([done], NOW + 2 * MIN, nothing_stored) == []


def test_old_news_stays_quiet() -> None:
    tracker = AlertTracker()
    old = ended("msgbatch_old", age=3 * 24 * HOUR, ended_ago=2 * 24 * HOUR, succeeded=1,
                errored=9)
    assert tracker.evaluate([old], NOW, nothing_stored) == []


def test_sla_fires_only_after_the_sla() -> None:
    tracker = AlertTracker(AlertRules(sla_seconds=3600))
    assert tracker.evaluate([running(age=59 * MIN)], NOW, nothing_stored) == []
    alerts = tracker.evaluate([running(age=59 * MIN)], NOW + 2 * MIN, nothing_stored)
    assert kinds(alerts) == [("msgbatch_run", AlertKind.SLA)]
    assert "longer than the 1h 00m SLA" in alerts[0].message
    assert tracker.evaluate([running(age=59 * MIN)], NOW + HOUR, nothing_stored) == []


def test_canceling_batches_do_not_breach_the_sla() -> None:
    tracker = AlertTracker()
    assert tracker.evaluate([running(age=3 * HOUR, status=CANCELING)], NOW, nothing_stored) == []


def test_expiring_needs_the_window_and_processing_requests() -> None:
    tracker = AlertTracker(AlertRules(sla_seconds=10**9))
    far = running("msgbatch_far", age=22 * HOUR)
    empty = running("msgbatch_empty", age=23.5 * HOUR, processing=0)
    near = running("msgbatch_near", age=23.5 * HOUR, processing=7)
    alerts = tracker.evaluate([far, empty, near], NOW, nothing_stored)
    assert kinds(alerts) == [("msgbatch_near", AlertKind.EXPIRING)]
    assert alerts[0].message.startswith("msgbatch_near expires in 30m 00s with 7 requests")
    assert alerts[0].data["remaining_s"] == 1800.0
    later = tracker.evaluate([far], NOW + HOUR + MIN, nothing_stored)  # 59 min left now
    assert kinds(later) == [("msgbatch_far", AlertKind.EXPIRING)]
    assert tracker.evaluate([near], NOW + 10 * MIN, nothing_stored) == []


def test_archive_soon_only_for_unstored_results_near_the_limit() -> None:
    asked: list[str] = []

    def stored(batch_id: str) -> bool:
        asked.append(batch_id)
        return batch_id == "msgbatch_saved"

    old = timedelta(days=28)
    soon = ended("msgbatch_soon", age=old, ended_ago=old - HOUR)
    saved = ended("msgbatch_saved", age=old, ended_ago=old - HOUR)
    young = ended("msgbatch_young", age=timedelta(days=20), ended_ago=timedelta(days=19))
    gone = replace(soon, id="msgbatch_gone", archived_at=NOW - HOUR)
    tracker = AlertTracker()
    alerts = tracker.evaluate([soon, saved, young, gone], NOW, stored)
    assert kinds(alerts) == [("msgbatch_soon", AlertKind.ARCHIVE_SOON)]
    assert "will be archived in 1d 0h" in alerts[0].message
    assert asked == ["msgbatch_soon", "msgbatch_saved"]  # never about batches far from it
    assert tracker.evaluate([soon, saved], NOW + HOUR, stored) == []


def test_restart_does_not_refire_alerts_from_the_audit_log() -> None:
    first = AlertTracker()
    batch = running(age=2 * HOUR)
    raised = first.evaluate([batch], NOW, nothing_stored)
    assert kinds(raised) == [("msgbatch_run", AlertKind.SLA)]
    event = raised[0].to_event()
    assert event.event == ALERT_RAISED and event.data["kind"] == "sla"
    records: list[dict[str, Any]] = [
        {"timestamp": "2026-11-24T12:00:00.000Z", "batch_id": event.batch_id,
         "event": event.event, "data": event.data},
        {"event": ALERT_RAISED, "batch_id": "msgbatch_x", "data": {"kind": ["not", "a", "kind"]}},
        {"event": ALERT_RAISED, "batch_id": None, "data": {"kind": "sla"}},
        {"event": "batch.ended", "batch_id": "msgbatch_y", "data": {"kind": "ended"}},
    ]
    restarted = AlertTracker()
    assert restarted.seed(records) == 1
    assert restarted.evaluate([batch], NOW + MIN, nothing_stored) == []
    assert restarted.kinds("msgbatch_run") == {AlertKind.SLA}


def test_disabled_kinds_never_fire() -> None:
    tracker = AlertTracker(AlertRules(enabled=frozenset({AlertKind.ERROR_RATE})))
    batch = ended(succeeded=1, errored=1)
    assert kinds(tracker.evaluate([batch], NOW, nothing_stored)) == [
        ("msgbatch_end", AlertKind.ERROR_RATE)
    ]


def test_worst_severity_and_forget() -> None:
    tracker = AlertTracker()
    tracker.evaluate([ended(succeeded=1, errored=1)], NOW, nothing_stored)
    assert tracker.kinds("msgbatch_end") == {AlertKind.ERROR_RATE, AlertKind.ENDED}
    assert tracker.worst("msgbatch_end") is Severity.ERROR
    tracker.forget("msgbatch_end")
    assert tracker.worst("msgbatch_end") is None


def test_alert_json_is_plain_and_inert() -> None:
    tracker = AlertTracker()
    hostile = running("msgbatch_\x1b]52;c;aGk=\x07", age=2 * HOUR)
    alert = tracker.evaluate([hostile], NOW, nothing_stored)[0]
    assert "\x1b" not in alert.message and "␛]52" in alert.message
    payload = orjson.loads(orjson.dumps(alert.to_json()))
    assert payload["kind"] == "sla" and payload["severity"] == "warning"
    assert payload["batch_id"] == hostile.id  # the id itself is data, kept exact
    assert payload["at"] == "2026-11-24T12:00:00.000000Z"
    assert payload["data"]["sla_s"] == 3600.0


statuses = st.sampled_from([IN_PROGRESS, CANCELING, ENDED])


@given(
    st.lists(
        st.tuples(st.integers(0, 3), statuses, st.integers(0, 30 * 24 * 60),
                  st.integers(0, 20), st.integers(0, 20)),
        max_size=40,
    ),
    st.lists(st.integers(1, 24 * 60), min_size=1, max_size=10),
)
def test_no_alert_is_ever_returned_twice(
    observations: list[tuple[int, str, int, int, int]], steps: list[int]
) -> None:
    tracker = AlertTracker()
    seen: set[tuple[str, AlertKind]] = set()
    now = NOW
    for step in steps:
        now += timedelta(minutes=step)
        batches = []
        for index, status, age_min, processing, errored in observations:
            created = now - timedelta(minutes=age_min)
            batches.append(BatchSnapshot(
                id=f"msgbatch_{index}",
                processing_status=status,
                request_counts=RequestCounts(
                    processing=processing if status != ENDED else 0,
                    succeeded=10 if status == ENDED else 0,
                    errored=errored if status == ENDED else 0,
                ),
                created_at=created,
                expires_at=created + 24 * HOUR,
                ended_at=now if status == ENDED else None,
            ))
        for key in kinds(tracker.evaluate(batches, now, nothing_stored)):
            assert key not in seen
            seen.add(key)
