"""The high-contrast theme (readable at 256 colours) and choosing a theme at start-up."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.theme import Theme

HIGH_CONTRAST_NAME = "batchtop-high-contrast"
FALLBACK_THEME = "textual-dark"

# Every colour is one of the 256-colour palette's own, so a terminal without truecolor
# (OpenSSH does not forward COLORTERM) shows exactly these.
HIGH_CONTRAST = Theme(
    name=HIGH_CONTRAST_NAME,
    primary="#ffff00",
    secondary="#00ffff",
    accent="#00ffff",
    warning="#ffaf00",
    error="#ff5f5f",
    success="#00ff00",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#303030",
    dark=True,
)


def register_themes(app: App[Any]) -> None:
    """Add batchtop's own themes to Textual's."""
    if HIGH_CONTRAST_NAME not in app.available_themes:
        app.register_theme(HIGH_CONTRAST)


def apply_theme(app: App[Any], name: str) -> str | None:
    """Switch to theme `name`; an unknown name falls back and returns a warning to show."""
    if name in app.available_themes:
        app.theme = name
        return None
    app.theme = FALLBACK_THEME
    return f"unknown theme {name!r}; using {FALLBACK_THEME} (ctrl+t lists the themes)"
