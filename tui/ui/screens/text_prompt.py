"""A small dialog asking for one line of text: a label, a file path."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui.core.sanitize import safe_cell, safe_text

TITLE_WIDTH = 80


class TextPrompt(ModalScreen[str | None]):
    """Enter returns the text as typed (possibly empty); esc returns None."""

    DEFAULT_CSS = """
    TextPrompt {
        align: center middle;
    }
    TextPrompt > #prompt-box {
        width: 80;
        max-width: 95%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    TextPrompt #prompt-text {
        height: auto;
        margin-bottom: 1;
    }
    TextPrompt #prompt-hint {
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
    ]

    def __init__(
        self,
        title: str,
        prompt: str,
        *,
        value: str = "",
        placeholder: str = "",
        hint: str = "enter saves · esc cancels",
        max_length: int = 0,
    ) -> None:
        super().__init__()
        self._title = title
        self._prompt = prompt
        self._value = value
        self._placeholder = placeholder
        self._hint = hint
        self._max_length = max_length

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box") as box:
            box.border_title = Text(safe_cell(self._title, TITLE_WIDTH))
            yield Static(Text(safe_text(self._prompt)), id="prompt-text")
            yield Input(safe_text(self._value), placeholder=self._placeholder,
                        max_length=self._max_length, id="prompt-input")
            yield Static(Text(self._hint), id="prompt-hint")

    def on_mount(self) -> None:
        self.query_one("#prompt-input", Input).focus()

    @on(Input.Submitted, "#prompt-input")
    def _on_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
