"""The request ledger (SQLite): original params, write-ahead submits, labels and retry lineage."""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tui.core.models import BatchSnapshot, format_time, parse_time
from tui.core.requests import BatchRequest
from tui.core.timefmt import utcnow
from tui.paths import ensure_private_dir, locations
from tui.service.sqlite_open import open_wal

LEDGER_FILE = "ledger.sqlite3"
SCHEMA_VERSION = 1

PENDING = "pending"
CREATED = "created"
FAILED = "failed"
RECONCILED = "reconciled"

# A pending submit is matched to a batch created this long before or after it was recorded.
RECONCILE_WINDOW = timedelta(minutes=10)
CLOCK_SKEW = timedelta(minutes=2)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submits(
    submit_id       TEXT PRIMARY KEY,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'created', 'failed', 'reconciled')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    source_file     TEXT,
    request_count   INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,
    batch_id        TEXT UNIQUE,
    parent_batch_id TEXT,
    generation      INTEGER NOT NULL DEFAULT 0,
    label           TEXT,
    error           TEXT
);
CREATE INDEX IF NOT EXISTS submits_state ON submits(state);
CREATE INDEX IF NOT EXISTS submits_parent ON submits(parent_batch_id);
CREATE TABLE IF NOT EXISTS requests(
    set_id    TEXT NOT NULL,
    custom_id TEXT NOT NULL,
    params    BLOB NOT NULL,
    UNIQUE (set_id, custom_id)
);
CREATE TABLE IF NOT EXISTS attachments(
    set_id            TEXT PRIMARY KEY,
    batch_id          TEXT NOT NULL,
    source_file       TEXT NOT NULL,
    attached_at       TEXT NOT NULL,
    matched           INTEGER NOT NULL,
    unknown_in_file   INTEGER NOT NULL,
    missing_from_file INTEGER
);
CREATE INDEX IF NOT EXISTS attachments_batch ON attachments(batch_id);
CREATE TABLE IF NOT EXISTS labels(
    batch_id   TEXT PRIMARY KEY,
    label      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lineage(
    batch_id        TEXT PRIMARY KEY,
    parent_batch_id TEXT NOT NULL,
    generation      INTEGER NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lineage_parent ON lineage(parent_batch_id);
"""

_SUBMIT_COLUMNS = (
    "submit_id, state, created_at, updated_at, source_file, request_count, bytes, batch_id, "
    "parent_batch_id, generation, label, error"
)


class LedgerError(Exception):
    """The ledger could not do what was asked (unknown submit, bad state)."""


@dataclass(frozen=True, slots=True)
class SubmitRecord:
    """One write-ahead submit: recorded before the create call, completed after it."""

    submit_id: str
    state: str
    created_at: datetime
    updated_at: datetime
    source_file: str | None
    request_count: int
    bytes: int
    batch_id: str | None
    parent_batch_id: str | None
    generation: int
    label: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class AttachReport:
    """How an attached request file matched a batch's results, by custom_id."""

    batch_id: str
    source_file: str
    matched: int
    unknown_in_file: tuple[str, ...]
    """In the file but not in the batch's results (not stored)."""
    missing_from_file: tuple[str, ...]
    """In the results but not in the file: those cannot be retried."""
    checked: bool
    """False when the results were not known, so nothing could be compared."""

    @property
    def clean(self) -> bool:
        return not self.unknown_in_file and not self.missing_from_file


@dataclass(frozen=True, slots=True)
class ReconcileMatch:
    """What reconciliation concluded for one pending submit."""

    submit_id: str
    verdict: str
    """"matched" (batch found), "not_created" (none found after the window), "ambiguous",
    or "waiting" (still inside the window)."""
    batch_id: str | None
    candidates: tuple[str, ...]
    request_count: int


def default_path() -> Path:
    return locations().data / LEDGER_FILE


def _create_private_file(path: Path) -> None:
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class Ledger:
    """The SQLite request ledger. Thread-safe; heavy calls are meant for a worker thread."""

    def __init__(self, path: Path | None = None, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.path = path if path is not None else default_path()
        self._clock = clock
        _create_private_file(self.path)
        self._lock = threading.RLock()
        self._db = open_wal(self.path, timeout=10.0, synchronous="FULL")
        with self._transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _now(self) -> str:
        return format_time(self._clock()) or ""

    # -- write-ahead submits ------------------------------------------------------------------

    def begin_submit(
        self,
        requests: Sequence[BatchRequest],
        *,
        source_file: str | None = None,
        parent: str | None = None,
        generation: int = 0,
        label: str | None = None,
    ) -> str:
        """Record a submit and every request's params in one transaction, before creating it."""
        if not requests:
            raise LedgerError("a submit needs at least one request")
        submit_id = new_id("sub")
        now = self._now()
        total = sum(request.size_bytes for request in requests)
        rows = (
            (submit_id, request.custom_id, request.params_json or orjson.dumps(request.params))
            for request in requests
        )
        with self._transaction() as db:
            db.execute(
                f"INSERT INTO submits({_SUBMIT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (submit_id, PENDING, now, now, source_file, len(requests), total, None, parent,
                 generation, label, None),
            )
            db.executemany("INSERT INTO requests(set_id, custom_id, params) VALUES (?,?,?)", rows)
        return submit_id

    def complete_submit(self, submit_id: str, batch_id: str, *, reconciled: bool = False) -> None:
        """The create call returned `batch_id`: record it with its lineage and label."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT state, parent_batch_id, generation, label FROM submits WHERE submit_id=?",
                (submit_id,),
            ).fetchone()
            if row is None:
                raise LedgerError(f"unknown submit {submit_id}")
            state, parent, generation, label = row
            if state in (CREATED, RECONCILED):
                raise LedgerError(f"submit {submit_id} is already {state}")
            now = self._now()
            db.execute(
                "UPDATE submits SET state=?, batch_id=?, updated_at=?, error=NULL "
                "WHERE submit_id=?",
                (RECONCILED if reconciled else CREATED, batch_id, now, submit_id),
            )
            if parent is not None:
                db.execute(
                    "INSERT OR REPLACE INTO lineage(batch_id, parent_batch_id, generation, "
                    "created_at) VALUES (?,?,?,?)",
                    (batch_id, parent, generation, now),
                )
            if label:
                db.execute(
                    "INSERT OR REPLACE INTO labels(batch_id, label, updated_at) VALUES (?,?,?)",
                    (batch_id, label, now),
                )

    def fail_submit(self, submit_id: str, error: str) -> None:
        """The create call failed: the batch does not exist. The params are dropped."""
        with self._transaction() as db:
            updated = db.execute(
                "UPDATE submits SET state=?, error=?, updated_at=? WHERE submit_id=? "
                "AND state=?",
                (FAILED, error[:2000], self._now(), submit_id, PENDING),
            ).rowcount
            if updated != 1:
                raise LedgerError(f"submit {submit_id} is not pending")
            db.execute("DELETE FROM requests WHERE set_id=?", (submit_id,))

    def submits(self, state: str | None = None) -> list[SubmitRecord]:
        where, args = ("WHERE state=?", (state,)) if state else ("", ())
        rows = self._query(
            f"SELECT {_SUBMIT_COLUMNS} FROM submits {where} ORDER BY created_at", args
        )
        return [_submit_record(row) for row in rows]

    def pending_submits(self) -> list[SubmitRecord]:
        return self.submits(PENDING)

    def submit(self, submit_id: str) -> SubmitRecord | None:
        rows = self._query(
            f"SELECT {_SUBMIT_COLUMNS} FROM submits WHERE submit_id=?", (submit_id,)
        )
        return _submit_record(rows[0]) if rows else None

    def submit_for(self, batch_id: str) -> SubmitRecord | None:
        rows = self._query(f"SELECT {_SUBMIT_COLUMNS} FROM submits WHERE batch_id=?", (batch_id,))
        return _submit_record(rows[0]) if rows else None

    def known_batch_ids(self) -> set[str]:
        """Every batch id the ledger has recorded a submit for."""
        rows = self._query("SELECT batch_id FROM submits WHERE batch_id IS NOT NULL")
        return {row[0] for row in rows}

    # -- original params ------------------------------------------------------------------------

    def _set_ids(self, batch_id: str) -> list[str]:
        """Request sets of a batch, the one to trust last: attachments (newest last), submits."""
        rows = self._query(
            "SELECT set_id FROM ("
            " SELECT set_id, 0 AS rank, attached_at AS at FROM attachments WHERE batch_id=?"
            " UNION ALL"
            " SELECT submit_id, 1, created_at FROM submits WHERE batch_id=?"
            ") ORDER BY rank, at",
            (batch_id, batch_id),
        )
        return [row[0] for row in rows]

    def params_for(
        self, batch_id: str, custom_ids: Collection[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Original params by custom_id (all of the batch's when `custom_ids` is None)."""
        wanted = set(custom_ids) if custom_ids is not None else None
        out: dict[str, dict[str, Any]] = {}
        for set_id in self._set_ids(batch_id):
            with self._lock:
                cursor = self._db.execute(
                    "SELECT custom_id, params FROM requests WHERE set_id=?", (set_id,)
                )
                for custom_id, params in cursor:
                    if wanted is None or custom_id in wanted:
                        out[custom_id] = orjson.loads(params)
        return out

    def custom_ids_for(self, batch_id: str) -> list[str]:
        """The custom_ids recorded for a batch, in submission order."""
        seen: dict[str, None] = {}
        for set_id in self._set_ids(batch_id):
            for (custom_id,) in self._query(
                "SELECT custom_id FROM requests WHERE set_id=? ORDER BY rowid", (set_id,)
            ):
                seen[custom_id] = None
        return list(seen)

    def has_requests(self, batch_id: str) -> bool:
        return any(
            self._query("SELECT 1 FROM requests WHERE set_id=? LIMIT 1", (set_id,))
            for set_id in self._set_ids(batch_id)
        )

    def attach(
        self,
        batch_id: str,
        requests: Sequence[BatchRequest],
        source_file: str,
        result_custom_ids: Collection[str] | None,
    ) -> AttachReport:
        """Store a user's request file for a batch created elsewhere, matched by custom_id.

        With the batch's result custom_ids known, only matching requests are stored and both
        kinds of mismatch are reported. A new attachment replaces the previous one.
        """
        report, keep = match_attachment(batch_id, requests, source_file, result_custom_ids)
        set_id = new_id("att")
        now = self._now()
        with self._transaction() as db:
            old = [row[0] for row in db.execute(
                "SELECT set_id FROM attachments WHERE batch_id=?", (batch_id,)
            )]
            for old_id in old:
                db.execute("DELETE FROM requests WHERE set_id=?", (old_id,))
            db.execute("DELETE FROM attachments WHERE batch_id=?", (batch_id,))
            db.execute(
                "INSERT INTO attachments(set_id, batch_id, source_file, attached_at, matched, "
                "unknown_in_file, missing_from_file) VALUES (?,?,?,?,?,?,?)",
                (set_id, batch_id, source_file, now, report.matched, len(report.unknown_in_file),
                 len(report.missing_from_file) if report.checked else None),
            )
            db.executemany(
                "INSERT INTO requests(set_id, custom_id, params) VALUES (?,?,?)",
                ((set_id, r.custom_id, r.params_json or orjson.dumps(r.params)) for r in keep),
            )
        return report

    def attachment_for(self, batch_id: str) -> tuple[str, str] | None:
        """(source file, attached at) of the batch's current attachment."""
        rows = self._query(
            "SELECT source_file, attached_at FROM attachments WHERE batch_id=?", (batch_id,)
        )
        return (rows[0][0], rows[0][1]) if rows else None

    # -- labels ---------------------------------------------------------------------------------

    def set_label(self, batch_id: str, label: str | None) -> None:
        """Set a batch's local label; None or "" removes it."""
        with self._transaction() as db:
            if label:
                db.execute(
                    "INSERT OR REPLACE INTO labels(batch_id, label, updated_at) VALUES (?,?,?)",
                    (batch_id, label, self._now()),
                )
            else:
                db.execute("DELETE FROM labels WHERE batch_id=?", (batch_id,))

    def label_for(self, batch_id: str) -> str | None:
        rows = self._query("SELECT label FROM labels WHERE batch_id=?", (batch_id,))
        return rows[0][0] if rows else None

    def labels(self) -> dict[str, str]:
        return dict(self._query("SELECT batch_id, label FROM labels"))

    # -- lineage --------------------------------------------------------------------------------

    def parent_of(self, batch_id: str) -> str | None:
        rows = self._query("SELECT parent_batch_id FROM lineage WHERE batch_id=?", (batch_id,))
        return rows[0][0] if rows else None

    def generation(self, batch_id: str) -> int:
        """0 for an original batch, N for the N-th retry down a lineage."""
        rows = self._query("SELECT generation FROM lineage WHERE batch_id=?", (batch_id,))
        return int(rows[0][0]) if rows else 0

    def lineage_of(self, batch_id: str) -> list[str]:
        """The chain of batch ids from the original down to `batch_id` (itself last)."""
        chain = [batch_id]
        parent = self.parent_of(batch_id)
        while parent is not None and parent not in chain:
            chain.append(parent)
            parent = self.parent_of(parent)
        chain.reverse()
        return chain

    def children_of(self, batch_id: str) -> list[str]:
        """Retry batches created directly from `batch_id`, oldest first."""
        rows = self._query(
            "SELECT batch_id FROM lineage WHERE parent_batch_id=? ORDER BY created_at, batch_id",
            (batch_id,),
        )
        return [row[0] for row in rows]

    def retries_of(self, parent: str) -> list[str]:
        """Retries of `parent` so far: its retry batches plus still-pending retry submits.

        A pending submit appears as its submit id: its create call may have gone through.
        """
        rows = self._query(
            "SELECT submit_id FROM submits WHERE parent_batch_id=? AND state=? ORDER BY created_at",
            (parent, PENDING),
        )
        return [*self.children_of(parent), *(row[0] for row in rows)]

    def family(self, batch_id: str) -> list[tuple[str, int]]:
        """(batch id, generation) of the original of `batch_id` and every retry below it."""
        root = self.lineage_of(batch_id)[0]
        out: list[tuple[str, int]] = [(root, 0)]
        queue = [root]
        seen = {root}
        while queue:
            current = queue.pop(0)
            for child in self.children_of(current):
                if child not in seen:
                    seen.add(child)
                    out.append((child, self.generation(child)))
                    queue.append(child)
        return out

    def lineage(self) -> dict[str, tuple[str, int]]:
        """Every retry batch: batch id -> (parent id, generation), for the batches list."""
        rows = self._query("SELECT batch_id, parent_batch_id, generation FROM lineage")
        return {row[0]: (row[1], int(row[2])) for row in rows}


def _submit_record(row: Sequence[Any]) -> SubmitRecord:
    created = parse_time(row[2])
    updated = parse_time(row[3])
    assert created is not None and updated is not None  # written by this module, never NULL
    return SubmitRecord(
        submit_id=row[0],
        state=row[1],
        created_at=created,
        updated_at=updated,
        source_file=row[4],
        request_count=int(row[5]),
        bytes=int(row[6]),
        batch_id=row[7],
        parent_batch_id=row[8],
        generation=int(row[9]),
        label=row[10],
        error=row[11],
    )


def match_attachment(
    batch_id: str,
    requests: Sequence[BatchRequest],
    source_file: str,
    result_custom_ids: Collection[str] | None,
) -> tuple[AttachReport, list[BatchRequest]]:
    """Compare a request file with a batch's result custom_ids; the requests worth keeping."""
    if result_custom_ids is None:
        report = AttachReport(batch_id, source_file, len(requests), (), (), checked=False)
        return report, list(requests)
    known = result_custom_ids if isinstance(result_custom_ids, set | frozenset) else set(
        result_custom_ids
    )
    keep = [request for request in requests if request.custom_id in known]
    in_file = {request.custom_id for request in requests}
    report = AttachReport(
        batch_id,
        source_file,
        matched=len(keep),
        unknown_in_file=tuple(r.custom_id for r in requests if r.custom_id not in known),
        missing_from_file=tuple(sorted(known - in_file)),
        checked=True,
    )
    return report, keep


def match_pending(
    pending: Iterable[SubmitRecord],
    batches: Iterable[BatchSnapshot],
    *,
    claimed: Collection[str] = (),
    now: datetime,
    window: timedelta = RECONCILE_WINDOW,
) -> list[ReconcileMatch]:
    """Match pending submits to listed batches by request count and creation time.

    A batch matches a submit when it holds the same number of requests and was created
    between `CLOCK_SKEW` before and `window` after the submit was recorded. Batches already
    claimed by the ledger never match. A submit with no candidate once `window` has passed
    was never created.
    """
    free = [batch for batch in batches if batch.id not in claimed]
    taken: set[str] = set()
    out: list[ReconcileMatch] = []
    for record in pending:
        low = record.created_at - CLOCK_SKEW
        high = record.created_at + window
        candidates = tuple(
            batch.id for batch in free
            if batch.id not in taken
            and batch.request_counts.total == record.request_count
            and low <= batch.created_at <= high
        )
        if len(candidates) == 1:
            taken.add(candidates[0])
            verdict, batch_id = "matched", candidates[0]
        elif candidates:
            verdict, batch_id = "ambiguous", None
        elif now - record.created_at > window:
            verdict, batch_id = "not_created", None
        else:
            verdict, batch_id = "waiting", None
        out.append(ReconcileMatch(record.submit_id, verdict, batch_id, candidates,
                                  record.request_count))
    return out
