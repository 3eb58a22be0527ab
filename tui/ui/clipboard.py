"""`y`: copy a value to the terminal's clipboard with OSC 52 (works over SSH and in tmux)."""

from __future__ import annotations

from typing import Any

from textual.app import App

from tui.core.sanitize import has_unsafe, safe_cell, safe_text


def copy_value(app: App[Any], value: str, what: str) -> str:
    """Copy `value` (made inert first: a clipboard is pasted into shells) and say so.

    Returns what was copied. The terminal must allow OSC 52 (tmux: `set -g set-clipboard on`).
    """
    copied = safe_text(value) if has_unsafe(value) else value
    app.copy_to_clipboard(copied)
    note = " (control characters shown, not copied)" if copied != value else ""
    app.notify(f"copied {what} {safe_cell(copied, 60)}{note}", title="clipboard (OSC 52)",
               markup=False, timeout=3)
    return copied
