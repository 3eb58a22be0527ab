"""The monitor under every fault of the matrix, through the real SDK against the emulator.

Each fault must leave the monitor running, show a degraded state that names the next retry
time, recover by itself once the fault clears, and write exactly one `api.error` and one
`api.recovered` to an audit log that stays valid JSONL.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_fixtures import MakeEmulator
from tests.reliability.harness import (
    FAST_CADENCE,
    SENTINEL_KEY,
    Watch,
    assert_audit_valid,
    capture_logs,
    wait_until,
    watching,
)
from tui.core.events import API_ERROR, API_RECOVERED, BATCH_GONE
from tui.core.timefmt import utcnow
from tui.emulator.faults import Faults, parse_faults
from tui.emulator.server import RunningEmulator
from tui.service.api import BatchesAPI


def request(custom_id: str) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {"model": "claude-haiku-4-5", "max_tokens": 8,
                   "messages": [{"role": "user", "content": "hi"}]},
    }


async def ride_out(
    watch: Watch,
    emu: RunningEmulator,
    spec: str,
    *,
    failures: int = 3,
) -> None:
    """Turn the fault on until the monitor has failed `failures` times, then off until it
    has recovered; the monitor must stay up and say when it will try again throughout."""
    await wait_until(lambda: watch.state.synced, what="the first sync")
    emu.engine.faults = parse_faults(spec)
    await wait_until(
        lambda: watch.state.degraded is not None and watch.state.degraded.failures >= failures,
        what=f"{failures} failures under {spec}",
    )
    degraded = watch.state.degraded
    assert degraded is not None and watch.alive()
    assert degraded.message
    assert degraded.next_retry_at > degraded.since
    assert degraded.next_retry_at > utcnow() - timedelta(seconds=1)
    assert watch.state.next_poll_at == degraded.next_retry_at
    emu.engine.faults = Faults()
    await wait_until(lambda: watch.state.degraded is None, what="recovery")
    assert watch.alive()


def one_error_one_recovery(watch: Watch) -> tuple[dict[str, Any], dict[str, Any]]:
    """Exactly one `api.error` then one `api.recovered`, in the tap and on disk."""
    records = assert_audit_valid(watch.audit_dir)
    errors = [r for r in records if r["event"] == API_ERROR]
    recoveries = [r for r in records if r["event"] == API_RECOVERED]
    assert len(errors) == 1 and len(recoveries) == 1, [r["event"] for r in records]
    assert records.index(errors[0]) < records.index(recoveries[0])
    assert len(watch.tap.named(API_ERROR)) == len(watch.tap.named(API_RECOVERED)) == 1
    return errors[0]["data"], recoveries[0]["data"]


STATUS_FAULTS = [
    pytest.param("429=1,retry_after=0.2s", "rate_limited", 429, "rate_limit_error", id="429"),
    pytest.param("500=1", "server", 500, "api_error", id="500"),
    pytest.param("529=1", "server", 529, "overloaded_error", id="529"),
]


@pytest.mark.parametrize(("spec", "kind", "status", "error_type"), STATUS_FAULTS)
async def test_status_faults_degrade_then_recover(
    make_emulator: MakeEmulator, tmp_path: Path,
    spec: str, kind: str, status: int, error_type: str,
) -> None:
    emu = await make_emulator(scenario="many:6")
    async with capture_logs() as logs, watching(emu.url, tmp_path / "audit") as watch:
        await ride_out(watch, emu, spec)
        seen = [s.degraded for s in watch.states if s.degraded is not None]
        assert {(d.kind, d.status, d.error_type) for d in seen} == {(kind, status, error_type)}
        assert all(d.request_id and d.request_id.startswith("req_") for d in seen)
    error, recovered = one_error_one_recovery(watch)
    assert (error["kind"], error["status"], error["error_type"]) == (kind, status, error_type)
    assert recovered["failures"] >= 3 and recovered["last_error_type"] == error_type
    if status == 429:
        assert error["retry_in_s"] == pytest.approx(0.2)  # retry-after honoured as sent
    assert not watch.tap.named(BATCH_GONE)  # an outage never makes batches disappear
    assert "Traceback" not in logs.text


async def test_slow_responses_past_the_client_timeout(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = await make_emulator(scenario="many:4")
    async with watching(emu.url, tmp_path / "audit", client_timeout=0.25) as watch:
        await ride_out(watch, emu, "slow=0.6s", failures=2)
        kinds = {s.degraded.kind for s in watch.states if s.degraded is not None}
    assert kinds == {"timeout"}
    error, _ = one_error_one_recovery(watch)
    assert error["kind"] == "timeout" and error["status"] is None


async def test_connection_refused_then_a_new_emulator_on_the_same_port(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    first = await make_emulator(scenario="empty")
    port = first.port
    async with watching(first.url, tmp_path / "audit") as watch:
        await wait_until(lambda: watch.state.synced, what="the first sync")
        await first.stop()
        await wait_until(
            lambda: watch.state.degraded is not None and watch.state.degraded.failures >= 3,
            what="connection failures",
        )
        degraded = watch.state.degraded
        assert degraded is not None and degraded.kind == "connection" and watch.alive()
        assert watch.state.next_poll_at == degraded.next_retry_at
        second = await make_emulator(scenario="empty", port=port)
        await BatchesAPI.connect("test-key", second.url).create([request("after-restart")])
        await wait_until(lambda: watch.state.degraded is None, what="recovery")
        await wait_until(lambda: len(watch.state.batches) == 1, what="the new batch")
        assert watch.alive()
    error, recovered = one_error_one_recovery(watch)
    assert error["kind"] == "connection"
    assert recovered["outage_s"] > 0


async def test_a_404_right_after_create_is_transient(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = await make_emulator(scenario="empty", faults="notfound_after_create=1.5s")
    client = BatchesAPI.connect("test-key", emu.url)
    created = await client.create([request("fresh")])
    await client.close()
    async with watching(emu.url, tmp_path / "audit") as watch:
        await wait_until(lambda: watch.api.calls["retrieve"] >= 12, what="polls past the window")
        assert created.id in watch.state.batches
        assert watch.state.degraded is None and watch.alive()
    assert not watch.tap.named(BATCH_GONE)
    assert not watch.tap.named(API_ERROR)
    assert_audit_valid(watch.audit_dir)


async def test_an_empty_workspace(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emu = await make_emulator(scenario="empty")
    async with watching(emu.url, tmp_path / "audit") as watch:
        await wait_until(lambda: watch.api.calls["list"] >= 4, what="a few discovery rounds")
        state = watch.state
        assert state.synced and not state.batches and state.order == ()
        assert state.degraded is None and state.last_sync is not None and watch.alive()
        assert state.next_poll_at is not None  # discovery keeps going
    records = assert_audit_valid(watch.audit_dir)
    assert [r["event"] for r in records] == ["session.started", "session.ended"]


async def test_ten_thousand_batches_survive_an_outage(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10,001 audit files, one fsync each, would take the disk ~10 s: durability of each
    # line is tested elsewhere, this is about the monitor.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    emu = await make_emulator(scenario="many:10000")
    cadence = replace(FAST_CADENCE, discover_s=0.5, ended_sweep_s=3600)
    async with watching(emu.url, tmp_path / "audit", cadence=cadence) as watch:
        await wait_until(lambda: watch.state.synced, within=30, what="the 10,000-batch sync")
        assert len(watch.state.batches) == len(watch.state.order) == 10_000
        await ride_out(watch, emu, "500=1", failures=2)
        await wait_until(lambda: watch.tap.pending_count == 0, within=30, what="audit flush")
        assert len(watch.state.batches) == 10_000
    assert not watch.tap.named(BATCH_GONE)
    one_error_one_recovery(watch)


async def test_unknown_fields_and_statuses_are_carried_not_fatal(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emu = await make_emulator(scenario="many:5")
    describe = emu.engine.describe

    def future_api(record: Any, base_url: str) -> dict[str, Any]:
        body = describe(record, base_url)
        body["priority_lane"] = {"tier": "gold", "weights": [1, 2, 3]}
        body["request_counts"]["deferred"] = 3
        if body["processing_status"] != "ended":
            body["processing_status"] = "paused_for_capacity"
        return body

    emu.engine.describe = future_api  # type: ignore[method-assign]
    async with watching(emu.url, tmp_path / "audit") as watch:
        await wait_until(lambda: watch.api.calls["list"] + watch.api.calls["retrieve"] >= 6,
                         what="polls of the unknown status")
        statuses = {b.processing_status for b in watch.state.batches.values()}
        assert "paused_for_capacity" in statuses
        assert watch.state.degraded is None and watch.alive()
    assert_audit_valid(watch.audit_dir)


@pytest.mark.parametrize("running", [1, 3], ids=["retrieve", "list"])
async def test_a_malformed_batch_object_degrades_instead_of_crashing(
    make_emulator: MakeEmulator, tmp_path: Path, running: int
) -> None:
    # One running batch is polled with retrieve, three or more with one list call.
    emu = await make_emulator(scenario="empty")
    client = BatchesAPI.connect("test-key", emu.url)
    for n in range(running):
        await client.create([request(f"m{n}")])
    await client.close()
    describe = emu.engine.describe
    broken = {"on": False}

    def sometimes_broken(record: Any, base_url: str) -> dict[str, Any]:
        body = describe(record, base_url)
        if broken["on"]:
            body["created_at"] = "yesterday-ish"
            body["request_counts"] = {"processing": "lots"}
        return body

    emu.engine.describe = sometimes_broken  # type: ignore[method-assign]
    async with capture_logs() as logs, watching(emu.url, tmp_path / "audit") as watch:
        await wait_until(lambda: watch.state.synced, what="the first sync")
        broken["on"] = True
        await wait_until(lambda: watch.state.degraded is not None, what="the bad answer")
        assert watch.alive()
        degraded = watch.state.degraded
        assert degraded is not None and degraded.kind == "other"
        broken["on"] = False
        await wait_until(lambda: watch.state.degraded is None, what="recovery")
        assert watch.alive()
    one_error_one_recovery(watch)
    assert "Traceback" not in logs.text



async def test_an_unexpected_exception_in_a_tick_degrades_instead_of_crashing(
    make_emulator: MakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emulator(scenario="many:4")
    audit_dir = tmp_path / "audit"
    async with capture_logs() as logs, watching(emu.url, audit_dir, key=SENTINEL_KEY) as watch:
        await wait_until(lambda: watch.state.synced, what="the first sync")
        real = watch.api.iter_pages
        failures = {"left": 3}

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if failures["left"]:
                failures["left"] -= 1
                raise RuntimeError(f"boom {SENTINEL_KEY}")
            return real(*args, **kwargs)

        monkeypatch.setattr(watch.api, "iter_pages", flaky)
        await wait_until(lambda: watch.state.degraded is not None, what="the failure")
        degraded = watch.state.degraded
        assert degraded is not None and degraded.kind == "other"
        assert "RuntimeError" in degraded.message and SENTINEL_KEY not in degraded.message
        await wait_until(lambda: watch.state.degraded is None, what="recovery")
        assert watch.alive()
    one_error_one_recovery(watch)
    # A traceback only at debug level: a terminal with default logging never shows one.
    assert not [r for r in logs.records if r.levelno >= logging.WARNING and r.exc_info]
    assert [r for r in logs.records if r.levelno == logging.DEBUG and r.exc_info]
