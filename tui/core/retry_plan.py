"""Retry planning: which failed requests to resubmit, which to fix first, and the merged outcome."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tui.core.cost import Estimate, PriceTable, estimate_cost
from tui.core.errors import PERMANENT_ERROR_TYPES, RETRYABLE_ERROR_TYPES, RetryClass, classify
from tui.core.requests import (
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_PER_BATCH,
    BatchRequest,
    plan_split,
)

MISSING = "missing"
"""Reason of a submitted request that has no line in the results at all."""
PENDING = "pending"
"""Merged type of a request whose latest attempt is still running."""
ALL = "all"

DEFAULT_INCLUDE: frozenset[str] = frozenset({RetryClass.RETRYABLE.value})
"""Retryable errors (api, overloaded, rate limit, timeout) plus expired requests."""

_CLASS_TOKENS = frozenset(
    c.value for c in RetryClass if c is not RetryClass.SUCCEEDED
)
_TYPE_TOKENS = frozenset({"errored", "expired", "canceled", MISSING})
_ERROR_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}_error")


class ResultRow(Protocol):
    """What planning needs of a result (an index row of the results store fits)."""

    @property
    def custom_id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def error_type(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Row:
    """A plain result row, for callers without an index row at hand."""

    custom_id: str
    type: str
    error_type: str | None = None


def parse_include(tokens: Iterable[str]) -> frozenset[str]:
    """Validate what to retry: classes, result types, error types, "missing" or "all".

    Raises ValueError naming the unknown token.
    """
    out: set[str] = set()
    for raw in tokens:
        token = raw.strip().lower()
        if not token:
            continue
        if token == ALL:
            out.update(_CLASS_TOKENS | {MISSING})
        elif token in _CLASS_TOKENS or token in _TYPE_TOKENS or _ERROR_TYPE.fullmatch(token):
            out.add(token)
        else:
            known = sorted(_CLASS_TOKENS | _TYPE_TOKENS | RETRYABLE_ERROR_TYPES
                           | PERMANENT_ERROR_TYPES | {ALL})
            raise ValueError(f"unknown kind {raw!r} to retry; use one of {', '.join(known)}")
    return frozenset(out)


def reason_of(result_type: str, error_type: str | None) -> str:
    """The finest name of how a request failed: its error type, else its result type."""
    if result_type == "errored" and error_type:
        return error_type
    return result_type


def _chosen(
    retry_class: RetryClass, result_type: str, error_type: str | None, include: frozenset[str]
) -> bool:
    if retry_class is RetryClass.SUCCEEDED:
        return False
    return (
        retry_class.value in include
        or result_type in include
        or (error_type is not None and error_type in include)
    )


@dataclass(frozen=True, slots=True)
class RetrySelection:
    """The failed requests of one batch, counted, and those chosen for a retry."""

    include: frozenset[str]
    by_class: Mapping[str, int]
    """Failed requests per retry class: retryable, permanent, canceled, unknown."""
    by_reason: Mapping[str, int]
    """Failed requests per error type or result type (expired, canceled, missing...)."""
    selected: tuple[str, ...]
    fix_first: tuple[tuple[str, str], ...]
    """(custom_id, error type) of every permanent failure: fix the request before resending."""
    succeeded: int = 0

    @property
    def failed(self) -> int:
        return sum(self.by_class.values())

    @property
    def not_selected(self) -> int:
        return self.failed - len(self.selected)


def select_failures(
    rows: Iterable[ResultRow],
    include: frozenset[str] = DEFAULT_INCLUDE,
    *,
    missing: Iterable[str] = (),
) -> RetrySelection:
    """Count the failures of a batch's results and choose the custom_ids to retry.

    `missing` are submitted custom_ids with no result line. A custom_id seen twice counts
    once, by its last row. Rows without a custom_id (malformed lines) cannot be retried.
    """
    latest: dict[str, tuple[str, str | None]] = {}
    for row in rows:
        if row.custom_id:
            latest[row.custom_id] = (row.type, row.error_type)
    for custom_id in missing:
        latest.setdefault(custom_id, (MISSING, None))
    by_class: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    selected: list[str] = []
    fix_first: list[tuple[str, str]] = []
    succeeded = 0
    for custom_id, (result_type, error_type) in latest.items():
        retry_class = classify(result_type, error_type)
        if retry_class is RetryClass.SUCCEEDED:
            succeeded += 1
            continue
        by_class[retry_class.value] += 1
        by_reason[reason_of(result_type, error_type)] += 1
        if retry_class is RetryClass.PERMANENT:
            fix_first.append((custom_id, error_type or result_type))
        if _chosen(retry_class, result_type, error_type, include):
            selected.append(custom_id)
    return RetrySelection(
        include=include,
        by_class=dict(by_class),
        by_reason=dict(by_reason),
        selected=tuple(selected),
        fix_first=tuple(fix_first),
        succeeded=succeeded,
    )


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """A selection turned into requests: their original params, split into batches."""

    selection: RetrySelection
    chunks: tuple[tuple[BatchRequest, ...], ...] = field(repr=False)
    """The requests to submit, one tuple per new batch."""
    missing_originals: tuple[str, ...]
    """Selected custom_ids whose original params are unknown: they cannot be resubmitted."""
    estimate: Estimate
    """What resubmitting may cost, labelled as an estimate (`Estimate.label()`)."""

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        return tuple(len(chunk) for chunk in self.chunks)

    @property
    def batches(self) -> int:
        return len(self.chunks)

    @property
    def request_count(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


def plan_retry(
    selection: RetrySelection,
    originals: Mapping[str, Mapping[str, Any]],
    *,
    max_per_batch: int = DEFAULT_MAX_PER_BATCH,
    max_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    prices: PriceTable | None = None,
) -> RetryPlan:
    """Attach original params (by custom_id) to the selected requests and split them.

    The estimate uses `prices` (the shipped table when None).
    """
    requests: list[BatchRequest] = []
    missing: list[str] = []
    for custom_id in selection.selected:
        params = originals.get(custom_id)
        if params is None:
            missing.append(custom_id)
        else:
            requests.append(BatchRequest.build(custom_id, dict(params)))
    chunks = plan_split(requests, max_per_batch, max_bytes)
    return RetryPlan(
        selection=selection,
        chunks=tuple(tuple(chunk) for chunk in chunks),
        missing_originals=tuple(missing),
        estimate=estimate_cost((r.to_api() for r in requests), prices or PriceTable.shipped()),
    )


# -- the merged view across an original batch and its retries -------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """The results (or, while running, the pending custom_ids) of one batch in a lineage."""

    batch_id: str
    generation: int
    rows: Iterable[ResultRow]


@dataclass(frozen=True, slots=True)
class MergedOutcome:
    """The final word on one custom_id across the original batch and its retries."""

    custom_id: str
    type: str
    error_type: str | None
    batch_id: str
    generation: int
    attempts: int

    @property
    def retry_class(self) -> RetryClass:
        return classify(self.type, self.error_type)


def merge_outcomes(attempts: Iterable[Attempt]) -> dict[str, MergedOutcome]:
    """Final outcome per custom_id: the first success wins, else the latest attempt.

    Attempts are ordered by generation; a row of type "pending" marks a request whose
    retry is still running.
    """
    merged: dict[str, MergedOutcome] = {}
    for attempt in sorted(attempts, key=lambda item: item.generation):
        for row in attempt.rows:
            if not row.custom_id:
                continue
            before = merged.get(row.custom_id)
            count = before.attempts + 1 if before is not None else 1
            if before is not None and before.type == "succeeded":
                merged[row.custom_id] = _with_attempts(before, count)
                continue
            merged[row.custom_id] = MergedOutcome(
                row.custom_id, row.type, row.error_type, attempt.batch_id, attempt.generation,
                count,
            )
    return merged


def _with_attempts(outcome: MergedOutcome, attempts: int) -> MergedOutcome:
    return MergedOutcome(
        outcome.custom_id, outcome.type, outcome.error_type, outcome.batch_id,
        outcome.generation, attempts,
    )


def outcome_counts(merged: Mapping[str, MergedOutcome]) -> dict[str, int]:
    """Final outcomes per reason (succeeded, rate_limit_error, expired, pending, ...)."""
    counts: Counter[str] = Counter(
        reason_of(outcome.type, outcome.error_type) for outcome in merged.values()
    )
    return dict(counts)
