"""Unit and property tests of the pure parts: fault specs, the walk, the lifecycle, validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.core.models import CANCELING, ENDED, IN_PROGRESS
from tui.emulator.clock import Clock
from tui.emulator.engine import Engine
from tui.emulator.faults import Faults, parse_faults
from tui.emulator.model import ARCHIVE_SECONDS, DAY, EXPIRY_SECONDS, Walk
from tui.emulator.results import result_lines
from tui.emulator.sources import Profile, SyntheticRequests
from tui.emulator.validation import check_params


def test_parse_faults_full_spec() -> None:
    faults = parse_faults("429=0.1,529=0.05,500=0.02,slow=0.5s,cut=0.3,malformed=1,unknown=2,"
                          "retry-after=3,notfound_after_create=200ms")
    assert faults.statuses == ((429, 0.1), (529, 0.05), (500, 0.02))
    assert (faults.slow, faults.cut, faults.malformed, faults.unknown) == (0.5, 0.3, 1, 2)
    assert faults.retry_after == 3.0
    assert faults.notfound_after_create == 0.2
    assert faults.active
    assert parse_faults(None) == parse_faults("") == Faults()
    assert not Faults().active


@pytest.mark.parametrize("spec", ["418=0.5", "429=2", "cut=x", "slow=fast", "malformed=-1",
                                  "wobble=1", "429"])
def test_parse_faults_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_faults(spec)


@given(st.integers(1, 5000), st.integers(0, 2**64 - 1))
@settings(max_examples=60, deadline=None)
def test_walk_is_a_permutation(count: int, key: int) -> None:
    walk = Walk.for_key(count, key)
    sample = range(count) if count <= 300 else range(0, count, count // 100)
    for rank in sample:
        assert walk.rank(walk.index(rank)) == rank
    if count <= 300:
        assert sorted(walk.index(r) for r in range(count)) == list(range(count))


@given(count=st.integers(1, 400), cancel_at=st.one_of(st.none(), st.floats(0, 200)),
       moments=st.lists(st.floats(0, 40 * DAY), min_size=1, max_size=8),
       rate=st.floats(0, 1), duration=st.one_of(st.none(), st.floats(1, 2 * DAY)))
@settings(max_examples=80, deadline=None)
def test_lifecycle_invariants(count: int, cancel_at: float | None, moments: list[float],
                              rate: float, duration: float | None) -> None:
    clock = Clock(start=1_000_000.0, monotonic=lambda: 0.0)
    engine = Engine(clock=clock, error_rate=rate)
    record = engine.add_batch(SyntheticRequests(Profile(), count, 5), created=clock.time(),
                              duration=duration)
    if cancel_at is not None and record.can_cancel(record.created + cancel_at):
        record.cancel_initiated = record.created + cancel_at
    for moment in sorted(moments):
        state = record.state(record.created + moment)
        counts = state.counts
        assert counts.total == count
        if state.status in (IN_PROGRESS, CANCELING):
            assert counts.processing == count
            assert state.ended_at is None and moment < EXPIRY_SECONDS + 10
        else:
            assert state.status == ENDED and counts.processing == 0
            assert state.ended_at is not None
            assert state.ended_at <= record.created + EXPIRY_SECONDS + record.cancel_seconds
            assert (state.archived_at is not None) == (moment >= ARCHIVE_SECONDS)
            if record.cancel_initiated is None:
                assert counts.canceled == 0
            else:
                assert counts.expired == 0
            kinds = [record.outcome(i, state.processed) for i in range(count)]
            assert kinds.count("succeeded") == counts.succeeded
            assert kinds.count("errored") == counts.errored
            assert kinds.count("canceled") == counts.canceled
            assert kinds.count("expired") == counts.expired


def test_expiry_after_24_hours() -> None:
    clock = Clock(start=0.0, monotonic=lambda: 0.0)
    engine = Engine(clock=clock)
    record = engine.add_batch(SyntheticRequests(Profile(), 100, 1), created=0.0,
                              duration=48 * 3600.0)
    state = record.state(EXPIRY_SECONDS)
    assert state.status == ENDED and state.ended_at == EXPIRY_SECONDS
    assert state.counts.expired == 50
    lines = list(result_lines(record, state.processed))
    assert sum(b'"type":"expired"' in line for line in lines) == 50


def test_clock_speed_and_advance() -> None:
    ticks = [0.0]
    clock = Clock(speed=10.0, start=100.0, monotonic=lambda: ticks[0])
    ticks[0] = 2.0
    assert clock.time() == 120.0
    clock.advance(5)
    assert clock.time() == 125.0
    clock.speed = 1.0
    ticks[0] = 3.0
    assert clock.time() == 126.0
    with pytest.raises(ValueError):
        clock.advance(-1)


@given(st.dictionaries(st.sampled_from(["model", "max_tokens", "messages", "stream", "tools"]),
                       st.one_of(st.none(), st.integers(-2, 5), st.text(max_size=5),
                                 st.lists(st.integers(), max_size=2))))
def test_check_params_never_crashes(params: dict[str, object]) -> None:
    problem = check_params(params, in_batch=True)
    assert problem is None or problem.message


async def test_a_clock_given_up_front_is_the_emulators_time() -> None:
    from datetime import UTC, datetime

    from tui.emulator.server import EmulatorConfig, start_emulator

    at = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    def frozen() -> Clock:
        return Clock(1.0, start=at.timestamp(), monotonic=lambda: 0.0)

    async with await start_emulator(EmulatorConfig(scenario="demo", clock=frozen())) as emu:
        assert emu.engine.clock.now() == at
        assert emu.engine._records and all(r.created <= at.timestamp() for r in emu.engine._records)
    async with await start_emulator(EmulatorConfig(), clock=frozen()) as emu:
        assert emu.engine.clock.now() == at
        emu.engine.clock.advance(5)
        assert (emu.engine.clock.now() - at).total_seconds() == 5
