"""Keyboard scrolling of a text pane: its keys, and each named move applied at once."""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import VerticalScroll


def scroll_bindings(prefix: str) -> list[Binding]:
    """The hidden vim-style scroll keys of a screen whose `action_scroll(where)` calls
    `scroll_to`; binding ids are `prefix` plus ".down", ".up", ".page_down", ".page_up",
    ".top" or ".bottom"."""
    return [
        Binding("j,down", "scroll('down')", "Scroll down", show=False, id=f"{prefix}.down"),
        Binding("k,up", "scroll('up')", "Scroll up", show=False, id=f"{prefix}.up"),
        Binding("ctrl+d,pagedown", "scroll('page_down')", "Page down", show=False,
                id=f"{prefix}.page_down"),
        Binding("ctrl+u,pageup", "scroll('page_up')", "Page up", show=False,
                id=f"{prefix}.page_up"),
        Binding("g,home", "scroll('home')", "Top", show=False, id=f"{prefix}.top"),
        Binding("G,end", "scroll('end')", "Bottom", show=False, id=f"{prefix}.bottom"),
    ]


def scroll_to(scroll: VerticalScroll, where: str) -> None:
    """Move `scroll` by `where` ("down", "up", "page_down", "page_up", "home" or "end"),
    without animation."""
    moves = {
        "down": scroll.scroll_down, "up": scroll.scroll_up,
        "page_down": scroll.scroll_page_down, "page_up": scroll.scroll_page_up,
        "home": scroll.scroll_home, "end": scroll.scroll_end,
    }
    moves[where](animate=False)
