"""Pilot tests of the virtual table: rendering, movement, messages, refresh stability."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.text import Text
from textual.app import App, ComposeResult
from textual.message import Message
from textual.pilot import Pilot

from tui.ui.widgets.vtable import Column, ListSource, RowSource, VirtualTable, fit_cell

COLUMNS = (
    Column("id", "ID", 10),
    Column("count", "Count", 7, align="right"),
    Column("note", "Note", 0),
)
M = TypeVar("M", bound=Message)
SIZE = (60, 12)  # 12 lines: a header and 11 data rows


def make_rows(count: int, prefix: str = "row") -> list[str]:
    return [f"{prefix}{index}" for index in range(count)]


class CountingSource:
    """A RowSource that remembers which rows had their cells read."""

    def __init__(self, keys: Sequence[str], version: int = 1) -> None:
        self.version = version
        self.keys = keys
        self.requested: set[int] = set()
        self.row_classes: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def key_at(self, index: int) -> str:
        return self.keys[index]

    def index_of(self, key: str) -> int | None:
        return self.keys.index(key) if key in self.keys else None

    def cells(self, index: int) -> Sequence[Text]:
        self.requested.add(index)
        return (Text(self.keys[index]), Text(str(index)), Text(f"note {index}"))

    def row_class(self, index: int) -> str | None:
        return self.row_classes.get(index)


class Harness(App[None]):
    def __init__(self, source: RowSource) -> None:
        super().__init__()
        self.source = source
        self.messages: list[Message] = []

    def compose(self) -> ComposeResult:
        yield VirtualTable(COLUMNS, id="table")

    def on_mount(self) -> None:
        table = self.query_one(VirtualTable)
        table.set_source(self.source)
        table.focus()

    def on_virtual_table_highlighted(self, message: VirtualTable.Highlighted) -> None:
        self.messages.append(message)

    def on_virtual_table_selected(self, message: VirtualTable.Selected) -> None:
        self.messages.append(message)

    def on_virtual_table_sort_requested(self, message: VirtualTable.SortRequested) -> None:
        self.messages.append(message)

    def on_virtual_table_marks_changed(self, message: VirtualTable.MarksChanged) -> None:
        self.messages.append(message)

    @property
    def table(self) -> VirtualTable:
        return self.query_one(VirtualTable)

    def of_type(self, kind: type[M]) -> list[M]:
        return [message for message in self.messages if isinstance(message, kind)]


def line(table: VirtualTable, y: int) -> str:
    return table.render_line(y).text


async def settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.pause()


async def test_renders_header_and_rows() -> None:
    app = Harness(CountingSource(make_rows(30)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        header = line(table, 0)
        assert "ID" in header and "Count" in header and "Note" in header
        assert line(table, 1).split()[:3] == ["row0", "0", "note"]
        assert line(table, 11).split()[0] == "row10"
        assert len(line(table, 1)) == table.scrollable_content_region.width
        assert app.of_type(VirtualTable.Highlighted)[-1].key == "row0"


async def test_numeric_column_is_right_aligned() -> None:
    app = Harness(CountingSource(make_rows(3)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = line(app.table, 2)
        # gutter 2 + id 10 + separator 1, then the 7-wide right-aligned count
        assert text[13:20] == "      1"


async def test_movement_keys() -> None:
    app = Harness(CountingSource(make_rows(100)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        await pilot.press("j", "j", "down")
        assert table.cursor_index == 3
        await pilot.press("k", "up")
        assert table.cursor_index == 1
        await pilot.press("G")
        assert table.cursor_key == "row99"
        assert table.scroll_offset.y == 100 + 1 - 12
        await pilot.press("g")
        assert table.cursor_index == 0 and table.scroll_offset.y == 0
        await pilot.press("end")
        assert table.cursor_index == 99
        await pilot.press("home")
        assert table.cursor_index == 0
        half = (12 - 1) // 2
        await pilot.press("ctrl+d")
        assert table.cursor_index == half
        await pilot.press("ctrl+d")
        assert table.cursor_index == 2 * half
        await pilot.press("ctrl+u")
        assert table.cursor_index == half
        await pilot.press("pagedown")
        assert table.cursor_index == half + 10
        await pilot.press("pageup")
        assert table.cursor_index == half
        await pilot.press("k", "g", "k")
        assert table.cursor_index == 0
        await settle(pilot)
        keys = [message.key for message in app.of_type(VirtualTable.Highlighted)]
        assert keys[0] == "row0" and keys[-1] == "row0"


async def test_cursor_stays_visible_after_moves() -> None:
    app = Harness(CountingSource(make_rows(50)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        for _ in range(15):
            await pilot.press("j")
        top = table.scroll_offset.y
        assert top <= table.cursor_index < top + 11
        assert line(table, table.cursor_index - top + 1).startswith("  row15")


async def test_enter_and_l_select_the_key() -> None:
    app = Harness(CountingSource(make_rows(10)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j", "enter", "j", "l")
        await settle(pilot)
        selected = app.of_type(VirtualTable.Selected)
        assert [(message.key, message.index) for message in selected] == [
            ("row1", 1),
            ("row2", 2),
        ]
        assert selected[0].control is app.table


async def test_sort_request_and_indicator() -> None:
    app = Harness(CountingSource(make_rows(10)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        await pilot.press("right", "s")
        await settle(pilot)
        request = app.of_type(VirtualTable.SortRequested)[-1]
        assert (request.column_key, request.descending) == ("count", False)
        table.sort_column = "count"
        assert "▲" in line(table, 0)
        await pilot.press("s")
        await settle(pilot)
        assert app.of_type(VirtualTable.SortRequested)[-1].descending is True
        table.sort_descending = True
        assert "▼" in line(table, 0) and "▲" not in line(table, 0)
        await pilot.press("left", "left", "s")
        await settle(pilot)
        assert app.of_type(VirtualTable.SortRequested)[-1].column_key == "id"
        assert table.cursor_column_key == "id"


async def test_unsortable_column_posts_nothing() -> None:
    app = Harness(CountingSource(make_rows(3)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.table.set_columns([Column("id", "ID", 10, sortable=False)])
        await pilot.press("s")
        await settle(pilot)
        assert app.of_type(VirtualTable.SortRequested) == []


async def test_space_marks_and_clear_marks() -> None:
    app = Harness(CountingSource(make_rows(10)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        await pilot.press("space", "j", "space", "j")
        assert table.marked == frozenset({"row0", "row1"})
        assert line(table, 1).startswith("● row0")
        assert line(table, 3).startswith("  row2")
        await pilot.press("k", "space")
        assert table.marked == frozenset({"row0"})
        table.clear_marks()
        assert table.marked == frozenset()
        await settle(pilot)
        assert app.of_type(VirtualTable.MarksChanged)[-1].marked == frozenset()


async def test_refresh_with_rows_inserted_above_keeps_cursor_and_scroll() -> None:
    keys = make_rows(200)
    app = Harness(CountingSource(keys))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        table.cursor_index = 60
        await settle(pilot)
        scroll_y = table.scroll_offset.y
        assert scroll_y > 0
        highlights = len(app.of_type(VirtualTable.Highlighted))
        table.set_source(CountingSource([*make_rows(5, "new"), *keys], version=2))
        await settle(pilot)
        assert table.cursor_key == "row60"
        assert table.cursor_index == 65
        assert table.scroll_offset.y == scroll_y
        assert len(app.of_type(VirtualTable.Highlighted)) == highlights


async def test_refresh_without_the_cursor_key_clamps_index() -> None:
    app = Harness(CountingSource(make_rows(50)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        table.cursor_index = 40
        table.set_source(CountingSource(make_rows(30, "other"), version=2))
        await settle(pilot)
        assert table.cursor_index == 29 and table.cursor_key == "other29"
        assert app.of_type(VirtualTable.Highlighted)[-1].key == "other29"
        table.set_source(CountingSource([], version=3))
        await settle(pilot)
        assert table.cursor_key is None
        assert app.of_type(VirtualTable.Highlighted)[-1].key is None
        await pilot.press("j", "enter", "space")
        assert app.of_type(VirtualTable.Selected) == [] and table.marked == frozenset()


async def test_only_visible_rows_are_read() -> None:
    source = CountingSource(make_rows(100_000))
    app = Harness(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert source.requested and max(source.requested) <= 10
        source.requested.clear()
        await pilot.press("G")
        await settle(pilot)
        assert source.requested and min(source.requested) >= 100_000 - 11
        source.requested.clear()
        await pilot.press("k")
        await settle(pilot)
        assert source.requested <= {99_998, 99_999}


async def test_cells_are_not_markup_and_long_cells_are_cut() -> None:
    cells = [
        (Text("[bold]x[/]"), Text("1"), Text("y" * 1_000_000)),
        (Text("bad\x1b[31m\nline"), Text("2"), Text("ok")),
    ]
    app = Harness(ListSource(["a", "b"], cells))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        first = line(app.table, 1)
        assert "[bold]x[/]" in first
        assert first.rstrip().endswith("…")
        second = line(app.table, 2)
        assert "\x1b" not in second and "\n" not in second
        assert second.startswith("  bad [31m")


async def test_row_classes_use_component_styles() -> None:
    source = CountingSource(make_rows(5))
    source.row_classes = {1: "failures"}
    app = Harness(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        failures = table.row_style("failures")
        styles = {segment.style for segment in table.render_line(2) if segment.text.strip()}
        assert all(style is not None and style.color == failures.color for style in styles)
        plain = {segment.style for segment in table.render_line(3) if segment.text.strip()}
        assert all(style is not None and style.color != failures.color for style in plain)


async def test_click_selects_row_and_header_requests_sort() -> None:
    app = Harness(CountingSource(make_rows(10)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        await pilot.click(VirtualTable, offset=(3, 4))
        assert table.cursor_index == 3
        await pilot.click(VirtualTable, offset=(15, 0))
        await settle(pilot)
        assert app.of_type(VirtualTable.SortRequested)[-1].column_key == "count"
        await pilot.double_click(VirtualTable, offset=(3, 2))
        await settle(pilot)
        assert app.of_type(VirtualTable.Selected)[-1].key == "row1"


async def test_move_to_key_scrolls_into_view() -> None:
    app = Harness(CountingSource(make_rows(500)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        assert table.move_to_key("row300")
        assert not table.move_to_key("missing")
        top = table.scroll_offset.y
        assert table.cursor_index == 300 and top <= 300 < top + 11


async def test_bindings_can_be_remapped_by_id() -> None:
    app = Harness(CountingSource(make_rows(10)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.set_keymap({"table.cursor_down": "n"})
        await pilot.press("n", "n")
        assert app.table.cursor_index == 2


async def test_narrow_view_scrolls_to_the_column_cursor() -> None:
    columns = [Column(f"c{index}", f"Col{index}", 12) for index in range(8)]
    app = Harness(CountingSource(make_rows(5)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        table.set_columns(columns)
        await settle(pilot)
        for _ in range(7):
            await pilot.press("right")
        await settle(pilot)
        assert table.scroll_offset.x > 0
        assert "Col7" in line(table, 0)
        await pilot.press("g")
        for _ in range(7):
            await pilot.press("left")
        assert table.scroll_offset.x == 0


@given(
    text=st.text(max_size=200),
    width=st.integers(min_value=1, max_value=40),
    align=st.sampled_from(["left", "right"]),
)
def test_fit_cell_is_exactly_the_width(text: str, width: int, align: str) -> None:
    fitted = fit_cell(Text(text), width, "left" if align == "left" else "right")
    assert cell_len(fitted.plain) == width
    assert "\n" not in fitted.plain


async def test_repaint_uses_the_strip_cache_until_version_changes() -> None:
    source = CountingSource(make_rows(40))
    app = Harness(source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.table
        source.requested.clear()
        table.refresh()
        await settle(pilot)
        assert source.requested == set()
        table.set_source(source)
        table.refresh()
        await settle(pilot)
        assert source.requested == set()
        source.version += 1
        table.set_source(source)
        await settle(pilot)
        assert source.requested == set(range(11))


async def test_no_color_cursor_is_reverse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = Harness(CountingSource(make_rows(5)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        styles = [segment.style for segment in app.table.render_line(1) if segment.style]
        assert styles and all(style.reverse for style in styles)


async def test_cell_styles_are_kept() -> None:
    cells = [
        (Text("cursor"), Text(""), Text("")),
        (Text("plain"), Text("7", style="red"), Text.assemble(("a", "blue"), "b")),
    ]
    app = Harness(ListSource(["a", "b"], cells))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        colours = {
            segment.text.strip(): segment.style.color.name
            for segment in app.table.render_line(2)
            if segment.style and segment.style.color and segment.text.strip()
        }
        assert colours["7"] == "red" and colours["a"] == "blue"
