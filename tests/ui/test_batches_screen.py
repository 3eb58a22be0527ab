"""The batches list: filters, sort, the "+N new" hint, a cursor that stays put, inert cells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.ui.harness import (
    SIZE,
    column,
    make_app,
    refresh,
    requests,
    services_factory,
    synced,
    until,
)
from tui.core.batch_view import StatusFilter
from tui.core.models import BatchSnapshot, RequestCounts
from tui.emulator.server import RunningEmulator
from tui.ui.batch_columns import LABEL_WIDTH, needed_width
from tui.ui.batch_rows import BatchRows, CellStyles, RowExtras, columns_for


async def test_status_filters(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        total = len(app.monitor_state.batches)
        await pilot.press("2")
        assert screen.spec.status is StatusFilter.RUNNING
        statuses = set(column(screen, "status"))
        assert statuses <= {"● running", "◐ canceling"} and statuses
        await pilot.press("3")
        assert set(column(screen, "status")).isdisjoint({"● running", "◐ canceling"})
        await pilot.press("4")
        failures = column(screen, "status")
        assert failures and all(
            errored != "0" or expired != "0"
            for errored, expired in zip(column(screen, "errored"), column(screen, "expired"),
                                        strict=True)
        )
        await pilot.press("1")
        assert screen.rows is not None and len(screen.rows) == total


async def test_regex_filter_inverted_filter_and_matches(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        assert screen.rows is not None
        everything = screen.rows.ids
        target = everything[3]
        fragment = target[-6:]
        await pilot.press("slash", *fragment, "enter")
        await until(pilot, lambda: screen.rows is not None and screen.rows.ids == [target])
        await until(pilot, lambda: screen.table.has_focus)

        await pilot.press("slash", "ctrl+a", "exclamation_mark", "enter")
        # "!" + fragment: everything except the target.
        await until(pilot, lambda: screen.spec.text is not None and screen.spec.text.inverted)
        assert target not in screen.rows.ids
        assert len(screen.rows) == len(everything) - 1

        # esc clears the filter; n / N then find the pattern in the full list.
        await pilot.press("escape")
        assert screen.spec.text is None and len(screen.rows) == len(everything)
        screen.table.cursor_index = 0
        await pilot.press("n")
        assert screen.table.cursor_key == target
        await pilot.press("N")
        assert screen.table.cursor_key == target  # the only match: wraps onto itself


async def test_invalid_regex_is_reported_not_raised(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        await pilot.press("slash", "left_parenthesis")
        assert "invalid regex" in str(screen.query_one("#view-info").render())
        await pilot.press("escape")
        assert screen.spec.text is None


async def test_sort_by_the_column_under_the_cursor(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=WIDE) as pilot:  # wide enough for each count's own column
        screen = await synced(pilot)
        keys = [c.key for c in screen.table.columns]
        for _ in range(keys.index("processing")):
            await pilot.press("right")
        await pilot.press("s")
        assert screen.spec.sort_key == "processing"
        first = [int(v.replace(",", "")) for v in column(screen, "processing")]
        assert first == sorted(first, reverse=screen.spec.descending)
        await pilot.press("s")
        second = [int(v.replace(",", "")) for v in column(screen, "processing")]
        assert second == sorted(second, reverse=screen.spec.descending)
        assert first != second
        assert screen.table.sort_column == "processing"


async def test_cursor_and_view_stay_put_and_new_batches_wait_in_the_hint(
    demo: RunningEmulator,
) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        table = screen.table
        await pilot.press("j", "j", "j")
        key, index, top = table.cursor_key, table.cursor_index, table.scroll_offset.y
        assert screen.rows is not None
        visible = screen.rows.ids[:10]

        created = await app.api.create(requests(2))
        await refresh(pilot)
        assert table.cursor_key == key and table.cursor_index == index
        assert table.scroll_offset.y == top
        assert screen.rows.ids[:10] == visible  # nothing above the cursor moved
        assert screen.new_count == 1
        hint = screen.query_one("#new-hint")
        assert hint.display and "+1 new" in str(hint.render())

        # Two polls with no change: still nothing moves.
        await refresh(pilot)
        assert table.cursor_key == key and screen.new_count == 1

        await pilot.press("r")
        await pilot.pause()
        assert screen.new_count == 0 and not hint.display
        assert table.cursor_key == created.id
        assert created.id in screen.rows.ids


async def test_clicking_the_hint_reveals_new_batches(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        created = await app.api.create(requests(1))
        await refresh(pilot)
        assert screen.new_count == 1
        await pilot.click("#new-hint")
        await pilot.pause()
        assert screen.new_count == 0 and screen.table.cursor_key == created.id


async def test_a_batch_ending_under_the_cursor_updates_in_place(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        assert screen.rows is not None
        running = [b.id for b in screen.rows.batches if not b.is_ended]
        key = running[1]
        assert screen.table.move_to_key(key)
        index, top = screen.table.cursor_index, screen.table.scroll_offset.y
        demo.engine.clock.advance(timedelta(hours=30).total_seconds())
        await refresh(pilot)
        assert app.monitor_state.batches[key].is_ended
        assert screen.table.cursor_key == key
        assert (screen.table.cursor_index, screen.table.scroll_offset.y) == (index, top)
        row = screen.rows.cells(index)
        assert row[2].plain in ("✓ ended", "✗ failures", "⊘ canceled")
        # Meanwhile the demo kept submitting: those arrivals wait above, in the hint.
        assert screen.new_count > 0


def _batch(batch_id: str, status: str = "ended", **counts: int) -> BatchSnapshot:
    created = datetime(2025, 6, 1, tzinfo=UTC)
    return BatchSnapshot(
        id=batch_id,
        processing_status=status,
        request_counts=RequestCounts(**counts),
        created_at=created,
        expires_at=created + timedelta(days=1),
        ended_at=created + timedelta(minutes=5) if status == "ended" else None,
    )


NOW = datetime(2025, 6, 1, 1, tzinfo=UTC)
WIDE = (220, 40)
ESSENTIAL = {"id", "status", "error_rate", "eta", "deadline"}


@pytest.mark.parametrize("labels", [False, True])
@pytest.mark.parametrize("lineage", [False, True])
@pytest.mark.parametrize("width", [80, 100, 120, 160, 200, 240])
def test_the_columns_fit_the_width_and_keep_the_essentials(
    width: int, labels: bool, lineage: bool
) -> None:
    columns = columns_for(labels, lineage, width)
    keys = {column.key for column in columns}
    assert needed_width(columns) <= width
    assert keys >= ESSENTIAL
    assert len(keys) == len(columns)
    if width >= 160:
        assert keys >= {"created", "duration"} and keys & {"counts", "outcome"}
    if width >= 100 and (labels or lineage):
        assert keys & {"label", "lineage"}


def test_a_narrow_list_folds_the_lineage_into_the_label_and_collapses_counts() -> None:
    parent, child = _batch("msgbatch_parent01"), _batch("msgbatch_child001", errored=2)
    extras = RowExtras(labels={child.id: "nightly"}, lineage={child.id: (parent.id, 1)})
    columns = columns_for(True, True, 150)
    keys = [column.key for column in columns]
    assert "lineage" not in keys and "counts" in keys and "errored" not in keys
    rows = BatchRows([parent, child], NOW, CellStyles({}), columns=columns, extras=extras)
    row = dict(zip(keys, (cell.plain for cell in rows.cells(1)), strict=True))
    assert row["label"].startswith("nightly ↻1 …") and len(row["label"]) == LABEL_WIDTH
    assert row["counts"] == "0/2/0"
    assert dict(zip(keys, (c.plain for c in rows.cells(0)), strict=True))["label"] == \
        "retried ×1"


async def test_resizing_changes_the_columns_and_keeps_the_cursor(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=WIDE) as pilot:
        screen = await synced(pilot)
        await pilot.press("j", "j")
        key = screen.table.cursor_key
        assert "errored" in [c.key for c in screen.table.columns]
        await pilot.resize_terminal(100, 40)
        await until(pilot, lambda: "errored" not in [c.key for c in screen.table.columns])
        assert needed_width(screen.table.columns) <= 100
        assert screen.table.cursor_key == key


def test_cells_are_inert_and_failures_are_never_clean() -> None:
    hostile = "msgbatch_\x1b[31mred\x07\u202e"
    rows = BatchRows(
        [_batch(hostile, succeeded=9, errored=1), _batch("msgbatch_ok", succeeded=10)],
        NOW,
        CellStyles({}),
        {hostile: "label\x1b]52;c;aGk=\x07"},
        columns=columns_for(True),
    )
    cells = [cell.plain for cell in rows.cells(0)]
    assert all("\x1b" not in cell and "\x07" not in cell and "\u202e" not in cell
               for cell in cells)
    assert cells[0].startswith("msgbatch_")
    assert "failures" in cells[3]
    assert "ended" in [cell.plain for cell in rows.cells(1)][3]


def test_running_batches_show_unknown_not_zero() -> None:
    rows = BatchRows([_batch("msgbatch_run", status="in_progress", processing=5)], NOW,
                     CellStyles({}))
    row = dict(zip([c.key for c in rows.columns], (c.plain for c in rows.cells(0)),
                   strict=True))
    assert row["processing"] == "5"
    assert row["succeeded"] == row["errored"] == row["error_rate"] == "–"
    assert row["deadline"].startswith("expires in")


async def test_labels_add_a_column_and_are_matched_by_the_filter(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        assert screen.rows is not None
        target = screen.rows.key_at(2)
        app.set_labels({target: "nightly-eval"})
        await pilot.pause()
        assert [c.key for c in screen.table.columns][:2] == ["id", "label"]
        await pilot.press("slash", *"NIGHTLY", "enter")
        await until(pilot, lambda: screen.rows is not None and screen.rows.ids == [target])
        assert column(screen, "label") == ["nightly-eval"]


async def test_palette_goes_to_a_batch(demo: RunningEmulator) -> None:
    app = make_app(services_factory(demo))
    async with app.run_test(size=SIZE) as pilot:
        screen = await synced(pilot)
        assert screen.rows is not None
        target = screen.rows.key_at(4)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*target[-8:])
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "batch_id", None) == target)
        assert screen.table.cursor_key == target
