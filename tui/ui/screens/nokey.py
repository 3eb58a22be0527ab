"""The friendly first screen when no API key is configured: how to set one, or try the demo."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Footer, Static


def no_key_text(key_env: str, profile: str, config_file: str | None, reason: str | None) -> Text:
    """What to do next, as plain text (the reason may come from a failed key command)."""
    text = Text()
    text.append("No API key found\n\n", style="bold")
    if reason:
        text.append(f"{reason}\n\n")
    text.append("batchtop needs an Anthropic API key to watch your batches. Either:\n\n")
    text.append(f"  • export {key_env}=sk-ant-…\n", style="bold")
    text.append("  • or give the profile a key command in the config file:\n")
    text.append(f"      [profiles.{profile}]\n", style="bold")
    text.append('      api_key_command = "pass show anthropic/prod"\n', style="bold")
    if config_file:
        text.append(f"    ({config_file})\n")
    text.append("\nOr try it with no key at all:\n\n")
    text.append("  • batchtop --demo", style="bold")
    text.append("   (a local emulator with a mix of live batches)\n\n")
    text.append("Press d to start the demo now, q to quit.")
    return text


class NoKeyScreen(Screen[None]):
    """Shown instead of a traceback when there is no key and no --demo."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "app.start_demo", "Start the demo", id="nokey.demo"),
        Binding("q", "app.quit", "Quit", id="nokey.quit"),
    ]

    def __init__(self, message: Text) -> None:
        super().__init__()
        self._message = message

    def compose(self) -> ComposeResult:
        with Middle(), Center():
            yield Static(self._message, id="nokey-box")
        yield Footer()
