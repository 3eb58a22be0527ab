"""Results content: completeness, counts, determinism, usage, cache, tools, model echo."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import orjson
import pytest

from tests.emulator.sdk import async_client, params, raw, requests, results_lines
from tests.emulator_fixtures import MakeEmulator
from tui.emulator.server import RunningEmulator

ERROR_TYPES = {"api_error", "overloaded_error", "rate_limit_error", "invalid_request_error"}


async def _ended(emu: RunningEmulator, items: list[dict[str, Any]]) -> tuple[Any, list[Any]]:
    client = async_client(emu.url)
    batch = await client.messages.batches.create(requests=items)  # type: ignore[arg-type]
    emu.engine.clock.advance(60 + 0.03 * len(items) + 1)
    ended = await client.messages.batches.retrieve(batch.id)
    lines = [orjson.loads(line) for line in await results_lines(str(ended.results_url))]
    return ended, lines


async def test_every_custom_id_once_and_counts_match(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(error_rate=0.3, seed=3)
    ended, lines = await _ended(emu, requests(400))
    assert sorted(line["custom_id"] for line in lines) == [f"row-{n:04d}" for n in range(400)]
    kinds = Counter(line["result"]["type"] for line in lines)
    counts = ended.request_counts
    assert kinds == Counter({"succeeded": counts.succeeded, "errored": counts.errored})
    assert 60 < counts.errored < 180
    errors = {line["result"]["error"]["error"]["type"] for line in lines
              if line["result"]["type"] == "errored"}
    assert errors == ERROR_TYPES
    for line in lines:
        if line["result"]["type"] == "errored":
            envelope = line["result"]["error"]
            assert envelope["type"] == "error" and "request_id" in envelope
            assert envelope["error"]["message"]


async def test_succeeded_message_shape(emulator: RunningEmulator) -> None:
    items = [{"custom_id": "a", "params": params(model="claude-haiku-4-5", max_tokens=2000)},
             {"custom_id": "b", "params": params(model="claude-opus-4-6", max_tokens=5)}]
    _, lines = await _ended(emulator, items)
    by_id = {line["custom_id"]: line["result"] for line in lines}
    for custom_id, model in (("a", "claude-haiku-4-5"), ("b", "claude-opus-4-6")):
        result = by_id[custom_id]
        if result["type"] != "succeeded":
            continue
        message = result["message"]
        assert message["model"] == model
        assert message["id"].startswith("msg_01") and message["role"] == "assistant"
        assert message["content"][0]["type"] == "text" and message["content"][0]["text"]
        usage = message["usage"]
        assert usage["service_tier"] == "batch"
        assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    if by_id["b"]["type"] == "succeeded":
        assert by_id["b"]["message"]["usage"]["output_tokens"] <= 5
        assert by_id["b"]["message"]["stop_reason"] == "max_tokens"


async def test_input_tokens_follow_prompt_size(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(error_rate=0.0)
    items = [{"custom_id": "short", "params": params("hi")},
             {"custom_id": "long", "params": params("word " * 4000)}]
    _, lines = await _ended(emu, items)
    usage = {line["custom_id"]: line["result"]["message"]["usage"] for line in lines}
    assert usage["short"]["input_tokens"] < 50
    assert 4000 <= usage["long"]["input_tokens"] <= 6000


async def test_prompt_cache_first_writes_then_reads(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(error_rate=0.0)
    system = [{"type": "text", "text": "Long shared instructions. " * 200,
               "cache_control": {"type": "ephemeral"}}]
    items = requests(6, system=system)
    _, lines = await _ended(emu, items)
    usage = {line["custom_id"]: line["result"]["message"]["usage"] for line in lines}
    assert usage["row-0000"]["cache_creation_input_tokens"] > 0
    assert usage["row-0000"]["cache_read_input_tokens"] == 0
    assert usage["row-0000"]["cache_creation"]["ephemeral_5m_input_tokens"] > 0
    for n in range(1, 6):
        assert usage[f"row-{n:04d}"]["cache_read_input_tokens"] > 0
        assert usage[f"row-{n:04d}"]["cache_creation_input_tokens"] == 0
    _, plain = await _ended(emu, requests(2))
    for line in plain:
        assert line["result"]["message"]["usage"]["cache_read_input_tokens"] == 0


async def test_tools_produce_tool_use(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(error_rate=0.0)
    tool = {"name": "record_invoice", "description": "Store fields",
            "input_schema": {"type": "object", "properties": {
                "vendor": {"type": "string"}, "total": {"type": "number"}}}}
    items = requests(5, tools=[tool], tool_choice={"type": "any"})
    _, lines = await _ended(emu, items)
    for line in lines:
        message = line["result"]["message"]
        assert message["stop_reason"] == "tool_use"
        call = message["content"][-1]
        assert call["type"] == "tool_use" and call["name"] == "record_invoice"
        assert call["id"].startswith("toolu_")
        assert set(call["input"]) == {"vendor", "total"}


async def test_same_seed_same_bytes(make_emulator: MakeEmulator) -> None:
    first = await make_emulator(scenario="large:300", seed=11)
    second = await make_emulator(scenario="large:300", seed=11)
    other = await make_emulator(scenario="large:300", seed=12)
    bodies = []
    for emu in (first, second, other):
        batch_id = emu.engine.labelled("large").id
        bodies.append(await raw("GET", f"{emu.url}/v1/messages/batches/{batch_id}/results"))
    assert bodies[0][2] == bodies[1][2]
    assert bodies[0][2] != bodies[2][2]


async def test_large_scenario_lines_are_about_1kb(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="large:2000")
    client = async_client(emu.url)
    batch = (await client.messages.batches.list()).data[0]
    assert batch.processing_status == "ended"
    assert batch.request_counts.succeeded + batch.request_counts.errored == 2000
    lines = await results_lines(str(batch.results_url))
    assert len(lines) == 2000
    assert len({orjson.loads(line)["custom_id"] for line in lines}) == 2000
    average = sum(map(len, lines)) / len(lines)
    assert 700 < average < 1400


async def test_sdk_decodes_every_line(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="large:500")
    client = async_client(emu.url)
    batch_id = emu.engine.labelled("large").id
    kinds: Counter[str] = Counter()
    async for item in await client.messages.batches.results(batch_id):
        kinds[item.result.type] += 1
    batch = await client.messages.batches.retrieve(batch_id)
    assert kinds == Counter({"succeeded": batch.request_counts.succeeded,
                             "errored": batch.request_counts.errored})


async def test_client_closing_early_is_not_a_server_error(
        make_emulator: MakeEmulator, caplog: pytest.LogCaptureFixture) -> None:
    emu = await make_emulator(scenario="large:20000")
    client = async_client(emu.url)
    decoder = await client.messages.batches.results(emu.engine.labelled("large").id)
    async for _ in decoder:
        break
    await decoder.close()
    assert (await client.messages.batches.list()).data  # still serving
    await asyncio.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
