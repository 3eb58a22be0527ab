"""Helpers shared by the emulator tests: SDK clients, request bodies, raw HTTP access."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import orjson

KEY = "test-key"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


# Clients made during a test, closed by the autouse fixture in conftest.py (an unclosed async
# client is otherwise closed by the garbage collector on some later test's event loop).
OPEN_ASYNC: list[anthropic.AsyncAnthropic] = []
OPEN_SYNC: list[anthropic.Anthropic] = []


def async_client(url: str, retries: int = 0, key: str = KEY) -> anthropic.AsyncAnthropic:
    client = anthropic.AsyncAnthropic(api_key=key, base_url=url, max_retries=retries,
                                      _strict_response_validation=True)
    OPEN_ASYNC.append(client)
    return client


def sync_client(url: str, retries: int = 0, key: str = KEY) -> anthropic.Anthropic:
    client = anthropic.Anthropic(api_key=key, base_url=url, max_retries=retries,
                                 _strict_response_validation=True)
    OPEN_SYNC.append(client)
    return client


def params(prompt: str = "Summarise this invoice.", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 512,
                            "messages": [{"role": "user", "content": prompt}]}
    body.update(extra)
    return body


def requests(count: int, prefix: str = "row", **extra: Any) -> list[Any]:
    """`count` valid batch requests (typed loosely: the SDK wants its TypedDicts)."""
    return [{"custom_id": f"{prefix}-{n:04d}", "params": params(f"prompt {n}", **extra)}
            for n in range(count)]


async def raw(method: str, url: str, *, headers: dict[str, str] | None = None,
              body: Any = None) -> tuple[int, dict[str, str], bytes]:
    """One request without the SDK: status, headers (lower-cased names) and body bytes."""
    data = orjson.dumps(body) if body is not None else None
    sent = HEADERS if headers is None else headers
    if data is not None:
        sent = {**sent, "content-type": "application/json"}
    async with aiohttp.ClientSession() as session, session.request(
            method, url, headers=sent, data=data) as response:
        payload = await response.read()
        return response.status, {k.lower(): v for k, v in response.headers.items()}, payload


async def results_lines(url: str) -> list[bytes]:
    """The raw lines of a results stream (each without its newline)."""
    status, headers, payload = await raw("GET", url)
    assert status == 200, payload
    assert headers["content-type"].startswith("application/x-jsonl")
    assert headers["request-id"].startswith("req_")
    assert payload.endswith(b"\n")
    return payload[:-1].split(b"\n")
