"""The batches list as a person sees it: status filters, regex filter, sort keys, totals, bars."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from tui.core.models import CANCELING, IN_PROGRESS, BatchSnapshot, Outcome

# Results stay downloadable for 29 days from created_at (batches-api.md, limits).
RESULTS_RETENTION = timedelta(days=29)


class StatusFilter(StrEnum):
    """The number-key quick filters of the list (1-4)."""

    ALL = "all"
    RUNNING = "running"
    ENDED = "ended"
    FAILURES = "failures"


class Shown(StrEnum):
    """What the status column says; failures and cancels are never shown as a clean end."""

    RUNNING = "running"
    CANCELING = "canceling"
    CLEAN = "ended"
    FAILURES = "failures"
    CANCELED = "canceled"
    ARCHIVED = "archived"


def shown_status(batch: BatchSnapshot) -> Shown:
    """The status a person should read: ended-with-failures and canceled differ from clean."""
    outcome = batch.outcome
    if outcome is Outcome.RUNNING:
        return Shown.RUNNING
    if outcome is Outcome.CANCELING:
        return Shown.CANCELING
    if outcome is Outcome.ARCHIVED:
        return Shown.ARCHIVED
    if outcome is Outcome.FAILURES:
        return Shown.FAILURES
    if batch.request_counts.canceled:
        return Shown.CANCELED
    return Shown.CLEAN


def has_failures(batch: BatchSnapshot) -> bool:
    """Errored or expired requests, whatever the batch's status."""
    return batch.request_counts.failed > 0


def matches_status(batch: BatchSnapshot, status: StatusFilter) -> bool:
    if status is StatusFilter.RUNNING:
        return batch.processing_status in (IN_PROGRESS, CANCELING)
    if status is StatusFilter.ENDED:
        return batch.is_ended
    if status is StatusFilter.FAILURES:
        return has_failures(batch)
    return True


class FilterError(ValueError):
    """The text typed after `/` is not a valid regular expression."""


@dataclass(frozen=True, slots=True)
class TextFilter:
    """A case-insensitive regex over a batch's id and label; `!` in front inverts it."""

    pattern: str
    inverted: bool = False

    @classmethod
    def parse(cls, text: str) -> TextFilter | None:
        """`foo` matches, `!foo` excludes; empty text (or a lone `!`) means no filter.

        Raises FilterError for an invalid regex so the input can say so.
        """
        inverted = text.startswith("!")
        pattern = text[1:] if inverted else text
        if not pattern:
            return None
        try:
            _compile(pattern)
        except re.error as exc:
            raise FilterError(f"invalid regex: {exc}") from None
        return cls(pattern, inverted)

    @property
    def text(self) -> str:
        """The filter as typed (what `/` shows when reopened)."""
        return f"!{self.pattern}" if self.inverted else self.pattern

    def hits(self, batch_id: str, label: str | None = None) -> bool:
        """True when the regex is found in the id or the label (ignores `inverted`)."""
        regex = _compile(self.pattern)
        return bool(regex.search(batch_id) or (label and regex.search(label)))

    def accepts(self, batch_id: str, label: str | None = None) -> bool:
        """True when the row stays visible under this filter."""
        return self.hits(batch_id, label) != self.inverted


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _compile(pattern: str) -> re.Pattern[str]:
    regex = _REGEX_CACHE.get(pattern)
    if regex is None:
        if len(_REGEX_CACHE) > 64:
            _REGEX_CACHE.clear()
        regex = _REGEX_CACHE[pattern] = re.compile(pattern, re.IGNORECASE)
    return regex


SortKey = Callable[[BatchSnapshot, datetime], tuple[float, ...]]

_STATUS_ORDER: dict[Shown, int] = {
    Shown.RUNNING: 0,
    Shown.CANCELING: 1,
    Shown.FAILURES: 2,
    Shown.CANCELED: 3,
    Shown.CLEAN: 4,
    Shown.ARCHIVED: 5,
}


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value is not None else float("-inf")


def _progress(batch: BatchSnapshot) -> float:
    counts = batch.request_counts
    return (counts.total - counts.processing) / counts.total if counts.total else 0.0


def results_until(batch: BatchSnapshot) -> datetime:
    """Last moment the results of `batch` can be downloaded (29 days after creation)."""
    return batch.created_at + RESULTS_RETENTION


def deadline_of(batch: BatchSnapshot) -> datetime:
    """Expiry while running, end of results retention once ended."""
    return results_until(batch) if batch.is_ended else batch.expires_at


SORT_KEYS: Mapping[str, SortKey] = {
    "id": lambda b, now: (0.0,),  # ties fall back to the id itself (see sort_batches)
    "created": lambda b, now: (b.created_at.timestamp(),),
    "status": lambda b, now: (float(_STATUS_ORDER[shown_status(b)]),),
    "processing": lambda b, now: (float(b.request_counts.processing),),
    "succeeded": lambda b, now: (float(b.request_counts.succeeded),),
    "errored": lambda b, now: (float(b.request_counts.errored),),
    "canceled": lambda b, now: (float(b.request_counts.canceled),),
    "expired": lambda b, now: (float(b.request_counts.expired),),
    "total": lambda b, now: (float(b.request_counts.total),),
    "outcome": lambda b, now: (_progress(b), b.request_counts.error_rate),
    "error_rate": lambda b, now: (b.request_counts.error_rate, float(b.request_counts.failed)),
    "duration": lambda b, now: (b.duration_seconds(now),),
    "deadline": lambda b, now: (float(b.is_ended), deadline_of(b).timestamp()),
    "ended": lambda b, now: (_ts(b.ended_at),),
}

DEFAULT_SORT = "created"


def sort_batches(
    batches: Iterable[BatchSnapshot],
    key: str,
    descending: bool,
    now: datetime,
) -> list[BatchSnapshot]:
    """Sort by a named key; ties by creation time (newest first) then id, so order is stable."""
    by = SORT_KEYS.get(key, SORT_KEYS[DEFAULT_SORT])
    # Tie-breakers are fixed (newest first, then id) whatever the direction of the main key.
    ordered = sorted(batches, key=lambda b: b.id)
    ordered.sort(key=lambda b: b.created_at, reverse=True)
    if key == "id":
        ordered.sort(key=lambda b: b.id, reverse=descending)
        return ordered
    ordered.sort(key=lambda b: by(b, now), reverse=descending)
    return ordered


@dataclass(frozen=True, slots=True)
class ViewSpec:
    """Everything that decides which rows the list shows, and in which order."""

    status: StatusFilter = StatusFilter.ALL
    text: TextFilter | None = None
    sort_key: str = DEFAULT_SORT
    descending: bool = True

    def with_sort(self, key: str) -> ViewSpec:
        """Sort by `key`; asking again for the current key inverts the direction."""
        if key == self.sort_key:
            return replace(self, descending=not self.descending)
        return replace(self, sort_key=key, descending=True)


def apply_view(
    batches: Iterable[BatchSnapshot],
    spec: ViewSpec,
    now: datetime,
    labels: Mapping[str, str] | None = None,
) -> list[BatchSnapshot]:
    """The rows to show: filtered by status and text, then sorted."""
    names = labels or {}
    text = spec.text
    kept = [
        b
        for b in batches
        if matches_status(b, spec.status)
        and (text is None or text.accepts(b.id, names.get(b.id)))
    ]
    return sort_batches(kept, spec.sort_key, spec.descending, now)


def next_match(
    ids: Sequence[str],
    start: int,
    text: TextFilter,
    labels: Mapping[str, str] | None = None,
    *,
    backwards: bool = False,
) -> int | None:
    """Index of the next row after `start` (wrapping) whose id or label matches `text`."""
    names = labels or {}
    count = len(ids)
    if count == 0:
        return None
    step = -1 if backwards else 1
    for offset in range(1, count + 1):
        index = (start + step * offset) % count
        if text.hits(ids[index], names.get(ids[index])):
            return index
    return None


@dataclass(frozen=True, slots=True)
class Totals:
    """The header's summary of the whole workspace (not the filtered view)."""

    batches: int = 0
    running: int = 0
    ended_today: int = 0
    processing_requests: int = 0
    with_failures: int = 0


def start_of_day(now: datetime, tz: tzinfo | None = None) -> datetime:
    """Midnight of `now`'s day in `tz` (the local zone when None)."""
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def summarize(
    batches: Iterable[BatchSnapshot],
    now: datetime,
    tz: tzinfo | None = None,
) -> Totals:
    midnight = start_of_day(now, tz)
    batches_n = running = ended_today = processing = failures = 0
    for b in batches:
        batches_n += 1
        if b.is_running:
            running += 1
        if b.ended_at is not None and b.ended_at >= midnight:
            ended_today += 1
        if has_failures(b):
            failures += 1
        processing += b.request_counts.processing
    return Totals(batches_n, running, ended_today, processing, failures)


class Segment(StrEnum):
    """Buckets of the outcome bar, drawn in this order."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    PROCESSING = "processing"


def bar_segments(
    succeeded: int, failed: int, canceled: int, processing: int, width: int
) -> list[tuple[Segment, int]]:
    """Split `width` cells among the buckets in proportion (largest remainder).

    Any non-zero failure bucket gets at least one cell: a failure is never rounded away.
    Returns (segment, cells) for non-empty segments; the cells sum to `width` when total > 0.
    """
    values = [
        (Segment.SUCCEEDED, succeeded),
        (Segment.FAILED, failed),
        (Segment.CANCELED, canceled),
        (Segment.PROCESSING, processing),
    ]
    total = sum(v for _, v in values)
    if total <= 0 or width <= 0:
        return []
    exact = [v * width / total for _, v in values]
    cells = [int(x) for x in exact]
    order = sorted(range(len(values)), key=lambda i: (exact[i] - cells[i], values[i][1]),
                   reverse=True)
    for i in order[: width - sum(cells)]:
        cells[i] += 1
    if failed and cells[1] == 0:
        # Take the cell from the widest other bucket.
        donor = max((i for i in range(len(cells)) if i != 1), key=lambda i: cells[i])
        cells[donor] -= 1
        cells[1] = 1
    return [(seg, n) for (seg, _), n in zip(values, cells, strict=True) if n > 0]
