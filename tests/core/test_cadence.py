"""Polling slows down as a batch ages, stops when it ends, and backs off after failures."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.core.cadence import Backoff, Cadence, next_poll_at, poll_interval
from tui.core.models import BatchSnapshot, RequestCounts

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def batch(status: str = "in_progress") -> BatchSnapshot:
    return BatchSnapshot(
        id="msgbatch_01",
        processing_status=status,
        request_counts=RequestCounts(processing=5),
        created_at=CREATED,
        expires_at=CREATED + timedelta(hours=24),
    )


def at(seconds: float) -> datetime:
    return CREATED + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("age_s", "interval"),
    [(0, 10), (299, 10), (300, 60), (3599, 60), (3600, 300), (20 * 3600, 300)],
)
def test_adaptive_bands_follow_batch_age(age_s: float, interval: float) -> None:
    assert poll_interval(batch(), at(age_s), Cadence()) == interval


def test_canceling_batches_are_still_polled() -> None:
    assert poll_interval(batch("canceling"), at(10), Cadence()) == 10


def test_ended_batches_are_not_polled() -> None:
    assert poll_interval(batch("ended"), at(10), Cadence()) is None
    assert poll_interval(batch("ended"), at(10), Cadence(), focused=True) is None
    assert next_poll_at(batch("ended"), at(10), Cadence()) is None


def test_focused_batch_is_polled_faster_never_slower() -> None:
    assert poll_interval(batch(), at(7200), Cadence(), focused=True) == 3
    slow_focus = Cadence(focused_s=30)
    assert poll_interval(batch(), at(0), slow_focus, focused=True) == 10


def test_a_batch_near_expiry_is_checked_soon_after_it_expires() -> None:
    almost = 24 * 3600 - 100
    assert poll_interval(batch(), at(almost), Cadence()) == 100
    assert poll_interval(batch(), at(24 * 3600 - 2), Cadence()) == 10


def test_next_poll_at_adds_the_interval() -> None:
    assert next_poll_at(batch(), at(400), Cadence()) == at(460)


def test_custom_cadence_and_validation() -> None:
    fast = Cadence(young_s=1, young_until_s=5, middle_s=2, middle_until_s=10, old_s=4)
    assert [fast.for_age(age) for age in (0, 5, 10)] == [1, 2, 4]
    with pytest.raises(ValueError):
        Cadence(young_s=0)
    with pytest.raises(ValueError):
        Cadence(young_until_s=4000, middle_until_s=3600)


@given(st.floats(min_value=0, max_value=40 * 86400), st.floats(min_value=0, max_value=86400))
def test_interval_never_shrinks_with_age_until_expiry_is_near(a: float, b: float) -> None:
    younger, older = sorted((a, b))
    if older > 23 * 3600:
        return
    first = poll_interval(batch(), at(younger), Cadence())
    second = poll_interval(batch(), at(older), Cadence())
    assert first is not None and second is not None
    assert first <= second


def test_backoff_grows_exponentially_within_jitter_and_caps() -> None:
    backoff = Backoff(base_s=1, factor=2, max_s=60, seed=7)
    delays = [backoff.next_delay() for _ in range(12)]
    for attempt, delay in enumerate(delays):
        ceiling = min(60, 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.failures == 12
    assert backoff.failing


def test_backoff_is_reproducible_from_a_seed() -> None:
    first = [Backoff(seed=3).next_delay() for _ in range(3)]
    again = [Backoff(seed=3).next_delay() for _ in range(3)]
    assert first == again
    shared = random.Random(1)
    assert Backoff(rng=shared).next_delay() >= 0.5


def test_backoff_honours_retry_after_up_to_its_own_cap() -> None:
    backoff = Backoff(seed=1)
    assert backoff.next_delay(retry_after=7) == 7
    assert backoff.next_delay(retry_after=120) == 120  # above max_s, still honoured
    assert backoff.next_delay(retry_after=3600) == 300
    assert backoff.failures == 3


@pytest.mark.parametrize("bogus", [0.0, -3.0, float("nan"), float("inf")])
def test_backoff_ignores_a_meaningless_retry_after(bogus: float) -> None:
    delay = Backoff(seed=1).next_delay(retry_after=bogus)
    assert 0.5 <= delay <= 1


def test_backoff_reset_starts_over() -> None:
    backoff = Backoff(seed=2)
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.failures == 0
    assert not backoff.failing
    assert backoff.next_delay() <= 1


def test_backoff_survives_huge_factors_and_many_failures() -> None:
    backoff = Backoff(base_s=1, factor=1e10, max_s=60, seed=0)
    for _ in range(2000):
        assert backoff.next_delay() <= 60


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(base_s=0)
    with pytest.raises(ValueError):
        Backoff(base_s=10, max_s=5)
