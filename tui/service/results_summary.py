"""Summaries of one batch's index rows: counts by type, error groups, token sums per model."""

from __future__ import annotations

import sqlite3
from typing import Any

from tui.core.cost import BATCH_TIER
from tui.core.errors import classify
from tui.core.results import CANCELED, ERRORED, MALFORMED, SUCCEEDED, ErrorGroup, ModelTokenSums
from tui.service.results_schema import id_range

_USAGE_COLUMNS = (
    "coalesce(model, ''), count(*), total(input_tokens), total(output_tokens),"
    " total(cache_creation_input_tokens), total(cache_read_input_tokens),"
    # A row still without a split (a v1 store whose raw file could not be read again)
    # counts its writes as 5-minute ones.
    " total(coalesce(cache_creation_5m, cache_creation_input_tokens)), total(cache_creation_1h),"
    f" total(service_tier IS NOT NULL AND service_tier != '{BATCH_TIER}')"
)
"""`ModelTokenSums`' fields in order, after the model."""


def _select(conn: sqlite3.Connection, key: int | None, columns: str, tail: str = "",
            *extra: Any) -> list[Any]:
    """`SELECT columns` over one batch's rows (None: a batch not stored), `tail` after."""
    sql = f"SELECT {columns} FROM result_rows WHERE id BETWEEN ? AND ? {tail}"
    return conn.execute(sql, [*id_range(-1 if key is None else key), *extra]).fetchall()


def type_counts(conn: sqlite3.Connection, key: int | None) -> dict[str, int]:
    """Rows per result type (unknown types and ``malformed`` included)."""
    return dict(_select(conn, key, "type, count(*)", "GROUP BY type"))


def error_summary(conn: sqlite3.Connection, key: int | None) -> list[ErrorGroup]:
    """Failed results grouped by error type and message, largest group first.

    Expired, malformed and unknown-type results form groups of their own.
    """
    rows = _select(
        conn,
        key,
        "type, error_type, error_message, count(*) AS n",
        "AND type NOT IN (?, ?) GROUP BY type, error_type, error_message"
        " ORDER BY n DESC, type, error_type",
        SUCCEEDED,
        CANCELED,
    )
    return [
        ErrorGroup(
            error_type=error_type if kind == ERRORED else kind,
            message=message or "",
            count=n,
            retry_class=classify(kind, error_type),
            result_type=kind,
        )
        for kind, error_type, message, n in rows
    ]


def usage_totals(conn: sqlite3.Connection, key: int | None) -> dict[str, ModelTokenSums]:
    """Token sums of succeeded results per model (``""`` when a result names none)."""
    rows = _select(conn, key, _USAGE_COLUMNS, "AND type = ? GROUP BY 1 ORDER BY 1", SUCCEEDED)
    return {row[0]: ModelTokenSums(*(int(value) for value in row[1:])) for row in rows}


def readable_ids(conn: sqlite3.Connection, key: int | None) -> set[str]:
    """Every custom_id that came back as a readable (not malformed) result."""
    return {row[0] for row in _select(conn, key, "custom_id", "AND type != ?", MALFORMED)}
