"""The batches list logic: status filters, regex filter, sorting, totals and the outcome bar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.core.batch_view import (
    SORT_KEYS,
    FilterError,
    Segment,
    Shown,
    StatusFilter,
    TextFilter,
    ViewSpec,
    apply_view,
    bar_segments,
    deadline_of,
    next_match,
    shown_status,
    sort_batches,
    summarize,
)
from tui.core.models import BatchSnapshot, RequestCounts

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def batch(
    batch_id: str,
    *,
    status: str = "in_progress",
    age_s: float = 60,
    ended_ago_s: float | None = None,
    archived: bool = False,
    canceling: bool = False,
    **counts: int,
) -> BatchSnapshot:
    created = NOW - timedelta(seconds=age_s)
    return BatchSnapshot(
        id=batch_id,
        processing_status=status,
        request_counts=RequestCounts(**counts),
        created_at=created,
        expires_at=created + timedelta(hours=24),
        ended_at=NOW - timedelta(seconds=ended_ago_s) if ended_ago_s is not None else None,
        cancel_initiated_at=created if canceling else None,
        archived_at=NOW if archived else None,
    )


RUNNING = batch("msgbatch_run", age_s=30, processing=10)
CLEAN = batch("msgbatch_clean", status="ended", age_s=3600, ended_ago_s=60, succeeded=10)
FAILED = batch("msgbatch_fail", status="ended", age_s=7200, ended_ago_s=600,
               succeeded=8, errored=1, expired=1)
CANCELED = batch("msgbatch_cxl", status="ended", age_s=100, ended_ago_s=10, canceling=True,
                 succeeded=2, canceled=8)
STOPPING = batch("msgbatch_stop", status="canceling", age_s=50, processing=4, canceling=True)
ALL = [RUNNING, CLEAN, FAILED, CANCELED, STOPPING]


def ids(batches: list[BatchSnapshot]) -> list[str]:
    return [b.id for b in batches]


def test_shown_status_never_calls_failures_or_cancels_clean() -> None:
    assert shown_status(RUNNING) is Shown.RUNNING
    assert shown_status(STOPPING) is Shown.CANCELING
    assert shown_status(CLEAN) is Shown.CLEAN
    assert shown_status(FAILED) is Shown.FAILURES
    assert shown_status(CANCELED) is Shown.CANCELED
    only_expired = batch("e", status="ended", ended_ago_s=1, expired=3)
    assert shown_status(only_expired) is Shown.FAILURES


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (StatusFilter.ALL, {"msgbatch_run", "msgbatch_clean", "msgbatch_fail", "msgbatch_cxl",
                            "msgbatch_stop"}),
        (StatusFilter.RUNNING, {"msgbatch_run", "msgbatch_stop"}),
        (StatusFilter.ENDED, {"msgbatch_clean", "msgbatch_fail", "msgbatch_cxl"}),
        (StatusFilter.FAILURES, {"msgbatch_fail"}),
    ],
)
def test_status_filters(status: StatusFilter, expected: set[str]) -> None:
    assert set(ids(apply_view(ALL, ViewSpec(status=status), NOW))) == expected


def test_text_filter_matches_id_and_label_case_insensitively() -> None:
    spec = ViewSpec(text=TextFilter.parse("CLEAN|nightly"))
    labels = {"msgbatch_fail": "nightly eval"}
    assert set(ids(apply_view(ALL, spec, NOW, labels))) == {"msgbatch_clean", "msgbatch_fail"}


def test_inverted_filter_excludes_matches() -> None:
    spec = ViewSpec(text=TextFilter.parse("!run|stop"))
    assert set(ids(apply_view(ALL, spec, NOW))) == {"msgbatch_clean", "msgbatch_fail",
                                                     "msgbatch_cxl"}


def test_filter_parse_edge_cases() -> None:
    assert TextFilter.parse("") is None
    assert TextFilter.parse("!") is None
    parsed = TextFilter.parse("!abc")
    assert parsed is not None and parsed.inverted and parsed.text == "!abc"
    with pytest.raises(FilterError):
        TextFilter.parse("(unclosed")


def test_filters_combine() -> None:
    spec = ViewSpec(status=StatusFilter.ENDED, text=TextFilter.parse("!fail"))
    assert set(ids(apply_view(ALL, spec, NOW))) == {"msgbatch_clean", "msgbatch_cxl"}


def test_default_sort_is_newest_first() -> None:
    assert ids(apply_view(ALL, ViewSpec(), NOW)) == [
        "msgbatch_run", "msgbatch_stop", "msgbatch_cxl", "msgbatch_clean", "msgbatch_fail"
    ]


def test_with_sort_toggles_direction_on_same_key() -> None:
    spec = ViewSpec().with_sort("error_rate")
    assert (spec.sort_key, spec.descending) == ("error_rate", True)
    spec = spec.with_sort("error_rate")
    assert spec.descending is False
    assert spec.with_sort("id") == ViewSpec(sort_key="id", descending=True)


def test_sort_by_error_rate_puts_failures_first() -> None:
    assert ids(sort_batches(ALL, "error_rate", True, NOW))[0] == "msgbatch_fail"


def test_sort_by_id_ascending() -> None:
    assert ids(sort_batches(ALL, "id", False, NOW)) == sorted(ids(ALL))


@pytest.mark.parametrize("key", sorted(SORT_KEYS))
def test_every_sort_key_is_a_permutation(key: str) -> None:
    for descending in (True, False):
        assert sorted(ids(sort_batches(ALL, key, descending, NOW))) == sorted(ids(ALL))


def test_unknown_sort_key_falls_back_to_created() -> None:
    assert ids(sort_batches(ALL, "nope", True, NOW)) == ids(sort_batches(ALL, "created", True, NOW))


def test_sort_ties_are_stable_newest_first() -> None:
    a = batch("a", age_s=10, processing=1)
    b = batch("b", age_s=20, processing=1)
    assert ids(sort_batches([b, a], "processing", True, NOW)) == ["a", "b"]
    assert ids(sort_batches([b, a], "processing", False, NOW)) == ["a", "b"]


def test_deadline_is_expiry_while_running_and_retention_once_ended() -> None:
    assert deadline_of(RUNNING) == RUNNING.expires_at
    assert deadline_of(CLEAN) == CLEAN.created_at + timedelta(days=29)


def test_next_match_wraps_both_ways() -> None:
    rows = ["a1", "b", "a2", "c"]
    text = TextFilter.parse("a")
    assert text is not None
    assert next_match(rows, 0, text) == 2
    assert next_match(rows, 2, text) == 0
    assert next_match(rows, 0, text, backwards=True) == 2
    assert next_match([], 0, text) is None
    assert next_match(["x"], 0, text) is None
    assert next_match(["x", "y"], 0, text, {"y": "label a"}) == 1


def test_summarize_counts_the_whole_workspace() -> None:
    yesterday = batch("old", status="ended", age_s=200_000, ended_ago_s=90_000, succeeded=1)
    totals = summarize([*ALL, yesterday], NOW, UTC)
    assert totals.batches == 6
    assert totals.running == 2
    assert totals.ended_today == 3
    assert totals.processing_requests == 14
    assert totals.with_failures == 1


def test_bar_gives_failures_at_least_one_cell() -> None:
    segments = dict(bar_segments(999, 1, 0, 0, 10))
    assert segments[Segment.FAILED] == 1
    assert segments[Segment.SUCCEEDED] == 9


def test_bar_empty_batch_has_no_segments() -> None:
    assert bar_segments(0, 0, 0, 0, 10) == []


@given(
    st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000),
    st.integers(0, 10_000), st.integers(1, 40),
)
def test_bar_fills_width_exactly(s: int, f: int, c: int, p: int, width: int) -> None:
    segments = bar_segments(s, f, c, p, width)
    if s + f + c + p == 0:
        assert segments == []
        return
    assert sum(n for _, n in segments) == width
    assert all(n > 0 for _, n in segments)
    if f:
        assert dict(segments).get(Segment.FAILED, 0) >= 1
