"""The results store a batch screen reads: which one, its rows for a view, and the message
its download progress travels in."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from textual.message import Message

from tui.core.results import DownloadProgress
from tui.service.api import BatchesAPI
from tui.service.results_store import ResultsStore
from tui.ui.result_rows import ResultView

_shared_stores: weakref.WeakKeyDictionary[BatchesAPI, ResultsStore] = (
    weakref.WeakKeyDictionary()
)


def store_for(api: BatchesAPI) -> ResultsStore:
    """The results store of the API's workspace (one per client, opened on first use)."""
    store = _shared_stores.get(api)
    if store is None:
        store = ResultsStore.default(api.workspace)
        _shared_stores[api] = store
    return store


def query_rows(store: ResultsStore, batch_id: str, view: ResultView, lines: int | None,
               counted: dict[str, int] | None) -> tuple[Sequence[int], dict[str, int]]:
    """The seqs of the view's rows and the results per type (`counted` when already known).

    With `lines` known and no filter, the rows are the stream order itself: no query.
    Blocking: run it in a thread.
    """
    seqs: Sequence[int]
    if view.unfiltered and lines is not None:
        seqs = range(lines - 1, -1, -1) if view.descending else range(lines)
    else:
        seqs = store.row_ids(batch_id, order_by=view.order_by, descending=view.descending,
                             **view.filters())
    return seqs, counted if counted is not None else store.type_counts(batch_id)


class DownloadProgressed(Message, bubble=False):
    """The store indexed more lines; only the newest report matters."""

    def __init__(self, progress: DownloadProgress) -> None:
        super().__init__()
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadProgressed)
