"""`batchtop audit` (merged, filtered, torn-line tolerant, --follow) and `watch --headless`."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

from tests.cli.conftest import KEY
from tests.emulator_fixtures import MakeThreadedEmulator
from tui.cli import EXIT_OK, main
from tui.core.events import Event
from tui.paths import locations
from tui.service.audit import AuditLog, read_audit

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
WAIT_S = 20.0


def write_records(directory: Path, events: list[Event], start: datetime = START) -> None:
    moments = iter(start + timedelta(seconds=n) for n in range(10**6))

    async def write() -> None:
        async with AuditLog(directory, actor="tester", clock=lambda: next(moments)) as audit:
            for event in events:
                await audit.record(event)

    asyncio.run(write())


EVENTS = [
    Event("session.started", None, {}),
    Event("batch.discovered", "msgbatch_a", {"status": "in_progress"}),
    Event("batch.discovered", "msgbatch_b", {"status": "in_progress"}),
    Event("action.cancel", "msgbatch_a", {"outcome": "refused", "reason": "declined"}),
    Event("batch.ended", "msgbatch_b", {"counts": {"succeeded": 3}}),
    Event("batch.ended", "msgbatch_a", {"counts": {"canceled": 9}, "note": "\x1b[2Jboom"}),
]


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_audit_merges_files_by_time(capsys: pytest.CaptureFixture[str]) -> None:
    write_records(locations().audit, EVENTS)
    code, out, err = run_main(capsys, "audit", "--json")
    assert (code, err) == (EXIT_OK, "")
    records = [orjson.loads(line) for line in out.splitlines()]
    assert [(r["event"], r["batch_id"]) for r in records] == [
        (e.event, e.batch_id) for e in EVENTS
    ]
    code, out, _ = run_main(capsys, "audit")
    assert "\x1b" not in out and "␛[2Jboom" in out
    assert out.splitlines()[3].startswith("2026-05-01T09:00:03.000Z  action.cancel  msgbatch_a  "
                                          "outcome=refused reason=declined")


def test_audit_filters(capsys: pytest.CaptureFixture[str]) -> None:
    write_records(locations().audit, EVENTS)
    _, out, _ = run_main(capsys, "audit", "--json", "--batch", "msgbatch_a", "--event", "batch.*")
    assert [orjson.loads(line)["event"] for line in out.splitlines()] == [
        "batch.discovered", "batch.ended"]
    _, out, _ = run_main(capsys, "--json", "audit", "--event", "action.*,session.started")
    assert [orjson.loads(line)["event"] for line in out.splitlines()] == [
        "session.started", "action.cancel"]
    recent = datetime.now(UTC) - timedelta(minutes=1)
    write_records(locations().audit, [Event("batch.gone", "msgbatch_c", {})], start=recent)
    _, out, _ = run_main(capsys, "audit", "--json", "--since", "10m")
    assert [orjson.loads(line)["batch_id"] for line in out.splitlines()] == ["msgbatch_c"]
    _, out, _ = run_main(capsys, "audit", "--json", "--since", "2026-05-01T09:00:04Z")
    assert len(out.splitlines()) == 3


def test_torn_last_line_is_skipped_and_named(capsys: pytest.CaptureFixture[str]) -> None:
    directory = locations().audit
    write_records(directory, EVENTS)
    with (directory / "batch_msgbatch_a.jsonl").open("ab") as handle:
        handle.write(b'{"timestamp":"2026-05-01T10:00:00.000Z","event":"batch.en')
    code, out, err = run_main(capsys, "audit", "--json")
    assert code == EXIT_OK
    assert len(out.splitlines()) == len(EVENTS)
    assert err.startswith("batchtop: skipped a torn last line at batch_msgbatch_a.jsonl:4")


def test_bad_since_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["audit", "--since", "yesterday-ish"])
    assert stop.value.code == 2


# -- live: subprocesses ---------------------------------------------------------------------


class Lines:
    """The stdout lines of a subprocess, read by a thread, waited for with a deadline."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for raw in stream:
            self._queue.put(raw.decode())
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"not seen in time; got {self.seen[-5:]}")

    def rest(self) -> list[str]:
        """Every line still unread, once the process has ended."""
        lines: list[str] = []
        while (line := self._queue.get(timeout=WAIT_S)) is not None:
            lines.append(line)
        self.seen += lines
        return lines


@pytest.fixture
def spawn(isolated_home: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Lines]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> tuple[subprocess.Popen[bytes], Lines]:
        env = {**os.environ, "BATCHTOP_HOME": str(isolated_home), "ANTHROPIC_API_KEY": KEY}
        process = subprocess.Popen([sys.executable, "-m", "tui", *argv], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(process)
        return process, Lines(process)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=WAIT_S)


def test_audit_follow_sees_new_lines(spawn: Callable[..., Any]) -> None:
    directory = locations().audit
    write_records(directory, EVENTS[:1])
    process, lines = spawn("audit", "--follow", "--json")
    lines.wait_for(lambda line: '"session.started"' in line)
    write_records(directory, [Event("batch.ended", "msgbatch_new", {"n": 1})],
                  start=datetime.now(UTC))
    seen = orjson.loads(lines.wait_for(lambda line: "msgbatch_new" in line))
    assert seen["event"] == "batch.ended"
    assert stop(process) == EXIT_OK


def test_watch_headless_records_an_ended_batch(
    spawn: Callable[..., Any], make_threaded_emulator: MakeThreadedEmulator,
) -> None:
    emulator = make_threaded_emulator(scenario="empty")
    with anthropic.Anthropic(api_key=KEY, base_url=emulator.url) as client:
        batch = client.messages.batches.create(requests=[{"custom_id": "w-1", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}]}}])
    config = locations().config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[cadence]\nyoung_s = 0.2\nmiddle_s = 0.2\nold_s = 0.2\n"
                      "discover_s = 0.5\nfocused_s = 0.2\n")
    process, lines = spawn("watch", "--headless", "--json", "--base-url", emulator.url)
    lines.wait_for(lambda line: f'"batch.discovered","batch_id":"{batch.id}"' in line)
    emulator.call(lambda: emulator.engine.clock.advance(3600))
    ended = orjson.loads(lines.wait_for(lambda line: '"batch.ended"' in line))
    assert ended["batch_id"] == batch.id
    assert stop(process) == EXIT_OK
    records = read_audit(locations().audit).records
    assert [r["batch_id"] for r in records if r["event"] == "batch.ended"] == [batch.id]
    assert records[-1]["event"] == "session.ended"


def test_watch_headless_raises_alerts_like_the_app(
    spawn: Callable[..., Any], make_threaded_emulator: MakeThreadedEmulator, tmp_path: Path,
) -> None:
    emulator = make_threaded_emulator(scenario="empty", error_rate=0.5, seed=3)
    with anthropic.Anthropic(api_key=KEY, base_url=emulator.url) as client:
        batch = client.messages.batches.create(requests=[{"custom_id": f"a-{n}", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}]}} for n in range(20)])
    hook_out = tmp_path / "hook.json"
    hook = (f"{sys.executable} -c \"import sys, pathlib; "
            f"pathlib.Path(sys.argv[1]).open('ab').write(sys.stdin.buffer.read())\" {hook_out}")
    config = locations().config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[defaults]\non_alert = {json.dumps(hook)}\nsla_seconds = 1000000\n"
                      "[cadence]\nyoung_s = 0.2\nmiddle_s = 0.2\nold_s = 0.2\n"
                      "discover_s = 0.5\nfocused_s = 0.2\n")
    process, lines = spawn("watch", "--headless", "--json", "--base-url", emulator.url)
    lines.wait_for(lambda line: f'"batch.discovered","batch_id":"{batch.id}"' in line)
    emulator.call(lambda: emulator.engine.clock.advance(3600))
    alert = orjson.loads(lines.wait_for(lambda line: '"alert.raised"' in line))
    assert alert["batch_id"] == batch.id and alert["data"]["kind"] == "error_rate"
    assert stop(process) == EXIT_OK
    lines.rest()
    printed = [orjson.loads(line) for line in lines.seen]
    rate_alerts = [(r["batch_id"], r["data"]["kind"]) for r in printed
                   if r["event"] == "alert.raised" and r["data"]["kind"] == "error_rate"]
    assert rate_alerts == [(batch.id, "error_rate")]
    records = read_audit(locations().audit).records
    raised = [(r["batch_id"], r["data"]["kind"]) for r in records if r["event"] == "alert.raised"]
    assert sorted(raised) == sorted((r["batch_id"], r["data"]["kind"]) for r in printed
                                    if r["event"] == "alert.raised")
    assert raised.count((batch.id, "error_rate")) == 1
    assert not [r for r in records if r["event"] == "alert.hook_failed"], records
    hooked = hook_out.read_bytes()  # on_alert ran, once per alert
    assert hooked.count(b"error_rate") >= 1 and batch.id.encode() in hooked


class FakeBacklog:
    pending_count = 0
    last_error: str | None = None


def test_watch_says_once_when_the_audit_log_fails_and_when_it_recovers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tui.commands.watch import AuditErrorReporter
    from tui.service.monitor import MonitorState

    audit = FakeBacklog()
    report = AuditErrorReporter(audit)  # type: ignore[arg-type]
    report(MonitorState())
    audit.pending_count, audit.last_error = 3, "session.jsonl: No space left on device"
    report(MonitorState(audit_error="audit log not written (3 events held, retrying)"))
    audit.pending_count = 4
    report(MonitorState(audit_error="audit log not written (4 events held, retrying)"))
    audit.pending_count, audit.last_error = 0, None
    report(MonitorState())
    report(MonitorState())
    assert capsys.readouterr().err.splitlines() == [
        "batchtop: audit log not writable: session.jsonl: No space left on device; "
        "3 events held, retrying",
        "batchtop: audit log writable again",
    ]
