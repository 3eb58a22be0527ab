"""Result filters: their SQL over one batch's rows, and regex search over cached custom_ids."""

from __future__ import annotations

import operator
import re
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any, TypedDict

from tui.core.results import INDEX_COLUMNS
from tui.service.results_schema import SEQ_MASK, compile_pattern, id_range

ORDER_COLUMNS: frozenset[str] = frozenset(INDEX_COLUMNS) - {"offset"}
CACHED_BATCHES = 4
CACHED_VIEWS = 4  # per batch
REGEX_PREFIX = "re:"


class ResultFilter(TypedDict, total=False):
    """Filters shared by `query`, `count`, `row_ids` and `iter_raw`.

    types: result types to keep (``{"errored", "expired"}``); error_type: the nested error
    type; search: substring of custom_id (case-insensitive), or a regular expression when it
    starts with ``re:`` or `regex` is set; invert: keep what `search` does not match;
    retry_classes: RetryClass values to keep ("retryable", "permanent", ...).
    """

    types: Collection[str] | None
    error_type: str | None
    search: str | None
    regex: bool
    invert: bool
    retry_classes: Collection[str] | None


def search_regex(f: ResultFilter) -> re.Pattern[str] | None:
    """The compiled pattern when `f` searches with a regular expression, else None.

    Raises ValueError for a pattern that does not compile.
    """
    search = f.get("search")
    if not search or not (f.get("regex") or search.startswith(REGEX_PREFIX)):
        return None
    return compile_pattern(search.removeprefix(REGEX_PREFIX))


def without_search(f: ResultFilter) -> ResultFilter:
    """`f` with its custom_id search taken out."""
    rest = f.copy()
    rest.pop("search", None)
    rest.pop("regex", None)
    rest.pop("invert", None)
    return rest


def narrows_rows(f: ResultFilter) -> bool:
    """Whether `f` filters on anything but the custom_id search."""
    return any(f.get(key) is not None for key in ("types", "error_type", "retry_classes"))


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def where(
    batch_key: int | None,
    f: ResultFilter,
    order_by: str = "seq",
    classified: Collection[tuple[str, str | None]] = (),
) -> tuple[str, list[Any]]:
    """SQL conditions and parameters for `f` over one batch (None: a batch not stored).

    `classified` holds the batch's (type, error_type) pairs whose retry class is in
    `f["retry_classes"]`.
    """
    key = -1 if batch_key is None else batch_key
    clauses = ["id BETWEEN ? AND ?"]
    params: list[Any] = [*id_range(key)]
    if order_by == "custom_id":
        # The batch's partial index gives that order, if the key is spelled out as it is in
        # the index's WHERE; otherwise the id range makes the planner scan in seq order.
        clauses = [f"batch_key = {int(key)}"]
        params = []
    types = f.get("types")
    if types is not None:
        wanted = sorted(set(types))
        clauses.append(f"type IN ({', '.join('?' * len(wanted))})" if wanted else "0")
        params.extend(wanted)
    error_type = f.get("error_type")
    if error_type is not None:
        clauses.append("error_type = ?")
        params.append(error_type)
    if f.get("retry_classes") is not None:
        # `IS`, not `=`: error_type is NULL for everything but errored results.
        terms = " OR ".join("(type = ? AND error_type IS ?)" for _ in classified)
        clauses.append(f"({terms})" if classified else "0")
        params.extend(value for pair in classified for value in pair)
    search = f.get("search")
    if search:
        pattern = search_regex(f)
        if pattern is not None:
            clause = "custom_id REGEXP ?"
            params.append(pattern.pattern)
        else:
            clause = "custom_id LIKE ? ESCAPE '\\'"
            params.append(_like_pattern(search))
        clauses.append(f"NOT ({clause})" if f.get("invert") else clause)
    return " AND ".join(clauses), params


def order(order_by: str, descending: bool) -> str:
    """The ORDER BY clause; ties (and `seq`) go by row id, so the order is total."""
    if order_by not in ORDER_COLUMNS:
        raise ValueError(f"cannot order results by {order_by!r}")
    direction = "DESC" if descending else "ASC"
    if order_by == "seq":
        return f"ORDER BY id {direction}"
    return f"ORDER BY {order_by} {direction}, id {direction}"


def view_key(order_by: str, descending: bool, f: ResultFilter) -> Hashable:
    """What identifies a view's rows and order, the custom_id search left aside."""
    types, classes = f.get("types"), f.get("retry_classes")
    return (
        order_by,
        descending,
        None if types is None else frozenset(types),
        f.get("error_type"),
        None if classes is None else frozenset(str(c) for c in classes),
    )


@dataclass(frozen=True, slots=True)
class View:
    """The rows of one view in its order, and their custom_ids in the same order."""

    seqs: Sequence[int]
    ids: Sequence[str]

    def matching(self, pattern: re.Pattern[str], invert: bool) -> list[int]:
        """The seqs whose custom_id `pattern` finds (with `invert`, does not find), in order."""
        found: Iterable[Any] = map(pattern.search, self.ids)
        if invert:
            found = map(operator.not_, found)
        return list(compress(self.seqs, found))


@dataclass(frozen=True, slots=True)
class BatchIds:
    """A batch's custom_ids by seq as of `stamp`, and the views searched since."""

    stamp: tuple[Any, ...]
    by_seq: list[str]  # by_seq[seq] is the custom_id ("" where no row has that seq)
    gaps: bool = False  # some seq below the last has no row
    views: dict[Hashable, View] = field(default_factory=dict)

    def view(self, key: Hashable, seqs: Callable[[], list[int]]) -> View:
        """The view `key`, its rows in order from `seqs` the first time it is asked for.

        While a regex is typed only the pattern changes: the rows and their order are the
        same at each keystroke, so they are read once.
        """
        found = self.views.get(key)
        if found is None:
            if len(self.views) >= CACHED_VIEWS:
                del self.views[next(iter(self.views))]
            found = self.views[key] = self._view(seqs())
        return found

    def natural(self, descending: bool) -> View | None:
        """Every row, in seq order (None when seqs have gaps: ask `view` instead)."""
        if self.gaps:
            return None
        seqs = range(len(self.by_seq))
        return View(seqs[::-1], self.by_seq[::-1]) if descending else View(seqs, self.by_seq)

    def _view(self, seqs: list[int]) -> View:
        by_seq = self.by_seq
        size = len(by_seq)
        if seqs and max(seqs) >= size:  # rows that came in after this snapshot
            return View(seqs, [by_seq[seq] if seq < size else "" for seq in seqs])
        return View(seqs, list(map(by_seq.__getitem__, seqs)))


class CustomIdCache:
    """The custom_ids of the last few batches searched by regex, fetched once per batch.

    Matching 100,000 custom_ids in Python with a compiled pattern is several times faster
    than SQLite calling back into Python once per row. An entry is used while its batch's
    stamp (row count, bytes, attempt, download time) is unchanged.
    """

    def __init__(self, batches: int = CACHED_BATCHES) -> None:
        self._size = batches
        self._entries: OrderedDict[int, BatchIds] = OrderedDict()

    def get(self, conn: sqlite3.Connection, key: int, stamp: tuple[Any, ...]) -> BatchIds:
        entry = self._entries.get(key)
        if entry is None or entry.stamp != stamp:
            entry = self._entries[key] = BatchIds(stamp, *_fetch(conn, key))
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return entry

    def drop(self, key: int | None = None) -> None:
        """Forget one batch (None: all)."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)


def _fetch(conn: sqlite3.Connection, key: int) -> tuple[list[str], bool]:
    """The batch's custom_ids by seq, and whether seqs have gaps. Rows are numbered 0, 1,
    2... as they are stored, so the ids in row order are enough, unless rows are missing
    (then each row's seq is read too)."""
    first, last = id_range(key)
    ids = [row[0] for row in conn.execute(
        "SELECT custom_id FROM result_rows WHERE id BETWEEN ? AND ? ORDER BY id", (first, last)
    )]
    (top,) = conn.execute(
        "SELECT max(id) FROM result_rows WHERE id BETWEEN ? AND ?", (first, last)
    ).fetchone()
    if top is None or top - first == len(ids) - 1:
        return ids, False
    by_seq = [""] * (top - first + 1)
    for seq, custom_id in conn.execute(
        f"SELECT id & {SEQ_MASK}, custom_id FROM result_rows WHERE id BETWEEN ? AND ?",
        (first, last),
    ):
        by_seq[seq] = custom_id
    return by_seq, True
