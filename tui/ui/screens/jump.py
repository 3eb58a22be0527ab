"""The `:` line (`:b ID`, `:audit [ID]`, `:theme`, `:profile`, `:q`) and its parser."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Input, Label

BATCH_PREFIX = "msgbatch_"


class JumpVerb(StrEnum):
    BATCH = "batch"
    AUDIT = "audit"
    QUIT = "quit"
    HELP = "help"
    THEME = "theme"
    PROFILE = "profile"
    NONE = "none"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class JumpCommand:
    verb: JumpVerb
    arg: str = ""


_VERBS: dict[str, JumpVerb] = {
    "b": JumpVerb.BATCH, "batch": JumpVerb.BATCH,
    "audit": JumpVerb.AUDIT, "a": JumpVerb.AUDIT, "events": JumpVerb.AUDIT,
    "q": JumpVerb.QUIT, "quit": JumpVerb.QUIT, "q!": JumpVerb.QUIT, "qa": JumpVerb.QUIT,
    "h": JumpVerb.HELP, "help": JumpVerb.HELP, "?": JumpVerb.HELP,
    "theme": JumpVerb.THEME, "profile": JumpVerb.PROFILE, "profiles": JumpVerb.PROFILE,
}


def parse_jump(text: str) -> JumpCommand:
    """`b ID` / `batch ID` / a bare `msgbatch_…` id, `audit [ID]`, `q`; a leading `:` is ignored."""
    words = text.strip().removeprefix(":").split()
    if not words:
        return JumpCommand(JumpVerb.NONE)
    head, rest = words[0], words[1:]
    if head.startswith(BATCH_PREFIX) and not rest:
        return JumpCommand(JumpVerb.BATCH, head)
    verb = _VERBS.get(head.lower())
    if verb is None:
        return JumpCommand(JumpVerb.UNKNOWN, text.strip())
    if verb is JumpVerb.BATCH:
        if len(rest) != 1:
            return JumpCommand(JumpVerb.UNKNOWN, text.strip())
        return JumpCommand(verb, rest[0])
    return JumpCommand(verb, " ".join(rest))


class JumpScreen(ModalScreen[str | None]):
    """A one-line prompt at the bottom; enter returns the text, esc returns None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="jump.cancel"),
    ]

    def __init__(self, initial: str = "") -> None:
        super().__init__()
        self._initial = initial

    def compose(self) -> ComposeResult:
        with Horizontal(id="jump-line"):
            yield Label(":", id="jump-prompt")
            yield Input(self._initial, id="jump-input", select_on_focus=False,
                        placeholder="b msgbatch_…  audit [msgbatch_…]  theme  profile  q")

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#jump-input", Input))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
