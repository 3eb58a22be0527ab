"""The blocking SDK client against an emulator on its own thread, and stop/start on one port."""

from __future__ import annotations

import anthropic
import pytest

from tests.emulator.sdk import requests, sync_client
from tests.emulator_fixtures import MakeThreadedEmulator
from tui.emulator.server import EmulatorConfig
from tui.emulator.threaded import ThreadedEmulator


def test_sync_client_full_cycle(threaded_emulator: ThreadedEmulator) -> None:
    client = sync_client(threaded_emulator.url)
    batch = client.messages.batches.create(requests=requests(4))
    threaded_emulator.call(lambda: threaded_emulator.engine.clock.advance(120))
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    ids = sorted(item.custom_id for item in client.messages.batches.results(batch.id))
    assert ids == [f"row-{n:04d}" for n in range(4)]
    assert [b.id for b in client.messages.batches.list(limit=1)] == [batch.id]
    client.messages.batches.delete(batch.id)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_sync_pagination_over_many(make_threaded_emulator: MakeThreadedEmulator) -> None:
    emu = make_threaded_emulator(scenario="many:9")
    client = sync_client(emu.url)
    ids = [b.id for b in client.messages.batches.list(limit=2)]
    assert len(ids) == len(set(ids)) == 9


def test_connection_refused_then_back_on_the_same_port() -> None:
    first = ThreadedEmulator(EmulatorConfig()).start()
    port = first.port
    client = sync_client(first.url)
    client.messages.batches.create(requests=requests(1))
    first.stop()
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.batches.list()
    with ThreadedEmulator(EmulatorConfig(port=port)) as second:
        assert second.port == port
        assert client.messages.batches.list().data == []


def test_busy_port_fails_cleanly(threaded_emulator: ThreadedEmulator) -> None:
    with pytest.raises(OSError):
        ThreadedEmulator(EmulatorConfig(port=threaded_emulator.port)).start()
