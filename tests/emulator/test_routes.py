"""Every route through the real async SDK (strict validation), plus the wire details."""

from __future__ import annotations

import anthropic
import orjson
import pytest

from tests.emulator.sdk import async_client, raw, requests, results_lines
from tests.emulator_fixtures import MakeEmulator
from tui.emulator.server import RunningEmulator


async def test_create_retrieve_list_cancel_delete(emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    created = await client.messages.batches.create(requests=requests(3))
    assert created.id.startswith("msgbatch_01")
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 3
    assert created.results_url is None
    assert created.created_at < created.expires_at

    fetched = await client.messages.batches.retrieve(created.id)
    assert fetched.id == created.id
    page = await client.messages.batches.list()
    assert [b.id for b in page.data] == [created.id]
    assert page.first_id == page.last_id == created.id
    assert page.has_more is False

    canceling = await client.messages.batches.cancel(created.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    emulator.engine.clock.advance(10)
    ended = await client.messages.batches.retrieve(created.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.canceled == 3
    deleted = await client.messages.batches.delete(created.id)
    assert deleted.id == created.id
    assert deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(created.id)


async def test_results_stream_shape(emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    batch = await client.messages.batches.create(requests=requests(25))
    emulator.engine.clock.advance(120)
    ended = await client.messages.batches.retrieve(batch.id)
    assert ended.results_url == f"{emulator.url}/v1/messages/batches/{batch.id}/results"
    lines = await results_lines(ended.results_url)
    assert len(lines) == 25
    assert all(line for line in lines)
    order = [orjson.loads(line)["custom_id"] for line in lines]
    assert sorted(order) == [f"row-{n:04d}" for n in range(25)]
    assert order != sorted(order)  # results come back in an order of their own

    seen = []
    decoder = await client.messages.batches.results(batch.id)
    async for item in decoder:
        seen.append(item.custom_id)
    assert seen == order


async def test_every_response_has_request_id(emulator: RunningEmulator) -> None:
    base = emulator.url
    for method, path in [("GET", "/v1/messages/batches"), ("GET", "/v1/messages/batches/nope"),
                         ("GET", "/v1/nothing-here"), ("PUT", "/v1/messages/batches")]:
        status, headers, _ = await raw(method, base + path)
        assert headers["request-id"].startswith("req_"), (method, path, status)
    status, headers, body = await raw("GET", base + "/v1/messages/batches/nope")
    assert status == 404
    error = orjson.loads(body)
    assert error["type"] == "error"
    assert error["error"]["type"] == "not_found_error"
    assert error["request_id"] == headers["request-id"]
    status, _, body = await raw("GET", base + "/v1/nothing-here")
    assert (status, orjson.loads(body)["error"]["type"]) == (404, "not_found_error")


async def test_sdk_exposes_request_id_and_error_fields(emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    with pytest.raises(anthropic.NotFoundError) as caught:
        await client.messages.batches.retrieve("msgbatch_01missing")
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")
    assert caught.value.type == "not_found_error"
    batch = await client.messages.batches.create(requests=requests(1))
    assert batch._request_id is not None


async def test_auth_bearer_and_x_api_key(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(api_key="secret")
    url = emu.url + "/v1/messages/batches"
    status, _, body = await raw("GET", url, headers={"anthropic-version": "2023-06-01"})
    assert (status, orjson.loads(body)["error"]["type"]) == (401, "authentication_error")
    assert (await raw("GET", url, headers={"x-api-key": "secret"}))[0] == 200
    assert (await raw("GET", url, headers={"authorization": "Bearer secret",
                                           "anthropic-version": "2026-10-21"}))[0] == 200
    with pytest.raises(anthropic.AuthenticationError):
        await async_client(emu.url).messages.batches.list()
    good = async_client(emu.url, key="secret")
    assert (await good.messages.batches.list()).data == []


async def test_any_key_is_accepted_without_api_key_option(emulator: RunningEmulator) -> None:
    status, _, _ = await raw("GET", emulator.url + "/v1/messages/batches",
                             headers={"x-api-key": "whatever"})
    assert status == 200


async def test_state_errors_are_400_not_409(emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    batch = await client.messages.batches.create(requests=requests(2))
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.batches.delete(batch.id)
    assert caught.value.status_code == 400
    status, _, body = await raw("GET", f"{emulator.url}/v1/messages/batches/{batch.id}/results")
    assert (status, orjson.loads(body)["error"]["type"]) == (400, "invalid_request_error")
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        await client.messages.batches.results(batch.id)
    emulator.engine.clock.advance(100)
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.batches.cancel(batch.id)
    for call in (client.messages.batches.cancel, client.messages.batches.delete):
        with pytest.raises(anthropic.NotFoundError):
            await call("msgbatch_01unknown")


async def test_results_url_follows_the_host_header(emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    batch = await client.messages.batches.create(requests=requests(1))
    emulator.engine.clock.advance(100)
    status, _, body = await raw(
        "GET", f"{emulator.url}/v1/messages/batches/{batch.id}",
        headers={"x-api-key": "k", "host": "batches.internal:9999"})
    assert status == 200
    assert orjson.loads(body)["results_url"] == (
        f"http://batches.internal:9999/v1/messages/batches/{batch.id}/results")


async def test_beta_client_works_too(emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    batch = await client.beta.messages.batches.create(requests=requests(2),
                                                     betas=["output-300k-2026-03-24"])
    emulator.engine.clock.advance(100)
    items = [item async for item in await client.beta.messages.batches.results(batch.id)]
    assert {item.custom_id for item in items} == {"row-0000", "row-0001"}
