"""A small host app for the action dialogs: real services on an emulator, flows on top."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from textual.app import App, ComposeResult
from textual.notifications import SeverityLevel
from textual.pilot import Pilot
from textual.widgets import Static

from tests.ui.harness import KEY, until
from tui.core.models import ENDED, BatchSnapshot
from tui.emulator.server import RunningEmulator
from tui.service.actions import Actions
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog, read_audit
from tui.service.ledger import Ledger
from tui.service.monitor import Monitor
from tui.service.results_store import ResultsStore
from tui.settings import Settings
from tui.ui.action_flows import ActionFlows

MODEL = "claude-haiku-4-5"


class RecordingMonitor(Monitor):
    """A monitor that is never started: it only records what the flows ask of it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.focused: list[str | None] = []
        self.refreshes = 0
        self.refreshed: list[list[str] | None] = []  # the ids of each refresh (None: all)

    def focus(self, batch_id: str | None) -> None:
        self.focused.append(batch_id)
        super().focus(batch_id)

    async def refresh_now(self, ids: Iterable[str] | None = None) -> None:
        self.refreshes += 1
        self.refreshed.append(None if ids is None else list(ids))
        await super().refresh_now(self.refreshed[-1])


class HostApp(App[None]):
    """Holds `actions`, `monitor`, `settings` and `flows` like the real app will."""

    def __init__(self, home: Path, *, read_only: bool = False, quiet: bool = False) -> None:
        super().__init__()
        self.home = home
        self.quiet = quiet  # record toasts without showing them (stable snapshots)
        self.settings = Settings(read_only=read_only)
        self.labels: dict[str, str] = {}
        self.forgotten: list[str] = []  # batches the flows reported deleted
        self.notes: list[tuple[str, str, SeverityLevel]] = []
        self.flows = ActionFlows(self)
        self.emulator: RunningEmulator | None = None
        self._owns_emulator = False

    def compose(self) -> ComposeResult:
        yield Static("batches", id="host")

    async def connect(self, emulator: RunningEmulator, *, owns: bool = False) -> None:
        """Build the services against `emulator` (stopped with the app when `owns`)."""
        self.emulator = emulator
        self._owns_emulator = owns
        clock = emulator.engine.clock.now
        self.api = BatchesAPI.connect(KEY, emulator.url, max_retries=0)
        self.audit = AuditLog(self.home / "audit", actor="tester", clock=clock)
        self.ledger = Ledger(self.home / "ledger.sqlite3", clock=clock)
        self.store = ResultsStore(self.home / "results", "ws")
        self.monitor = RecordingMonitor(self.api, self.audit, clock=clock)
        self.actions = Actions(self.api, self.ledger, self.audit, self.store,
                               read_only=self.settings.read_only, actor="tester",
                               clock=clock)

    async def disconnect(self) -> None:
        if self.emulator is None:
            return
        await self.audit.close()
        await self.api.close()
        self.ledger.close()
        self.store.close()
        if self._owns_emulator:
            await self.emulator.stop()
        self.emulator = None

    async def on_unmount(self) -> None:
        await self.disconnect()

    def set_labels(self, labels: Mapping[str, str]) -> None:
        self.labels = dict(labels)

    def forget_batches(self, batch_ids: Sequence[str]) -> None:
        self.forgotten.extend(batch_ids)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        self.notes.append((title, message, severity))
        if not self.quiet:
            super().notify(message, title=title, severity=severity, timeout=timeout,
                           markup=markup)

    # -- test helpers -------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        assert self.emulator is not None
        self.emulator.engine.clock.advance(seconds)

    def write(self, name: str, requests: Iterable[Mapping[str, Any]]) -> Path:
        path = self.home / name
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in requests))
        return path

    async def submitted(self, count: int, name: str = "requests.jsonl",
                        prefix: str = "r") -> BatchSnapshot:
        """A batch created through batchtop (its requests are in the ledger)."""
        path = self.write(name, [request(f"{prefix}{n:02d}", n) for n in range(count)])
        (batch,) = await self.actions.submit(await self.actions.plan_submit(path))
        return batch

    async def ended(self, batch_id: str) -> BatchSnapshot:
        self.advance(3600)
        batch = await self.api.retrieve(batch_id)
        assert batch.processing_status == ENDED
        return batch

    def action_records(self, event: str) -> list[dict[str, Any]]:
        return [r for r in read_audit(self.home / "audit").records if r["event"] == event]

    def outcomes(self, event: str) -> list[str]:
        return [r["data"]["outcome"] for r in self.action_records(event)]

    def said(self, text: str) -> bool:
        return any(text in title or text in message for title, message, _ in self.notes)


def request(custom_id: str, n: int = 0, model: str = MODEL) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": model,
            "max_tokens": 10 + n,
            "messages": [{"role": "user", "content": f"question {custom_id}"}],
        },
    }


async def screen_of(pilot: Pilot[Any], kind: type[Any]) -> Any:
    """Wait until a screen of `kind` is on top and mounted, and return it."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, kind) and app.screen.is_mounted)
    await pilot.pause()
    return app.screen
