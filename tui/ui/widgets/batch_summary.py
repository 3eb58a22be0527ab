"""The batch screen's header: id, status, times, counts with a bar, results, lineage, cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum

from rich.text import Text
from textual.widget import Widget

from tui.core.batch_view import results_until
from tui.core.cost import BatchCost, format_rate, format_usd
from tui.core.models import COUNT_FIELDS, BatchSnapshot
from tui.core.results import DownloadProgress, StoreStatus
from tui.core.sanitize import safe_cell
from tui.core.timefmt import human_duration, short_duration
from tui.ui.render import CellStyles, byte_size, count_text, outcome_bar, rate_label, status_text

BAR_WIDTH = 24
WINDOW_BAR = 48
SEP = " · "
ID_WIDTH = 64
LABEL_WIDTH = 60
NOTE_WIDTH = 150
MAX_CHILDREN = 4  # retry batches named in the lineage line; the rest are counted
MAX_NOTES = 4  # cost warnings shown; the rest are counted


class Phase(StrEnum):
    """Where the results of the open batch stand."""

    LOADING = "loading"  # looking the batch up
    NOT_FOUND = "not_found"  # the API does not know it (or the lookup failed)
    LIVE = "live"  # running or canceling: results do not exist yet
    DOWNLOADING = "downloading"
    READY = "ready"  # every result is in the store
    INCOMPLETE = "incomplete"  # the download ended short or failed
    UNAVAILABLE = "unavailable"  # archived before it was downloaded here


@dataclass(frozen=True, slots=True)
class ResultsState:
    """What the results store holds or is doing for the open batch."""

    phase: Phase = Phase.LOADING
    progress: DownloadProgress | None = None
    status: StoreStatus | None = None
    error: str | None = None  # already reduced to one line by the screen
    submitted: int | None = None  # requests the ledger knows were sent (None: unknown)
    missing: int | None = None  # of those, how many have no result


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where the batch sits among retries, as the request ledger knows it."""

    parent: str | None = None  # the batch this one retried
    generation: int = 0  # 0 for an original, N for the N-th retry down a lineage
    children: tuple[tuple[str, int], ...] = ()  # (retry batch id, its generation)

    @property
    def related(self) -> bool:
        """Part of a retry family (so the merged view means something)."""
        return self.parent is not None or bool(self.children)


@dataclass(frozen=True, slots=True)
class HeaderNotes:
    """What the header shows beside the API's state: local label, lineage, cost."""

    label: str | None = None
    lineage: Text | None = None
    cost: Text | None = None


def clock_time(value: datetime, tz: tzinfo | None) -> str:
    """A timestamp for people, in the display zone: "2025-03-01 14:05"."""
    return f"{value.astimezone(tz):%Y-%m-%d %H:%M}"


def _until(then: datetime, now: datetime) -> str:
    left = (then - now).total_seconds()
    return f"in {human_duration(left)}" if left > 0 else f"{short_duration(-left)} ago"


def _timing(batch: BatchSnapshot, now: datetime, tz: tzinfo | None, styles: CellStyles) -> Text:
    muted = styles("muted")
    line = Text(" ")
    line.append("created ", muted)
    line.append(clock_time(batch.created_at, tz))
    if batch.ended_at is not None:
        line.append(SEP + "ended ", muted)
        line.append(clock_time(batch.ended_at, tz))
        line.append(SEP + "took ", muted)
        line.append(human_duration(batch.duration_seconds(now)))
        if batch.archived_at is not None:
            line.append(SEP + "archived ", muted)
            line.append(clock_time(batch.archived_at, tz), styles("warning"))
            line.append(" (results no longer downloadable)", muted)
        else:
            until = results_until(batch)
            line.append(SEP + "results until ", muted)
            line.append(f"{clock_time(until, tz)} ({_until(until, now)})")
        return line
    line.append(SEP + "elapsed ", muted)
    line.append(human_duration(batch.duration_seconds(now)))
    line.append(SEP + "expires ", muted)
    left = (batch.expires_at - now).total_seconds()
    line.append(f"{clock_time(batch.expires_at, tz)} ({_until(batch.expires_at, now)})",
                styles("warning") if left < 3600 else "")
    if batch.cancel_initiated_at is not None:
        line.append(SEP + "cancel requested ", muted)
        line.append(clock_time(batch.cancel_initiated_at, tz), styles("canceling"))
    return line


def _counts(batch: BatchSnapshot, styles: CellStyles) -> Text:
    counts = batch.request_counts
    line = Text(" ")
    line.append_text(outcome_bar(counts, BAR_WIDTH, styles))
    line.append("  ")
    if not batch.is_ended:
        line.append("processing ", styles("muted"))
        line.append_text(count_text(counts.processing, styles("running")))
        line.append(SEP + "the other counts arrive when the batch ends", styles("muted"))
        return line
    for n, name in enumerate(COUNT_FIELDS[1:]):
        value: int = getattr(counts, name)
        if n:
            line.append(SEP, styles("muted"))
        line.append(f"{name} ", styles("muted"))
        style = styles("muted") if not value else ""
        if value and name in ("errored", "expired"):
            style = styles("failures")
        elif value and name == "canceled":
            style = styles("canceled")
        line.append_text(count_text(value, style))
    if counts.processing:
        line.append(SEP + "processing ", styles("muted"))
        line.append_text(count_text(counts.processing))
    line.append("   error rate ", styles("muted"))
    rate = counts.error_rate
    line.append(rate_label(rate), styles("failures") if rate else styles("muted"))
    return line


def _stored(status: StoreStatus, styles: CellStyles) -> Text:
    """Malformed lines and unknown result types: counted, never hidden."""
    line = Text()
    if status.malformed:
        line.append(SEP)
        line.append(f"{status.malformed:,} malformed line{'s' * (status.malformed != 1)}",
                    styles("warning"))
    if status.unknown:
        line.append(SEP)
        line.append(f"{status.unknown:,} of an unknown result type", styles("warning"))
    return line


def _results(batch: BatchSnapshot | None, state: ResultsState, tz: tzinfo | None,
             styles: CellStyles) -> Text:
    muted = styles("muted")
    line = Text(" ")
    phase, status, progress = state.phase, state.status, state.progress
    if phase is Phase.LOADING:
        line.append("looking the batch up…", muted)
    elif phase is Phase.NOT_FOUND:
        line.append(safe_cell(state.error or "this batch is not known to the API", 140),
                    styles("error"))
        line.append(" — r tries again", muted)
    elif phase is Phase.LIVE:
        when = clock_time(batch.expires_at, tz) if batch is not None else "its expiry"
        line.append("results appear when every request has finished or at ")
        line.append(when, styles("heading"))
        line.append(SEP + "this screen downloads them by itself", muted)
    elif phase is Phase.DOWNLOADING:
        line.append("downloading results ", styles("running"))
        if progress is not None:
            line.append(f"{progress.lines:,} of {progress.expected:,} lines")
            line.append(SEP + byte_size(progress.bytes))
            if progress.attempt > 1:
                line.append(SEP + f"attempt {progress.attempt}", styles("warning"))
            if progress.malformed or progress.unknown:
                line.append_text(_stored(StoreStatus(
                    progress.batch_id, False, progress.expected, progress.lines, progress.bytes,
                    progress.malformed, progress.unknown), styles))
        else:
            line.append("connecting…", muted)
    elif phase is Phase.READY and status is not None:
        line.append(f"{status.results:,} results", styles("heading"))
        line.append(" stored locally", muted)
        if status.seconds is not None:
            line.append(f"{SEP}downloaded in {status.seconds:.1f}s{SEP}{byte_size(status.bytes)}",
                        muted)
        line.append_text(_stored(status, styles))
    elif phase is Phase.INCOMPLETE:
        if status is not None:
            line.append(f"{status.results:,} of {status.expected:,} results; "
                        f"{status.missing:,} missing", styles("failures"))
        else:
            line.append("the results could not be downloaded", styles("failures"))
        line.append(" — press r to retry", styles("heading"))
        if state.error:
            line.append(SEP)
            line.append(safe_cell(state.error, 100), styles("error"))
        if status is not None:
            line.append_text(_stored(status, styles))
    elif phase is Phase.UNAVAILABLE:
        line.append("results are no longer available: the batch was archived 29 days after "
                    "creation", styles("warning"))
    return line


def _completeness(state: ResultsState, styles: CellStyles) -> Text | None:
    if state.submitted is None or state.missing is None:
        return None
    line = Text(" ")
    if state.missing == 0:
        line.append(f"all {state.submitted:,} submitted requests came back", styles("muted"))
        return line
    line.append(f"{state.missing:,} of {state.submitted:,} submitted requests did not come back",
                styles("failures"))
    line.append(" — 6 lists them", styles("muted"))
    return line


def lineage_text(lineage: Lineage, styles: CellStyles) -> Text | None:
    """ "retry of msgbatch_… (gen 1) · retried as msgbatch_… (gen 2) · M merged view"."""
    if not lineage.related:
        return None
    muted, heading = styles("muted"), styles("heading")
    line = Text()
    if lineage.parent is not None:
        line.append("retry of ", muted)
        line.append(safe_cell(lineage.parent, ID_WIDTH), heading)
        line.append(f" (gen {lineage.generation})", muted)
    if lineage.children:
        if lineage.parent is not None:
            line.append(SEP, muted)
        line.append("retried as ", muted)
        for n, (child, generation) in enumerate(lineage.children[:MAX_CHILDREN]):
            if n:
                line.append(", ", muted)
            line.append(safe_cell(child, ID_WIDTH), heading)
            line.append(f" (gen {generation})", muted)
        more = len(lineage.children) - MAX_CHILDREN
        if more > 0:
            line.append(f" and {more:,} more", muted)
    line.append(SEP + "M shows the final outcome of every request", muted)
    return line


def cost_text(cost: BatchCost, notes: Sequence[str], styles: CellStyles) -> Text:
    """ "cost $12.34 at batch rates · saved $12.34 vs standard · cache hits 42%", then one
    line per warning (models without a price, results not billed at the batch tier)."""
    muted = styles("muted")
    line = Text()
    line.append("cost ", muted)
    line.append(cost.label(), styles("heading"))
    if not cost.lines:
        line.append(SEP + "no request succeeded, so nothing was billed", muted)
    elif any(item.priced for item in cost.lines):
        line.append(" at batch rates", muted)
        line.append(SEP + "saved ", muted)
        line.append(format_usd(cost.saving))
        line.append(" vs standard", muted)
    if cost.cache_hit_rate is not None:
        line.append(SEP + "cache hits ", muted)
        line.append(format_rate(cost.cache_hit_rate))
    warnings = [*cost.warnings, *notes]
    for warning in warnings[:MAX_NOTES]:
        line.append("\n ⚠ ", styles("warning"))
        line.append(safe_cell(warning, NOTE_WIDTH), styles("warning"))
    if len(warnings) > MAX_NOTES:
        line.append(f"\n … and {len(warnings) - MAX_NOTES:,} more notes", muted)
    return line


def summary_text(
    batch_id: str,
    batch: BatchSnapshot | None,
    state: ResultsState,
    now: datetime,
    styles: CellStyles,
    tz: tzinfo | None = None,
    notes: HeaderNotes | None = None,
) -> Text:
    """The whole header as inert Text (a pure function of its inputs)."""
    notes = notes or HeaderNotes()
    head = Text(" ")
    head.append("batch ", styles("muted"))
    head.append(safe_cell(batch_id, ID_WIDTH), styles("heading"))
    if notes.label:
        head.append(f"  “{safe_cell(notes.label, LABEL_WIDTH)}”")
    lines = [head]
    if batch is not None:
        head.append("  ")
        head.append_text(status_text(batch, styles))
        head.append(f"  {batch.request_counts.total:,} requests")
        lines.append(_timing(batch, now, tz, styles))
        lines.append(_counts(batch, styles))
    lines.append(_results(batch, state, tz, styles))
    completeness = _completeness(state, styles)
    if completeness is not None:
        lines.append(completeness)
    for extra in (notes.lineage, notes.cost):
        if extra is not None:
            lines.append(Text(" ").append_text(extra))
    return Text("\n").join(lines)


class BatchSummary(Widget):
    """Renders `summary_text`; the screen calls `show` whenever anything in it changed."""

    DEFAULT_CSS = """
    BatchSummary {
        height: auto;
        background: $panel;
    }
    """

    def __init__(self, batch_id: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.batch_id = batch_id
        self._text = Text(f" batch {safe_cell(batch_id, ID_WIDTH)}")
        self.notes = HeaderNotes()
        """Label, lineage and cost lines; shown from the next `show`."""

    @property
    def plain(self) -> str:
        return self._text.plain

    def show(self, batch: BatchSnapshot | None, state: ResultsState, now: datetime,
             styles: CellStyles, tz: tzinfo | None = None) -> None:
        text = summary_text(self.batch_id, batch, state, now, styles, tz, self.notes)
        if text.plain != self._text.plain or text.spans != self._text.spans:
            self._text = text
            self.refresh(layout=True)

    def render(self) -> Text:
        return self._text


def live_text(batch: BatchSnapshot, now: datetime, styles: CellStyles,
              tz: tzinfo | None = None) -> Text:
    """The body of the screen while the batch runs: what is known, and what happens next."""
    counts = batch.request_counts
    muted = styles("muted")
    window = max(1.0, (batch.expires_at - batch.created_at).total_seconds())
    used = min(1.0, batch.duration_seconds(now) / window)
    cells = round(used * WINDOW_BAR)
    text = Text()
    text.append_text(status_text(batch, styles))
    text.append(f"   {counts.processing:,} of {counts.total:,} requests still processing\n\n",
                styles("heading"))
    text.append("window  ", muted)
    text.append("█" * cells, styles("running"))
    text.append("░" * (WINDOW_BAR - cells), muted)
    text.append(f"  {human_duration(batch.duration_seconds(now))} of "
                f"{human_duration(window)} used", muted)
    text.append(" · expires ", muted)
    text.append(clock_time(batch.expires_at, tz), styles("heading"))
    text.append(f" ({_until(batch.expires_at, now)})\n\n", muted)
    if batch.cancel_initiated_at is not None:
        text.append("Cancel requested at ")
        text.append(clock_time(batch.cancel_initiated_at, tz), styles("canceling"))
        text.append(": requests already being processed finish; the others end as canceled.\n")
    text.append("Results appear when every request has finished, or when the window closes, "
                "whichever comes first. Requests not sent by then end as expired.\n")
    text.append("Until then the API reports only how many requests are still processing: "
                "succeeded, errored, canceled and expired are counted once the batch ends.\n",
                muted)
    text.append("This screen polls the batch every few seconds while it is open and downloads "
                "the results as soon as it ends; r polls now.", muted)
    return text
