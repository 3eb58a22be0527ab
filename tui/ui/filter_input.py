"""The `/` filter line of the lists: the filter typed so far, or why it does not parse yet."""

from __future__ import annotations

from dataclasses import dataclass

from tui.core.batch_view import FilterError, TextFilter


@dataclass(frozen=True, slots=True)
class TypedFilter:
    """What the filter line holds: `text` to apply (None: no filter) when `error` is None;
    otherwise the error to show while the filter already applied stays."""

    text: TextFilter | None = None
    error: str | None = None


def read_filter(value: str) -> TypedFilter:
    """Parse the filter line's `value` (`foo`, `!foo`, empty) without raising."""
    try:
        return TypedFilter(text=TextFilter.parse(value))
    except FilterError as exc:
        return TypedFilter(error=str(exc))
