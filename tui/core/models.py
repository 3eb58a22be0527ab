"""Immutable domain values for Message Batches: request counts and batch snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

IN_PROGRESS = "in_progress"
CANCELING = "canceling"
ENDED = "ended"

COUNT_FIELDS: tuple[str, ...] = ("processing", "succeeded", "errored", "canceled", "expired")


class Outcome(StrEnum):
    """How a batch looks to a person: never a green "done" over failed requests."""

    RUNNING = "running"
    CANCELING = "canceling"
    CLEAN = "clean"
    FAILURES = "failures"
    ARCHIVED = "archived"


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp (``Z`` or ``+00:00``) into an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime | None) -> str | None:
    """Format a datetime the way the API does: RFC 3339, microseconds, ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class RequestCounts:
    """The five buckets of ``request_counts``; their sum is the batch's request total."""

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @classmethod
    def from_api(cls, data: Mapping[str, Any] | None) -> RequestCounts:
        if not data:
            return cls()
        return cls(**{name: int(data.get(name) or 0) for name in COUNT_FIELDS})

    def to_api(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNT_FIELDS}

    @property
    def total(self) -> int:
        return self.processing + self.succeeded + self.errored + self.canceled + self.expired

    @property
    def failed(self) -> int:
        """Requests that did not produce a message and were not canceled on purpose."""
        return self.errored + self.expired

    @property
    def error_rate(self) -> float:
        """(errored + expired) / total, 0.0 for an empty batch."""
        total = self.total
        return self.failed / total if total else 0.0


@dataclass(frozen=True, slots=True)
class BatchSnapshot:
    """One observation of a MessageBatch, as the API returned it."""

    id: str
    processing_status: str
    request_counts: RequestCounts
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    archived_at: datetime | None = None
    results_url: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> BatchSnapshot:
        """Build from a MessageBatch JSON object (or ``model_dump(mode="json")``)."""
        created = parse_time(data.get("created_at"))
        expires = parse_time(data.get("expires_at"))
        if created is None:
            raise ValueError(f"batch {data.get('id')!r} has no created_at")
        return cls(
            id=str(data["id"]),
            processing_status=str(data.get("processing_status") or IN_PROGRESS),
            request_counts=RequestCounts.from_api(data.get("request_counts")),
            created_at=created,
            expires_at=expires if expires is not None else created,
            ended_at=parse_time(data.get("ended_at")),
            cancel_initiated_at=parse_time(data.get("cancel_initiated_at")),
            archived_at=parse_time(data.get("archived_at")),
            results_url=data.get("results_url"),
        )

    def to_api(self) -> dict[str, Any]:
        """The MessageBatch JSON object, keys in the API's order."""
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.processing_status,
            "request_counts": self.request_counts.to_api(),
            "ended_at": format_time(self.ended_at),
            "created_at": format_time(self.created_at),
            "expires_at": format_time(self.expires_at),
            "archived_at": format_time(self.archived_at),
            "cancel_initiated_at": format_time(self.cancel_initiated_at),
            "results_url": self.results_url,
        }

    @property
    def is_ended(self) -> bool:
        return self.processing_status == ENDED

    @property
    def is_running(self) -> bool:
        return self.processing_status in (IN_PROGRESS, CANCELING)

    @property
    def outcome(self) -> Outcome:
        if self.processing_status == IN_PROGRESS:
            return Outcome.RUNNING
        if self.processing_status == CANCELING:
            return Outcome.CANCELING
        if self.archived_at is not None:
            return Outcome.ARCHIVED
        return Outcome.FAILURES if self.request_counts.failed else Outcome.CLEAN

    def duration_seconds(self, now: datetime) -> float:
        """Elapsed time while running, processing time once ended."""
        end = self.ended_at or now
        return max(0.0, (end - self.created_at).total_seconds())
