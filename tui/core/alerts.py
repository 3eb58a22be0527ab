"""Alert rules over batch snapshots, and which alerts already fired (each once per batch)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tui.core.events import Event
from tui.core.models import IN_PROGRESS, BatchSnapshot, format_time
from tui.core.sanitize import safe_text
from tui.core.timefmt import human_duration

ALERT_RAISED = "alert.raised"
RETENTION = timedelta(days=29)  # results stay downloadable this long after created_at


class AlertKind(StrEnum):
    ERROR_RATE = "error_rate"
    SLA = "sla"
    EXPIRING = "expiring"
    ARCHIVE_SOON = "archive_soon"
    ENDED = "ended"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


SEVERITY: Mapping[AlertKind, Severity] = {
    AlertKind.ERROR_RATE: Severity.ERROR,
    AlertKind.SLA: Severity.WARNING,
    AlertKind.EXPIRING: Severity.WARNING,
    AlertKind.ARCHIVE_SOON: Severity.WARNING,
    AlertKind.ENDED: Severity.INFO,
}
_KIND_VALUES = frozenset(kind.value for kind in AlertKind)
_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a person should know about one batch; `message` is plain text, never markup."""

    kind: AlertKind
    batch_id: str
    severity: Severity
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The object a user's ``on_alert`` command reads on stdin."""
        return {
            "event": ALERT_RAISED,
            "kind": self.kind.value,
            "batch_id": self.batch_id,
            "severity": self.severity.value,
            "message": self.message,
            "at": format_time(self.at),
            "data": dict(self.data),
        }

    def to_event(self) -> Event:
        """The ``alert.raised`` audit event (what `AlertTracker.seed` reads back)."""
        return Event(
            ALERT_RAISED,
            self.batch_id,
            {
                "kind": self.kind.value,
                "severity": self.severity.value,
                "message": self.message,
                "details": dict(self.data),
            },
        )


@dataclass(frozen=True, slots=True)
class AlertRules:
    """Thresholds, in seconds where not a ratio.

    `recent_end_s` keeps old news quiet: an ended batch alerts (ended, error rate) only if it
    was seen running, or it ended within this long before it was first evaluated.
    """

    error_rate: float = 0.10
    sla_seconds: float = 3600.0
    expiring_window_s: float = 3600.0
    archive_window_s: float = 48 * 3600.0
    recent_end_s: float = 3600.0
    enabled: frozenset[AlertKind] = frozenset(AlertKind)


def _alert(kind: AlertKind, batch: BatchSnapshot, now: datetime, message: str,
           **data: Any) -> Alert:
    return Alert(kind, batch.id, SEVERITY[kind], message, data, now)


def _counts_text(batch: BatchSnapshot) -> str:
    counts = batch.request_counts.to_api()
    parts = [f"{value:,} {name}" for name, value in counts.items() if value]
    return ", ".join(parts) or "no requests"


def _error_rate(batch: BatchSnapshot, now: datetime, rules: AlertRules) -> Alert | None:
    counts = batch.request_counts
    rate = counts.error_rate
    if rate <= rules.error_rate:
        return None
    return _alert(
        AlertKind.ERROR_RATE, batch, now,
        f"{safe_text(batch.id)}: {rate:.1%} of {counts.total:,} requests failed "
        f"({counts.errored:,} errored, {counts.expired:,} expired; "
        f"alert above {rules.error_rate:.0%})",
        error_rate=rate, threshold=rules.error_rate, errored=counts.errored,
        expired=counts.expired, total=counts.total,
    )


def _ended(batch: BatchSnapshot, now: datetime, rules: AlertRules) -> Alert | None:
    how = "canceled" if batch.cancel_initiated_at is not None else "ended"
    duration = batch.duration_seconds(now)
    return _alert(
        AlertKind.ENDED, batch, now,
        f"{safe_text(batch.id)} {how} after {human_duration(duration)}: {_counts_text(batch)}",
        counts=batch.request_counts.to_api(), duration_s=duration,
        canceled=batch.cancel_initiated_at is not None,
    )


def _sla(batch: BatchSnapshot, now: datetime, rules: AlertRules) -> Alert | None:
    elapsed = batch.duration_seconds(now)
    if batch.processing_status != IN_PROGRESS or elapsed <= rules.sla_seconds:
        return None
    return _alert(
        AlertKind.SLA, batch, now,
        f"{safe_text(batch.id)} has been running for {human_duration(elapsed)}, "
        f"longer than the {human_duration(rules.sla_seconds)} SLA",
        elapsed_s=elapsed, sla_s=rules.sla_seconds, processing=batch.request_counts.processing,
    )


def _expiring(batch: BatchSnapshot, now: datetime, rules: AlertRules) -> Alert | None:
    processing = batch.request_counts.processing
    left = (batch.expires_at - now).total_seconds()
    if batch.processing_status != IN_PROGRESS or not processing or left > rules.expiring_window_s:
        return None
    return _alert(
        AlertKind.EXPIRING, batch, now,
        f"{safe_text(batch.id)} expires in {human_duration(left)} with {processing:,} requests "
        f"still processing; unprocessed requests will end as expired",
        expires_at=format_time(batch.expires_at), remaining_s=max(0.0, left),
        processing=processing,
    )


def _archive_soon(batch: BatchSnapshot, now: datetime, rules: AlertRules) -> Alert | None:
    archive_at = batch.created_at + RETENTION
    left = (archive_at - now).total_seconds()
    if not batch.is_ended or batch.archived_at is not None or left > rules.archive_window_s:
        return None
    when = f"in {human_duration(left)}" if left > 0 else "now"
    return _alert(
        AlertKind.ARCHIVE_SOON, batch, now,
        f"results of {safe_text(batch.id)} will be archived {when} (29 days after creation) "
        f"and are not saved locally",
        archive_at=format_time(archive_at), remaining_s=max(0.0, left),
    )


_Rule = Callable[[BatchSnapshot, datetime, AlertRules], Alert | None]
_RUNNING_RULES: tuple[tuple[AlertKind, _Rule], ...] = (
    (AlertKind.EXPIRING, _expiring),
    (AlertKind.SLA, _sla),
)
_NEWS_RULES: tuple[tuple[AlertKind, _Rule], ...] = (
    (AlertKind.ERROR_RATE, _error_rate),
    (AlertKind.ENDED, _ended),
)


class AlertTracker:
    """Evaluates the rules and remembers which (batch, kind) already fired, so each fires once."""

    def __init__(self, rules: AlertRules | None = None) -> None:
        self.rules = rules or AlertRules()
        self._fired: dict[str, set[AlertKind]] = {}
        self._seen_running: set[str] = set()

    def seed(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Remember alerts from audit records (``alert.raised``) so a restart does not re-fire.

        Returns how many were taken; other records and malformed ones are skipped.
        """
        taken = 0
        for record in records:
            data = record.get("data")
            batch_id = record.get("batch_id")
            if record.get("event") != ALERT_RAISED or not isinstance(batch_id, str):
                continue
            kind = data.get("kind") if isinstance(data, Mapping) else None
            if not isinstance(kind, str) or kind not in _KIND_VALUES:
                continue
            self.mark(batch_id, AlertKind(kind))
            taken += 1
        return taken

    def mark(self, batch_id: str, kind: AlertKind) -> None:
        self._fired.setdefault(batch_id, set()).add(kind)

    def has_fired(self, batch_id: str, kind: AlertKind) -> bool:
        return kind in self._fired.get(batch_id, ())

    def kinds(self, batch_id: str) -> frozenset[AlertKind]:
        """Every kind that fired for the batch (to highlight its row)."""
        return frozenset(self._fired.get(batch_id, ()))

    def worst(self, batch_id: str) -> Severity | None:
        """The most severe alert that fired for the batch, None if none did."""
        severities = [SEVERITY[kind] for kind in self._fired.get(batch_id, ())]
        return max(severities, key=_RANK.__getitem__) if severities else None

    def forget(self, batch_id: str) -> None:
        """Drop a batch that is gone (deleted); its alerts cannot fire again anyway."""
        self._fired.pop(batch_id, None)
        self._seen_running.discard(batch_id)

    def _is_news(self, batch: BatchSnapshot, now: datetime) -> bool:
        if batch.id in self._seen_running:
            return True
        if batch.ended_at is None:
            return False
        return (now - batch.ended_at).total_seconds() <= self.rules.recent_end_s

    def _due(self, batch: BatchSnapshot, now: datetime) -> Iterable[tuple[AlertKind, _Rule]]:
        if batch.is_running:
            self._seen_running.add(batch.id)
            yield from _RUNNING_RULES
        elif batch.is_ended:
            if self._is_news(batch, now):
                yield from _NEWS_RULES
            yield AlertKind.ARCHIVE_SOON, _archive_soon

    def evaluate(self, batches: Iterable[BatchSnapshot], now: datetime,
                 stored: Callable[[str], bool]) -> list[Alert]:
        """The alerts that became due since the last call; each is returned only once.

        `stored(batch_id)` says whether the batch's results are in the local store; it is
        asked only about ended batches close to being archived.
        """
        alerts: list[Alert] = []
        for batch in batches:
            for kind, rule in self._due(batch, now):
                if kind not in self.rules.enabled or self.has_fired(batch.id, kind):
                    continue
                alert = rule(batch, now, self.rules)
                if alert is None or (kind is AlertKind.ARCHIVE_SOON and stored(batch.id)):
                    continue
                self.mark(batch.id, kind)
                alerts.append(alert)
        return alerts
