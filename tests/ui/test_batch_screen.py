"""The batch screen: live state, download with progress, filters, search, sort, open and back."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from textual.widgets import Static

from tests.emulator_fixtures import MakeEmulator
from tests.ui.action_host import request, screen_of
from tests.ui.batch_host import (
    BATCH_ID,
    HostApp,
    actions_host,
    bare_line,
    ended_batch,
    error_line,
    fill_store,
    fixture_counts,
    fixture_lines,
    make_store,
    message_line,
    sdk_api,
    settle,
)
from tests.ui.harness import make_app, services_factory, until
from tui.core.batch_view import TextFilter
from tui.core.models import BatchSnapshot, RequestCounts
from tui.core.requests import BatchRequest
from tui.core.results import DownloadProgress
from tui.emulator.faults import Faults
from tui.paths import locations
from tui.service.api import BatchesAPI
from tui.service.audit import read_audit
from tui.service.ledger import Ledger
from tui.service.monitor import MonitorState
from tui.service.results_store import ResultsStore
from tui.ui.messages import MonitorUpdated
from tui.ui.render import CellStyles
from tui.ui.result_rows import ResultRows, ResultView, RowCache, parse_search, search_filter
from tui.ui.screens.batch import BatchScreen
from tui.ui.screens.batch_search import next_match
from tui.ui.screens.confirm import ConfirmModal
from tui.ui.screens.merged import MergedScreen
from tui.ui.screens.result import ResultScreen
from tui.ui.screens.retry import RetryModal
from tui.ui.widgets.batch_summary import Lineage, Phase, lineage_text
from tui.ui.widgets.error_summary import ErrorSummary, fold_messages, group_errors

SIZE = (160, 45)
COUNT = 60


def requests(count: int) -> list[dict[str, Any]]:
    return [{"custom_id": f"row-{n:04d}", "params": {
        "model": "claude-sonnet-4-5", "max_tokens": 256,
        "messages": [{"role": "user", "content": f"Summarise document {n}."}]}}
        for n in range(count)]


async def ended_on_emulator(make_emulator: MakeEmulator, count: int = COUNT,
                            **options: Any) -> tuple[Any, BatchesAPI, str]:
    """A batch created through the SDK, with emulator time moved past its end."""
    emulator = await make_emulator(error_rate=0.3, seed=7, **options)
    api = sdk_api(emulator.url)
    batch = await api.create(requests(count))
    emulator.engine.clock.advance(600)
    return emulator, api, batch.id


def shown_rows(screen: BatchScreen) -> list[Any]:
    rows = screen.rows
    assert isinstance(rows, ResultRows)
    return [rows.row_at(i) for i in range(len(rows))]


# -- an ended batch from the emulator ------------------------------------------------------------


async def test_filters_search_sort_open_and_back(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    _, api, batch_id = await ended_on_emulator(make_emulator)
    ended = await api.retrieve(batch_id)
    store = make_store(tmp_path)
    app = HostApp(batch_id, store=store, api=api, batches=[ended])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.batch_screen
        assert screen.phase is Phase.READY
        assert len(shown_rows(screen)) == COUNT
        assert app.audit.names() == ["results.downloaded", "results.opened"]
        assert app.audit.events[-1].data["source"] == "download"
        assert app.monitor.focus_calls == [batch_id]
        errored = ended.request_counts.errored
        assert errored > 0

        await pilot.press("2")
        await settle(pilot)
        rows = shown_rows(screen)
        assert len(rows) == errored and {r.type for r in rows} == {"errored"}

        await pilot.press("E")
        await settle(pilot)
        first_type = screen.errors.groups[0].error_type
        assert screen.view.error_type is not None
        assert {r.error_type for r in shown_rows(screen)} == {screen.view.error_type}
        assert screen.view.error_type in {g.error_type for g in screen.errors.groups}
        assert first_type is not None

        await pilot.press("1")
        await settle(pilot)
        assert len(shown_rows(screen)) == COUNT and screen.view == ResultView()

        await pilot.press("slash", *"row-001", "enter")
        await settle(pilot)
        found = sorted(r.custom_id for r in shown_rows(screen))
        assert found == [f"row-{n:04d}" for n in range(10, 20)]  # results come in any order
        await pilot.press("escape")  # clears the search, keeps it for n / N
        await settle(pilot)
        assert len(shown_rows(screen)) == COUNT
        ids = [r.custom_id for r in shown_rows(screen)]
        hits = [i for i, custom_id in enumerate(ids) if custom_id.startswith("row-001")]
        screen.table.cursor_index = 0
        await pilot.press("n")
        await settle(pilot)
        assert screen.table.cursor_index == hits[0]
        await pilot.press("n")
        await settle(pilot)
        assert screen.table.cursor_index == hits[1]
        await pilot.press("N", "N")
        await settle(pilot)
        assert screen.table.cursor_index == hits[-1]  # wraps around

        await pilot.press("s")  # the column cursor starts on custom_id
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert (screen.view.order_by, screen.view.descending) == ("custom_id", True)
        assert shown_rows(screen)[0].custom_id == f"row-{COUNT - 1:04d}"
        assert screen.table.sort_column == "custom_id" and screen.table.sort_descending

        screen.table.cursor_index = 0
        await pilot.press("enter")
        await settle(pilot)
        result = app.screen
        assert isinstance(result, ResultScreen)
        assert result.custom_id == f"row-{COUNT - 1:04d}"
        assert f"row-{COUNT - 1:04d}" in result.body_text.plain
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, BatchScreen)
        assert app.monitor.focus_calls == [batch_id, None]


async def test_the_error_summary_filters_by_group(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    _, api, batch_id = await ended_on_emulator(make_emulator)
    app = HostApp(batch_id, store=make_store(tmp_path), api=api,
                  batches=[await api.retrieve(batch_id)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.batch_screen
        panel = screen.query_one(ErrorSummary)
        assert panel.display and panel.groups
        total = sum(g.count for g in panel.groups)
        assert total == app.batch_screen.store.count(batch_id, types={"errored", "expired"})
        panel.focus()
        panel.highlighted = 0
        await pilot.press("enter")
        await settle(pilot)
        group = panel.groups[0]
        assert screen.view.kind == group.result_type
        assert screen.view.error_type == group.error_type
        assert len(shown_rows(screen)) == group.count
        assert screen.table.has_focus


class GatedStore(ResultsStore):
    """Stores the first half of the results, reports progress, and waits to be let go."""

    def __init__(self, root: Path, lines: list[bytes]) -> None:
        super().__init__(root, "ws-gated")
        self.lines = lines
        self.half_stored = asyncio.Event()
        self.release = threading.Event()

    async def ensure(self, api_client: Any, batch: BatchSnapshot, *,
                     progress: Any = None, audit: Any = None, refresh: bool = False) -> Any:
        half = len(self.lines) // 2
        stored = threading.Event()

        def chunks() -> Iterator[bytes]:
            yield b"".join(line + b"\n" for line in self.lines[:half])
            stored.set()
            self.release.wait(10)
            yield b"".join(line + b"\n" for line in self.lines[half:])

        task = asyncio.ensure_future(
            asyncio.to_thread(self.ingest, batch.id, chunks(), expected=len(self.lines)))
        await asyncio.to_thread(stored.wait, 10)
        progress(DownloadProgress(batch.id, 1, half, 1000, len(self.lines)))
        self.half_stored.set()
        return await task


async def test_first_rows_show_before_the_download_ends(tmp_path: Path) -> None:
    lines = fixture_lines()
    store = GatedStore(tmp_path / "results", lines)
    app = HostApp(BATCH_ID, store=store, api=sdk_api("http://127.0.0.1:9"),
                  batches=[ended_batch(fixture_counts(lines))])
    async with app.run_test(size=SIZE) as pilot:
        await store.half_stored.wait()
        await pilot.pause()
        screen = app.batch_screen
        for _ in range(50):
            if screen.rows is not None:
                break
            await pilot.pause(0.02)
        assert screen.phase is Phase.DOWNLOADING
        assert screen.table.display and len(shown_rows(screen)) == len(lines) // 2
        assert "downloading results 20 of 40 lines" in screen.summary.plain
        assert screen.query_one("#progress").display
        store.release.set()
        await settle(pilot)
        assert screen.phase is Phase.READY
        assert len(shown_rows(screen)) == len(lines)
        assert not screen.query_one("#progress").display


async def test_a_download_that_stays_short_says_what_is_missing(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emulator, api, batch_id = await ended_on_emulator(make_emulator, faults="cut=1")
    app = HostApp(batch_id, store=make_store(tmp_path, attempts=2), api=api,
                  batches=[await api.retrieve(batch_id)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.batch_screen
        assert screen.phase is Phase.INCOMPLETE
        status = screen.results_state.status
        assert status is not None and 0 < status.missing < COUNT
        text = screen.summary.plain
        assert (f"{status.results:,} of {COUNT} results; {status.missing:,} missing — "
                "press r to retry") in text
        assert "results.failed" in app.audit.names()
        assert len(shown_rows(screen)) == status.lines  # what arrived is shown

        emulator.engine.faults = Faults()
        await pilot.press("r")
        await settle(pilot)
        assert screen.phase is Phase.READY
        assert len(shown_rows(screen)) == COUNT
        assert "missing" not in screen.summary.plain


async def test_a_running_batch_shows_its_live_state_then_downloads_when_it_ends(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emulator = await make_emulator(error_rate=0.3, seed=3)
    api = sdk_api(emulator.url)
    running = await api.create(requests(20))
    app = HostApp(running.id, store=make_store(tmp_path), api=api, batches=[running],
                  clock=emulator.engine.clock.now)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.batch_screen
        assert screen.phase is Phase.LIVE
        assert app.monitor.focus_calls == [running.id]
        assert not screen.table.display
        live = screen.query_one("#live")
        assert live.display
        assert "results appear when every request has finished or at" in screen.summary.plain
        assert "20 of 20 requests still processing" in str(live.render())

        await pilot.press("r")
        assert app.refreshes == 1

        emulator.engine.clock.advance(600)
        ended = await api.retrieve(running.id)
        screen.post_message(MonitorUpdated(MonitorState(batches={running.id: ended})))
        await settle(pilot)
        assert screen.phase is Phase.READY
        assert not live.display
        assert len(shown_rows(screen)) == 20


async def test_the_app_opens_it_and_polls_it_faster(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    emulator, api, batch_id = await ended_on_emulator(make_emulator, count=30)
    await api.close()
    app = make_app(services_factory(emulator))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: batch_id in app.monitor_state.batches)
        app.open_batch(batch_id)
        await until(pilot, lambda: isinstance(app.screen, BatchScreen)
                    and app.screen.phase is Phase.READY and app.screen.rows is not None)
        screen = app.screen
        assert isinstance(screen, BatchScreen) and len(shown_rows(screen)) == 30
        assert app.monitor.state.focused == batch_id
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, BatchScreen))
        assert app.monitor.state.focused is None
    names = [r["event"] for r in read_audit(locations().audit, batch_id=batch_id).records]
    assert "results.downloaded" in names and "results.opened" in names


# -- from the store alone --------------------------------------------------------------------------


async def test_reopening_reads_the_store_without_the_api(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    lines = fixture_lines()
    fill_store(store, lines)
    app = HostApp(BATCH_ID, store=store, batches=[ended_batch(fixture_counts(lines))])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.batch_screen
        assert screen.phase is Phase.READY
        assert len(shown_rows(screen)) == len(lines)
        assert app.audit.events[-1].event == "results.opened"
        assert app.audit.events[-1].data["source"] == "store"
        assert "40 results stored locally" in screen.summary.plain

        await pilot.press("y")
        assert app.clipboard == "invoice-00000-extraction"


async def test_malformed_lines_and_unknown_types_are_counted(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    lines = [message_line("a-1", "fine"), b'{"custom_id":"a-2","result":{"ty',
             bare_line("a-3", "deferred"), error_line("a-4", "api_error", "boom")]
    fill_store(store, lines)
    app = HostApp(BATCH_ID, store=store,
                  batches=[ended_batch(RequestCounts(succeeded=2, errored=1))])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.batch_screen
        text = screen.summary.plain
        assert "1 malformed line" in text and "1 of an unknown result type" in text
        names = {g.name for g in screen.errors.groups}
        assert {"malformed", "deferred", "api_error"} <= names
        assert "2 other" in str(screen.query_one("#view-bar").render())


async def test_requests_that_never_came_back_are_listed(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    lines = fixture_lines()
    fill_store(store, lines[:-2])
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        submit = ledger.begin_submit([
            BatchRequest.build(f"invoice-{n:05d}-extraction", {"model": "m", "max_tokens": 1,
                                                              "messages": []})
            for n in range(40)])
        ledger.complete_submit(submit, BATCH_ID)
        app = HostApp(BATCH_ID, store=store, batches=[ended_batch(fixture_counts(lines))],
                      screen=lambda: BatchScreen(BATCH_ID, store=store, ledger=ledger))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = app.batch_screen
            assert "2 of 40 submitted requests did not come back" in screen.summary.plain
            await pilot.press("6")
            await settle(pilot)
            rows = screen.rows
            assert rows is not None
            assert [rows.key_at(i) for i in range(len(rows))] == [
                "invoice-00038-extraction", "invoice-00039-extraction"]
            await pilot.press("enter")  # no result to open: says so, stays here
            await settle(pilot)
            assert app.screen is screen


async def test_an_unknown_batch_says_so(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emulator = await make_emulator()
    app = HostApp("msgbatch_01NoSuchBatchNoSuchBatch00", store=make_store(tmp_path),
                  api=sdk_api(emulator.url))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.batch_screen
        assert screen.phase is Phase.NOT_FOUND
        assert "not_found_error" in screen.summary.plain
        assert not screen.table.display


# -- pieces ----------------------------------------------------------------------------------------


def test_search_syntax_matches_the_batches_list() -> None:
    assert parse_search("") is None and parse_search("!") is None
    assert parse_search("row-1") == TextFilter("row-1")
    assert parse_search("!row") == TextFilter("row", inverted=True)
    assert parse_search("re:^row") == TextFilter("^row")
    assert parse_search("!re:x$") == TextFilter("x$", inverted=True)
    assert search_filter(TextFilter("row-1")) == {"search": "row-1", "invert": False}
    assert search_filter(TextFilter("^r.w", True)) == {
        "search": "(?i)^r.w", "regex": True, "invert": True}
    assert ResultView(kind="errored", error_type="api_error").filters() == {
        "types": frozenset({"errored"}), "error_type": "api_error"}
    assert ResultView(kind="deferred").filters() == {"types": frozenset({"deferred"})}
    assert ResultView().unfiltered and not ResultView(order_by="model").unfiltered


def test_search_finds_the_same_rows_as_the_list_would(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    fill_store(store, fixture_lines())
    ids = [r.custom_id for r in store.query(BATCH_ID)]
    for text in ("0001", "INVOICE-0002", "^invoice-0003", "!extraction", "0[12]7", "re:9-e"):
        search = parse_search(text)
        assert search is not None
        found = store.row_ids(BATCH_ID, **search_filter(search))
        assert [ids[s] for s in found] == [i for i in ids if search.accepts(i)], text


def test_the_row_cache_reads_a_window_at_a_time(tmp_path: Path) -> None:
    store: ResultsStore = make_store(tmp_path)
    fill_store(store, fixture_lines())
    cache = RowCache(store, BATCH_ID, window=16)
    seqs = list(range(40))
    for index in range(12):
        row = cache.row(seqs, index)
        assert row is not None and row.seq == index
    assert cache.reads == 1
    assert cache.row(seqs, 30) is not None and cache.reads == 2


def test_error_groups_fold_messages_under_their_type(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    fill_store(store, fixture_lines())
    groups = group_errors(store.error_summary(BATCH_ID), top=2)
    by_name = {g.name: g for g in groups}
    assert by_name["overloaded_error"].messages == (("Overloaded", 4, 1),)
    invalid = by_name["invalid_request_error"]
    ((example, count, variants),) = invalid.messages
    assert (invalid.count, count, variants, invalid.more_messages) == (4, 4, 4, 0)
    assert example.startswith("prompt is too long: 2000")
    assert invalid.retry_class == "permanent" and by_name["expired"].retry_class == "retryable"
    assert [g.count for g in groups] == sorted((g.count for g in groups), reverse=True)


def test_messages_that_differ_only_in_numbers_fold() -> None:
    assert fold_messages([("a 1 b", 2), ("a 22 b", 5), ("other", 3), ("a b", 1)]) == [
        ("a 22 b", 7, 2), ("other", 3, 1), ("a b", 1, 1)]


# -- actions, lineage, cost, timeline ----------------------------------------------------------


def bindings_shown(screen: BatchScreen) -> set[str]:
    return {active.binding.id or "" for active in screen.active_bindings.values()}


async def test_c_on_a_running_batch_asks_before_canceling(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with actions_host(make_emulator, tmp_path) as (app, pilot):
        batch = await app.submitted(4)
        screen = await app.open_batch(pilot, batch.id)
        assert {"batch.cancel", "batch.attach", "batch.label"} <= bindings_shown(screen)
        assert not {"batch.retry", "batch.delete", "batch.merged"} & bindings_shown(screen)
        await pilot.press("c")
        dialog = await screen_of(pilot, ConfirmModal)
        assert batch.id in str(dialog.query_one("#confirm-text", Static).render())
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        assert app.outcomes("action.cancel") == ["refused"]


async def test_R_retries_the_failures_and_the_header_shows_the_lineage(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with actions_host(make_emulator, tmp_path, error_rate=0.5, seed=3) as (app, pilot):
        batch = await app.submitted(12)
        await app.ended(batch.id)
        screen = await app.open_batch(pilot, batch.id)
        assert "batch.retry" in bindings_shown(screen)
        await pilot.press("R")
        dialog = await screen_of(pilot, RetryModal)
        await pilot.press("p")  # the emulator's errors are permanent ones: include them
        await until(pilot, lambda: dialog.preview.request_count > 0)
        await pilot.press("y")
        await until(pilot, lambda: app.screen is screen and screen.lineage.children)
        ((child, generation),) = screen.lineage.children
        assert generation == 1 and child.startswith("msgbatch_")
        await until(pilot, lambda: f"retried as {child} (gen 1)" in screen.summary.plain)
        assert "batch.merged" in bindings_shown(screen)

        await pilot.press("M")  # the final outcome per custom_id across both batches
        merged = await screen_of(pilot, MergedScreen)
        await until(pilot, lambda: merged.view is not None)
        assert merged.view is not None and sum(merged.view.counts.values()) == 12
        assert merged.view.counts.get("pending", 0) > 0  # the retry is still running
        await pilot.press("escape")

        retry = await app.open_batch(pilot, child)  # and the retry names where it came from
        await until(pilot, lambda: f"retry of {batch.id} (gen 1)" in retry.summary.plain)


async def test_D_on_an_ended_batch_deletes_it_and_goes_back(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    async with actions_host(make_emulator, tmp_path) as (app, pilot):
        batch = await app.submitted(3)
        await app.ended(batch.id)
        screen = await app.open_batch(pilot, batch.id)
        assert "batch.cancel" not in bindings_shown(screen)
        await pilot.press("D")
        await screen_of(pilot, ConfirmModal)
        await pilot.press("y")
        await until(pilot, lambda: not isinstance(app.screen, (BatchScreen, ConfirmModal)))
        assert app.outcomes("action.delete")[-1] == "succeeded"


async def test_read_only_offers_no_action(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    async with actions_host(make_emulator, tmp_path, read_only=True, error_rate=0.5,
                            seed=3) as (app, pilot):
        batch = await app.api.create([request(f"r{n}", n) for n in range(6)])
        await app.ended(batch.id)
        screen = await app.open_batch(pilot, batch.id)
        shown = bindings_shown(screen)
        assert not {"batch.cancel", "batch.retry", "batch.delete", "batch.attach",
                    "batch.label"} & shown
        assert "batch.timeline" in shown
        await pilot.press("R", "D", "t", "a")
        await settle(pilot)
        assert app.screen is screen and app.notes == []


def cost_app(tmp_path: Path, lines: list[bytes]) -> HostApp:
    store = make_store(tmp_path)
    fill_store(store, lines)
    return HostApp(BATCH_ID, store=store, batches=[ended_batch(fixture_counts(lines))])


async def test_the_cost_of_a_downloaded_batch(tmp_path: Path) -> None:
    app = cost_app(tmp_path, fixture_lines())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = app.batch_screen.summary.plain
        assert re.search(r"cost \$\d+\.\d\d at batch rates · saved \$\d+\.\d\d vs standard · "
                         r"cache hits \d+%", text), text
        assert "price unknown" not in text


async def test_an_unknown_model_is_price_unknown(tmp_path: Path) -> None:
    lines = [message_line(f"q-{n}", "fine", model="claude-imaginary-9") for n in range(3)]
    app = cost_app(tmp_path, lines)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = app.batch_screen.summary.plain
        assert "cost price unknown" in text
        assert "claude-imaginary-9: price unknown" in text


async def test_T_opens_the_audit_timeline_of_the_batch(tmp_path: Path) -> None:
    audit = pytest.importorskip("tui.ui.screens.audit")
    if not hasattr(audit, "AuditScreen"):
        pytest.skip("no audit screen")
    app = cost_app(tmp_path, fixture_lines())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("T")
        await until(pilot, lambda: isinstance(app.screen, audit.AuditScreen))
        assert getattr(app.screen, "batch_id", None) == BATCH_ID


def test_the_lineage_line() -> None:
    styles = CellStyles({})
    assert lineage_text(Lineage(), styles) is None
    text = lineage_text(Lineage("msgbatch_a", 2, (("msgbatch_c", 3), ("msgbatch_d", 3))), styles)
    assert text is not None
    assert text.plain.startswith("retry of msgbatch_a (gen 2) · retried as msgbatch_c (gen 3), "
                                 "msgbatch_d (gen 3)")


async def test_in_the_app_the_cost_shows_and_R_retries(
    make_emulator: MakeEmulator, tmp_path: Path
) -> None:
    """The same keys against BatchtopApp's own flows, ledger, store and cost service."""
    emulator = await make_emulator(error_rate=0.5, seed=3)
    app = make_app(services_factory(emulator))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.services is not None)
        path = tmp_path / "requests.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in requests(10)))
        (batch,) = await app.actions.submit(await app.actions.plan_submit(path))
        emulator.engine.clock.advance(3600)
        await app.monitor.refresh_now()
        await until(pilot, lambda: batch.id in app.monitor_state.batches
                    and app.monitor_state.batches[batch.id].is_ended)
        app.open_batch(batch.id)
        await until(pilot, lambda: isinstance(app.screen, BatchScreen) and app.screen.is_mounted
                    and "at batch rates" in app.screen.summary.plain)
        screen = app.screen
        assert isinstance(screen, BatchScreen)
        await pilot.press("R")
        dialog = await screen_of(pilot, RetryModal)
        await pilot.press("p")
        await until(pilot, lambda: dialog.preview.request_count > 0)
        await pilot.press("y")
        await until(pilot, lambda: app.screen is screen and "retried as" in screen.summary.plain)


@given(st.lists(st.integers(0, 30), min_size=1, max_size=20, unique=True),
       st.sets(st.integers(0, 30)), st.integers(0, 19), st.booleans())
def test_next_match_is_the_nearest_hit_in_the_direction_wrapping(
    seqs: list[int], hits: set[int], start: int, backwards: bool
) -> None:
    start %= len(seqs)
    found = next_match(hits, seqs, start, backwards)
    if found is None:
        assert not hits & set(seqs)
        return
    assert seqs[found] in hits
    distance = ((start - found) if backwards else (found - start)) % len(seqs) or len(seqs)
    skipped = [seqs[(start + (-n if backwards else n)) % len(seqs)] for n in range(1, distance)]
    assert not hits & set(skipped)


def test_download_progress_is_passed_on_at_most_ten_times_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 100 MB download reports about a hundred times; the screen redraws for a few."""
    screen = BatchScreen(BATCH_ID)
    posted: list[DownloadProgress] = []
    monkeypatch.setattr(screen, "post_message", lambda message: posted.append(message.progress))
    clock = [100.0]
    monkeypatch.setattr("tui.ui.screens.batch.time.monotonic", lambda: clock[0])

    def report(attempt: int, lines: int, after_s: float = 0.01) -> None:
        clock[0] += after_s
        screen._post_progress(DownloadProgress(BATCH_ID, attempt, lines, lines * 1000, 9000,
                                               stored=lines))

    report(1, 0)  # the first report of an attempt
    report(1, 10)  # the first with rows: they are shown at once
    for lines in range(20, 90, 10):
        report(1, lines)  # 70 ms: held back
    report(1, 95, after_s=0.05)  # 0.1 s after the last one shown
    report(2, 0)  # a new attempt starts over
    assert [(p.attempt, p.lines) for p in posted] == [(1, 0), (1, 10), (1, 95), (2, 0)]
