"""The shared cells of every view: styles by name, status, outcome bar, counts, result types.

Untrusted values become inert rich Text here, and the list, a batch and a result agree on
glyphs and colours because they all draw them with these helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from tui.core.alerts import Alert, Severity
from tui.core.batch_view import Segment, Shown, bar_segments, shown_status
from tui.core.describe import byte_size as byte_size  # the views' sizes, re-exported
from tui.core.errors import RetryClass
from tui.core.models import BatchSnapshot, RequestCounts
from tui.core.sanitize import safe_cell, safe_text

# Style names every styled view resolves from its own component classes (`<prefix>--<name>`),
# with one set of colour rules (`style_css`), so the list, the batch and a result agree.
_RULES: Mapping[str, str] = {
    "running": "color: $accent;",
    "canceling": "color: $warning;",
    "clean": "color: $success;",
    "failures": "color: $error; text-style: bold;",
    "canceled": "color: $secondary;",
    "archived": "color: $text-muted;",
    "muted": "color: $text-muted;",
    "error": "color: $error;",
    "warning": "color: $warning;",
    "bar-succeeded": "color: $success;",
    "bar-failed": "color: $error;",
    "bar-canceled": "color: $secondary;",
    "bar-processing": "color: $text-muted;",
    "heading": "text-style: bold;",
    "accent": "color: $accent; text-style: bold;",
}
# Without colour the meaning must survive in the text style (NO_COLOR, monochrome terminals).
_NOCOLOR_RULES: Mapping[str, str] = {
    "failures": "text-style: bold underline;",
    "error": "text-style: bold;",
    "warning": "text-style: italic;",
    "muted": "text-style: dim;",
}
STYLE_NAMES: tuple[str, ...] = tuple(_RULES)

STATUS_STYLES: Mapping[Shown, str] = {
    Shown.RUNNING: "running",
    Shown.CANCELING: "canceling",
    Shown.CLEAN: "clean",
    Shown.FAILURES: "failures",
    Shown.CANCELED: "canceled",
    Shown.ARCHIVED: "archived",
}
RESULT_TYPE_STYLES: Mapping[str, str] = {
    "succeeded": "clean",
    "errored": "error",
    "expired": "error",
    "canceled": "canceled",
}
"""Style of a result type; any other type (unknown, malformed) is a warning."""

RETRY_CLASS_STYLES: Mapping[RetryClass, str] = {
    RetryClass.RETRYABLE: "warning",
    RetryClass.PERMANENT: "error",
    RetryClass.CANCELED: "canceled",
    RetryClass.SUCCEEDED: "clean",
    RetryClass.UNKNOWN: "warning",
}
DASH = "–"

# Status glyphs carry the meaning without colour (NO_COLOR, monochrome terminals).
STATUS_GLYPHS: Mapping[Shown, str] = {
    Shown.RUNNING: "● running",
    Shown.CANCELING: "◐ canceling",
    Shown.CLEAN: "✓ ended",
    Shown.FAILURES: "✗ failures",
    Shown.CANCELED: "⊘ canceled",
    Shown.ARCHIVED: "▪ archived",
}
BAR_GLYPHS: Mapping[Segment, str] = {
    Segment.SUCCEEDED: "█",
    Segment.FAILED: "▒",
    Segment.CANCELED: "╌",
    Segment.PROCESSING: "░",
}


@dataclass(frozen=True, slots=True)
class CellStyles:
    """Rich styles by name (see STYLE_NAMES); a missing name means no style."""

    styles: Mapping[str, Style]

    def __call__(self, name: str) -> Style:
        return self.styles.get(name) or Style()


def component_classes(prefix: str) -> set[str]:
    """The component classes a view declares for `resolve_styles`."""
    return {f"{prefix}--{name}" for name in STYLE_NAMES}


def style_css(selector: str, prefix: str) -> str:
    """DEFAULT_CSS rules giving `selector`'s component classes the shared colours."""
    rules = "\n".join(f"    & > .{prefix}--{name} {{ {rule} }}" for name, rule in _RULES.items())
    plain = "\n".join(
        f"        & > .{prefix}--{name} {{ {rule} }}" for name, rule in _NOCOLOR_RULES.items()
    )
    return f"{selector} {{\n{rules}\n    &:nocolor {{\n{plain}\n    }}\n}}\n"


def resolve_styles(node: Widget, prefix: str) -> CellStyles:
    """The shared styles as the node's CSS resolves them now (call again after a theme change)."""
    return CellStyles({
        name: node.get_component_rich_style(f"{prefix}--{name}", partial=True)
        for name in STYLE_NAMES
    })


def inert(value: object, width: int | None = None, style: Style | str = "") -> Text:
    """`value` as Text that cannot act on the terminal: one cut line with `width`, else lines."""
    text = value if isinstance(value, str) else str(value)
    return Text(safe_cell(text, width) if width is not None else safe_text(text), style=style)


def status_text(batch: BatchSnapshot, styles: CellStyles) -> Text:
    """The glyph and word of the batch's shown status (failures never look clean)."""
    shown = shown_status(batch)
    return Text(STATUS_GLYPHS[shown], styles(STATUS_STYLES[shown]))


def outcome_bar(counts: RequestCounts, width: int, styles: CellStyles) -> Text:
    """Succeeded / failed / canceled / processing cells in proportion; failures never vanish."""
    bar = Text()
    for segment, cells in bar_segments(
        counts.succeeded, counts.failed, counts.canceled, counts.processing, width
    ):
        bar.append(BAR_GLYPHS[segment] * cells, styles(f"bar-{segment.value}"))
    return bar


def count_text(value: int | None, style: Style | str = "") -> Text:
    """A count with thousands separators; a dash when unknown."""
    return Text(DASH if value is None else f"{value:,}", style=style)


def rate_label(rate: float) -> str:
    """An error rate people can compare at a glance: "0%", "<0.1%", "4.2%", "37%"."""
    if rate == 0:
        return "0%"
    if rate < 0.001:
        return "<0.1%"
    return f"{rate:.1%}" if rate < 0.1 else f"{rate:.0%}"


def result_type_style(result_type: str) -> str:
    return RESULT_TYPE_STYLES.get(result_type, "warning")


def result_type_text(result_type: str, styles: CellStyles, width: int = 12) -> Text:
    """A result type, coloured; unknown types (from the wire) are cut and made inert."""
    return inert(result_type, width, styles(result_type_style(result_type)))


def should_toast(alert: Alert) -> bool:
    """Warnings and errors get a toast and the bell; INFO alerts ("batch ended") only go to
    the event pane and the audit log, or a fast list would toast on every end."""
    return alert.severity is not Severity.INFO
