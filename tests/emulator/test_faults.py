"""Fault injection through the SDK: 429 + retry-after, 5xx, cut streams, malformed and unknown
lines, the transient 404 after create, slow responses, and flipping faults at runtime."""

from __future__ import annotations

import json

import anthropic
import httpx2
import orjson
import pytest

from tests.emulator.sdk import async_client, raw, requests
from tests.emulator_fixtures import MakeEmulator
from tui.emulator.faults import FaultDice, Faults, parse_faults


def _seed_where(faults: Faults, pattern: list[int | None]) -> int:
    """A seed whose first fault decisions follow `pattern` (so the test is deterministic)."""
    for seed in range(1000):
        dice = FaultDice(seed)
        if [dice.status(faults) for _ in pattern] == pattern:
            return seed
    raise AssertionError("no seed found")


async def test_429_is_retried_after_retry_after(make_emulator: MakeEmulator) -> None:
    spec = "429=0.5,retry-after=0.01"
    seed = _seed_where(parse_faults(spec), [429, 429, None])
    emu = await make_emulator(faults=spec, seed=seed)
    page = await async_client(emu.url, retries=2).messages.batches.list()
    assert page.data == []
    seen = list(emu.engine.journal)
    assert [s.status for s in seen] == [429, 429, 200]
    assert [s.retry_count for s in seen] == ["0", "1", "2"]


async def test_429_response_carries_retry_after(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(faults="429=1,retry-after=2")
    status, headers, body = await raw("GET", f"{emu.url}/v1/messages/batches")
    assert (status, headers["retry-after"]) == (429, "2")
    assert orjson.loads(body)["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(("spec", "error", "error_type"), [
    ("500=1", anthropic.InternalServerError, "api_error"),
    ("529=1", anthropic.OverloadedError, "overloaded_error"),
    ("429=1,retry-after=0.01", anthropic.RateLimitError, "rate_limit_error"),
])
async def test_status_faults_raise_after_retries(
        make_emulator: MakeEmulator, spec: str, error: type[Exception], error_type: str) -> None:
    emu = await make_emulator(faults=spec)
    client = async_client(emu.url, retries=1).with_options(timeout=5)
    with pytest.raises(error) as caught:
        await client.messages.batches.list()
    assert caught.value.type == error_type  # type: ignore[attr-defined]
    assert len(emu.engine.journal) == 2


async def test_faults_flip_at_runtime(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator()
    client = async_client(emu.url)
    await client.messages.batches.list()
    emu.engine.faults = parse_faults("500=1")
    with pytest.raises(anthropic.InternalServerError):
        await client.messages.batches.list()
    emu.engine.faults = Faults()
    assert (await client.messages.batches.list()).data == []


async def test_cut_stream_raises_in_the_sdk(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(faults="cut=1", scenario="large:3000")
    client = async_client(emu.url)
    batch_id = emu.engine.labelled("large").id
    received = 0
    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
        async for _ in await client.messages.batches.results(batch_id):
            received += 1
    assert received < 3000


async def test_cut_stream_is_short_over_raw_http(make_emulator: MakeEmulator) -> None:
    import aiohttp

    emu = await make_emulator(faults="cut=1", scenario="large:2000")
    batch_id = emu.engine.labelled("large").id
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with aiohttp.ClientSession() as session, session.get(
                f"{emu.url}/v1/messages/batches/{batch_id}/results",
                headers={"x-api-key": "k"}) as response:
            assert response.status == 200
            async for chunk in response.content.iter_any():
                received += chunk
    assert 0 < received.count(b"\n") < 2000


async def test_malformed_line_breaks_sdk_decoding(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(faults="malformed=1", scenario="large:200")
    batch_id = emu.engine.labelled("large").id
    with pytest.raises(json.JSONDecodeError):
        async for _ in await async_client(emu.url).messages.batches.results(batch_id):
            pass


async def test_malformed_lines_are_extra_copies(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(faults="malformed=3", scenario="large:200")
    batch_id = emu.engine.labelled("large").id
    _, _, body = await raw("GET", f"{emu.url}/v1/messages/batches/{batch_id}/results")
    lines = body[:-1].split(b"\n")
    assert len(lines) == 203
    good, bad = [], 0
    for line in lines:
        try:
            good.append(orjson.loads(line)["custom_id"])
        except orjson.JSONDecodeError:
            bad += 1
    assert bad == 3
    assert sorted(good) == sorted(set(good)) and len(good) == 200


async def test_unknown_result_types_pass_through_the_sdk(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(faults="unknown=4", scenario="large:100")
    batch_id = emu.engine.labelled("large").id
    kinds = [item.result.type async for item in
             await async_client(emu.url).messages.batches.results(batch_id)]
    assert len(kinds) == 100
    assert [str(kind) for kind in kinds].count("deferred") == 4


async def test_transient_404_after_create(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(faults="notfound_after_create=3")
    client = async_client(emu.url)
    batch = await client.messages.batches.create(requests=requests(1))
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(batch.id)
    emu.engine.clock.advance(3.5)
    assert (await client.messages.batches.retrieve(batch.id)).id == batch.id


async def test_slow_responses_still_answer(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(faults="slow=20ms")
    assert (await async_client(emu.url).messages.batches.list()).data == []


async def test_faults_are_deterministic_for_a_seed(make_emulator: MakeEmulator) -> None:
    statuses = []
    for _ in range(2):
        emu = await make_emulator(faults="500=0.5", seed=5)
        for _ in range(12):
            statuses.append((await raw("GET", f"{emu.url}/v1/messages/batches"))[0])
    assert statuses[:12] == statuses[12:]
    assert set(statuses) == {200, 500}
