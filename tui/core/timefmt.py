"""Durations and ages for people ("3m 05s", "5m ago") and timestamps for logs."""

from __future__ import annotations

import math
from datetime import UTC, datetime

_MINUTE = 60
_HOUR = 3600
_DAY = 86400
UNKNOWN_DURATION = "—"


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the clock every component injects)."""
    return datetime.now(UTC)


def human_duration(seconds: float) -> str:
    """Two units at most: "45s", "3m 12s", "2h 05m", "3d 4h"; negatives count as 0."""
    if not math.isfinite(seconds):
        return UNKNOWN_DURATION
    total = max(0, int(seconds))
    if total < _MINUTE:
        return f"{total}s"
    if total < _HOUR:
        minutes, secs = divmod(total, _MINUTE)
        return f"{minutes}m {secs:02d}s"
    if total < _DAY:
        hours, rest = divmod(total, _HOUR)
        return f"{hours}h {rest // _MINUTE:02d}m"
    days, rest = divmod(total, _DAY)
    return f"{days}d {rest // _HOUR}h"


def short_duration(seconds: float) -> str:
    """One unit, rounded down: "45s", "5m", "2h", "3d"; negatives count as 0."""
    if not math.isfinite(seconds):
        return UNKNOWN_DURATION
    total = max(0, int(seconds))
    for size, unit in ((_DAY, "d"), (_HOUR, "h"), (_MINUTE, "m")):
        if total >= size:
            return f"{total // size}{unit}"
    return f"{total}s"


def human_age(then: datetime, now: datetime) -> str:
    """How long ago `then` was: "12s ago", "5m ago", "3d ago"; "in 5m" for a future time."""
    delta = (now - then).total_seconds()
    if delta < 0:
        return f"in {short_duration(-delta)}"
    return f"{short_duration(delta)} ago"


def iso_millis(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and ``Z``: "2024-09-24T18:37:24.100Z"."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
