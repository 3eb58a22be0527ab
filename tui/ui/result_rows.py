"""The results table: columns, the view (type, error type, search, order), and its RowSources."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from rich.text import Text

from tui.core.batch_view import TextFilter
from tui.core.results import IndexRow
from tui.service.results_store import ResultFilter
from tui.ui.render import RETRY_CLASS_STYLES, CellStyles, count_text, inert, result_type_text
from tui.ui.widgets.vtable import Column, ListSource

CUSTOM_ID_WIDTH = 30
MESSAGE_CHARS = 200  # the index keeps at most 200 characters of an error message
MISSING = "missing"

RESULT_COLUMNS: tuple[Column, ...] = (
    Column("custom_id", "custom_id", CUSTOM_ID_WIDTH),
    Column("type", "type", 9),
    Column("error_type", "error type", 21),
    Column("stop_reason", "stop", 13),
    Column("model", "model", 17),
    Column("input_tokens", "in", 7, "right"),
    Column("output_tokens", "out", 7, "right"),
    Column("cache_read_input_tokens", "cache rd", 8, "right"),
    Column("cache_creation_input_tokens", "cache wr", 8, "right"),
    Column("error_message", "error message", 0),
)
"""Column keys are the results index's column names, so a sort asks the store directly."""

MISSING_COLUMNS: tuple[Column, ...] = (
    Column("custom_id", "custom_id", 64, sortable=False),
    Column("type", "type", 10, sortable=False),
    Column("note", "note", 0, sortable=False),
)

# Number keys of the type filters, as in the list: 1 all, then the types worth a look first.
TYPE_FILTERS: Mapping[str, frozenset[str] | None] = {
    "all": None,
    "errored": frozenset({"errored"}),
    "expired": frozenset({"expired"}),
    "canceled": frozenset({"canceled"}),
    "succeeded": frozenset({"succeeded"}),
}
TYPE_KEYS: tuple[str, ...] = (*TYPE_FILTERS, MISSING)
_PLAIN = re.compile(r"[^.^$*+?{}\[\]\\|()]+")


def parse_search(text: str) -> TextFilter | None:
    """The list's filter syntax (a case-insensitive regex, `!` inverts), plus a `re:` prefix."""
    inverted = text.startswith("!")
    body = text[1:] if inverted else text
    if body.startswith("re:"):
        body = body[3:]
    return TextFilter.parse(("!" if inverted else "") + body) if body else None


def search_filter(search: TextFilter) -> ResultFilter:
    """The store filter for a search: a fast substring match unless it needs a regex."""
    if _PLAIN.fullmatch(search.pattern):
        return {"search": search.pattern, "invert": search.inverted}
    return {"search": "(?i)" + search.pattern, "regex": True, "invert": search.inverted}


@dataclass(frozen=True, slots=True)
class ResultView:
    """Which results the table shows and in which order."""

    kind: str = "all"  # a TYPE_FILTERS key, MISSING, or any result type (malformed, unknown)
    error_type: str | None = None
    search: TextFilter | None = None
    order_by: str = "seq"
    descending: bool = False

    def filters(self) -> ResultFilter:
        out: ResultFilter = {}
        types = TYPE_FILTERS.get(self.kind, frozenset({self.kind}))
        if types is not None:
            out["types"] = types
        if self.error_type is not None:
            out["error_type"] = self.error_type
        if self.search is not None:
            out.update(search_filter(self.search))
        return out

    @property
    def unfiltered(self) -> bool:
        """Every row in stream order: the seqs are 0..lines-1, no query needed."""
        return (self.kind == "all" and self.error_type is None and self.search is None
                and self.order_by == "seq")


_versions = itertools.count(1)


def next_version() -> int:
    """A source version no other results source has used (the table's cache key)."""
    return next(_versions)


class RowReader(Protocol):
    """What the cache needs of the results store."""

    def rows_by_seq(self, batch_id: str, seqs: Sequence[int]) -> list[IndexRow]: ...


class RowCache:
    """Index rows by `seq`, read a window around the first row asked for.

    Rows of one download never change, so nothing goes stale until `clear` (a new download).
    """

    def __init__(
        self, reader: RowReader, batch_id: str, *, capacity: int = 4096, window: int = 128
    ) -> None:
        self._reader = reader
        self._batch_id = batch_id
        self._capacity = capacity
        self._window = window
        self._rows: dict[int, IndexRow] = {}
        self.reads = 0  # store round trips, for tests and benchmarks

    def clear(self) -> None:
        self._rows.clear()

    def row(self, seqs: Sequence[int], index: int) -> IndexRow | None:
        """The row of `seqs[index]`, reading `seqs` around it in one go when it is not held."""
        seq = seqs[index]
        found = self._rows.get(seq)
        if found is not None:
            return found
        start = max(0, index - self._window // 4)
        wanted = [s for s in seqs[start : start + self._window] if s not in self._rows]
        if len(self._rows) + len(wanted) > self._capacity:
            self._rows.clear()
        self.reads += 1
        for row in self._reader.rows_by_seq(self._batch_id, wanted):
            self._rows[row.seq] = row
        return self._rows.get(seq)


def _tokens(value: int | None, styles: CellStyles) -> Text:
    return Text("") if value is None else count_text(value, "" if value else styles("muted"))


def result_cells(row: IndexRow, styles: CellStyles) -> list[Text]:
    """One row's cells, in RESULT_COLUMNS order; every value from the wire goes through inert."""
    error_style = styles(RETRY_CLASS_STYLES[row.retry_class]) if row.error_type else ""
    return [
        inert(row.custom_id or "(no custom_id)", CUSTOM_ID_WIDTH * 2),
        result_type_text(row.type, styles),
        inert(row.error_type or "", 40, error_style),
        inert(row.stop_reason or "", 30, styles("warning") if row.stop_reason in (
            "max_tokens", "refusal", "model_context_window_exceeded") else ""),
        inert(row.model or "", 40, styles("muted")),
        _tokens(row.input_tokens, styles),
        _tokens(row.output_tokens, styles),
        _tokens(row.cache_read_input_tokens, styles),
        _tokens(row.cache_creation_input_tokens, styles),
        inert(row.error_message or "", MESSAGE_CHARS, styles("muted")),
    ]


class ResultRows:
    """The rows of one view: `seqs` in display order, cells read through a shared RowCache."""

    def __init__(
        self, seqs: Sequence[int], cache: RowCache, styles: CellStyles, version: int
    ) -> None:
        self.version = version
        self.seqs = seqs
        self._cache = cache
        self._styles = styles
        self._index: dict[int, int] | None = None

    def __len__(self) -> int:
        return len(self.seqs)

    def key_at(self, index: int) -> str:
        return str(self.seqs[index])

    def index_of(self, key: str) -> int | None:
        if not key.isdigit():
            return None
        seq = int(key)
        seqs = self.seqs
        if isinstance(seqs, range):
            return seqs.index(seq) if seq in seqs else None
        if self._index is None:
            self._index = {s: i for i, s in enumerate(seqs)}
        return self._index.get(seq)

    def seq_at(self, index: int) -> int:
        return self.seqs[index]

    def row_at(self, index: int) -> IndexRow | None:
        return self._cache.row(self.seqs, index)

    def cells(self, index: int) -> list[Text]:
        row = self.row_at(index)
        if row is None:  # gone under a new download; the next refresh replaces this source
            return [Text("…", self._styles("muted"))]
        return result_cells(row, self._styles)

    def row_class(self, index: int) -> str | None:
        row = self.row_at(index)
        return "dim" if row is not None and row.type == "canceled" else None


def missing_rows(custom_ids: Sequence[str], styles: CellStyles) -> ListSource:
    """Submitted requests with no result: one row each, keyed by custom_id."""
    note = Text("submitted, but no result came back", styles("muted"))
    kind = Text(MISSING, styles("failures"))
    return ListSource(custom_ids, lambda i: (inert(custom_ids[i], 64), kind, note))


def view_bar(
    view: ResultView,
    counts: Mapping[str, int],
    styles: CellStyles,
    *,
    shown: int | None,
    missing: int = 0,
    error: str | None = None,
    settled: bool = True,
) -> Text:
    """The line over the table: the number keys with their counts, the filters, rows shown."""
    bar = Text(no_wrap=True, overflow="ellipsis")
    total = sum(counts.values())
    for n, kind in enumerate(TYPE_KEYS, start=1):
        if kind == MISSING and not missing:
            continue
        value = missing if kind == MISSING else (
            total if kind == "all" else counts.get(kind, 0))
        bar.append(f" {n}", styles("accent"))
        style = "reverse bold" if kind == view.kind else (styles("muted") if not value else "")
        bar.append(f" {kind} {value:,} ", style)
    other = total - sum(counts.get(k, 0) for k in TYPE_KEYS[1:])
    if other:
        bar.append(f" · {other:,} other", styles("warning"))
    if view.kind not in TYPE_KEYS:
        bar.append(" │ ", styles("muted"))
        bar.append_text(inert(view.kind, 24, "reverse bold"))
    if view.error_type is not None:
        bar.append(" │ error type ", styles("muted"))
        bar.append_text(inert(view.error_type, 32, "bold"))
        bar.append(" (E next)", styles("muted"))
    if view.search is not None:
        bar.append(" │ /", styles("muted"))
        bar.append_text(inert(view.search.text, 40, "bold"))
        bar.append("/", styles("muted"))
    if error:
        bar.append("  ")
        bar.append_text(inert(error, 60, styles("error")))
    if shown is not None:
        bar.append(f" │ {shown:,} shown", styles("muted"))
        if shown == 0 and settled:
            bar.append(" — nothing matches: 1 shows all, esc clears the search",
                       styles("warning"))
    return bar
