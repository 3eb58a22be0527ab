"""The batches list's columns, and the narrower sets a smaller window gets."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tui.ui.widgets.vtable import GUTTER, SEPARATOR, Column

ID_WIDTH = 33
SHORT_ID_WIDTH = 24  # the id without its "msgbatch_" prefix
LABEL_WIDTH = 16
NARROW_LABEL_WIDTH = 10
LINEAGE_WIDTH = 12
COUNTS_WIDTH = 15  # "5,673/327/4,000"
BAR_WIDTH = 12
NARROW_BAR_WIDTH = 8
COST_WIDTH = 9
PROFILE_WIDTH = 10
NARROW_PROFILE_WIDTH = 6
PAST_MEDIAN = "past median"
ETA_WIDTH = len(PAST_MEDIAN) + 1  # a trailing blank keeps it apart from "expires in …"
DEADLINE_ROOM = 20  # "results until Nov 25"; the last column takes what is left

COLUMNS: tuple[Column, ...] = (
    Column("id", "batch", ID_WIDTH),
    Column("created", "age", 5, "right"),
    Column("status", "status", 11),
    Column("processing", "process", 7, "right"),
    Column("succeeded", "ok", 7, "right"),
    Column("errored", "errored", 7, "right"),
    Column("canceled", "cancel", 6, "right"),
    Column("expired", "expired", 7, "right"),
    Column("outcome", "outcome", BAR_WIDTH),
    Column("error_rate", "err%", 5, "right"),
    Column("cost", "cost", COST_WIDTH, "right", sortable=False),
    Column("duration", "time", 7, "right"),
    Column("eta", "eta ", ETA_WIDTH, "right", sortable=False),
    Column("deadline", "expires / results", 0),
)
LABEL_COLUMN = Column("label", "label", LABEL_WIDTH, sortable=False)
LINEAGE_COLUMN = Column("lineage", "lineage", LINEAGE_WIDTH, sortable=False)
PROFILE_COLUMN = Column("profile", "profile", PROFILE_WIDTH, sortable=False)
COUNTS_COLUMN = Column("counts", "ok/err/exp", COUNTS_WIDTH, "right", sortable=False)
COUNT_KEYS = ("processing", "succeeded", "errored", "canceled", "expired")

Step = Callable[[list[Column]], list[Column]]


def _keys(columns: Sequence[Column]) -> list[str]:
    return [column.key for column in columns]


def _collapse_counts(columns: list[Column]) -> list[Column]:
    """The five count columns become one "ok/err/exp" cell (the bar shows the rest)."""
    first = _keys(columns).index(COUNT_KEYS[0])
    kept = [column for column in columns if column.key not in COUNT_KEYS]
    return [*kept[:first], COUNTS_COLUMN, *kept[first:]]


def _fold_lineage(columns: list[Column]) -> list[Column]:
    """The lineage goes into the label cell as a suffix."""
    keys = _keys(columns)
    if "lineage" not in keys:
        return columns
    if "label" in keys:
        return [c for c in columns if c.key != "lineage"]
    return [LABEL_COLUMN if c.key == "lineage" else c for c in columns]


def _drop(key: str) -> Step:
    def step(columns: list[Column]) -> list[Column]:
        return [column for column in columns if column.key != key]
    return step


def _narrow(key: str, width: int) -> Step:
    def step(columns: list[Column]) -> list[Column]:
        return [Column(c.key, c.label, min(width, c.width), c.align, c.sortable)
                if c.key == key else c for c in columns]
    return step


# What goes first when the window is too narrow, least useful first.
STEPS: tuple[Step, ...] = (
    _collapse_counts,
    _fold_lineage,
    _drop("cost"),
    _narrow("id", SHORT_ID_WIDTH),
    _narrow("profile", NARROW_PROFILE_WIDTH),
    _drop("counts"),
    _drop("duration"),
    _narrow("outcome", NARROW_BAR_WIDTH),
    _narrow("label", NARROW_LABEL_WIDTH),
    _drop("outcome"),
    _drop("created"),
    _drop("label"),
)


def needed_width(columns: Sequence[Column]) -> int:
    """Cells the columns take, with DEADLINE_ROOM for a flexible last column."""
    widths = [column.width or DEADLINE_ROOM for column in columns]
    return GUTTER + sum(widths) + SEPARATOR * max(0, len(widths) - 1)


def columns_for(has_labels: bool, has_lineage: bool = False,
                width: int | None = None, *, has_profiles: bool = False) -> tuple[Column, ...]:
    """The batch columns; the profile (several watched), label and lineage follow the id
    when any batch has one.

    With a `width`, the columns narrow step by step (STEPS) until they fit; the essential
    ones (batch, status, err%, eta, expires) stay.
    """
    extra = ((PROFILE_COLUMN,) * has_profiles + (LABEL_COLUMN,) * has_labels
             + (LINEAGE_COLUMN,) * has_lineage)
    columns = [COLUMNS[0], *extra, *COLUMNS[1:]]
    if width is not None:
        for step in STEPS:
            if needed_width(columns) <= width:
                break
            columns = step(columns)
    return tuple(columns)
