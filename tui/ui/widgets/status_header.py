"""The two-line header: where you are, totals, cost today, freshness, PAUSED / DEGRADED."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tui.core.batch_view import Totals
from tui.core.sanitize import safe_cell
from tui.core.timefmt import short_duration
from tui.service.monitor import MonitorState

FETCHING_GLYPH = "⟳"


@dataclass(frozen=True, slots=True)
class HeaderInfo:
    """What the header shows besides the monitor state."""

    where: str  # profile / workspace, or "demo"
    read_only: bool = False
    tz: tzinfo | None = None  # for clock times (retry at …); None = local


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def freshness(state: MonitorState, now: datetime) -> str:
    """ "updated 12s ago · next in 48s" (or as much of it as is known)."""
    parts: list[str] = []
    if state.last_sync is not None:
        parts.append(f"updated {short_duration(_seconds(now, state.last_sync))} ago")
    elif not state.synced:
        parts.append("loading…")
    if state.next_poll_at is not None and not state.paused and state.degraded is None:
        parts.append(f"next in {short_duration(max(0.0, _seconds(state.next_poll_at, now)))}")
    return " · ".join(parts)


class StatusHeader(Widget):
    """Renders from (info, state, totals, now); repaints only when its text changes."""

    COMPONENT_CLASSES = {
        "status-header--title",
        "status-header--ro",
        "status-header--muted",
        "status-header--paused",
        "status-header--degraded",
        "status-header--failures",
        "status-header--warning",
    }

    def __init__(
        self, info: HeaderInfo, *, name: str | None = None, id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.info = info
        self._state = MonitorState()
        self._totals = Totals()
        self._now: datetime | None = None
        self._cost_today: str | None = None
        self._text = Text()
        self._key: tuple[object, ...] = ()

    def set_info(self, info: HeaderInfo) -> None:
        self.info = info
        self._rebuild()

    def show(self, state: MonitorState, totals: Totals, now: datetime, *,
             cost_today: str | None = None) -> None:
        """`cost_today`: what the stored batches that ended today cost ("$12.30")."""
        self._state, self._totals, self._now = state, totals, now
        self._cost_today = cost_today
        self._rebuild()

    def tick(self, now: datetime) -> None:
        self._now = now
        self._rebuild()

    @property
    def plain(self) -> str:
        return self._text.plain

    def on_mount(self) -> None:
        self._rebuild()

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"status-header--{name}", partial=True)

    def _rebuild(self) -> None:
        if not self.is_mounted:
            return
        text = self._build_text()
        key = (text.plain, tuple((s.start, s.end, str(s.style)) for s in text.spans))
        if key != self._key:
            self._key = key
            self._text = text
            self.refresh()

    def _build_text(self) -> Text:
        info, state, totals = self.info, self._state, self._totals
        now = self._now
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(" batchtop ", self._style("title"))
        line.append(" ")
        line.append(safe_cell(info.where, 40))
        if info.read_only:
            line.append(" ")
            line.append("[RO]", self._style("ro"))
        line.append("  │  ", self._style("muted"))
        line.append(f"{totals.running:,} running")
        line.append(" · ", self._style("muted"))
        line.append(f"{totals.ended_today:,} ended today")
        line.append(" · ", self._style("muted"))
        line.append(f"{totals.processing_requests:,} requests processing")
        if totals.with_failures:
            line.append(" · ", self._style("muted"))
            line.append(f"{totals.with_failures:,} with failures", self._style("failures"))
        if self._cost_today is not None:
            line.append(" · ", self._style("muted"))
            line.append(safe_cell(self._cost_today, 30))
            line.append(" cost today", self._style("muted"))
        line.append("\n")
        line.append(" ")
        line.append(FETCHING_GLYPH if state.fetching else " ", self._style("muted"))
        line.append(" ")
        if now is not None:
            line.append(freshness(state, now), self._style("muted"))
        if state.paused:
            line.append("  ")
            line.append(" PAUSED ", self._style("paused"))
            line.append(" p resumes", self._style("muted"))
        degraded = state.degraded
        if degraded is not None:
            line.append("  ")
            line.append(" DEGRADED ", self._style("degraded"))
            what = degraded.error_type or degraded.kind
            if degraded.status:
                what = f"{what} ({degraded.status})"
            line.append(" ")
            line.append(safe_cell(what, 40), self._style("warning"))
            retry_local = degraded.next_retry_at.astimezone(info.tz)
            line.append(f" · retry at {retry_local:%H:%M:%S}")
            if now is not None:
                wait = max(0.0, _seconds(degraded.next_retry_at, now))
                line.append(f" (in {short_duration(wait)})")
            line.append(" · r retries now", self._style("muted"))
        if state.audit_error:
            line.append("  ")
            line.append(safe_cell(state.audit_error, 60), self._style("warning"))
        return line

    def render(self) -> Text:
        return self._text
