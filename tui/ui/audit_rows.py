"""Audit records as a RowSource: columns, a one-line summary per event kind, the status line."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from rich.text import Text

from tui.core import events as ev
from tui.core.alerts import ALERT_RAISED
from tui.core.audit_filter import AuditEntry, AuditQuery
from tui.core.events import Event
from tui.core.sanitize import safe_cell, safe_text
from tui.core.timefmt import human_duration
from tui.service.alerting import ALERT_HOOK_FAILED
from tui.service.results_store import RESULTS_DOWNLOADED, RESULTS_FAILED
from tui.ui.batch_rows import CellStyles
from tui.ui.render import byte_size
from tui.ui.widgets.event_pane import describe_event
from tui.ui.widgets.vtable import Column

TIME_WIDTH = 20
EVENT_WIDTH = 22
BATCH_WIDTH = 33
ACTOR_WIDTH = 18
SUMMARY_CHARS = 300
"""Longest summary built; the table cuts it to the column anyway."""
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

# Kinds the event pane already describes; the audit view says the same about them.
_PANE_KINDS = frozenset({
    ev.BATCH_DISCOVERED, ev.BATCH_STATUS_CHANGED, ev.BATCH_COUNTS_CHANGED, ev.BATCH_ENDED,
    ev.API_ERROR, ev.API_RECOVERED,
})
_FAILED_KINDS = frozenset({
    ev.API_ERROR, ev.BATCH_GONE, ev.AUDIT_DROPPED, RESULTS_FAILED, ALERT_HOOK_FAILED,
})
RESULTS_OPENED = ev.RESULTS_PREFIX + "opened"
_versions = itertools.count(1)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _scalar(value: Any) -> str:
    if isinstance(value, dict):
        return "{…}"
    if isinstance(value, list):
        return f"[{len(value)}]"
    return str(value)


def _pairs(data: Mapping[str, Any], skip: frozenset[str] = frozenset()) -> str:
    return " ".join(f"{key}={_scalar(value)}" for key, value in data.items()
                    if key not in skip and value is not None)


def _counts(value: Any) -> str:
    counts = _dict(value)
    return " · ".join(f"{name} {count:,}" for name, count in counts.items()
                      if isinstance(count, int) and not isinstance(count, bool) and count)


def _error(value: Any) -> str:
    error = value if isinstance(value, dict) else {"message": value}
    head = " ".join(str(error[k]) for k in ("type", "kind", "status") if error.get(k))
    message = error.get("message")
    if message and head:
        return f"{head}: {message}"
    return head or str(message or "")


def _action(data: Mapping[str, Any]) -> str:
    parts = [str(data.get("outcome") or "?")]
    if data.get("reason"):
        parts.append(str(data["reason"]))
    if data.get("error"):
        parts.append(_error(data["error"]))
    if data.get("label"):
        parts.append(f'label "{data["label"]}"')
    created = data.get("created")
    if isinstance(created, list) and created:
        parts.append(f"created {len(created)} batch" + ("" if len(created) == 1 else "es"))
    counts = _counts(data.get("counts"))
    if counts:
        parts.append(counts)
    return " · ".join(parts)


def _results(name: str, data: Mapping[str, Any]) -> str:
    lines, expected = _number(data.get("lines")), _number(data.get("expected"))
    got = f"{lines:,.0f}" if lines is not None else "?"
    progress = f"{got} of {expected:,.0f} lines" if expected is not None else f"{got} lines"
    if name == RESULTS_FAILED:
        head = " ".join(str(data[k]) for k in ("kind", "status", "error_type") if data.get(k))
        failed = f"{head}: {data.get('error') or '?'}" if head else str(data.get("error") or "?")
        return f"{failed} · {progress}" if lines is not None else failed
    if name == RESULTS_DOWNLOADED:
        size = _number(data.get("bytes"))
        seconds = _number(data.get("seconds"))
        parts = [progress]
        if size is not None:
            parts.append(byte_size(int(size)))
        if seconds is not None:
            parts.append(f"in {human_duration(seconds)}")
        return " · ".join(parts)
    if name == RESULTS_OPENED:
        results = _number(data.get("results"))
        shown = f"{results:,.0f} results" if results is not None else ""
        return " · ".join(p for p in (f"from {data.get('source') or '?'}", shown) if p)
    return _pairs(data)


def _session(name: str, data: Mapping[str, Any]) -> str:
    if name == ev.SESSION_ENDED:
        duration = _number(data.get("duration_s"))
        parts = [f"after {human_duration(duration)}" if duration is not None else "ended"]
        calls, batches = _number(data.get("api_calls")), _number(data.get("batches"))
        if calls is not None:
            parts.append(f"{calls:,.0f} API calls")
        if batches is not None:
            parts.append(f"{batches:,.0f} batches")
        return " · ".join(parts)
    return "monitor started" if name == ev.SESSION_STARTED else _pairs(data)


def _describe(entry: AuditEntry) -> str:
    name = entry.event
    data = _dict(entry.record.get("data"))
    if name in _PANE_KINDS:
        return describe_event(Event(name, entry.batch_id, data))
    if name.startswith(ev.ACTION_PREFIX):
        return _action(data)
    if name.startswith(ev.RESULTS_PREFIX):
        return _results(name, data)
    if name.startswith("session."):
        return _session(name, data)
    if name == ev.BATCH_GONE:
        return f"gone; last seen {data.get('last_status') or '?'}"
    if name == ev.AUDIT_DROPPED:
        return f"{data.get('count')} records dropped: {data.get('reason') or '?'}"
    if name == ALERT_RAISED:
        return f"{data.get('severity') or '?'} {data.get('kind') or '?'}: {data.get('message')}"
    if name == ALERT_HOOK_FAILED:
        return f"on_alert command failed ({data.get('kind') or '?'}): {data.get('error')}"
    return _pairs(data)


def summary(entry: AuditEntry) -> str:
    """A short, inert, one-line account of the record's data, by event kind."""
    try:
        text = _describe(entry)
    except Exception:  # a record from an older or foreign writer: show its fields as they are
        text = _pairs(_dict(entry.record.get("data")))
    return safe_cell(text, SUMMARY_CHARS)


def row_class(entry: AuditEntry) -> str | None:
    """Failures look like failures; refusals and alerts stand out; sessions recede."""
    name = entry.event
    data = _dict(entry.record.get("data"))
    if name in _FAILED_KINDS or (name.startswith(ev.ACTION_PREFIX)
                                 and data.get("outcome") == "failed"):
        return "failures"
    if name == ev.BATCH_ENDED:
        rate = _number(data.get("error_rate"))
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
