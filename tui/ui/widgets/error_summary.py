"""The error summary panel: failed results by error type, top messages, retryable or permanent."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.core.errors import RetryClass, verdict
from tui.core.results import ERRORED, ErrorGroup
from tui.ui.render import RETRY_CLASS_STYLES, CellStyles, inert
from tui.ui.result_rows import MISSING

TOP_MESSAGES = 3
NAME_WIDTH = 24
MESSAGE_WIDTH = 160
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class ErrorTypeGroup:
    """Results that failed with one error type (or expired, or an unknown type)."""

    result_type: str
    error_type: str | None  # the nested error type of errored results; None otherwise
    count: int
    retry_class: RetryClass
    messages: tuple[tuple[str, int, int], ...] = ()  # (example, count, variants), top first
    more_messages: int = 0  # distinct messages not listed

    @property
    def name(self) -> str:
        if self.result_type == ERRORED:
            return self.error_type or "(no error type)"
        return self.result_type


def fold_messages(messages: Iterable[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """(example, count, variants): messages that differ only in their numbers fold into one
    ("prompt is too long: 200017 tokens" and "...: 213544 tokens"), most frequent first."""
    folded: dict[str, list[tuple[str, int]]] = {}
    for message, count in messages:
        folded.setdefault(_NUMBER.sub("#", message), []).append((message, count))
    out = [(max(group, key=lambda m: m[1])[0], sum(n for _, n in group), len(group))
           for group in folded.values()]
    out.sort(key=lambda m: (-m[1], m[0]))
    return out


def group_errors(groups: Sequence[ErrorGroup], top: int = TOP_MESSAGES) -> list[ErrorTypeGroup]:
    """Fold (type, message) groups into one group per error type, largest first."""
    folded: dict[tuple[str, str | None], list[ErrorGroup]] = {}
    for group in groups:
        error_type = group.error_type if group.result_type == ERRORED else None
        folded.setdefault((group.result_type, error_type), []).append(group)
    out: list[ErrorTypeGroup] = []
    for (result_type, error_type), members in folded.items():
        messages = fold_messages((g.message, g.count) for g in members if g.message)
        out.append(ErrorTypeGroup(
            result_type=result_type,
            error_type=error_type,
            count=sum(g.count for g in members),
            retry_class=members[0].retry_class,
            messages=tuple(messages[:top]),
            more_messages=max(0, len(messages) - top),
        ))
    out.sort(key=lambda g: (-g.count, g.result_type, g.error_type or ""))
    return out


def _header(group: ErrorTypeGroup, styles: CellStyles) -> Text:
    style = styles(RETRY_CLASS_STYLES[group.retry_class])
    line = Text(" ✗ " if group.result_type == ERRORED else " ◷ ", style)
    line.append_text(inert(group.name, NAME_WIDTH, "bold"))
    line.pad_right(NAME_WIDTH - line.cell_len + 3)
    line.append(f"{group.count:>9,}", "bold")
    line.append("  ")
    line.append(f"{group.retry_class.value:<9}", style)
    line.append(f"  {verdict(group.retry_class)}", styles("muted"))
    return line


def _message(message: str, count: int, variants: int, styles: CellStyles) -> Text:
    line = Text(f"{count:>12,}× ", styles("muted"))
    if variants > 1:
        line.append(f"({variants:,} variants, e.g.) ", styles("muted"))
    line.append_text(inert(message, MESSAGE_WIDTH))
    return line


class ErrorSummary(OptionList):
    """One option per error type and per top message; enter (or a click) filters the table."""

    DEFAULT_CSS = """
    ErrorSummary {
        height: auto;
        max-height: 11;
        border: round $error 60%;
        border-title-color: $text;
        padding: 0;
        background: $surface;
        text-wrap: nowrap;  /* one line per option, cut at the panel's width */
        text-overflow: ellipsis;
        & > .option-list--option-highlighted {
            background: transparent;
            color: $foreground;
            text-style: none;
        }
        &:focus {
            border: round $error;
            & > .option-list--option-highlighted {
                color: $block-cursor-foreground;
                background: $block-cursor-background;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """

    class Picked(Message):
        """A group was chosen: show only its results (`result_type` "missing": not returned)."""

        def __init__(self, result_type: str, error_type: str | None) -> None:
            super().__init__()
            self.result_type = result_type
            self.error_type = error_type

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._targets: dict[str, tuple[str, str | None]] = {}
        self.groups: list[ErrorTypeGroup] = []
        self.border_title = "failures by error type · tab, then enter, filters the table"

    def show(self, groups: Sequence[ErrorGroup], styles: CellStyles, missing: int = 0) -> None:
        """Replace the groups (and a line for results that never came back, if any)."""
        self.groups = group_errors(groups)
        options: list[Option] = []
        targets: dict[str, tuple[str, str | None]] = {}
        for n, group in enumerate(self.groups):
            target = (group.result_type, group.error_type)
            targets[f"g{n}"] = target
            options.append(Option(_header(group, styles), id=f"g{n}"))
            for m, (message, count, variants) in enumerate(group.messages):
                targets[f"g{n}m{m}"] = target
                options.append(Option(_message(message, count, variants, styles),
                                      id=f"g{n}m{m}"))
            if group.more_messages:
                more = group.more_messages
                options.append(Option(Text(f"{'':>14}+{more:,} other message{'s' * (more > 1)}",
                                           styles("muted")), disabled=True))
        if missing:
            targets["missing"] = (MISSING, None)
            line = Text(" ? ", styles("failures"))
            line.append(f"{'not returned':<{NAME_WIDTH}}", "bold")
            line.append(f"{missing:>12,}", "bold")
            line.append("  submitted requests with no result", styles("muted"))
            options.append(Option(line, id="missing"))
        self._targets = targets
        highlighted = self.highlighted
        self.set_options(options)
        if options and highlighted is not None:
            self.highlighted = min(highlighted, len(options) - 1)
        self.display = bool(options)

    def on_focus(self) -> None:
        if self.highlighted is None and self.option_count:
            self.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        target = self._targets.get(event.option_id or "")
        if target is not None:
            self.post_message(self.Picked(*target))
