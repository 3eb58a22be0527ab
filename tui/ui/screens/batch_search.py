"""Search in a batch's results: the next custom_id matching a search, from the cursor on."""

from __future__ import annotations

from collections.abc import Sequence

from tui.core.batch_view import TextFilter
from tui.core.sanitize import safe_cell
from tui.service.results_store import ResultFilter, ResultsStore

SEARCH_PLACEHOLDER = ("search custom_id: text, or a regex (! inverts) · enter keeps · esc "
                      "clears")


def next_match(hits: set[int], seqs: Sequence[int], start: int, backwards: bool) -> int | None:
    """The index of the next row (wrapping around, `start` last) whose seq is a hit."""
    count, step = len(seqs), -1 if backwards else 1
    for offset in range(1, count + 1):
        index = (start + step * offset) % count
        if seqs[index] in hits:
            return index
    return None


def find_match(store: ResultsStore, batch_id: str, filters: ResultFilter,
               seqs: Sequence[int], start: int, backwards: bool) -> int | None:
    """`next_match` among the rows the store finds for `filters` (blocking: run in a thread)."""
    hits = set(store.row_ids(batch_id, **filters))
    return next_match(hits, seqs, start, backwards)


def no_match_text(search: TextFilter) -> str:
    return f"no custom_id here matches /{safe_cell(search.text, 40)}/"
