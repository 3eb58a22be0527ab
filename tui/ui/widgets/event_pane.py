"""The event pane (`L`): every event and every API call with its outcome, newest at the bottom."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import tzinfo

from rich.style import Style
from rich.text import Text
from textual.widgets import RichLog

from tui.core import events as ev
from tui.core.describe import describe_event
from tui.core.events import Event
from tui.core.sanitize import safe_cell
from tui.service.api import ApiCall
from tui.service.monitor import FeedEntry

MAX_LINES = 500
_ID_WIDTH = 40

StyleFor = Callable[[str], Style]

__all__ = ["EventPane", "describe_event", "format_entry"]


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
