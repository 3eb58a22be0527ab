"""Textual messages that carry the monitor's state into the UI."""

from __future__ import annotations

from textual.message import Message

from tui.service.monitor import MonitorState


class MonitorUpdated(Message, bubble=False):
    """The monitor published a new state. Only the newest matters, so a burst costs one repaint."""

    def __init__(self, state: MonitorState) -> None:
        super().__init__()
        self.state = state

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, MonitorUpdated)


class ServicesReady(Message, bubble=False):
    """The API client, audit log and monitor are up (after an in-process emulator started)."""


class ServicesFailed(Message, bubble=False):
    """The services could not start; `reason` is already safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
