"""Shared pieces of the reliability suite: a fast-retrying monitor, waiting, and file checks."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tui.core.cadence import Backoff, Cadence
from tui.core.events import Event
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog, read_audit
from tui.service.monitor import Monitor, MonitorState

SENTINEL_KEY = "sk-ant-sentinel-5f3c9a1e7d2b4068"
"""Used as the API key wherever a test checks that the key never lands anywhere."""

# Seconds, not minutes: faults are noticed and recovered from within a test's patience.
FAST_CADENCE = Cadence(
    young_s=0.2, young_until_s=3600, middle_s=0.5, middle_until_s=7200, old_s=1.0,
    discover_s=0.3, ended_sweep_s=30.0, focused_s=0.2,
)


def fast_backoff(seed: int = 7) -> Backoff:
    return Backoff(base_s=0.05, max_s=0.3, max_retry_after_s=0.6, seed=seed)


async def wait_until(
    predicate: Callable[[], bool], within: float = 15.0, what: str = "condition"
) -> None:
    """Poll `predicate` on the event loop until it holds; fail after `within` seconds."""
    give_up = time.monotonic() + within
    while not predicate():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class EventTap:
    """Every event the real `AuditLog` has taken, read back from the lines it wrote (as
    `watch --headless` prints them)."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self.events: list[Event] = []
        audit.listen(self._take)

    def _take(self, line: bytes) -> None:
        record = orjson.loads(line)
        self.events.append(Event(record["event"], record["batch_id"], record["data"]))

    @property
    def pending_count(self) -> int:
        return self.audit.pending_count

    @property
    def last_error(self) -> str | None:
        return self.audit.last_error

    def named(self, name: str) -> list[Event]:
        return [event for event in self.events if event.event == name]


@dataclass
class Watch:
    """A monitor running for real (wall-clock time, real SDK, real audit log)."""

    api: BatchesAPI
    tap: EventTap
    monitor: Monitor
    task: asyncio.Task[None]
    audit_dir: Path
    states: list[MonitorState]

    @property
    def state(self) -> MonitorState:
        return self.monitor.state

    def alive(self) -> bool:
        """The monitor's loop is still running (no exception escaped it)."""
        return not self.task.done()


@asynccontextmanager
async def watching(
    base_url: str,
    audit_dir: Path,
    *,
    key: str = "test-key",
    client_timeout: float = 5.0,
    cadence: Cadence = FAST_CADENCE,
    **options: Any,
) -> AsyncIterator[Watch]:
    """Run a `Monitor` against `base_url` with fast backoff; stopped cleanly on exit."""
    api = BatchesAPI.connect(key, base_url, timeout=client_timeout)
    audit = AuditLog(audit_dir, secrets=[key])
    tap = EventTap(audit)
    options.setdefault("backoff", fast_backoff())
    monitor = Monitor(api, audit, cadence, **options)
    states: list[MonitorState] = []
    monitor.subscribe(states.append)
    task = asyncio.create_task(monitor.run(), name="monitor-under-test")
    watch = Watch(api, tap, monitor, task, audit_dir, states)
    try:
        yield watch
    finally:
        monitor.stop()
        await asyncio.wait_for(asyncio.shield(task), 10)
        await audit.close()
        await api.close()


def jsonl_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file parsed; fails on any line that is not a JSON object."""
    out: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_bytes().split(b"\n")[:-1], start=1):
        record = orjson.loads(line)
        assert isinstance(record, dict), f"{path}:{number} is not an object"
        out.append(record)
    return out


def assert_audit_valid(directory: Path) -> list[dict[str, Any]]:
    """Every audit file is complete JSONL from end to end (no torn, no bad line)."""
    result = read_audit(directory)
    assert result.torn == [] and result.bad == [], (result.torn, result.bad)
    for path in directory.glob("*.jsonl"):
        assert path.read_bytes().endswith(b"\n"), f"{path} does not end with a newline"
        jsonl_records(path)
    return result.records


def walk(root: Path) -> Iterator[Path]:
    """Every file and directory under `root` (not following links), `root` included."""
    yield root
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield Path(dirpath) / name


def files_containing(root: Path, needle: bytes) -> list[Path]:
    """Regular files under `root` whose bytes contain `needle`."""
    return [
        path for path in walk(root)
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


def loose_permissions(root: Path) -> list[str]:
    """Files not 0600 and directories not 0700 under `root` (`root` itself excluded)."""
    out: list[str] = []
    for path in walk(root):
        if path == root or path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted:
            out.append(f"{path.relative_to(root)}: {mode:o}")
    return out


class LogCapture(logging.Handler):
    """Collects every log record of the process (formatted, traceback included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@asynccontextmanager
async def capture_logs() -> AsyncIterator[LogCapture]:
    handler = LogCapture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
