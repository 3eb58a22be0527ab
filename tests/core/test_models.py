"""Batch snapshots parse the API's JSON, round-trip it, and classify outcomes honestly."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tui.core.models import BatchSnapshot, Outcome, RequestCounts, format_time, parse_time

ENDED_WITH_ERRORS = {
    "id": "msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d",
    "type": "message_batch",
    "processing_status": "ended",
    "request_counts": {"processing": 0, "succeeded": 98, "errored": 1, "canceled": 0, "expired": 1},
    "ended_at": "2024-09-24T19:02:11.512332Z",
    "created_at": "2024-09-24T18:37:24.100435Z",
    "expires_at": "2024-09-25T18:37:24.100435+00:00",
    "archived_at": None,
    "cancel_initiated_at": None,
    "results_url": "https://api.anthropic.com/v1/messages/batches/msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d/results",
}


def test_parses_both_timestamp_forms() -> None:
    batch = BatchSnapshot.from_api(ENDED_WITH_ERRORS)
    assert batch.created_at == datetime(2024, 9, 24, 18, 37, 24, 100435, tzinfo=UTC)
    assert batch.expires_at == datetime(2024, 9, 25, 18, 37, 24, 100435, tzinfo=UTC)
    assert batch.request_counts.total == 100


def test_round_trip_keeps_api_shape() -> None:
    batch = BatchSnapshot.from_api(ENDED_WITH_ERRORS)
    again = BatchSnapshot.from_api(batch.to_api())
    assert again == batch
    assert list(batch.to_api())[:4] == ["id", "type", "processing_status", "request_counts"]


def test_failures_are_never_clean() -> None:
    batch = BatchSnapshot.from_api(ENDED_WITH_ERRORS)
    assert batch.outcome is Outcome.FAILURES
    assert batch.request_counts.error_rate == 0.02
    clean = BatchSnapshot.from_api(
        {**ENDED_WITH_ERRORS, "request_counts": {"succeeded": 100}}
    )
    assert clean.outcome is Outcome.CLEAN


def test_running_and_canceling_outcomes() -> None:
    running = BatchSnapshot.from_api({**ENDED_WITH_ERRORS, "processing_status": "in_progress"})
    canceling = BatchSnapshot.from_api({**ENDED_WITH_ERRORS, "processing_status": "canceling"})
    assert running.outcome is Outcome.RUNNING and running.is_running
    assert canceling.outcome is Outcome.CANCELING and not canceling.is_ended


def test_empty_counts_have_zero_error_rate() -> None:
    assert RequestCounts().error_rate == 0.0


@given(st.datetimes(timezones=st.just(UTC)))
def test_parse_time_round_trips(moment: datetime) -> None:
    text = format_time(moment)
    assert text is not None and text.endswith("Z")
    assert parse_time(text) == moment
