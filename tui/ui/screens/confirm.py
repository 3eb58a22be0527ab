"""The one confirmation dialog: inert body, consequence, safe button focused, y / n / esc."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static
from textual.widgets.button import ButtonVariant

from tui.core.sanitize import has_unsafe, safe_cell, safe_text

WARNING_MARK = "⚠ "
TITLE_WIDTH = 80


def plural(count: int, noun: str) -> str:
    """"1 batch", "3 batches", "1,000 requests"."""
    if count == 1:
        return f"{count:,} {noun}"
    return f"{count:,} {noun}" + ("es" if noun.endswith(("ch", "sh", "s", "x")) else "s")


def inert_body(body: Text) -> Text:
    """`body` as given when it is already safe; else its plain text made safe (styles lost)."""
    return Text(safe_text(body.plain)) if has_unsafe(body.plain) else body


def warning_lines(warnings: Sequence[str]) -> Text:
    """Warnings as inert lines, each with a mark that survives without colour."""
    return Text("\n".join(WARNING_MARK + safe_text(w) for w in warnings))


class ConfirmModal(ModalScreen[bool]):
    """Ask before doing something: dismisses with True only on an explicit yes.

    The safe button ("No") has the focus, so enter alone never confirms. With `typed_count`
    the user must type that number (of targets) before yes is possible; the field has the
    focus then, and y / n type into it rather than answer. With `can_confirm=False` the
    dialog only informs (the yes button stays disabled) and `reason` says why.
    """

    DEFAULT_CSS = """
    ConfirmModal {
        align: center middle;
    }
    ConfirmModal > #confirm-box {
        width: 90;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    ConfirmModal.-destructive > #confirm-box {
        border: thick $error;
    }
    ConfirmModal #confirm-body {
        height: auto;
        max-height: 45vh;
    }
    ConfirmModal .confirm-line {
        height: auto;
        margin-top: 1;
    }
    ConfirmModal #confirm-consequence {
        text-style: bold;
    }
    ConfirmModal #confirm-warnings, ConfirmModal #confirm-reason {
        color: $warning;
    }
    ConfirmModal #confirm-count {
        width: 20;
    }
    ConfirmModal #confirm-buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    ConfirmModal #confirm-buttons > Button {
        margin-left: 2;
    }
    ConfirmModal #confirm-hint {
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Yes", id="confirm.yes"),
        Binding("n", "cancel", "No", id="confirm.no"),
        Binding("escape,q", "cancel", "No", show=False, id="confirm.escape"),
    ]

    def __init__(
        self,
        title: str,
        body: Text,
        consequence: str = "",
        *,
        confirm_label: str = "Yes",
        cancel_label: str = "No",
        destructive: bool = True,
        warnings: Sequence[str] = (),
        typed_count: int | None = None,
        can_confirm: bool = True,
        reason: str = "",
    ) -> None:
        super().__init__(classes="-destructive" if destructive else None)
        self._variant: ButtonVariant = "error" if destructive else "primary"
        self._title = title
        self._body = inert_body(body)
        self._consequence = consequence
        self._confirm_label = confirm_label
        self._cancel_label = cancel_label
        self._warnings = tuple(warnings)
        self._typed_count = typed_count if can_confirm else None
        self._can_confirm = can_confirm
        self._reason = reason

    @property
    def typed_count(self) -> int | None:
        return self._typed_count

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box") as box:
            box.border_title = Text(safe_cell(self._title, TITLE_WIDTH))
            box.border_subtitle = "y yes · n / esc no" if self._can_confirm else "esc closes"
            with VerticalScroll(id="confirm-body"):
                yield Static(self._body, id="confirm-text")
            if self._warnings:
                yield Static(warning_lines(self._warnings), id="confirm-warnings",
                             classes="confirm-line")
            if self._consequence:
                yield Static(Text(safe_text(self._consequence)), id="confirm-consequence",
                             classes="confirm-line")
            if not self._can_confirm and self._reason:
                yield Static(Text(safe_text(self._reason)), id="confirm-reason",
                             classes="confirm-line")
            if self._typed_count is not None:
                yield Static(Text(f"Type {self._typed_count} (the number of targets) and press "
                                  "enter to confirm:"), classes="confirm-line")
                yield Input(placeholder=str(self._typed_count), restrict=r"[0-9]*",
                            max_length=len(str(self._typed_count)) + 2, id="confirm-count")
            with Horizontal(id="confirm-buttons"):
                yield Button(self._cancel_label, id="confirm-no")
                yield Button(self._confirm_label, variant=self._variant, id="confirm-yes",
                             disabled=not self._can_confirm or self._typed_count is not None)

    def on_mount(self) -> None:
        if self._typed_count is not None:
            self.query_one("#confirm-count", Input).focus()
        else:
            self.query_one("#confirm-no", Button).focus()

    # -- the typed count ------------------------------------------------------------------------

    def _count_matches(self) -> bool:
        if self._typed_count is None:
            return True
        return self.query_one("#confirm-count", Input).value.strip() == str(self._typed_count)

    @on(Input.Changed, "#confirm-count")
    def _on_count_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#confirm-yes", Button).disabled = not self._count_matches()

    @on(Input.Submitted, "#confirm-count")
    def _on_count_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._count_matches():
            self.dismiss(True)
        else:
            self.notify(f"type {self._typed_count} to confirm, or esc to cancel",
                        severity="warning", markup=False)

    # -- answers --------------------------------------------------------------------------------

    @on(Button.Pressed, "#confirm-yes")
    def _on_yes(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_confirm()

    @on(Button.Pressed, "#confirm-no")
    def _on_no(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    def action_confirm(self) -> None:
        if self._can_confirm and self._count_matches():
            self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
