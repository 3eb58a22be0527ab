"""Which audit records to show: event-kind globs, batch, time window, text; durations ("15m")."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from tui.core.batch_view import TextFilter
from tui.core.models import parse_time

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
HAYSTACK_CHARS = 4000
"""Characters of a record's data that `/` searches (a huge record costs no more)."""

Record = Mapping[str, Any]


def record_seq(record: Record) -> int:
    """The record's place in its writer's sequence (``seq``); -1 for records without one.

    Records of one session that share a millisecond are ordered by it, whichever files
    they are in; older records (written before ``seq`` existed) keep their file order.
    """
    seq = record.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else -1


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``3d``, ``1w`` or combinations like ``1h30m``."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _PART.sub("", compact):
        raise ValueError(f"not a duration: {text!r} (examples: 90s, 15m, 2h, 1d12h, 1w)")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(compact))
    return timedelta(seconds=seconds)


def parse_since(text: str, now: datetime) -> datetime:
    """A duration back from `now` (``15m``), or an RFC 3339 time; ValueError otherwise."""
    try:
        return now - parse_duration(text)
    except ValueError as duration_error:
        try:
            moment = parse_time(text.strip())
        except ValueError:
            moment = None
        if moment is None:
            raise duration_error from None
        return moment


def event_matcher(spec: str | None) -> re.Pattern[str] | None:
    """A regex for comma-separated event globs (``batch.*,action.cancel``); None: everything."""
    if not spec:
        return None
    globs = [part.strip() for part in spec.split(",") if part.strip()]
    if not globs:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(glob)})" for glob in globs))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record with what filtering and display need read out of it once."""

    key: str
    at: datetime
    event: str
    batch_id: str | None
    actor: str
    record: Record
    haystack: str
    """What `/` searches: event, batch id, actor and the data as JSON (capped)."""
    seq: int = -1
    """The record's `record_seq`: orders records of one moment."""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def _entry(record: Record, key: str) -> AuditEntry | None:
    event = record.get("event")
    try:
        at = parse_time(record.get("timestamp"))
    except ValueError:
        at = None
    if not isinstance(event, str) or at is None:
        return None
    raw_batch = record.get("batch_id")
    batch_id = None if raw_batch is None else str(raw_batch)
    actor = record.get("actor")
    actor_text = actor if isinstance(actor, str) else ""
    data = _text(record.get("data"))[:HAYSTACK_CHARS]
    haystack = "\n".join((event, batch_id or "", actor_text, data))
    return AuditEntry(key, at, event, batch_id, actor_text, record, haystack, record_seq(record))


def audit_entries(records: Iterable[Record]) -> list[AuditEntry]:
    """Entries for records in the order given; records without an event or a time are dropped.

    Keys are stable across re-reads of a growing log, whether of one batch's records or of
    all: the record's timestamp, session and batch, plus a counter for records sharing them.
    """
    entries: list[AuditEntry] = []
    seen: dict[tuple[str, str, str], int] = {}
    for record in records:
        stamp = (str(record.get("timestamp")), str(record.get("session")),
                 str(record.get("batch_id")))
        number = seen.get(stamp, 0)
        seen[stamp] = number + 1
        entry = _entry(record, "|".join((*stamp, str(number))))
        if entry is not None:
            entries.append(entry)
    return entries


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """The view of the audit log: filters and order."""

    batch_id: str | None = None
    events: str | None = None
    """Comma-separated event globs (``batch.*``)."""
    window: timedelta | None = None
    """Only records from this long before now."""
    text: TextFilter | None = None
    newest_first: bool = True


def select(entries: Sequence[AuditEntry], query: AuditQuery, now: datetime) -> list[AuditEntry]:
    """The entries (given oldest first) the query keeps, in the query's order."""
    wanted = event_matcher(query.events)
    since = now - query.window if query.window is not None else None
    batch_id, text = query.batch_id, query.text
    kept = [
        entry for entry in entries
        if (batch_id is None or entry.batch_id == batch_id)
        and (wanted is None or wanted.fullmatch(entry.event))
        and (since is None or entry.at >= since)
        and (text is None or text.accepts(entry.haystack))
    ]
    if query.newest_first:
        kept.reverse()
    return kept


def kind_choices(entries: Iterable[AuditEntry]) -> list[str]:
    """What `e` cycles through: each family present as a glob (``batch.*``), then its kinds."""
    kinds = sorted({entry.event for entry in entries})
    choices: list[str] = []
    for kind in kinds:
        family, dot, _ = kind.partition(".")
        glob = f"{family}.*"
        if dot and glob not in choices:
            choices.append(glob)
        choices.append(kind)
    return choices


def cycle(current: str | None, choices: Sequence[str], *, backwards: bool = False) -> str | None:
    """The choice after (or before) `current`; past either end comes None (everything)."""
    ring: list[str | None] = [None, *choices]
    index = ring.index(current) if current in ring else 0
    step = -1 if backwards else 1
    return ring[(index + step) % len(ring)]
