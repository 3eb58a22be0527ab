"""SVG snapshots of the app on a frozen-clock emulator (run with --snapshot-update to accept)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from textual.pilot import Pilot

from tests.ui.harness import (
    make_app,
    refresh,
    requests,
    services_factory,
    set_faults,
    start_frozen,
    synced,
    until,
)
from tui.paths import locations
from tui.service.actions import read_request_file
from tui.settings import Settings
from tui.ui.app import BatchtopApp, Services, ServicesFactory

SnapCompare = Callable[..., bool]
SIZE = (160, 40)

_emulators: dict[int, Any] = {}


def frozen_demo(scenario: str = "demo") -> ServicesFactory:
    """Start a frozen emulator inside the app's own loop; it stops with the app."""

    async def make() -> Services:
        emulator = await start_frozen(scenario)
        _emulators[id(make)] = emulator
        return await services_factory(emulator, where="demo", stop_emulator=True,
                                      alerts=False)()

    return make


def demo_app(settings: Settings | None = None) -> tuple[BatchtopApp, ServicesFactory]:
    factory = frozen_demo()
    return make_app(factory, settings), factory


def after_sync(*then: Callable[[Pilot[Any]], Awaitable[None]]) -> Callable[
    [Pilot[Any]], Awaitable[None]
]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await synced(pilot)
        for step in then:
            await step(pilot)

    return run_before


def test_batches_list(snap_compare: SnapCompare) -> None:
    app, _ = demo_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=after_sync())


def test_batches_list_ended_only_sorted_by_error_rate(snap_compare: SnapCompare) -> None:
    app, _ = demo_app()
    presses = ["3", *["right"] * 9, "s"]
    assert snap_compare(app, terminal_size=SIZE, press=presses, run_before=after_sync())


def test_batches_list_read_only_at_80_columns(snap_compare: SnapCompare) -> None:
    app, _ = demo_app(Settings(read_only=True))
    assert snap_compare(app, terminal_size=(80, 24), run_before=after_sync())


def test_new_batches_hint_and_paused(snap_compare: SnapCompare) -> None:
    app, _ = demo_app()

    async def new_batch(pilot: Pilot[Any]) -> None:
        await pilot.press("j", "j")
        await app.api.create(requests(2))
        await refresh(pilot)
        await pilot.press("p")
        await until(pilot, lambda: app.monitor.state.paused)

    assert snap_compare(app, terminal_size=SIZE, run_before=after_sync(new_batch))


def test_degraded_header(snap_compare: SnapCompare) -> None:
    factory = frozen_demo()
    app = make_app(factory)

    async def fail(pilot: Pilot[Any]) -> None:
        set_faults(_emulators[id(factory)], "429=1")
        await refresh(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=after_sync(fail))


def test_help(snap_compare: SnapCompare) -> None:
    app, _ = demo_app()
    assert snap_compare(app, terminal_size=SIZE, press=["question_mark"],
                        run_before=after_sync())


def test_no_key(snap_compare: SnapCompare) -> None:
    app = make_app(None)
    assert snap_compare(app, terminal_size=(100, 30))


def test_batches_list_with_labels_lineage_and_cost(snap_compare: SnapCompare) -> None:
    """A retry batch with its lineage, labels, and the cost of a batch whose results are stored."""
    app, _ = demo_app()

    async def decorate(pilot: Pilot[Any]) -> None:
        state = app.monitor_state
        parent, child = state.order[7], state.order[0]  # an ended batch and a running one
        source = locations().data / "retry.jsonl"
        source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in requests(2, "r")))
        ledger = app.ledger
        assert ledger is not None and app.results_store is not None
        submit = ledger.begin_submit(read_request_file(source).requests, parent=parent,
                                     generation=1, label="retry of nightly")
        ledger.complete_submit(submit, child)
        ledger.set_label(parent, "nightly")
        await app.results_store.ensure(app.api.client, state.batches[parent])
        app.set_labels(ledger.labels())
        await refresh(pilot)
        await until(pilot, lambda: app.costs is not None and app.costs.peek(parent) is not None)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=after_sync(decorate))
