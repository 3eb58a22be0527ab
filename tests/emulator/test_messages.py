"""`POST /v1/messages` (dry runs): validation like the API, deterministic strict-valid messages."""

from __future__ import annotations

from typing import Any

import anthropic
import orjson
import pytest

from tests.emulator.sdk import async_client, params, raw
from tui.emulator.server import RunningEmulator


async def test_valid_request_returns_a_message(emulator: RunningEmulator) -> None:
    client = async_client(emulator.url)
    message = await client.messages.create(
        model="claude-haiku-4-5", max_tokens=64,
        messages=[{"role": "user", "content": "Test content"}])
    assert message.model == "claude-haiku-4-5"
    assert message.role == "assistant"
    assert message.content and message.content[0].type == "text"
    assert message.usage.output_tokens <= 64
    assert message.usage.service_tier == "standard"
    assert message.stop_reason in ("end_turn", "max_tokens")


async def test_dry_run_with_tools(emulator: RunningEmulator) -> None:
    message = await async_client(emulator.url).messages.create(
        model="claude-sonnet-4-6", max_tokens=300,
        messages=[{"role": "user", "content": "What is the weather?"}],
        tools=[{"name": "get_weather", "input_schema": {
            "type": "object", "properties": {"city": {"type": "string"}}}}],
        tool_choice={"type": "tool", "name": "get_weather"})
    assert message.stop_reason == "tool_use"
    assert message.content[-1].type == "tool_use"


@pytest.mark.parametrize(("change", "status", "error_type", "message"), [
    ({"model": None}, 400, "invalid_request_error", "model: Field required"),
    ({"max_tokens": None}, 400, "invalid_request_error", "max_tokens: Field required"),
    ({"messages": None}, 400, "invalid_request_error", "messages: Field required"),
    ({"max_tokens": 0}, 400, "invalid_request_error", "max_tokens: Input should be greater"),
    ({"max_tokens": "ten"}, 400, "invalid_request_error", "max_tokens: Input should be a valid"),
    ({"messages": []}, 400, "invalid_request_error", "messages: at least one message"),
    ({"messages": [{"role": "robot", "content": "x"}]}, 400, "invalid_request_error",
     "messages.0.role"),
    ({"stream": True}, 400, "invalid_request_error", "stream:"),
    ({"temperature": 3}, 400, "invalid_request_error", "temperature:"),
    ({"model": "gpt-4"}, 404, "not_found_error", "model: gpt-4"),
])
async def test_invalid_params(emulator: RunningEmulator, change: dict[str, Any], status: int,
                              error_type: str, message: str) -> None:
    body = params()
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    got, headers, payload = await raw("POST", f"{emulator.url}/v1/messages", body=body)
    error = orjson.loads(payload)
    assert got == status
    assert error["error"]["type"] == error_type
    assert error["error"]["message"].startswith(message)
    assert error["request_id"] == headers["request-id"]


async def test_sdk_raises_bad_request(emulator: RunningEmulator) -> None:
    with pytest.raises(anthropic.BadRequestError):
        await async_client(emulator.url).messages.create(
            model="claude-haiku-4-5", max_tokens=0, messages=[{"role": "user", "content": "x"}])
