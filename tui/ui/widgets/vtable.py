"""VirtualTable: a Line-API table that renders only the visible rows of a RowSource."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

Align = Literal["left", "right"]

GUTTER = 2
"""Cells before the first column: the mark indicator and a space."""
SEPARATOR = 1
"""Blank cells between two columns."""
MARKER = "●"
MIN_FLEX_WIDTH = 8
"""Smallest width of a flexible (width=0) last column."""
CACHE_SIZE = 1024
ROW_CLASSES = ("failures", "alert", "running", "dim")
"""Row classes with a default style (`vtable--row-<class>`); others may be added in CSS."""

_CONTROL_TO_SPACE = {code: " " for code in (*range(0x20), 0x7F)}
_versions = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Column:
    """One column: `width=0` on the last column makes it fill the remaining width."""

    key: str
    label: str
    width: int
    align: Align = "left"
    sortable: bool = True


class RowSource(Protocol):
    """What the table reads; `cells` is called only for rows on screen."""

    @property
    def version(self) -> int:
        """Changes whenever any row changed (cache invalidation)."""
        ...

    def __len__(self) -> int: ...
    def key_at(self, index: int) -> str: ...
    def index_of(self, key: str) -> int | None: ...
    def cells(self, index: int) -> Sequence[Text]: ...


class ListSource:
    """A RowSource over in-memory rows; each instance gets a fresh version unless given one."""

    def __init__(
        self,
        keys: Sequence[str],
        cells: Callable[[int], Sequence[Text]] | Sequence[Sequence[Text]],
        *,
        row_classes: Callable[[int], str | None] | Sequence[str | None] | None = None,
        version: int | None = None,
    ) -> None:
        self.version = next(_versions) if version is None else version
        self._keys = keys
        self._cells = cells
        self._row_classes = row_classes
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def key_at(self, index: int) -> str:
        return self._keys[index]

    def index_of(self, key: str) -> int | None:
        if self._index is None:
            self._index = {key: index for index, key in enumerate(self._keys)}
        return self._index.get(key)

    def cells(self, index: int) -> Sequence[Text]:
        cells = self._cells
        return cells(index) if callable(cells) else cells[index]

    def row_class(self, index: int) -> str | None:
        classes = self._row_classes
        if classes is None:
            return None
        return classes(index) if callable(classes) else classes[index]


EMPTY_SOURCE = ListSource((), (), version=0)


def fit_cell(text: Text, width: int, align: Align) -> Text:
    """A copy of `text` on one line, cut with … and padded to exactly `width` cells."""
    if width <= 0:
        return Text()
    limit = 4 * width + 8
    plain = text.plain
    fitted = text[:limit] if len(plain) > limit else text.copy()
    plain = fitted.plain
    clean = plain.translate(_CONTROL_TO_SPACE)
    if clean != plain:
        fitted = Text(clean, style=fitted.style, spans=list(fitted.spans), end="")
    fitted.end = ""
    fitted.truncate(width, overflow="ellipsis")
    fitted.align(align, width)
    return fitted


def text_segments(text: Text, console: Console) -> list[Segment]:
    """Segments of a one-line Text, with its base style (Text.render drops it without spans)."""
    segments = list(text.render(console, end=""))
    if text.style and not text.spans:
        return list(Segment.apply_style(segments, console.get_style(text.style)))
    return segments


def layout_widths(columns: Sequence[Column], view_width: int) -> list[int]:
    """Column widths for a view: a width-0 last column takes the room left (at least 8)."""
    widths = [max(0, column.width) for column in columns]
    if columns and columns[-1].width <= 0:
        used = GUTTER + sum(widths[:-1]) + SEPARATOR * (len(widths) - 1)
        widths[-1] = max(MIN_FLEX_WIDTH, view_width - used)
    return widths


def total_width(widths: Sequence[int]) -> int:
    """Cells taken by the gutter, the columns and the separators."""
    return GUTTER + sum(widths) + SEPARATOR * max(0, len(widths) - 1)


class VirtualTable(ScrollView, can_focus=True, inherit_bindings=False):
    """A keyboard-first table over a RowSource of any size; the header never scrolls."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "Down", show=False, id="table.cursor_down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="table.cursor_up"),
        Binding("g,home", "cursor_top", "Top", show=False, id="table.top"),
        Binding("G,end", "cursor_bottom", "Bottom", show=False, id="table.bottom"),
        Binding("ctrl+d", "half_page_down", "Half page down", show=False,
                id="table.half_page_down"),
        Binding("ctrl+u", "half_page_up", "Half page up", show=False, id="table.half_page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="table.page_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="table.page_up"),
        Binding("enter,l", "select", "Open", id="table.select"),
        Binding("s", "sort", "Sort", id="table.sort"),
        Binding("space", "toggle_mark", "Mark", id="table.mark"),
        Binding("left", "column_left", "Column left", show=False, id="table.column_left"),
        Binding("right", "column_right", "Column right", show=False, id="table.column_right"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "vtable--header",
        "vtable--header-cursor",
        "vtable--cursor",
        "vtable--marked",
        "vtable--marker",
        *(f"vtable--row-{name}" for name in ROW_CLASSES),
    }

    DEFAULT_CSS = """
    VirtualTable {
        height: 1fr;
        scrollbar-gutter: stable;
        background: $surface;
        color: $foreground;
        & > .vtable--header {
            background: $panel;
            color: $foreground;
            text-style: bold;
        }
        & > .vtable--header-cursor {
            color: $accent;
            text-style: bold underline;
        }
        & > .vtable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .vtable--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .vtable--marked {
            background: $accent-muted;
            text-style: bold;
        }
        & > .vtable--marker {
            color: $accent;
            text-style: bold;
        }
        & > .vtable--row-failures {
            color: $text-error;
            text-style: bold;
        }
        & > .vtable--row-alert {
            color: $text-warning;
        }
        & > .vtable--row-running {
            color: $text-primary;
        }
        & > .vtable--row-dim {
            color: $text-muted;
        }
        &:nocolor {
            & > .vtable--cursor { text-style: reverse bold; }
            & > .vtable--header { text-style: bold underline; }
            & > .vtable--row-failures { text-style: bold underline; }
            & > .vtable--row-alert { text-style: bold; }
            & > .vtable--row-dim { text-style: dim; }
        }
    }
    """

    class Highlighted(Message):
        """The key under the cursor changed (`key` is None when the table is empty)."""

        def __init__(self, table: VirtualTable, key: str | None, index: int) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.index = index

        @property
        def control(self) -> VirtualTable:
            return self.table

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, VirtualTable.Highlighted) and message.table is self.table

    class Selected(Message):
        """Enter (or `l`, or a double click) on a row."""

        def __init__(self, table: VirtualTable, key: str, index: int) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.index = index

        @property
        def control(self) -> VirtualTable:
            return self.table

    class SortRequested(Message):
        """Sort by `column_key`; `descending` is the order the table suggests (again inverts)."""

        def __init__(self, table: VirtualTable, column_key: str, descending: bool = False) -> None:
            super().__init__()
            self.table = table
            self.column_key = column_key
            self.descending = descending

        @property
        def control(self) -> VirtualTable:
            return self.table

    class MarksChanged(Message):
        """The set of marked keys changed."""

        def __init__(self, table: VirtualTable, marked: frozenset[str]) -> None:
            super().__init__()
            self.table = table
            self.marked = marked

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._columns: tuple[Column, ...] = tuple(columns)
        self._source: RowSource = EMPTY_SOURCE
        self._cursor_index = 0
        self._cursor_key: str | None = None
        self._column_cursor = 0
        self._sort_column: str | None = None
        self._sort_descending = False
        self._marked: frozenset[str] = frozenset()
        self._widths: list[int] = layout_widths(self._columns, 0)
        self._widths_for = 0
        self._style_generation = 0
        self._strips: LRUCache[Hashable, tuple[Strip, Style]] = LRUCache(CACHE_SIZE)

    # -- data ---------------------------------------------------------------------------------

    @property
    def source(self) -> RowSource:
        """The rows shown (an empty source until `set_source`)."""
        return self._source

    @property
    def columns(self) -> tuple[Column, ...]:
        return self._columns

    def set_source(self, source: RowSource) -> None:
        """Show `source`: the cursor stays on its key, the scroll offset does not move."""
        key = self._cursor_key
        if source.version != self._source.version:
            self._strips.clear()
        self._source = source
        index = min(self._cursor_index, max(0, len(source) - 1))
        if key is not None and len(source) and source.key_at(index) != key:
            found = source.index_of(key)
            if found is not None:
                index = found
        self._update_virtual_size()
        if self.scroll_y > self.max_scroll_y:
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)
        self.refresh()
        self._place_cursor(index)

    def set_columns(self, columns: Sequence[Column]) -> None:
        """Replace the columns (the column cursor is clamped)."""
        self._columns = tuple(columns)
        self._column_cursor = min(self._column_cursor, max(0, len(self._columns) - 1))
        self._widths_for = -1
        self._strips.clear()
        self._update_virtual_size()
        self.refresh()

    # -- cursor -------------------------------------------------------------------------------

    @property
    def cursor_index(self) -> int:
        """Row index of the cursor; setting it moves the cursor and scrolls it into view."""
        return self._cursor_index

    @cursor_index.setter
    def cursor_index(self, index: int) -> None:
        self._move_cursor(index)

    @property
    def cursor_key(self) -> str | None:
        """Key of the row under the cursor, None when the table is empty."""
        return self._cursor_key

    def move_to_key(self, key: str) -> bool:
        """Put the cursor on `key` (scrolling it into view); False if the key is not shown."""
        index = self._source.index_of(key)
        if index is None:
            return False
        self._move_cursor(index)
        return True

    @property
    def column_cursor(self) -> int:
        """Index of the column `s` sorts by (moved with left/right)."""
        return self._column_cursor

    @column_cursor.setter
    def column_cursor(self, index: int) -> None:
        index = min(max(0, index), max(0, len(self._columns) - 1))
        if index != self._column_cursor:
            self._column_cursor = index
            self._refresh_header()
        self._scroll_column_into_view()

    @property
    def cursor_column_key(self) -> str | None:
        if not self._columns:
            return None
        return self._columns[self._column_cursor].key

    def _move_cursor(self, index: int) -> None:
        """Move (clamped), keep the cursor visible, post Highlighted if the key changed."""
        old_index = self._cursor_index
        index = self._place_cursor(index)
        if index != old_index:
            self._refresh_row(old_index)
            self._refresh_row(index)
        self._scroll_cursor_into_view()

    def _place_cursor(self, index: int) -> int:
        """Put the cursor on row `index` (clamped to the source) and post Highlighted if
        that changed its key; returns the row it is on."""
        count = len(self._source)
        index = min(max(0, index), max(0, count - 1))
        old_key = self._cursor_key
        self._cursor_index = index
        self._cursor_key = self._source.key_at(index) if count else None
        if self._cursor_key != old_key:
            self.post_message(self.Highlighted(self, self._cursor_key, index))
        return index

    # -- sort and marks -----------------------------------------------------------------------

    @property
    def sort_column(self) -> str | None:
        """Key of the column the header marks as sorted (the owner sorts the source)."""
        return self._sort_column

    @sort_column.setter
    def sort_column(self, key: str | None) -> None:
        self._sort_column = key
        self._refresh_header()

    @property
    def sort_descending(self) -> bool:
        return self._sort_descending

    @sort_descending.setter
    def sort_descending(self, descending: bool) -> None:
        self._sort_descending = descending
        self._refresh_header()

    @property
    def marked(self) -> frozenset[str]:
        """Marked keys; they stay marked while their rows are filtered out."""
        return self._marked

    @marked.setter
    def marked(self, keys: Iterable[str]) -> None:
        marked = frozenset(keys)
        if marked != self._marked:
            self._marked = marked
            self.refresh()
            self.post_message(self.MarksChanged(self, marked))

    def toggle_mark(self) -> None:
        """Mark or unmark the row under the cursor."""
        key = self._cursor_key
        if key is not None:
            self.marked = self._marked ^ {key}

    def clear_marks(self) -> None:
        self.marked = frozenset()

    # -- actions ------------------------------------------------------------------------------

    def action_cursor_down(self) -> None:
        self._move_cursor(self._cursor_index + 1)

    def action_cursor_up(self) -> None:
        self._move_cursor(self._cursor_index - 1)

    def action_cursor_top(self) -> None:
        self._move_cursor(0)

    def action_cursor_bottom(self) -> None:
        self._move_cursor(len(self._source) - 1)

    def action_half_page_down(self) -> None:
        self._page(max(1, self._visible_rows() // 2))

    def action_half_page_up(self) -> None:
        self._page(-max(1, self._visible_rows() // 2))

    def action_page_down(self) -> None:
        self._page(max(1, self._visible_rows() - 1))

    def action_page_up(self) -> None:
        self._page(-max(1, self._visible_rows() - 1))

    def action_select(self) -> None:
        if self._cursor_key is not None:
            self.post_message(self.Selected(self, self._cursor_key, self._cursor_index))

    def action_sort(self) -> None:
        self._request_sort(self._column_cursor)

    def action_toggle_mark(self) -> None:
        self.toggle_mark()

    def action_column_left(self) -> None:
        self.column_cursor = self._column_cursor - 1

    def action_column_right(self) -> None:
        self.column_cursor = self._column_cursor + 1

    def _page(self, delta: int) -> None:
        """Move view and cursor together by `delta` rows (like vim's ctrl+d / ctrl+u)."""
        self.scroll_to(y=self.scroll_offset.y + delta, animate=False, force=True)
        self._move_cursor(self._cursor_index + delta)

    def _request_sort(self, column_index: int) -> None:
        if not 0 <= column_index < len(self._columns):
            return
        column = self._columns[column_index]
        if column.sortable:
            descending = column.key == self._sort_column and not self._sort_descending
            self.post_message(self.SortRequested(self, column.key, descending))

    # -- mouse --------------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        scroll_x, scroll_y = self.scroll_offset
        if offset.y == 0:
            column_index = self._column_at(offset.x + scroll_x)
            if column_index is not None:
                self.column_cursor = column_index
                self._request_sort(column_index)
            return
        index = scroll_y + offset.y - 1
        if index < len(self._source):
            self._move_cursor(index)
            if event.chain >= 2:
                self.action_select()

    def _column_at(self, x: int) -> int | None:
        left = GUTTER
        for index, width in enumerate(self._current_widths()):
            if left <= x < left + width + SEPARATOR:
                return index
            left += width + SEPARATOR
        return None

    # -- geometry -----------------------------------------------------------------------------

    def _view_width(self) -> int:
        return self.scrollable_content_region.width

    def _visible_rows(self) -> int:
        """Data rows on screen (the header takes one line)."""
        return max(1, self.scrollable_content_region.height - 1)

    def _current_widths(self) -> list[int]:
        view_width = self._view_width()
        if view_width != self._widths_for:
            self._widths = layout_widths(self._columns, view_width)
            self._widths_for = view_width
        return self._widths

    def _update_virtual_size(self) -> None:
        width = total_width(self._current_widths())
        self.virtual_size = Size(width, len(self._source) + 1)

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()

    def _scroll_cursor_into_view(self) -> None:
        if self.scrollable_content_region.height <= 1:
            return
        top = self.scroll_offset.y
        rows = self._visible_rows()
        index = self._cursor_index
        if index < top:
            self.scroll_to(y=index, animate=False, force=True)
        elif index >= top + rows:
            self.scroll_to(y=index - rows + 1, animate=False, force=True)

    def _scroll_column_into_view(self) -> None:
        widths = self._current_widths()
        if not widths:
            return
        column = self._column_cursor
        left = GUTTER + sum(widths[:column]) + SEPARATOR * column
        right = left + widths[column]
        view_left = self.scroll_offset.x
        view_width = self._view_width()
        if left - GUTTER < view_left:
            self.scroll_to(x=max(0, left - GUTTER), animate=False, force=True)
        elif right > view_left + view_width:
            self.scroll_to(x=right - view_width, animate=False, force=True)

    def _refresh_row(self, index: int) -> None:
        line = index - self.scroll_offset.y + 1
        if 1 <= line < self.size.height:
            self.refresh(Region(0, line, self.size.width, 1))

    def _refresh_header(self) -> None:
        self.refresh(Region(0, 0, self.size.width, 1))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_generation += 1
        self._strips.clear()

    # -- rendering ----------------------------------------------------------------------------

    def row_style(self, row_class: str | None) -> Style:
        """The style under the cells of a row of that class (the table's own for None/unknown)."""
        if row_class is None:
            return self.rich_style
        return self.get_component_rich_style(f"vtable--row-{row_class}", default=self.rich_style)

    def render_line(self, y: int) -> Strip:
        view_width = self._view_width()
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            strip, fill = self._header_strip(view_width)
        else:
            index = scroll_y + y - 1
            if index >= len(self._source):
                return Strip.blank(view_width, self.rich_style)
            strip, fill = self._row_strip(index, view_width)
        return strip.crop_extend(scroll_x, scroll_x + view_width, fill)

    def _header_strip(self, view_width: int) -> tuple[Strip, Style]:
        widths = self._current_widths()
        header_style = self.get_component_rich_style("vtable--header")
        cursor_style = self.get_component_rich_style("vtable--header-cursor", partial=True)
        console = self.app.console
        segments: list[Segment] = [Segment(" " * GUTTER, header_style)]
        for index, (column, width) in enumerate(zip(self._columns, widths, strict=True)):
            if index:
                segments.append(Segment(" " * SEPARATOR, header_style))
            label = Text(column.label, end="")
            if column.key == self._sort_column and width > 2:
                label = fit_cell(label, width - 2, "left")
                label.rstrip()
                label.append(" ▼" if self._sort_descending else " ▲")
            cell = fit_cell(label, width, column.align)
            cell_style = header_style
            if index == self._column_cursor and self.has_focus:
                cell_style = header_style + cursor_style
            segments.extend(Segment.apply_style(text_segments(cell, console), cell_style))
        strip = Strip(segments).extend_cell_length(view_width, header_style)
        return strip, header_style

    def _row_strip(self, index: int, view_width: int) -> tuple[Strip, Style]:
        source = self._source
        key = source.key_at(index)
        is_cursor = index == self._cursor_index
        is_marked = key in self._marked
        cache_key = (
            key,
            source.version,
            view_width,
            is_cursor,
            is_marked,
            self.has_focus,
            self._style_generation,
        )
        cached = self._strips.get(cache_key)
        if cached is None:
            cached = self._render_row(index, is_cursor, is_marked, view_width)
            self._strips.set(cache_key, cached)
        return cached

    def _render_row(
        self, index: int, is_cursor: bool, is_marked: bool, view_width: int
    ) -> tuple[Strip, Style]:
        """The row as a strip at least `view_width` wide, and the style that extends it."""
        source = self._source
        row_class_of: Callable[[int], str | None] | None = getattr(source, "row_class", None)
        row_style = self.row_style(row_class_of(index) if row_class_of else None)
        if is_marked:
            row_style += self.get_component_rich_style("vtable--marked", partial=True)
        cursor_style = self.get_component_rich_style("vtable--cursor") if is_cursor else None
        console = self.app.console
        cells = source.cells(index)
        segments: list[Segment] = []
        if is_marked:
            marker = self.get_component_rich_style("vtable--marker", partial=True)
            segments.append(Segment(MARKER, marker))
            segments.append(Segment(" " * (GUTTER - 1)))
        else:
            segments.append(Segment(" " * GUTTER))
        for column_index, (column, width) in enumerate(
            zip(self._columns, self._current_widths(), strict=True)
        ):
            if column_index:
                segments.append(Segment(" " * SEPARATOR))
            text = cells[column_index] if column_index < len(cells) else Text()
            segments.extend(text_segments(fit_cell(text, width, column.align), console))
        line = Segment.apply_style(segments, style=row_style, post_style=cursor_style)
        fill = row_style + cursor_style if cursor_style else row_style
        return Strip(line).extend_cell_length(view_width, fill).simplify(), fill
