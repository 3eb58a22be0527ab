"""Create: synchronous validation (400/413 naming the offending index), async params errors."""

from __future__ import annotations

from typing import Any

import anthropic
import orjson
import pytest

from tests.emulator.sdk import async_client, params, raw, requests, results_lines
from tests.emulator_fixtures import MakeEmulator
from tui.emulator.server import RunningEmulator


async def _create_error(url: str, body: Any) -> tuple[int, str, str]:
    status, _, payload = await raw("POST", f"{url}/v1/messages/batches", body=body)
    error = orjson.loads(payload)["error"]
    return status, error["type"], error["message"]


@pytest.mark.parametrize(("items", "message"), [
    ([], "requests: List should have at least 1 item after validation, not 0"),
    ([*requests(3), {"custom_id": "x" * 65, "params": params()}],
     "requests.3.custom_id: String should have at most 64 characters"),
    ([*requests(2), {"custom_id": "has space", "params": params()}],
     "requests.2.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"),
    ([{"custom_id": "ok\n", "params": params()}], "requests.0.custom_id: String should match"),
    ([{"custom_id": "", "params": params()}], "requests.0.custom_id: String should have at least"),
    ([*requests(1), {"params": params()}], "requests.1.custom_id: Field required"),
    ([{"custom_id": 7, "params": params()}], "requests.0.custom_id: Input should be a valid"),
    ([{"custom_id": "a"}], "requests.0.params: Field required"),
    ([{"custom_id": "a", "params": []}], "requests.0.params: Input should be a valid dictionary"),
    (["nope"], "requests.0: Input should be a valid dictionary"),
    ([*requests(5), {"custom_id": "row-0002", "params": params()}],
     "requests.5.custom_id: Duplicate custom_id 'row-0002'"),
])
async def test_invalid_requests_are_a_synchronous_400(
        emulator: RunningEmulator, items: list[Any], message: str) -> None:
    status, error_type, text = await _create_error(emulator.url, {"requests": items})
    assert (status, error_type) == (400, "invalid_request_error")
    assert text.startswith(message)


async def test_body_problems(emulator: RunningEmulator) -> None:
    assert (await _create_error(emulator.url, {}))[2] == "requests: Field required"
    assert (await _create_error(emulator.url, {"requests": {}}))[2].startswith(
        "requests: Input should be a valid list")
    status, _, payload = await raw("POST", f"{emulator.url}/v1/messages/batches",
                                   headers={"x-api-key": "k"}, body=None)
    assert status == 400
    assert orjson.loads(payload)["error"]["type"] == "invalid_request_error"


async def test_more_than_100000_requests_is_400(emulator: RunningEmulator) -> None:
    item = {"custom_id": "a", "params": {}}
    status, _, message = await _create_error(emulator.url, {"requests": [item] * 100_001})
    assert status == 400
    assert message == ("requests: List should have at most 100000 items after validation, "
                       "not 100001")


async def test_sdk_surfaces_custom_id_error(emulator: RunningEmulator) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await async_client(emulator.url).messages.batches.create(
            requests=[{"custom_id": "y" * 70, "params": params()}])  # type: ignore[typeddict-item]
    assert "requests.0.custom_id" in str(caught.value.api_message)


async def test_body_over_the_limit_is_413(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(max_body_bytes=4096)
    client = async_client(emu.url)
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.batches.create(requests=requests(60))
    assert caught.value.status_code == 413
    assert str(caught.value.type) == "request_too_large"  # a type the SDK does not list
    assert (await client.messages.batches.list()).data == []


async def test_chunked_body_over_the_limit_is_413(make_emulator: MakeEmulator) -> None:
    import aiohttp

    emu = await make_emulator(max_body_bytes=4096)

    async def body() -> Any:
        yield orjson.dumps({"requests": requests(60)})

    async with aiohttp.ClientSession() as session, session.post(
            f"{emu.url}/v1/messages/batches", data=body(),
            headers={"x-api-key": "k", "content-type": "application/json"}) as response:
        assert response.status == 413
        assert (await response.json())["error"]["type"] == "request_too_large"


async def test_bad_params_become_errored_results(emulator: RunningEmulator) -> None:
    good = params()
    bad = {
        "no-model": {k: v for k, v in good.items() if k != "model"},
        "no-max-tokens": {k: v for k, v in good.items() if k != "max_tokens"},
        "no-messages": {k: v for k, v in good.items() if k != "messages"},
        "zero-max-tokens": {**good, "max_tokens": 0},
        "streaming": {**good, "stream": True},
        "empty-messages": {**good, "messages": []},
        "huge-max-tokens": {**good, "max_tokens": 1_000_000},
    }
    items = [{"custom_id": name, "params": body} for name, body in bad.items()]
    items.append({"custom_id": "fine", "params": good})
    client = async_client(emulator.url)
    batch = await client.messages.batches.create(requests=items)  # type: ignore[arg-type]
    assert batch.request_counts.processing == len(items)
    emulator.engine.clock.advance(100)
    ended = await client.messages.batches.retrieve(batch.id)
    assert ended.request_counts.errored >= len(bad)
    errors = {}
    async for item in await client.messages.batches.results(batch.id):
        if item.result.type == "errored":
            errors[item.custom_id] = item.result.error.error
    for name in bad:
        assert errors[name].type == "invalid_request_error", name
    assert errors["no-model"].message == "model: Field required"
    assert errors["huge-max-tokens"].message.startswith("max_tokens: 1000000 > ")
    lines = await results_lines(str(ended.results_url))
    assert len(lines) == len(items)
