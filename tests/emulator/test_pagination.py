"""List: newest first, limit bounds, after_id / before_id cursors, SDK auto-pagination."""

from __future__ import annotations

import anthropic
import orjson
import pytest

from tests.emulator.sdk import async_client, raw
from tests.emulator_fixtures import MakeEmulator


async def test_auto_pagination_after_id(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="many:23")
    client = async_client(emu.url)
    ids = [b.id async for b in client.messages.batches.list(limit=2)]
    expected = [r.id for r in reversed(emu.engine.records())]
    assert ids == expected
    assert len(set(ids)) == 23
    paths = [seen.query for seen in emu.engine.journal if seen.path == "/v1/messages/batches"]
    assert len(paths) == 12
    assert all("limit=2" in query for query in paths)


async def test_created_at_is_newest_first(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="many:40")
    client = async_client(emu.url)
    batches = [b async for b in client.messages.batches.list(limit=7)]
    stamps = [b.created_at for b in batches]
    assert stamps == sorted(stamps, reverse=True)
    running = [b for b in batches if b.processing_status == "in_progress"]
    assert 1 <= len(running) <= 5


async def test_before_id_walks_towards_newer(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="many:15")
    client = async_client(emu.url)
    newest_first = [r.id for r in reversed(emu.engine.records())]
    anchor = newest_first[9]
    page = await client.messages.batches.list(before_id=anchor, limit=3)
    assert [b.id for b in page.data] == newest_first[6:9]
    assert page.has_more is True
    walked = [b.id async for b in client.messages.batches.list(before_id=anchor, limit=2)]
    assert sorted(walked) == sorted(newest_first[:9])
    top = await client.messages.batches.list(before_id=newest_first[1], limit=5)
    assert [b.id for b in top.data] == [newest_first[0]]
    assert top.has_more is False


async def test_page_fields_always_present(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="many:5")
    newest_first = [r.id for r in reversed(emu.engine.records())]
    status, _, body = await raw("GET", f"{emu.url}/v1/messages/batches?after_id="
                                f"{newest_first[-1]}")
    page = orjson.loads(body)
    assert status == 200
    assert page == {"data": [], "has_more": False, "first_id": None, "last_id": None}
    status, _, body = await raw("GET", f"{emu.url}/v1/messages/batches?limit=2")
    page = orjson.loads(body)
    assert (page["has_more"], page["first_id"], page["last_id"]) == (
        True, newest_first[0], newest_first[1])


async def test_default_limit_is_20_and_max_is_1000(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="many:1200")
    client = async_client(emu.url)
    assert len((await client.messages.batches.list()).data) == 20
    page = await client.messages.batches.list(limit=1000)
    assert len(page.data) == 1000 and page.has_more and page.last_id
    rest = await client.messages.batches.list(limit=1000, after_id=page.last_id)
    assert len(rest.data) == 200 and rest.has_more is False


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=abc", "limit=-5",
                                   "after_id=msgbatch_01nosuchbatch",
                                   "after_id=a&before_id=b"])
async def test_bad_list_parameters_are_400(make_emulator: MakeEmulator, query: str) -> None:
    emu = await make_emulator(scenario="many:3")
    status, headers, body = await raw("GET", f"{emu.url}/v1/messages/batches?{query}")
    assert status == 400, body
    assert orjson.loads(body)["error"]["type"] == "invalid_request_error"
    assert headers["request-id"].startswith("req_")


async def test_sdk_raises_bad_request_for_limit(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator()
    with pytest.raises(anthropic.BadRequestError):
        await async_client(emu.url).messages.batches.list(limit=5000)
