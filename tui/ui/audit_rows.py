"""Audit records as a RowSource: columns, a one-line summary per event kind, the status line."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from rich.text import Text

from tui.core import events as ev
from tui.core.audit_filter import AuditEntry, AuditQuery
from tui.core.describe import as_dict, as_number, describe_event
from tui.core.events import ALERT_HOOK_FAILED, RESULTS_FAILED, Event
from tui.core.sanitize import safe_cell, safe_text
from tui.core.timefmt import human_duration
from tui.ui.batch_rows import CellStyles
from tui.ui.widgets.vtable import Column

TIME_WIDTH = 20
EVENT_WIDTH = 22
BATCH_WIDTH = 33
ACTOR_WIDTH = 18
DASH = "–"

COLUMNS: tuple[Column, ...] = (
    Column("time", "time (UTC)", TIME_WIDTH, sortable=False),
    Column("event", "event", EVENT_WIDTH, sortable=False),
    Column("batch", "batch", BATCH_WIDTH, sortable=False),
    Column("actor", "actor", ACTOR_WIDTH, sortable=False),
    Column("summary", "summary", 0, sortable=False),
)
TIMELINE_COLUMNS: tuple[Column, ...] = tuple(c for c in COLUMNS if c.key != "batch")
"""A timeline is one batch: its id is in the title, not on every row."""

_FAILED_KINDS = frozenset({
    ev.API_ERROR, ev.BATCH_GONE, ev.AUDIT_DROPPED, RESULTS_FAILED, ALERT_HOOK_FAILED,
})
_versions = itertools.count(1)


def summary(entry: AuditEntry) -> str:
    """A short, inert, one-line account of the record's data, by event kind."""
    return describe_event(Event(entry.event, entry.batch_id, as_dict(entry.record.get("data"))))


def row_class(entry: AuditEntry) -> str | None:
    """Failures look like failures; refusals and alerts stand out; sessions recede."""
    name = entry.event
    data = as_dict(entry.record.get("data"))
    if name in _FAILED_KINDS or (name.startswith(ev.ACTION_PREFIX)
                                 and data.get("outcome") == "failed"):
        return "failures"
    if name == ev.BATCH_ENDED:
        rate = as_number(data.get("error_rate"))
        return "failures" if rate else None
    if name.startswith(ev.ALERT_PREFIX) or data.get("outcome") == "refused":
        return "alert"
    if name.startswith("session."):
        return "dim"
    return None


def time_cell(entry: AuditEntry) -> str:
    """UTC with a ``Z``, as in the files: ``2026-05-01 09:00:03Z``."""
    return f"{entry.at:%Y-%m-%d %H:%M:%S}Z"


class AuditRows:
    """Entries in view order; `cells` formats a row only when the table shows it."""

    def __init__(
        self,
        entries: Sequence[AuditEntry],
        styles: CellStyles,
        columns: Sequence[Column] = COLUMNS,
    ) -> None:
        self.version = next(_versions)
        self.entries = entries
        self.styles = styles
        self.columns = tuple(columns)
        self._index: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def key_at(self, index: int) -> str:
        return self.entries[index].key

    def index_of(self, key: str) -> int | None:
        if self._index is None:
            self._index = {entry.key: i for i, entry in enumerate(self.entries)}
        return self._index.get(key)

    def entry_at(self, index: int) -> AuditEntry:
        return self.entries[index]

    def row_class(self, index: int) -> str | None:
        return row_class(self.entries[index])

    def cells(self, index: int) -> list[Text]:
        entry = self.entries[index]
        return [self.cell(entry, column.key) for column in self.columns]

    def cell(self, entry: AuditEntry, key: str) -> Text:
        """One cell; everything read from the file goes through safe_cell."""
        muted = self.styles("muted")
        if key == "time":
            return Text(time_cell(entry), muted)
        if key == "event":
            return Text(safe_cell(entry.event, EVENT_WIDTH))
        if key == "batch":
            batch = entry.batch_id
            return Text(safe_cell(batch, BATCH_WIDTH)) if batch else Text(DASH, muted)
        if key == "actor":
            return Text(safe_cell(entry.actor, ACTOR_WIDTH) or DASH, muted)
        if key == "summary":
            return Text(summary(entry))
        return Text()


# -- the status line ----------------------------------------------------------------------------


def _files(places: Sequence[str]) -> str:
    names = sorted({place.rsplit(":", 1)[0] for place in places})
    shown = ", ".join(safe_cell(name, 48) for name in names[:2])
    return shown + (f" and {len(names) - 2} more" if len(names) > 2 else "")


def skipped_note(torn: Sequence[str], bad: Sequence[str]) -> str | None:
    """ "1 torn line skipped in batch_x.jsonl" (and the unreadable ones), or None."""
    notes = []
    for places, what in ((torn, "torn"), (bad, "unreadable")):
        if places:
            lines = "line" if len(places) == 1 else "lines"
            notes.append(f"{len(places)} {what} {lines} skipped in {_files(places)}")
    return " · ".join(notes) or None


def window_label(query: AuditQuery) -> str:
    """ "all time", "last 1h", "last 24h", "last 7d"."""
    if query.window is None:
        return "all time"
    seconds = int(query.window.total_seconds())
    if seconds % 86400 == 0 and seconds > 86400:
        return f"last {seconds // 86400}d"
    if seconds % 3600 == 0 and seconds:
        return f"last {seconds // 3600}h"
    return f"last {human_duration(seconds)}"


def status_line(
    query: AuditQuery,
    shown: int | None,
    total: int,
    styles: CellStyles,
    *,
    skipped: str | None = None,
    error: str | None = None,
    new_above: int = 0,
    timeline: bool = False,
) -> Text:
    """Order, filters, counts and what could not be read, on one line."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(" newest first" if query.newest_first else " oldest first", styles("heading"))
    if query.batch_id is not None and not timeline:
        line.append("  batch ", styles("muted"))
        line.append(safe_cell(query.batch_id, BATCH_WIDTH))
    if query.events is not None:
        line.append("  event ", styles("muted"))
        line.append(safe_cell(query.events, 40))
    line.append(f"  {window_label(query)}", styles("muted") if query.window is None else "")
    if query.text is not None:
        line.append("  /" + safe_cell(query.text.text, 40) + "/")
    if error:
        line.append(f"  {safe_cell(error, 60)}", styles("error"))
    if shown is None:
        line.append("  ·  reading…", styles("muted"))
    else:
        counted = f"{shown:,} of {total:,}" if shown != total else f"{total:,}"
        line.append(f"  ·  {counted} records", styles("muted"))
        if shown == 0:
            hint = ("no audit records yet" if total == 0
                    else "nothing matches — 1 shows all time, esc clears /")
            line.append(f"  ·  {hint}", styles("warning"))
    if new_above:
        line.append(f"  ·  ↑ +{new_above:,} new (g)", styles("accent"))
    if skipped:
        line.append(f"  ·  {skipped}", styles("warning"))
    return line


# -- one record in full -------------------------------------------------------------------------

RECORD_CHARS = 200_000
"""Characters of a record shown in full; the file keeps the rest."""


def record_text(record: Mapping[str, Any], limit: int = RECORD_CHARS) -> Text:
    """The whole record as indented JSON, inert: controls and bidi marks shown, never markup."""
    pretty = orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                          default=str).decode()
    cut = len(pretty) > limit
    text = Text(safe_text(pretty[:limit]))
    if cut:
        text.append(f"\n… cut at {limit:,} of {len(pretty):,} characters", "italic")
    return text
