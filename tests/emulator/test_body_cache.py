"""The emulator serves an ended batch's results again from its body cache, byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulator.sdk import async_client, results_lines
from tests.emulator_fixtures import MakeEmulator
from tui.emulator import results as emulator_results
from tui.emulator import routes
from tui.emulator.body_cache import STORED_CHUNK_BYTES, BodyCache
from tui.emulator.faults import parse_faults


def test_bodies_are_kept_whole_joined_and_evicted_oldest_first() -> None:
    cache = BodyCache(max_bytes=100)
    chunks = [b"a" * 30, b"b" * 30]
    assert list(cache.recording(("x", 1), iter(chunks))) == chunks  # passed through as is
    assert cache.get(("x", 1)) == [b"a" * 30 + b"b" * 30] and cache.held == 60
    list(cache.recording(("y", 1), [b"c" * 30]))
    cache.get(("x", 1))  # x is now the most recently used
    list(cache.recording(("z", 1), [b"d" * 30]))
    assert cache.get(("y", 1)) is None and cache.get(("x", 1)) is not None
    assert cache.held == 90


def test_a_body_not_sent_in_full_or_too_big_is_not_kept() -> None:
    cache = BodyCache(max_bytes=50)
    stream = cache.recording(("x", 1), [b"a" * 20, b"b" * 20])
    next(stream)  # the client went away after the first chunk
    stream.close()
    assert cache.get(("x", 1)) is None
    list(cache.recording(("big", 1), [b"a" * 40, b"b" * 40]))
    assert cache.get(("big", 1)) is None and cache.held == 0


def test_stored_pieces_are_about_a_megabyte() -> None:
    cache = BodyCache()
    piece = b"x" * (64 << 10)
    list(cache.recording(("x", 1), [piece] * 40))
    stored = cache.get(("x", 1))
    assert stored is not None and b"".join(stored) == piece * 40
    assert all(len(p) >= STORED_CHUNK_BYTES for p in stored[:-1]) and len(stored) == 3


async def test_a_second_download_is_the_same_bytes_from_the_cache(
    make_emulator: MakeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await make_emulator(scenario="large:500", seed=4)
    client = async_client(emu.url)
    (batch,) = (await client.messages.batches.list()).data
    url = str(batch.results_url)
    first = await results_lines(url)
    assert emu.engine.bodies.held > 0
    rendered: list[int] = []
    real = emulator_results.result_lines

    def counting(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        rendered.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(routes, "result_lines", counting)
    assert await results_lines(url) == first
    assert rendered == []  # served from the cache
    emu.engine.faults = parse_faults("malformed=2")
    faulty = await results_lines(url)
    assert rendered == [1] and len(faulty) == len(first) + 2  # with faults: rendered afresh


async def test_deleting_a_batch_frees_its_body(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(scenario="large:200", seed=4)
    client = async_client(emu.url)
    (batch,) = (await client.messages.batches.list()).data
    await results_lines(str(batch.results_url))
    assert emu.engine.bodies.held > 0
    await client.messages.batches.delete(batch.id)
    assert emu.engine.bodies.held == 0
