"""`P`: pick the profile (workspace) to watch; lists base URLs and read-only flags, never keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui.core.sanitize import safe_cell
from tui.settings import ProfileSummary

NAME_WIDTH = 20
URL_WIDTH = 44
DEFAULT_URL = "api.anthropic.com"


def profile_line(summary: ProfileSummary, current: bool) -> Text:
    """One profile as a line: marker, name, base URL, [RO], where its key comes from."""
    text = Text()
    text.append("● " if current else "  ", style="bold")
    text.append(f"{safe_cell(summary.name, NAME_WIDTH):<{NAME_WIDTH}} ", style="bold")
    if summary.error is not None:
        text.append(safe_cell(summary.error, URL_WIDTH + 20), style="italic")
        return text
    url = summary.base_url or DEFAULT_URL
    text.append(f"{safe_cell(url, URL_WIDTH):<{URL_WIDTH}} ")
    text.append("[RO] " if summary.read_only else "     ", style="bold")
    text.append(safe_cell(summary.key_source, 30), style="dim")
    return text


class ProfilesScreen(ModalScreen[str | None]):
    """Returns the chosen profile's name (enter / l) or None (esc / q / h)."""

    DEFAULT_CSS = """
    ProfilesScreen {
        align: center middle;
    }
    ProfilesScreen > #profiles-box {
        width: 110;
        max-width: 95%;
        height: auto;
        max-height: 80%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    ProfilesScreen #profiles-list {
        height: auto;
        max-height: 20;
        border: none;
    }
    ProfilesScreen #profiles-hint {
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,h", "cancel", "Cancel", id="profiles.cancel"),
        Binding("j", "move(1)", "Down", show=False, id="profiles.down"),
        Binding("k", "move(-1)", "Up", show=False, id="profiles.up"),
        Binding("l", "choose", "Switch", show=False, id="profiles.choose"),
    ]

    def __init__(self, profiles: Sequence[ProfileSummary], current: str) -> None:
        super().__init__()
        self._profiles = list(profiles)
        self._current = current

    def compose(self) -> ComposeResult:
        options = [Option(profile_line(p, p.name == self._current), id=p.name,
                          disabled=p.error is not None) for p in self._profiles]
        with Vertical(id="profiles-box") as box:
            box.border_title = "profiles"
            yield OptionList(*options, id="profiles-list")
            yield Static(Text("enter switches (the list restarts on that workspace) · esc "
                              "cancels · profiles live in the config file"), id="profiles-hint")

    def on_mount(self) -> None:
        options = self.query_one("#profiles-list", OptionList)
        names = [p.name for p in self._profiles]
        if self._current in names:
            options.highlighted = names.index(self._current)
        options.focus()

    @on(OptionList.OptionSelected, "#profiles-list")
    def _on_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        options = self.query_one("#profiles-list", OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def action_choose(self) -> None:
        options = self.query_one("#profiles-list", OptionList)
        index = options.highlighted
        if index is not None:
            option = options.get_option_at_index(index)
            if not option.disabled:
                self.dismiss(option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
