"""`?` help: the actions the current screen offers, with their keys and binding ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


@dataclass(frozen=True, slots=True)
class HelpRow:
    keys: str
    description: str
    binding_id: str


def help_rows(screen: Screen[object]) -> list[HelpRow]:
    """One row per action reachable from `screen` (its focused widget, itself and the app)."""
    app = screen.app
    grouped: dict[tuple[str, str], list[str]] = {}
    ids: dict[tuple[str, str], str] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if binding.system or not binding.description or not binding.id:
            continue  # Textual's own defaults (tab, copy) have no id and no place here
        group = (binding.id or binding.action, binding.description)
        keys = grouped.setdefault(group, [])
        shown = app.get_key_display(binding)
        if shown not in keys:
            keys.append(shown)
        ids[group] = binding.id or ""
    return [HelpRow(" ".join(keys), group[1], ids[group]) for group, keys in grouped.items()]


def help_table(rows: list[HelpRow]) -> Table:
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=True)
    table.add_column(Text("keys"), no_wrap=True)
    table.add_column(Text("action"))
    table.add_column(Text("binding id (remap in [keymap])"), style="dim", no_wrap=True)
    for row in rows:
        table.add_row(Text(row.keys, style="bold"), Text(row.description), Text(row.binding_id))
    return table


class HelpScreen(ModalScreen[None]):
    """Lists the actions of the screen it was opened from; any of esc, q, ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close"),
    ]

    def __init__(self, title: str, intro: str, rows: list[HelpRow]) -> None:
        super().__init__()
        self._title = title
        self._intro = intro
        self._rows = rows

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = f"help · {self._title}"
            box.border_subtitle = "esc closes"
            if self._intro:
                yield Static(Text(self._intro), id="help-intro")
            yield Static(help_table(self._rows), id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)
