"""The results table: its columns, and RowSources over the results index for one filtered view."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

from rich.text import Text

from tui.core.results import IndexRow
from tui.ui.batch_rows import CellStyles
from tui.ui.render import RETRY_CLASS_STYLES, count_text, inert, result_type_text
from tui.ui.widgets.vtable import Column, ListSource

CUSTOM_ID_WIDTH = 30
MESSAGE_CHARS = 200  # the index keeps at most 200 characters of an error message
MISSING = "missing"

RESULT_COLUMNS: tuple[Column, ...] = (
    Column("custom_id", "custom_id", CUSTOM_ID_WIDTH),
    Column("type", "type", 10),
    Column("error_type", "error type", 21),
    Column("stop_reason", "stop", 13),
    Column("model", "model", 18),
    Column("input_tokens", "in", 8, "right"),
    Column("output_tokens", "out", 8, "right"),
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
