"""The on_alert command gets the alert as JSON, and a hanging one is killed with its children."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from tui.core.alerts import Alert, AlertKind, Severity
from tui.service.alert_hook import run_alert_hook

ALERT = Alert(
    kind=AlertKind.ERROR_RATE,
    batch_id="msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d",
    severity=Severity.ERROR,
    message="msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d: 12.0% of 100 requests failed",
    data={"error_rate": 0.12, "threshold": 0.1},
    at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
)


def python(code: str, *args: str) -> str:
    return shlex.join([sys.executable, "-c", code, *args])


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _wait_gone(pid: int) -> bool:
    for _ in range(100):  # the killed group is reparented and reaped; give that a moment
        if not _alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_hook_gets_the_alert_as_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    code = (
        "import os, sys, pathlib; data = sys.stdin.buffer.read();"
        " pathlib.Path(sys.argv[1]).write_bytes(data + b'\\0' +"
        " os.environ['BATCHTOP_ALERT_KIND'].encode())"
    )
    result = await run_alert_hook(python(code, str(out)), ALERT)
    assert result.ok and result.returncode == 0 and result.error is None
    payload, kind = out.read_bytes().split(b"\0")
    assert orjson.loads(payload) == orjson.loads(orjson.dumps(ALERT.to_json()))
    assert orjson.loads(payload)["kind"] == "error_rate"
    assert kind == b"error_rate"


async def test_failing_hook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    code = "import sys; sys.stderr.write('no route to \\x1b[31mhost'); sys.exit(3)"
    with caplog.at_level(logging.WARNING, logger="tui.service.alert_hook"):
        result = await run_alert_hook(python(code), ALERT)
    assert not result.ok and result.returncode == 3
    assert result.error == "exited with status 3: no route to ␛[31mhost"
    assert "exited with status 3" in caplog.text


async def test_hook_that_ignores_stdin_is_fine() -> None:
    assert (await run_alert_hook("true", ALERT)).ok


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("", "the command is empty"),
        ("notify-send 'unbalanced", "cannot parse the command"),
        ("/nonexistent/batchtop-hook --flag", "cannot start '/nonexistent/batchtop-hook'"),
    ],
)
async def test_unusable_commands(command: str, problem: str) -> None:
    result = await run_alert_hook(command, ALERT)
    assert not result.ok and result.returncode is None
    assert result.error is not None and result.error.startswith(problem)


def _hanging_hook(pid_file: Path) -> str:
    """A shell that starts a detached child (own stdio, so only a group kill reaches it)."""
    script = (
        f"sleep 60 </dev/null >/dev/null 2>&1 & echo $! > {shlex.quote(str(pid_file))}; wait"
    )
    return shlex.join(["sh", "-c", script])


def _read_pid(pid_file: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(pid_file.read_text())
    return None


async def _child_pid(pid_file: Path) -> int:
    for _ in range(200):
        pid = _read_pid(pid_file)
        if pid is not None:
            return pid
        await asyncio.sleep(0.02)
    raise AssertionError("the hook never started its child")


async def test_hanging_hook_is_killed_with_its_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    result = await run_alert_hook(_hanging_hook(pid_file), ALERT, timeout=1.0)
    assert not result.ok
    assert result.error == "timed out after 1s and was killed"
    assert await _wait_gone(await _child_pid(pid_file))


async def test_cancelling_the_caller_kills_the_hook(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    task = asyncio.create_task(run_alert_hook(_hanging_hook(pid_file), ALERT, timeout=60))
    child = await _child_pid(pid_file)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_gone(child)


async def test_any_alert_data_is_sent(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    alert = Alert(AlertKind.ENDED, "msgbatch_\udcff", Severity.INFO, "ended",
                  {"cost": Decimal("67.50")})
    code = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_bytes(sys.stdin.buffer.read())"
    result = await run_alert_hook(python(code, str(out)), alert)
    assert result.ok
    payload = json.loads(out.read_bytes())  # escaped: orjson refuses lone surrogates
    assert payload["batch_id"] == alert.batch_id
    assert payload["data"] == {"cost": "67.50"}
