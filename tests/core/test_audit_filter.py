"""Audit filtering: durations, event globs, stable keys, batch / kind / window / text filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.core.audit_filter import (
    AuditQuery,
    audit_entries,
    cycle,
    event_matcher,
    kind_choices,
    parse_duration,
    parse_since,
    select,
)
from tui.core.batch_view import TextFilter

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def record(event: str, batch_id: str | None, ago: timedelta, session: str = "ses_a",
           **data: Any) -> dict[str, Any]:
    stamp = (NOW - ago).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"timestamp": stamp, "event": event, "batch_id": batch_id, "data": data,
            "actor": "tester@host", "session": session, "schema": 1}


RECORDS = [
    record("session.started", None, timedelta(days=8)),
    record("batch.discovered", "msgbatch_a", timedelta(days=3), status="in_progress"),
    record("batch.discovered", "msgbatch_b", timedelta(days=2), status="in_progress"),
    record("action.cancel", "msgbatch_a", timedelta(hours=20), outcome="succeeded"),
    record("batch.ended", "msgbatch_a", timedelta(hours=5), error_rate=0.25),
    record("action.retry", "msgbatch_b", timedelta(minutes=50), outcome="failed",
           error={"type": "overloaded_error", "message": "Overloaded"}),
    record("alert.raised", "msgbatch_b", timedelta(minutes=10), severity="warning"),
]


# -- durations and globs --------------------------------------------------------------------


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from("smhdw")), min_size=1,
                max_size=4))
def test_parse_duration_sums_its_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    assert parse_duration(text) == timedelta(seconds=sum(n * SECONDS[u] for n, u in parts))


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("2h", 7200), ("1d", 86400),
                                               (" 1H 30m ", 5400), ("1.5h", 5400)])
def test_parse_duration_examples(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "10", "5x", "m5", "1h-2m", "yesterday"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_parse_since_takes_a_duration_or_a_time() -> None:
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("2026-04-30T09:00:00Z", NOW) == datetime(2026, 4, 30, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a duration"):
        parse_since("yesterday-ish", NOW)


def test_event_matcher_globs() -> None:
    assert event_matcher(None) is None
    assert event_matcher(" , ") is None
    matcher = event_matcher("batch.*, action.cancel")
    assert matcher is not None
    assert matcher.fullmatch("batch.ended")
    assert matcher.fullmatch("action.cancel")
    assert not matcher.fullmatch("action.retry")
    assert not matcher.fullmatch("xbatch.ended")


# -- entries ------------------------------------------------------------------------------------


def test_entries_read_what_the_view_needs() -> None:
    entries = audit_entries(RECORDS)
    first = entries[0]
    assert (first.event, first.batch_id, first.actor) == ("session.started", None, "tester@host")
    assert first.at == NOW - timedelta(days=8)
    assert "Overloaded" in entries[5].haystack


def test_entries_skip_records_without_event_or_time() -> None:
    broken: list[dict[str, Any]] = [{"event": "x"}, {"timestamp": "nope", "event": "y"},
                                    {"timestamp": "2026-05-01T00:00:00Z", "event": 3}]
    assert audit_entries([*broken, RECORDS[0]]) == audit_entries([RECORDS[0]])


@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["ses_a", "ses_b"]),
                          st.sampled_from(["msgbatch_a", "msgbatch_b", None])), max_size=30),
       st.integers(0, 30))
def test_keys_are_unique_and_stable_as_the_log_grows(
    items: list[tuple[int, str, str | None]], cut: int
) -> None:
    records = [record("batch.ended", batch, timedelta(seconds=s), session)
               for s, session, batch in items]
    keys = [e.key for e in audit_entries(records)]
    assert len(set(keys)) == len(keys)
    assert [e.key for e in audit_entries(records[:cut])] == keys[:cut]
    # One batch's records read alone get the keys they have in the whole log.
    alone = [r for r in records if r["batch_id"] == "msgbatch_a"]
    whole = {e.key for e in audit_entries(records)}
    assert {e.key for e in audit_entries(alone)} <= whole


# -- the query ----------------------------------------------------------------------------------


def events_of(query: AuditQuery) -> list[str]:
    return [e.event for e in select(audit_entries(RECORDS), query, NOW)]


def test_newest_first_by_default_and_oldest_first_on_request() -> None:
    assert events_of(AuditQuery())[0] == "alert.raised"
    assert events_of(AuditQuery(newest_first=False))[0] == "session.started"


def test_filters_by_batch_kind_window_and_text() -> None:
    assert events_of(AuditQuery(batch_id="msgbatch_a", newest_first=False)) == [
        "batch.discovered", "action.cancel", "batch.ended"]
    assert events_of(AuditQuery(events="action.*")) == ["action.retry", "action.cancel"]
    assert events_of(AuditQuery(window=timedelta(hours=1))) == ["alert.raised", "action.retry"]
    assert events_of(AuditQuery(window=timedelta(days=7)))[-1] == "batch.discovered"
    assert events_of(AuditQuery(text=TextFilter("overloaded"))) == ["action.retry"]
    assert "action.retry" not in events_of(AuditQuery(text=TextFilter("overloaded", True)))
    assert events_of(AuditQuery(batch_id="msgbatch_b", events="batch.*")) == [
        "batch.discovered"]


def test_kind_choices_put_each_family_before_its_kinds() -> None:
    assert kind_choices(audit_entries(RECORDS)) == [
        "action.*", "action.cancel", "action.retry", "alert.*", "alert.raised",
        "batch.*", "batch.discovered", "batch.ended", "session.*", "session.started"]


def test_cycle_wraps_through_everything() -> None:
    choices = ["a.*", "a.x"]
    assert cycle(None, choices) == "a.*"
    assert cycle("a.*", choices) == "a.x"
    assert cycle("a.x", choices) is None
    assert cycle(None, choices, backwards=True) == "a.x"
    assert cycle("gone.kind", choices) == "a.*"
    assert cycle(None, []) is None
