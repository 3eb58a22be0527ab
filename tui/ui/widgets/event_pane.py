"""The event pane (`L`): every event and every API call with its outcome, newest at the bottom."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import tzinfo
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.widgets import RichLog

from tui.core import events as ev
from tui.core.events import Event
from tui.core.sanitize import safe_cell
from tui.service.api import ApiCall
from tui.service.monitor import FeedEntry

MAX_LINES = 500
_ID_WIDTH = 40
_FIELD_WIDTH = 80

StyleFor = Callable[[str], Style]


def _counts(data: Mapping[str, Any]) -> str:
    return " · ".join(f"{name} {value}" for name, value in data.items() if value)


def _plain_field(value: Any) -> str:
    return safe_cell(str(value), _FIELD_WIDTH)


def describe_event(event: Event) -> str:
    """A short, inert description of an event's data."""
    data = event.data
    name = event.event
    if name == ev.BATCH_DISCOVERED:
        counts = data.get("counts") or {}
        total = sum(v for v in counts.values() if isinstance(v, int))
        return f"{_plain_field(data.get('status'))} · {total} requests"
    if name == ev.BATCH_STATUS_CHANGED:
        return f"{_plain_field(data.get('from'))} → {_plain_field(data.get('to'))}"
    if name == ev.BATCH_COUNTS_CHANGED:
        before, after = data.get("from") or {}, data.get("to") or {}
        changed = [f"{k} {before.get(k, 0)}→{v}" for k, v in after.items() if before.get(k) != v]
        return " · ".join(changed)
    if name == ev.BATCH_ENDED:
        text = _counts(data.get("counts") or {})
        rate = data.get("error_rate")
        if isinstance(rate, float) and rate:
            text += f" · {rate:.1%} failed"
        return text
    if name == ev.API_ERROR:
        parts = [data.get("kind"), data.get("status"), data.get("error_type")]
        head = " ".join(_plain_field(p) for p in parts if p)
        message = _plain_field(data.get("message") or "")
        retry = data.get("retry_in_s")
        tail = f" · retry in {retry:g}s" if isinstance(retry, int | float) else ""
        request = f" · {_plain_field(data['request_id'])}" if data.get("request_id") else ""
        return f"{head}: {message}{tail}{request}"
    if name == ev.API_RECOVERED:
        return f"after {data.get('outage_s')}s, {data.get('failures')} failures"
    return " ".join(f"{k}={_plain_field(v)}" for k, v in data.items() if v is not None)


def _event_style(event: Event) -> str:
    if event.event == ev.API_ERROR or event.event == ev.BATCH_GONE:
        return "error"
    if event.event == ev.BATCH_ENDED:
        rate = event.data.get("error_rate")
        return "failures" if isinstance(rate, float) and rate > 0 else "ended"
    if event.event == ev.API_RECOVERED:
        return "ended"
    return "event"


def format_entry(entry: FeedEntry, style: StyleFor, tz: tzinfo | None = None) -> Text:
    """One line of the pane; every piece of untrusted text goes through safe_cell."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{entry.at.astimezone(tz):%H:%M:%S} ", style("time"))
    item = entry.item
    if isinstance(item, ApiCall):
        kind = "call" if item.ok else "error"
        line.append("api ", style("muted"))
        line.append(f"{item.method:<9} ", style(kind))
        if item.target:
            line.append(safe_cell(item.target, _ID_WIDTH) + " ")
        outcome = f"{item.outcome} {item.status}" if item.status else item.outcome
        line.append(outcome, style(kind))
        line.append(f" {item.duration_s * 1000:.0f}ms", style("muted"))
        if item.request_id:
            line.append(" " + safe_cell(item.request_id, _ID_WIDTH), style("muted"))
        return line
    line.append(f"{item.event:<21} ", style(_event_style(item)))
    if item.batch_id:
        line.append(safe_cell(item.batch_id, _ID_WIDTH) + " ")
    line.append(describe_event(item), style("muted"))
    return line


class EventPane(RichLog):
    """A read-only log fed with the monitor's recent feed; hidden until `L`."""

    COMPONENT_CLASSES = {
        "event-pane--time",
        "event-pane--muted",
        "event-pane--call",
        "event-pane--error",
        "event-pane--event",
        "event-pane--ended",
        "event-pane--failures",
    }

    def __init__(self, *, tz: tzinfo | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(max_lines=MAX_LINES, wrap=False, markup=False, highlight=False,
                         auto_scroll=True, id=id, classes=classes)
        self.tz = tz
        self._last: FeedEntry | None = None

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"event-pane--{name}", partial=True)

    def feed(self, entries: Sequence[FeedEntry]) -> None:
        """Append the entries not shown yet (the feed is a sliding window of recent ones)."""
        if not entries:
            return
        start = 0
        if self._last is not None:
            for index in range(len(entries) - 1, -1, -1):
                if entries[index] is self._last:
                    start = index + 1
                    break
            else:
                self.clear()
        for entry in entries[start:]:
            self.write(format_entry(entry, self._style, self.tz))
        self._last = entries[-1]

    def reset(self) -> None:
        self.clear()
        self._last = None
