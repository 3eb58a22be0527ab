"""Scenarios: the demo workspace (every state, arrivals, hostile text), large, many, empty."""

from __future__ import annotations

import anthropic
import orjson
import pytest
from anthropic.types.messages import MessageBatch

from tests.emulator.sdk import async_client, raw
from tests.emulator_fixtures import MakeEmulator
from tui.emulator.scenarios import parse_scenario


async def _all(client: anthropic.AsyncAnthropic) -> list[MessageBatch]:
    return [b async for b in client.messages.batches.list(limit=100)]


async def test_demo_covers_every_state(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="demo")
    batches = await _all(async_client(emu.url))
    assert 14 <= len(batches) <= 20
    statuses = {b.processing_status for b in batches}
    assert statuses == {"in_progress", "canceling", "ended"}
    ended = [b for b in batches if b.processing_status == "ended"]
    assert any(b.archived_at is not None for b in ended)
    assert any(b.request_counts.expired > 0 for b in ended)
    assert any(b.request_counts.canceled > 0 for b in ended)
    assert any(b.request_counts.errored == 0 and b.request_counts.expired == 0
               and b.request_counts.canceled == 0 for b in ended)
    assert any(0.15 < b.request_counts.errored / (b.request_counts.succeeded
                                                 + b.request_counts.errored) < 0.25
               for b in ended if b.request_counts.succeeded)
    running = [b for b in batches if b.processing_status == "in_progress"]
    created = [b.created_at for b in running]
    assert (max(created) - min(created)).total_seconds() > 3600  # young and old ones


async def test_demo_custom_ids_and_models_look_real(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="demo")
    client = async_client(emu.url)
    batch = next(b for b in await _all(client)
                 if b.processing_status == "ended" and b.archived_at is None
                 and b.request_counts.errored)
    models, ids = set(), []
    async for item in await client.messages.batches.results(batch.id):
        ids.append(item.custom_id)
        if item.result.type == "succeeded":
            models.add(item.result.message.model)
    assert all(part for part in ids[0].split("-"))
    assert ids[0].split("-")[1].isdigit()
    assert models and all(model.startswith("claude-") for model in models)


async def test_demo_new_batches_arrive(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="demo")
    client = async_client(emu.url)
    before = len(await _all(client))
    emu.engine.clock.advance(300)
    after = await _all(client)
    assert len(after) >= before + 3
    assert after[0].processing_status == "in_progress"


async def test_demo_hostile_batch(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="demo")
    batch_id = emu.engine.labelled("hostile").id
    client = async_client(emu.url)
    texts, errors = [], []
    async for item in await client.messages.batches.results(batch_id):
        if item.result.type == "succeeded":
            texts.append(item.result.message.content[0].text)  # type: ignore[union-attr]
        elif item.result.type == "errored":
            errors.append(item.result.error.error.message)
    assert texts and len(errors) == 1
    for text in (texts[0], errors[0]):
        assert "\x1b[" in text and "\x1b]52;" in text and "\u202e" in text
    assert "\x1b]0;" in texts[0] and "[bold]markup[/]" in texts[0]


@pytest.mark.parametrize("size", [1, 100])
async def test_large_is_one_ended_batch(make_emulator: MakeEmulator, size: int) -> None:
    emu = await make_emulator(scenario=f"large:{size}", error_rate=0.0)
    status, _, body = await raw("GET", f"{emu.url}/v1/messages/batches")
    assert status == 200
    page = orjson.loads(body)
    assert len(page["data"]) == 1
    assert page["data"][0]["processing_status"] == "ended"
    assert page["data"][0]["request_counts"]["succeeded"] == size


async def test_many_10000_builds_quickly_and_pages(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="many:10000")
    client = async_client(emu.url)
    page = await client.messages.batches.list(limit=1000)
    assert len(page.data) == 1000 and page.has_more
    oldest = emu.engine.records()[0]
    tail = await client.messages.batches.list(before_id=oldest.id, limit=3)
    assert len(tail.data) == 3


async def test_empty_has_nothing(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="empty")
    assert (await async_client(emu.url).messages.batches.list()).data == []


@pytest.mark.parametrize("text", ["nope", "large", "large:0", "many:x", "demo:3", "large:-1"])
def test_bad_scenario_names(text: str) -> None:
    with pytest.raises(ValueError):
        parse_scenario(text)
