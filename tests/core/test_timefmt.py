"""Durations and ages read the way the header and tables show them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.core.timefmt import human_age, human_duration, iso_millis, short_duration, utcnow

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (45, "45s"),
        (59.99, "59s"),
        (60, "1m 00s"),
        (192, "3m 12s"),
        (3599, "59m 59s"),
        (3600, "1h 00m"),
        (2 * 3600 + 5 * 60 + 30, "2h 05m"),
        (86399, "23h 59m"),
        (86400, "1d 0h"),
        (3 * 86400 + 4 * 3600 + 59, "3d 4h"),
        (-5, "0s"),
        (float("nan"), "—"),
        (float("inf"), "—"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59, "59s"), (300, "5m"), (7300, "2h"), (90000, "1d")]
)
def test_short_duration(seconds: float, text: str) -> None:
    assert short_duration(seconds) == text


def test_human_age_past_and_future() -> None:
    assert human_age(NOW - timedelta(minutes=5, seconds=20), NOW) == "5m ago"
    assert human_age(NOW - timedelta(seconds=12), NOW) == "12s ago"
    assert human_age(NOW, NOW) == "0s ago"
    assert human_age(NOW + timedelta(seconds=48), NOW) == "in 48s"


def test_iso_millis_is_utc_with_z() -> None:
    local = datetime(2024, 9, 24, 20, 37, 24, 100435, tzinfo=timezone(timedelta(hours=2)))
    assert iso_millis(local) == "2024-09-24T18:37:24.100Z"
    assert iso_millis(datetime(2024, 1, 1)) == "2024-01-01T00:00:00.000Z"


def test_utcnow_is_aware_utc() -> None:
    assert utcnow().utcoffset() == timedelta(0)


@given(st.floats(min_value=0, max_value=10**9))
def test_human_duration_is_monotonic_in_its_first_unit(seconds: float) -> None:
    text = human_duration(seconds)
    assert text[0].isdigit()
    assert len(text.split()) <= 2
