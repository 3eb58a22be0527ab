"""The API wrapper against the emulator through the real SDK: pages, snapshots, typed errors."""

from __future__ import annotations

import shlex
import socket
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.emulator_fixtures import MakeEmulator
from tui.core.models import CANCELING, IN_PROGRESS, BatchSnapshot
from tui.service.api import ApiCall, ApiError, BatchesAPI, parse_page, parse_retry_after
from tui.service.credentials import (
    KeyCommandError,
    MissingApiKey,
    require_api_key,
    resolve_api_key,
    resolve_base_url,
    run_key_command,
)

KEY = "test-key"


def request(custom_id: str) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": "claude-haiku-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        },
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_list_all_walks_every_page(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="many:2500")
    calls: list[ApiCall] = []
    api = BatchesAPI.connect(KEY, emu.url, on_call=calls.append)
    try:
        batches = await api.list_all(limit=1000)
        sdk_ids = [b.id async for b in api.client.messages.batches.list(limit=1000)]
    finally:
        await api.close()
    assert [b.id for b in batches] == sdk_ids
    assert len(batches) == 2500 == len({b.id for b in batches})
    created = [b.created_at for b in batches]
    assert created == sorted(created, reverse=True)
    assert api.calls["list"] == 3
    assert [c.method for c in calls] == ["list"] * 3
    assert all(c.ok and c.status == 200 and c.request_id for c in calls)
    assert calls[0].target is None and calls[1].target == batches[999].id


async def test_iter_pages_yields_page_by_page(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="many:25")
    api = BatchesAPI.connect(KEY, emu.url)
    try:
        sizes = [len(page) async for page in api.iter_pages(limit=10)]
        first = await api.list_first_page(limit=5)
    finally:
        await api.close()
    assert sizes == [10, 10, 5]
    assert len(first) == 5


async def test_create_retrieve_cancel_delete(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator()
    api = BatchesAPI.connect(KEY, emu.url)
    try:
        created = await api.create([request("a-1"), request("a-2")])
        fetched = await api.retrieve(created.id)
        canceled = await api.cancel(created.id)
        with pytest.raises(ApiError) as not_ended:
            await api.delete(created.id)
        listed = await api.list_first_page()
    finally:
        await api.close()
    assert isinstance(created, BatchSnapshot)
    assert created.processing_status == IN_PROGRESS
    assert created.request_counts.processing == 2
    assert fetched.id == created.id and fetched.created_at == created.created_at
    assert canceled.processing_status == CANCELING
    assert canceled.cancel_initiated_at is not None
    assert not_ended.value.kind == "bad_request" and not_ended.value.status == 400
    assert [b.id for b in listed] == [created.id]
    assert dict(api.calls) == {"create": 1, "retrieve": 1, "cancel": 1, "delete": 1, "list": 1}


async def test_create_message_is_the_dry_run(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator()
    api = BatchesAPI.connect(KEY, emu.url)
    try:
        message = await api.create_message({**request("dry")["params"], "stream": True})
        with pytest.raises(ApiError) as incomplete:
            await api.create_message({"model": "claude-haiku-4-5", "messages": []})
        with pytest.raises(ApiError) as invalid:
            await api.create_message({**request("dry")["params"], "max_tokens": 0})
    finally:
        await api.close()
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["usage"]["output_tokens"] >= 0
    assert incomplete.value.kind == "bad_request" and "max_tokens" in incomplete.value.message
    assert invalid.value.kind == "bad_request" and invalid.value.status == 400
    assert api.calls["create_message"] == 2  # the incomplete one never left the process


async def test_delete_ended_batch(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator()
    api = BatchesAPI.connect(KEY, emu.url)
    try:
        created = await api.create([request("d-1")])
        emu.engine.clock.advance(2 * 86_400)
        assert (await api.retrieve(created.id)).is_ended
        assert await api.delete(created.id) == created.id
        with pytest.raises(ApiError) as gone:
            await api.retrieve(created.id)
    finally:
        await api.close()
    assert gone.value.kind == "not_found"


async def test_not_found_is_typed(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator()
    calls: list[ApiCall] = []
    api = BatchesAPI.connect(KEY, emu.url, on_call=calls.append)
    try:
        with pytest.raises(ApiError) as caught:
            await api.retrieve("msgbatch_01DoesNotExist0000000000")
    finally:
        await api.close()
    error = caught.value
    assert (error.kind, error.status, error.error_type) == ("not_found", 404, "not_found_error")
    assert error.request_id and error.request_id.startswith("req_")
    assert error.message and not error.transient
    assert error.request_id in str(error) and "404" in str(error)
    assert calls[-1].outcome == "not_found" and calls[-1].request_id == error.request_id


async def test_wrong_key_is_auth_error_without_the_key(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(api_key="the-right-key")
    secret = "sk-ant-wrong-0123456789"
    api = BatchesAPI.connect(secret, emu.url)
    try:
        with pytest.raises(ApiError) as caught:
            await api.list_first_page()
    finally:
        await api.close()
    error = caught.value
    assert (error.kind, error.status, error.error_type) == ("auth", 401, "authentication_error")
    assert secret not in str(error) and secret not in repr(error)
    assert error.__cause__ is None and error.__suppress_context__


async def test_rate_limit_carries_retry_after(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(faults="429=1")
    api = BatchesAPI.connect(KEY, emu.url)
    try:
        with pytest.raises(ApiError) as caught:
            await api.list_first_page()
    finally:
        await api.close()
    error = caught.value
    assert (error.kind, error.status, error.error_type) == ("rate_limited", 429, "rate_limit_error")
    assert error.retry_after is not None and error.retry_after >= 0
    assert error.transient


async def test_server_error_is_transient(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(faults="500=1")
    api = BatchesAPI.connect(KEY, emu.url)
    try:
        with pytest.raises(ApiError) as caught:
            await api.retrieve("msgbatch_01Whatever")
    finally:
        await api.close()
    assert caught.value.kind == "server" and caught.value.status == 500
    assert caught.value.transient


async def test_connection_refused_is_connection_error() -> None:
    calls: list[ApiCall] = []
    api = BatchesAPI.connect(KEY, f"http://127.0.0.1:{free_port()}", on_call=calls.append)
    try:
        with pytest.raises(ApiError) as caught:
            await api.list_first_page()
    finally:
        await api.close()
    assert caught.value.kind == "connection" and caught.value.status is None
    assert caught.value.transient
    assert calls[0].outcome == "connection" and api.total_calls == 1


async def test_empty_id_is_bad_request_before_any_http() -> None:
    api = BatchesAPI.connect(KEY, f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(ApiError) as caught:
            await api.retrieve("")
    finally:
        await api.close()
    assert caught.value.kind == "bad_request"


def test_call_hooks_can_be_removed() -> None:
    api = BatchesAPI.connect(KEY, "http://127.0.0.1:9")
    seen: list[ApiCall] = []
    remove = api.add_call_hook(seen.append)
    api._notify(ApiCall("list", None, "ok", 200, 0.01))
    remove()
    remove()
    api._notify(ApiCall("list", None, "ok", 200, 0.01))
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "whenever"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.text(max_size=20))
def test_parse_retry_after_reads_seconds_and_never_raises(seconds: float, junk: str) -> None:
    assert parse_retry_after({"retry-after": repr(seconds)}) == pytest.approx(seconds)
    assert parse_retry_after({"retry-after-ms": repr(seconds * 1000)}) == pytest.approx(seconds)
    parsed = parse_retry_after({"retry-after": junk, "retry-after-ms": junk})
    assert parsed is None or parsed >= 0


def test_parse_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    delay = parse_retry_after({"retry-after": format_datetime(when, usegmt=True)})
    assert delay is not None and 100 < delay <= 121


@pytest.mark.parametrize(
    "body", [b"", b"[]", b'{"data": 3}', b'{"data": [{"id": "x"}]}', b'{"has_more": false}']
)
def test_malformed_page_is_an_api_error(body: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        parse_page(body)
    assert caught.value.kind == "other"


def test_page_cursor_follows_the_sdk_rules() -> None:
    item = (
        b'{"id":"msgbatch_1","type":"message_batch","processing_status":"ended",'
        b'"request_counts":{"processing":0,"succeeded":1,"errored":0,"canceled":0,"expired":0},'
        b'"created_at":"2024-09-24T18:37:24.100435Z","expires_at":"2024-09-25T18:37:24.100435Z"}'
    )
    last = b'"last_id":"msgbatch_1"'
    more = parse_page(b'{"data":[' + item + b'],"has_more":true,' + last + b"}")
    done = parse_page(b'{"data":[' + item + b'],"has_more":false,' + last + b"}")
    unsure = parse_page(b'{"data":[' + item + b"]," + last + b"}")
    empty = parse_page(b'{"data":[],"has_more":true,"last_id":null}')
    assert more.next_after_id == "msgbatch_1" == unsure.next_after_id
    assert done.next_after_id is None and empty.next_after_id is None


# -- key and base URL resolution -----------------------------------------------------------


def python_command(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


def test_key_from_environment() -> None:
    assert resolve_api_key({"ANTHROPIC_API_KEY": " sk-env \n"}) == "sk-env"
    assert resolve_api_key({"WORK_KEY": "sk-work"}, key_env="WORK_KEY") == "sk-work"
    assert resolve_api_key({}) is None
    assert resolve_api_key({"ANTHROPIC_API_KEY": "  "}) is None


def test_key_command_wins_and_keeps_the_first_line() -> None:
    command = python_command("print('sk-from-command'); print('url: example')")
    env = {"ANTHROPIC_API_KEY": "sk-env"}
    assert resolve_api_key(env, key_command=command) == "sk-from-command"


def test_missing_key_says_what_to_do() -> None:
    with pytest.raises(MissingApiKey, match="ANTHROPIC_API_KEY"):
        require_api_key({})
    assert require_api_key({"ANTHROPIC_API_KEY": "k"}) == "k"


@pytest.mark.parametrize(
    ("code", "match"),
    [
        ("import sys; print('sk-leaked-secret'); sys.exit(3)", "status 3"),
        ("print('')", "printed nothing"),
        ("print('sk-leaked secret')", "more than a key"),
    ],
)
def test_key_command_failures_never_echo_output(code: str, match: str) -> None:
    with pytest.raises(KeyCommandError, match=match) as caught:
        run_key_command(python_command(code))
    assert "leaked" not in str(caught.value)


def test_key_command_not_found_timeout_and_unparsable() -> None:
    with pytest.raises(KeyCommandError, match="not found"):
        run_key_command("/nonexistent/batchtop-key-helper")
    with pytest.raises(KeyCommandError, match="timed out"):
        run_key_command(python_command("import time; time.sleep(5)"), timeout=0.2)
    with pytest.raises(KeyCommandError, match="parsed"):
        run_key_command("pass show 'unterminated")
    with pytest.raises(KeyCommandError, match="empty"):
        run_key_command("   ")


def test_base_url_precedence() -> None:
    env = {"ANTHROPIC_BASE_URL": "http://env"}
    assert resolve_base_url("http://flag", env, "http://profile") == "http://flag"
    assert resolve_base_url(None, env, "http://profile") == "http://env"
    assert resolve_base_url(None, {}, "http://profile") == "http://profile"
    assert resolve_base_url("", {}, None) is None
