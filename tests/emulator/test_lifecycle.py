"""Lifecycle over time: clock.advance and --speed, cancel, expiry, archive, delete, live counts."""

from __future__ import annotations

import asyncio

import anthropic
import orjson
import pytest
from anthropic.types.messages import MessageBatchRequestCounts

from tests.emulator.sdk import async_client, raw, requests, results_lines
from tests.emulator_fixtures import MakeEmulator
from tui.emulator.model import DAY, default_duration
from tui.emulator.server import RunningEmulator


def total(counts: MessageBatchRequestCounts) -> int:
    return int(counts.processing + counts.succeeded + counts.errored + counts.canceled
            + counts.expired)


async def test_batch_ends_after_the_processing_time(emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    batch = await client.messages.batches.create(requests=requests(10))
    emulator.engine.clock.advance(default_duration(10) - 1)
    running = await client.messages.batches.retrieve(batch.id)
    assert running.processing_status == "in_progress"
    assert running.request_counts.processing == 10
    assert running.request_counts.succeeded == running.request_counts.errored == 0
    emulator.engine.clock.advance(2)
    ended = await client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.ended_at is not None and ended.results_url is not None
    assert ended.request_counts.processing == 0
    assert total(ended.request_counts) == 10
    assert ended.archived_at is None


async def test_speed_runs_the_clock_faster(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(speed=2000.0)
    client = async_client(emu.url)
    batch = await client.messages.batches.create(requests=requests(5))
    for _ in range(500):
        current = await client.messages.batches.retrieve(batch.id)
        if current.processing_status == "ended":
            break
        await asyncio.sleep(0.01)
    assert current.processing_status == "ended"
    assert current.ended_at is not None
    assert 59 < (current.ended_at - current.created_at).total_seconds() < 61


async def test_cancel_keeps_processed_requests_and_cancels_the_rest(
        emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    batch = await client.messages.batches.create(requests=requests(100))
    emulator.engine.clock.advance(30)
    canceling = await client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.request_counts.processing == 100
    again = await client.messages.batches.cancel(batch.id)
    assert again.processing_status == "canceling"
    assert again.cancel_initiated_at == canceling.cancel_initiated_at
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.batches.delete(batch.id)
    emulator.engine.clock.advance(5)  # a cancel completes within 5 s
    ended = await client.messages.batches.retrieve(batch.id)
    counts = ended.request_counts
    assert ended.processing_status == "ended"
    assert ended.ended_at is not None and ended.cancel_initiated_at is not None
    assert 0 < counts.canceled < 100
    assert counts.succeeded + counts.errored == 100 - counts.canceled
    assert counts.expired == 0
    lines = [orjson.loads(line) for line in await results_lines(str(ended.results_url))]
    kinds = [line["result"]["type"] for line in lines]
    assert kinds.count("canceled") == counts.canceled
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.batches.cancel(batch.id)


async def test_archive_after_29_days_removes_results_only(emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    batch = await client.messages.batches.create(requests=requests(3))
    emulator.engine.clock.advance(29 * DAY - 10)
    assert (await client.messages.batches.retrieve(batch.id)).archived_at is None
    emulator.engine.clock.advance(20)
    archived = await client.messages.batches.retrieve(batch.id)
    assert archived.archived_at is not None
    assert archived.processing_status == "ended"
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.results(batch.id)


async def test_delete_removes_the_batch_but_cursors_still_work(
        emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    first = await client.messages.batches.create(requests=requests(1))
    emulator.engine.clock.advance(1)
    second = await client.messages.batches.create(requests=requests(1))
    emulator.engine.clock.advance(100)
    await client.messages.batches.delete(second.id)
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(second.id)
    status, _, _ = await raw("GET", f"{emulator.url}/v1/messages/batches/{second.id}/results")
    assert status == 404
    page = await client.messages.batches.list(after_id=second.id)
    assert [b.id for b in page.data] == [first.id]
    assert [b.id async for b in client.messages.batches.list()] == [first.id]


async def test_live_counts_move_while_running(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(live_counts=True)
    client = async_client(emu.url)
    batch = await client.messages.batches.create(requests=requests(200))
    emu.engine.clock.advance(default_duration(200) / 2)
    running = await client.messages.batches.retrieve(batch.id)
    counts = running.request_counts
    assert running.processing_status == "in_progress"
    assert 0 < counts.processing < 200
    assert counts.succeeded > 0
    assert total(counts) == 200


async def test_counts_always_sum_to_the_request_total(emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    batch = await client.messages.batches.create(requests=requests(37))
    await client.messages.batches.cancel(batch.id)
    for _ in range(8):
        current = await client.messages.batches.retrieve(batch.id)
        assert total(current.request_counts) == 37
        emulator.engine.clock.advance(1)
